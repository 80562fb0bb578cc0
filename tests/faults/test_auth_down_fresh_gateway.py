"""Auth down while a fresh gateway (and a fresh users backend) starts: a valid token is never a 401.

Own users + auth backends and gateways on free ports (the session's mesh is left alone); the session's
Kafka and Redis are only used, never stopped. With the key set kept from before the restart, the token
is accepted (200); a gateway with no kept key set cannot know whether it is valid and answers 503 with
``Retry-After`` (a client that signs its user out on 401 must not do so because auth is down), and
serves the token again once auth is back, without a restart.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from harness.accounts import bearer, registered, registration
from harness.auth import AuthStack, start_auth_stack, stop_auth_stack
from harness.backends import start_backend
from harness.infra import InfraEnv
from harness.mesh import LENIENT_GATEWAY_LIMITS
from harness.processes import Proc, spawn, wait_until
from infra.procs import free_port

pytestmark = pytest.mark.infra

REQUESTS = 20  # per gateway: enough to see every answer is the same, small enough for a busy machine
FETCH_DEADLINE_S = 3.0  # the verifiers' JWKS fetch deadline (meshkit.auth.keys.JwksClient)
REFETCH_COOLDOWN_S = 10.0  # PORTICO_JWKS_REFETCH_COOLDOWN's default: at most one fetch per this
# Auth back → served again: the refetch cool-down (10 s) plus the channel's next reconnect attempt
# (gRPC's backoff after a ~20 s outage is under 20 s).
RECOVERY_BOUND_S = 45.0

Record = Callable[[str, object], None]


@dataclass
class Scene:
    """Users + auth, a token fetched through a first gateway (which kept the key set), then stopped."""

    stack: AuthStack
    env: dict[str, str]
    headers: dict[str, str]
    kept_run: Path
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def gateway(self, name: str, run_dir: Path) -> str:
        port = free_port()
        env = {**self.env, "PORTICO_GATEWAY_PORT": str(port), "PORTICO_RUN_DIR": str(run_dir)}
        proc = spawn(name, ["-m", "gateway"], env, self.log_dir)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def alive() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return proc.popen.poll() is not None

        wait_until(alive, 60, f"{name} /health")
        assert proc.popen.poll() is None, proc.log()[-4000:]
        return url

    def me(self, url: str, count: int = REQUESTS) -> tuple[list[httpx.Response], list[float]]:
        answers, seconds = [], []
        with httpx.Client(base_url=url, timeout=15) as client:
            for _ in range(count):
                started = time.monotonic()
                answers.append(client.get("/api/v1/users/me", headers=self.headers))
                seconds.append(time.monotonic() - started)
        return answers, seconds


@contextmanager
def scene(infra: InfraEnv, tmp_path: Path) -> Iterator[Scene]:
    stack = start_auth_stack(infra, tmp_path / "stack")
    dead = f"127.0.0.1:{free_port()}"  # posts and broker: not needed here
    env = {
        **infra.env(),
        "PORTICO_AUTH_TARGET": stack.auth_target,
        "PORTICO_USERS_TARGET": stack.users_target,
        "PORTICO_POSTS_TARGET": dead,
        "PORTICO_BROKER_TARGET": dead,
        **LENIENT_GATEWAY_LIMITS,
    }
    current = Scene(stack, env, {}, tmp_path / "gateway-run", tmp_path)
    try:
        url = current.gateway("gateway-first", current.kept_run)
        with httpx.Client(base_url=url, timeout=30) as client:
            current.headers = bearer(
                registered(client.post("/api/v1/auth/register", json=registration("faults")))
            )
            assert client.get("/api/v1/users/me", headers=current.headers).status_code == 200
        current.procs.pop().terminate()  # the key set it fetched stays in its run dir
        yield current
    finally:
        for proc in current.procs:
            proc.terminate()
        stop_auth_stack(stack)


def _report(scenario: str, figures: dict[str, object], record_property: Record) -> None:
    print(f"FAULT {scenario}: " + " ".join(f"{k}={v}" for k, v in figures.items()))
    for key, value in figures.items():
        record_property(key, value)


def _statuses(answers: list[httpx.Response]) -> list[int]:
    return [a.status_code for a in answers]


def _retry_after(answers: list[httpx.Response]) -> int:
    return sum(1 for a in answers if int(a.headers.get("retry-after", "0")) >= 1)


def test_auth_down_fresh_gateway(infra: InfraEnv, tmp_path: Path, record_property: Record) -> None:
    with scene(infra, tmp_path) as current:
        auth = current.stack.backends["auth"]
        auth.proc.popen.send_signal(signal.SIGKILL)
        auth.proc.popen.wait(10)
        # The users backend restarts too (same run dir and port): a fresh backend verifies on its own.
        users = current.stack.backends["users"]
        users.stop()
        users_port = int(users.target.rsplit(":", 1)[1])
        current.stack.backends["users"] = start_backend(
            "users", current.stack.env, current.stack.log_dir, port=users_port
        )

        started = time.monotonic()
        kept, _ = current.me(current.gateway("gateway-restarted", current.kept_run))
        restart_to_served = time.monotonic() - started

        empty_url = current.gateway("gateway-empty", tmp_path / "empty-run")
        fresh, _ = current.me(empty_url)
        codes = {a.json()["error"]["code"] for a in fresh if a.status_code >= 400}

        # Auth comes back (same keys, same port): the empty gateway serves the token, no restart.
        auth_port = int(auth.target.rsplit(":", 1)[1])
        current.stack.backends["auth"] = start_backend(
            "auth", current.stack.env, current.stack.log_dir, port=auth_port
        )
        back, recovering = time.monotonic(), []
        while time.monotonic() - back < RECOVERY_BOUND_S:
            answer, _ = current.me(empty_url, 1)
            recovering += answer
            if answer[0].status_code == 200:
                break
            time.sleep(0.5)
        recovery = time.monotonic() - back

    everything = _statuses(kept + fresh + recovering)
    figures = {
        "requests": len(everything),
        "kept_200": _statuses(kept).count(200),
        "fresh_503": _statuses(fresh).count(503),
        "retry_after": _retry_after(fresh),
        "401s": everything.count(401),
        "other": sum(1 for s in everything if s not in (200, 401, 503)),
        "restart_to_served_s": round(restart_to_served, 2),
        "auth_back_to_200_s": round(recovery, 2),
    }
    _report("auth_down_fresh_gateway", figures, record_property)
    assert figures["401s"] == 0
    assert _statuses(kept) == [200] * REQUESTS
    assert _statuses(fresh) == [503] * REQUESTS
    assert figures["retry_after"] == REQUESTS
    assert codes == {"UNAVAILABLE"}
    assert _statuses(recovering)[-1] == 200, f"not served {RECOVERY_BOUND_S} s after auth came back"


def test_auth_hung_fresh_gateway(infra: InfraEnv, tmp_path: Path, record_property: Record) -> None:
    """SIGSTOP: auth accepts connections but never answers; no request waits past the fetch deadline."""
    with scene(infra, tmp_path) as current:
        auth = current.stack.backends["auth"].proc.popen
        auth.send_signal(signal.SIGSTOP)
        try:
            kept, kept_s = current.me(current.gateway("gateway-restarted", current.kept_run))
            fresh, fresh_s = current.me(current.gateway("gateway-empty", tmp_path / "empty-run"))
        finally:
            auth.send_signal(signal.SIGCONT)

    everything = _statuses(kept + fresh)
    figures = {
        "requests": len(everything),
        "kept_200": _statuses(kept).count(200),
        "fresh_503": _statuses(fresh).count(503),
        "retry_after": _retry_after(fresh),
        "401s": everything.count(401),
        "kept_max_s": round(max(kept_s), 2),
        "fresh_max_s": round(max(fresh_s), 2),
        "waited_for_auth": sum(1 for s in kept_s + fresh_s if s >= FETCH_DEADLINE_S / 2),
    }
    _report("auth_hung_fresh_gateway", figures, record_property)
    assert figures["401s"] == 0
    assert _statuses(kept) == [200] * REQUESTS
    assert _statuses(fresh) == [503] * REQUESTS
    assert figures["retry_after"] == REQUESTS
    # One fetch per cool-down waits for the deadline; the others do not queue behind it.
    allowed = sum(1 + int(sum(batch) // REFETCH_COOLDOWN_S) for batch in (kept_s, fresh_s))
    assert figures["waited_for_auth"] <= allowed, (kept_s, fresh_s)
    assert max(kept_s + fresh_s) < FETCH_DEADLINE_S + REFETCH_COOLDOWN_S / 2, "waited past the deadline"
