"""The four backends and the gateway on free ports, against the session's real infrastructure."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from harness.auth import ADMIN_PASSWORD
from harness.backends import BackendProcess, backend_env, spawn_backend
from harness.gateway import gateway_ready
from harness.infra import start_infra
from harness.processes import Proc, spawn, wait_until
from infra.procs import free_port, free_port_range

BACKENDS = ("users", "auth", "posts", "broker")


@dataclass
class Mesh:
    ports: dict[str, int]
    metrics_ports: dict[str, int]
    gateway_url: str
    env: dict[str, str]
    procs: dict[str, Proc] = field(default_factory=dict)  # the backends' and the gateway's, by name
    backends: dict[str, BackendProcess] = field(default_factory=dict)

    def target(self, backend: str) -> str:
        return f"127.0.0.1:{self.ports[backend]}"

    def stop(self) -> dict[str, int]:
        return {name: proc.terminate() for name, proc in reversed(self.procs.items())}


def processes(env: Mapping[str, str], name: str) -> int:
    """How many serving processes ``env`` asks of ``name`` (``PORTICO_<NAME>_PROCESSES``, default 1)."""
    return int(env.get(f"PORTICO_{name.upper()}_PROCESSES") or 1)


# Every test calls from 127.0.0.1 and every gateway of the session shares one Redis: a gateway the tests
# start must not throttle the suite, nor (with a small limit on a shared key such as the client IP's)
# spend the budget of the others. The rate-limit tests start their own gateways with small limits.
LENIENT_GATEWAY_LIMITS = {
    "PORTICO_GATEWAY_RATE_LIMIT_PER_IP": "100000/minute",
    "PORTICO_GATEWAY_RATE_LIMIT_PER_USER": "100000/hour",
    "PORTICO_GATEWAY_RATE_LIMIT_LOGIN": "10000/minute",
    "PORTICO_GATEWAY_RATE_LIMIT_SIGNUP": "100000/minute",
    "PORTICO_GATEWAY_RATE_LIMIT_PASSWORD": "100000/minute",
    "PORTICO_GATEWAY_RATE_LIMIT_SEARCH": "100000/minute",
}


def mesh_env(infra_env: dict[str, str]) -> tuple[dict[str, str], dict[str, int], dict[str, int], int]:
    ports = {name: free_port() for name in BACKENDS}
    # A backend with N processes serves metrics on its port + 0..N-1: all of them must be free.
    metrics_ports = {name: free_port_range(processes(infra_env, name)) for name in BACKENDS}
    gateway_port = free_port()
    env = dict(infra_env)
    for name in BACKENDS:
        env.update(backend_env(name, ports[name], metrics_ports[name]))
        env[f"PORTICO_{name.upper()}_TARGET"] = f"127.0.0.1:{ports[name]}"
    env["PORTICO_GATEWAY_PORT"] = str(gateway_port)
    # As `make up` does: the backends believe the gateway's x-client-ip (and auth's, calling users).
    env.setdefault("PORTICO_FORWARDING_SECRET", secrets.token_urlsafe(32))
    # A bootstrap admin in tenant "default" (the tests that change roles need an admin who logs in).
    env.setdefault("PORTICO_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
    for name, value in LENIENT_GATEWAY_LIMITS.items():
        env.setdefault(name, value)
    return env, ports, metrics_ports, gateway_port


def start_mesh(
    infra_env: dict[str, str],
    log_dir: Path,
    timeout: float = 60,
    *,
    credentials: grpc.ChannelCredentials | None = None,
) -> Mesh:
    """The four backends and the gateway on free ports; ``credentials`` reach backends that serve (m)TLS."""
    env, ports, metrics_ports, gateway_port = mesh_env(infra_env)
    # Local state (auth keys, post images) of this mesh only, not the checkout's .run/.
    env.setdefault("PORTICO_RUN_DIR", str(log_dir / "run"))
    mesh = Mesh(ports, metrics_ports, f"http://127.0.0.1:{gateway_port}", env)
    try:
        for name in BACKENDS:
            backend = spawn_backend(name, env, log_dir, port=ports[name], metrics_port=metrics_ports[name])
            mesh.backends[name], mesh.procs[name] = backend, backend.proc
        mesh.procs["gateway"] = spawn("gateway", ["-m", "gateway"], env, log_dir)
        for backend in mesh.backends.values():
            backend.wait_serving(timeout, credentials=credentials)
        wait_until(lambda: gateway_ready(mesh.gateway_url), timeout, "gateway /ready")
    except BaseException:
        mesh.stop()
        for proc in mesh.procs.values():
            print(f"----- {proc.name} log -----\n{proc.log()[-4000:]}")
        raise
    return mesh


def start_backends_on_infra(stack: ExitStack, base: Path, env: Mapping[str, str]) -> Mesh:
    """Kafka, Redis and PostgreSQL (or the ones ``PORTICO_*`` names) and the four backends under ``base``,
    without the gateway (a benchmark runs its own); all stopped when ``stack`` closes."""
    infra = start_infra(stack, base / "infra")
    (base / "logs").mkdir()
    mesh = start_mesh({**infra.env(), **env}, base / "logs")
    stack.callback(mesh.stop)
    mesh.procs.pop("gateway").terminate()
    return mesh
