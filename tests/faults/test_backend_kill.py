"""A backend SIGKILLed under light load through the gateway: clean 503s, then recovery, measured.

A mesh of its own (against the session's Kafka, Redis and PostgreSQL, which it does not touch). Two
clients read posts and one reads its own profile; the posts backend is SIGKILLed, left dead for 5 s and
started again on the same port. Every answer on the posts route must be a 2xx or a 503 in the contract's
error envelope (``UNAVAILABLE`` with a request id) — no 500, nothing slower than the route's deadline —
the users route must not notice, ``/ready`` must stay 200 naming posts as degraded, and posts must answer
again within the gateway's capped reconnect back-off of the backend serving.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.dispatch import DEFAULT_DEADLINE_S
from gateway.upstreams import MAX_RECONNECT_BACKOFF_MS
from harness.accounts import bearer, register
from harness.backends import SERVING, spawn_backend
from harness.infra import InfraEnv
from harness.mesh import Mesh, start_mesh
from harness.processes import wait_until

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]

DOWN_S = 5.0
RECOVERY_LIMIT_S = 30.0
PAUSE_S = 0.1  # per client between requests: light load (~20 req/s in all)
CLIENT_TIMEOUT_S = DEFAULT_DEADLINE_S + 5  # a call the gateway did not end by its deadline shows up here
# Once the backend serves, the gateway's next reconnect attempt comes within its capped back-off plus
# gRPC's 20 % jitter — a timer, not CPU speed — and 1.5 s more for the connection and a client's request.
# Uncapped, the back-off had grown to 6.5-10.5 s by the time a backend down for 20 s was back.
SERVING_TO_2XX_LIMIT_S = 1.2 * MAX_RECONNECT_BACKOFF_MS / 1000 + 1.5


@dataclass(frozen=True)
class Answer:
    at: float  # monotonic, when the request was sent
    route: str
    status: int  # 0: the client gave up (timeout or connection error)
    seconds: float
    body: dict[str, Any]


@pytest.fixture
def mesh(infra: InfraEnv, tmp_path: Path) -> Iterator[Mesh]:
    started = start_mesh(infra.env(), tmp_path, timeout=90)
    try:
        yield started
    finally:
        started.stop()


def _load(url: str, route: str, headers: dict[str, str], stop: threading.Event, out: list[Answer]) -> None:
    with httpx.Client(base_url=url, headers=headers, timeout=CLIENT_TIMEOUT_S) as client:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                response = client.get(route)
                status = response.status_code
                is_json = response.headers.get("content-type", "").startswith("application/json")
                body: dict[str, Any] = response.json() if is_json else {}
            except httpx.HTTPError:
                status, body = 0, {}
            out.append(Answer(sent, route, status, time.monotonic() - sent, body))
            time.sleep(PAUSE_S)


def _clean_503(answer: Answer) -> bool:
    error = answer.body.get("error", {})
    return (
        answer.status == 503
        and error.get("code") == "UNAVAILABLE"
        and error.get("status_code") == 503
        and bool(error.get("request_id"))
    )


def test_backend_sigkill_gives_clean_503s_then_recovers(
    mesh: Mesh, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as client:
        auth = bearer(register(client, "fault-kill"))
    posts_route, users_route = "/api/v1/posts?page_size=5", "/api/v1/users/me"
    answers: list[Answer] = []  # list.append is atomic: the clients share it
    stop = threading.Event()
    clients = [
        threading.Thread(target=_load, args=(mesh.gateway_url, route, auth, stop, answers), daemon=True)
        for route in (posts_route, posts_route, users_route)
    ]
    ready_during: list[tuple[int, dict[str, Any]]] = []
    for thread in clients:
        thread.start()
    try:
        time.sleep(2)  # steady traffic first
        posts = mesh.backends["posts"]
        killed = time.monotonic()
        os.killpg(posts.proc.popen.pid, signal.SIGKILL)  # its own session: the group is its pid
        posts.proc.popen.wait(10)
        while time.monotonic() - killed < DOWN_S:
            response = httpx.get(f"{mesh.gateway_url}/ready", timeout=5)
            ready_during.append((response.status_code, response.json()))
            time.sleep(0.5)
        restarted = time.monotonic()
        again = spawn_backend(
            "posts", mesh.env, tmp_path, port=mesh.ports["posts"], metrics_port=mesh.metrics_ports["posts"]
        )
        mesh.backends["posts"], mesh.procs["posts"] = again, again.proc
        # SERVING on its health, not wait_serving (which also waits for Kafka): the gateway may reach
        # it from that moment.
        wait_until(lambda: again.health() == SERVING, 60, "posts SERVING again")
        serving = time.monotonic()

        def posts_answered_since_serving() -> bool:
            return any(a.route == posts_route and a.status == 200 and a.at >= serving for a in answers)

        wait_until(posts_answered_since_serving, RECOVERY_LIMIT_S, "posts answering through the gateway")
        time.sleep(1)  # and a little steady traffic after
    finally:
        stop.set()
        for thread in clients:
            thread.join(CLIENT_TIMEOUT_S + 5)

    on_posts = [a for a in answers if a.route == posts_route]
    on_users = [a for a in answers if a.route == users_route]
    ok = [a for a in on_posts if 200 <= a.status < 300]
    unavailable = [a for a in on_posts if _clean_503(a)]
    other = [a for a in on_posts if a not in ok and a not in unavailable]
    first_ok_after = min(a.at + a.seconds for a in ok if a.at >= serving)
    last_503 = max((a.at + a.seconds for a in unavailable), default=killed)
    numbers = {
        "requests": len(on_posts),
        "2xx": len(ok),
        "503": len(unavailable),
        "other": len(other),
        "max_latency_s": round(max(a.seconds for a in on_posts), 3),
        "down_s": round(restarted - killed, 2),
        "restart_to_serving_s": round(serving - restarted, 2),
        "serving_to_first_2xx_s": round(first_ok_after - serving, 2),
        "kill_to_recovered_s": round(first_ok_after - killed, 2),
        "last_503_after_kill_s": round(last_503 - killed, 2),
        "users_requests": len(on_users),
        "users_non_2xx": sum(1 for a in on_users if not 200 <= a.status < 300),
        "ready_polls": len(ready_during),
        "ready_non_200": sum(1 for status, _ in ready_during if status != 200),
    }
    line = "FAULT backend_sigkill: " + " ".join(f"{k}={v}" for k, v in numbers.items())
    print(line)
    record_property("backend_sigkill", line)

    assert unavailable, "the killed backend's route never answered 503"
    assert not other, [(a.status, a.body) for a in other[:5]]
    assert max(a.seconds for a in on_posts) < DEFAULT_DEADLINE_S + 1, "a call outlived its deadline"
    assert numbers["users_non_2xx"] == 0, "a backend that was not killed lost calls"
    assert ready_during
    assert all(status == 200 for status, _ in ready_during), "/ready took the gateway out of rotation"
    assert all(body["dependencies"]["posts"]["status"] == "degraded" for _, body in ready_during[1:])
    assert numbers["serving_to_first_2xx_s"] < SERVING_TO_2XX_LIMIT_S, "the gateway was slow to reconnect"
