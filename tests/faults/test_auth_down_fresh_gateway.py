"""Auth down while a fresh gateway (and a fresh users backend) starts: a valid token is never a 401.

Own users + auth backends and gateways on free ports (the session's mesh is left alone); the session's
Kafka and Redis are only used, never stopped. With the key set kept from before the restart, the token
is accepted (200); a gateway with no kept key set cannot know whether it is valid and answers 503 with
``Retry-After``: a client that signs its user out on 401 must not do so because auth is down.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from harness.accounts import bearer, registered, registration
from harness.auth import start_auth_stack, stop_auth_stack
from harness.backends import start_backend
from harness.infra import InfraEnv
from harness.processes import Proc, spawn, wait_until
from infra.procs import free_port

pytestmark = pytest.mark.infra

REQUESTS = 20  # per gateway: enough to see every answer is the same, small enough for a busy machine


def _start_gateway(name: str, env: dict[str, str], run_dir: Path, log_dir: Path) -> tuple[Proc, str]:
    port = free_port()
    proc = spawn(
        name,
        ["-m", "gateway"],
        {**env, "PORTICO_GATEWAY_PORT": str(port), "PORTICO_RUN_DIR": str(run_dir)},
        log_dir,
    )
    url = f"http://127.0.0.1:{port}"

    def alive() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return proc.popen.poll() is not None

    wait_until(alive, 60, f"{name} /health")
    assert proc.popen.poll() is None, proc.log()[-4000:]
    return proc, url


def _statuses(url: str, headers: dict[str, str]) -> tuple[list[int], list[httpx.Response]]:
    with httpx.Client(base_url=url, timeout=15) as client:
        answers = [client.get("/api/v1/users/me", headers=headers) for _ in range(REQUESTS)]
    return [a.status_code for a in answers], answers


def test_auth_down_fresh_gateway(
    infra: InfraEnv, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    stack = start_auth_stack(infra, tmp_path / "stack")
    dead = f"127.0.0.1:{free_port()}"  # posts and broker: not needed here
    env = {
        **infra.env(),
        "PORTICO_AUTH_TARGET": stack.auth_target,
        "PORTICO_USERS_TARGET": stack.users_target,
        "PORTICO_POSTS_TARGET": dead,
        "PORTICO_BROKER_TARGET": dead,
        "PORTICO_GATEWAY_RATE_LIMIT_PER_IP": "100000/minute",
        "PORTICO_GATEWAY_RATE_LIMIT_PER_USER": "100000/hour",
    }
    gateway_run = tmp_path / "gateway-run"
    procs: list[Proc] = []
    try:
        first, url = _start_gateway("gateway-first", env, gateway_run, tmp_path)
        procs.append(first)
        with httpx.Client(base_url=url, timeout=30) as client:
            account = registered(client.post("/api/v1/auth/register", json=registration("faults")))
            headers = bearer(account)
            assert client.get("/api/v1/users/me", headers=headers).status_code == 200  # keys fetched

        auth = stack.backends["auth"].proc
        auth.popen.send_signal(signal.SIGKILL)
        auth.popen.wait(10)
        first.terminate()
        # The users backend restarts too (same run dir, same port): a fresh backend verifies on its own.
        users = stack.backends["users"]
        users.stop()
        port = int(users.target.rsplit(":", 1)[1])
        stack.backends["users"] = start_backend("users", stack.env, stack.log_dir, port=port)

        started = time.monotonic()
        restarted, url = _start_gateway("gateway-restarted", env, gateway_run, tmp_path)
        procs.append(restarted)
        kept, _ = _statuses(url, headers)
        kept_seconds = time.monotonic() - started

        empty, url = _start_gateway("gateway-empty", env, tmp_path / "empty-run", tmp_path)
        procs.append(empty)
        fresh, answers = _statuses(url, headers)
        retry_after = [a.headers.get("retry-after") for a in answers]
        codes = {a.json()["error"]["code"] for a in answers if a.status_code >= 400}
    finally:
        for proc in procs:
            proc.terminate()
        stop_auth_stack(stack)

    all_statuses = kept + fresh
    figures = {
        "requests": len(all_statuses),
        "kept_200": kept.count(200),
        "fresh_503": fresh.count(503),
        "retry_after": sum(1 for value in retry_after if value and int(value) >= 1),
        "401s": all_statuses.count(401),
        "other": sum(1 for s in all_statuses if s not in (200, 401, 503)),
        "restart_to_served_s": round(kept_seconds, 2),
    }
    print("FAULT auth_down_fresh_gateway: " + " ".join(f"{k}={v}" for k, v in figures.items()))
    for key, value in figures.items():
        record_property(key, value)
    assert figures["401s"] == 0
    assert kept == [200] * REQUESTS, kept
    assert fresh == [503] * REQUESTS, fresh
    assert figures["retry_after"] == REQUESTS
    assert codes == {"UNAVAILABLE"}
