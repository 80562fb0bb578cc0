"""A backend process in a test: ``python -m <module>`` on its own ports, its health and its metrics.

Every harness helper that runs a backend (one of the four, the mesh's, or a test program built on the
kit) starts it here: :func:`spawn_backend` starts it without waiting (so several boot in parallel),
:func:`start_backend` also waits until it is SERVING, and :class:`BackendProcess` is what both return.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from harness.processes import Proc, spawn, wait_until
from infra.procs import free_port, free_port_range

SERVING = health_pb2.HealthCheckResponse.SERVING
LOG_TAIL = 4000  # characters of a backend's log printed when it fails to start


@dataclass
class BackendProcess:
    """A running backend: its gRPC target, its metrics port and the process itself."""

    name: str
    target: str
    metrics_port: int
    proc: Proc

    def health(self, service: str = "", credentials: grpc.ChannelCredentials | None = None) -> int | None:
        return health_status(self.target, service, credentials)

    def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        return metric_value(self.metrics_port, name, labels)

    def wait_serving(
        self,
        timeout: float = 90,
        *,
        serving: bool = True,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """Wait until SERVING and connected to Kafka (with ``serving=False``, until its health answers at
        all); raise with its log if it exits first. ``credentials`` for a backend serving TLS."""
        wanted = {SERVING} if serving else set(health_pb2.HealthCheckResponse.ServingStatus.values())
        wait_until(
            lambda: self.health(credentials=credentials) in wanted or self.proc.popen.poll() is not None,
            timeout,
            f"{self.name} backend health",
        )
        if self.proc.popen.poll() is not None:
            raise RuntimeError(f"{self.name} backend exited:\n{self.proc.log()[-LOG_TAIL:]}")
        if serving:
            # Kafka only degrades a backend, so SERVING does not mean its consumers have subscribed yet:
            # a test starts once they have, as it would find a long-running backend.
            wait_until(
                lambda: self.kafka_connected() or self.proc.popen.poll() is not None,
                timeout,
                f"{self.name} backend connected to Kafka",
            )
            if self.proc.popen.poll() is not None:
                raise RuntimeError(f"{self.name} backend exited:\n{self.proc.log()[-LOG_TAIL:]}")

    def kafka_connected(self) -> bool:
        """Its last health round found Kafka up: its broker started, its consumers subscribed. False while
        its metrics port does not answer yet: with several processes the gRPC port may answer from one
        child before the child serving this metrics port has started."""
        try:
            return self.metric("portico_dependency_up", {"dependency": "kafka"}) == 1
        except httpx.TransportError:
            return False

    def stop(self, timeout: float = 20) -> int:
        return self.proc.terminate(timeout)

    def client_ports(self, port: int) -> set[int]:
        """Local ports of the process's established TCP connections to ``port`` (Linux ``/proc``)."""
        pid = self.proc.popen.pid
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        found = set()
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    found.add(int(fields[1].rsplit(":", 1)[1], 16))
        return found


def backend_env(name: str, port: int, metrics_port: int) -> dict[str, str]:
    """The variables that put backend ``name`` on ``port`` and its metrics on ``metrics_port``."""
    return {
        f"PORTICO_{name.upper()}_PORT": str(port),
        f"PORTICO_{name.upper()}_METRICS_PORT": str(metrics_port),
    }


def spawn_backend(
    name: str,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    port: int | None = None,
    metrics_port: int | None = None,
    module: str | None = None,
) -> BackendProcess:
    """``python -m backends.<name>`` (or ``module``) with ``env`` plus its ports; does not wait. Each port
    is the one given, else the one ``env`` names, else a free one. Its log is ``<log_dir>/<name>-<port>.log``.
    """
    prefix = f"PORTICO_{name.upper()}"
    port = port or _named_port(env, f"{prefix}_PORT") or free_port()
    count = int(env.get(f"{prefix}_PROCESSES") or 1)  # its processes serve metrics on port + 0..count-1
    metrics_port = metrics_port or _named_port(env, f"{prefix}_METRICS_PORT") or free_port_range(count)
    full_env = {**env, **backend_env(name, port, metrics_port)}
    proc = spawn(f"{name}-{port}", ["-m", module or f"backends.{name}"], full_env, log_dir)
    return BackendProcess(name, f"127.0.0.1:{port}", metrics_port, proc)


def _named_port(env: Mapping[str, str], key: str) -> int | None:
    return int(env[key]) if env.get(key) else None


_BIND_ATTEMPTS = 3
_BIND_FAILED = "Failed to add port"


def start_backend(
    name: str,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    serving: bool = True,
    timeout: float = 90,
    port: int | None = None,
    module: str | None = None,
) -> BackendProcess:
    """:func:`spawn_backend`, then wait for its health (see :meth:`BackendProcess.wait_serving`); on
    failure it is stopped and its log printed."""
    for attempt in range(_BIND_ATTEMPTS):
        backend = spawn_backend(name, env, log_dir, port=port, module=module)
        try:
            backend.wait_serving(timeout, serving=serving)
        except BaseException:
            backend.stop()
            log = backend.proc.log()
            # A free port picked here can be taken by another process before the backend binds it: pick
            # again (only when the port was ours to pick).
            if port is None and _BIND_FAILED in log and attempt + 1 < _BIND_ATTEMPTS:
                continue
            print(log[-LOG_TAIL:])
            raise
        return backend
    raise AssertionError("unreachable")


def health_status(
    target: str, service: str = "", credentials: grpc.ChannelCredentials | None = None
) -> int | None:
    """The backend's health status (over TLS with ``credentials``), or None when it does not answer."""
    try:
        with open_sync_channel(target, credentials) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1
            )
            return int(reply.status)
    except grpc.RpcError:
        return None


def open_sync_channel(target: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    """A blocking channel to ``target``: plaintext, or TLS with ``credentials``."""
    if credentials is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, credentials)


def metric_value(metrics_port: int, name: str, labels: Mapping[str, str] | None = None) -> float:
    """A sample of a process's ``/metrics`` whose labels include ``labels`` (0 when absent)."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and (labels or {}).items() <= sample.labels.items():
                return float(sample.value)
    return 0.0
