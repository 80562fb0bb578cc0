"""Kafka paused and Redis killed under sign-ups: the mesh serves on and the gateway stays in rotation.

A mesh of its own against its own Kafka and Redis (the session's PostgreSQL is only used, never
touched). Kafka is frozen with SIGSTOP for 20 s (the harder case: connections hang rather than fail),
then Redis is SIGKILLed and restarted empty after 20 s. Throughout, sign-ups go through the gateway and
``/ready`` is polled: every sign-up must succeed (the outbox keeps the events) and ``/ready`` must stay
200, naming the missing dependency as ``degraded``; afterwards ``/ready`` is fully ``ready`` again and
the outbox drains.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from harness.accounts import registration
from harness.infra import InfraEnv
from harness.mesh import Mesh, start_mesh
from harness.processes import wait_until
from infra.local import LocalKafka, LocalRedis, free_port

pytestmark = [pytest.mark.infra, pytest.mark.timeout(420)]

OUTAGE_S = 20.0
SIGNUP_TIMEOUT_S = 15.0  # above the gateway's 10 s default deadline: a hang shows as a timeout here
RECOVERY_LIMIT_S = 60.0


@dataclass
class Stack:
    kafka: LocalKafka
    redis: LocalRedis
    mesh: Mesh


@dataclass
class Tally:
    """What the clients saw during one outage."""

    signups: int = 0
    signups_ok: int = 0
    signup_statuses: dict[int, int] = field(default_factory=dict)
    signup_max_s: float = 0.0
    ready_polls: int = 0
    ready_200: int = 0
    ready_503: int = 0
    degraded_seen: int = 0
    ready_max_s: float = 0.0

    def line(self, scenario: str, **extra: object) -> str:
        numbers = {
            "outage_s": OUTAGE_S,
            "signups": self.signups,
            "signups_2xx": self.signups_ok,
            "signups_other": self.signups - self.signups_ok,
            "signup_max_s": round(self.signup_max_s, 2),
            "ready_polls": self.ready_polls,
            "ready_200": self.ready_200,
            "ready_503": self.ready_503,
            "ready_degraded": self.degraded_seen,
            "ready_max_s": round(self.ready_max_s, 2),
            **extra,
        }
        return f"FAULT {scenario}: " + " ".join(f"{k}={v}" for k, v in numbers.items())


@pytest.fixture(scope="module")
def stack(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("blips")
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=base / "kafka")
    redis = LocalRedis(port=free_port(), data_dir=base / "redis")
    kafka.start()
    redis.start()
    mesh: Mesh | None = None
    try:
        kafka.wait_ready(90)
        redis.wait_ready()
        env = {
            **infra.env(),
            "PORTICO_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "PORTICO_REDIS_URL": redis.url,
            "PORTICO_HEALTH_INTERVAL": "0.5",
        }
        mesh = start_mesh(env, base, timeout=90)
        yield Stack(kafka, redis, mesh)
    finally:
        if kafka.pid is not None:
            _signal_group(kafka.pid, signal.SIGCONT)  # a frozen Kafka could not stop gracefully
        if mesh is not None:
            mesh.stop()
        kafka.stop()
        redis.stop()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    os.killpg(pid, sig)  # infra starts every server in a session of its own: its group is its pid


def _ready(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/ready", timeout=5)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def _drive(client: httpx.Client, tally: Tally, tenant: str, dependency: str, until: float) -> None:
    """Sign up and poll /ready in turn until ``until`` (monotonic)."""
    while time.monotonic() < until:
        started = time.monotonic()
        response = client.post("/api/v1/auth/register", json=registration(tenant), timeout=SIGNUP_TIMEOUT_S)
        tally.signup_max_s = max(tally.signup_max_s, time.monotonic() - started)
        tally.signups += 1
        tally.signup_statuses[response.status_code] = tally.signup_statuses.get(response.status_code, 0) + 1
        tally.signups_ok += response.status_code == 201

        started = time.monotonic()
        status, body = _ready(client)
        tally.ready_max_s = max(tally.ready_max_s, time.monotonic() - started)
        tally.ready_polls += 1
        tally.ready_200 += status == 200
        tally.ready_503 += status == 503
        state = body.get("dependencies", {}).get(dependency, {}).get("status")
        tally.degraded_seen += status == 200 and body.get("status") == "degraded" and state == "degraded"
        time.sleep(0.2)


def _fully_ready(client: httpx.Client) -> bool:
    status, body = _ready(client)
    return status == 200 and body.get("status") == "ready"


def _time_to(predicate: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    wait_until(predicate, RECOVERY_LIMIT_S, what, interval=0.25)
    return time.monotonic() - started


def _outbox_pending(mesh: Mesh) -> float:
    return mesh.backends["users"].metric("portico_outbox_pending")


def _report(
    record_property: Callable[[str, object], None], scenario: str, tally: Tally, **extra: object
) -> None:
    line = tally.line(scenario, **extra)
    print(line)
    record_property(scenario, line)


def test_kafka_paused_keeps_signups_and_readiness(
    stack: Stack, record_property: Callable[[str, object], None]
) -> None:
    assert stack.kafka.pid is not None
    with httpx.Client(base_url=stack.mesh.gateway_url) as client:
        wait_until(lambda: _fully_ready(client), 60, "every dependency up before the fault")
        tally = Tally()
        _signal_group(stack.kafka.pid, signal.SIGSTOP)
        try:
            _drive(client, tally, "blip-kafka", "kafka", time.monotonic() + OUTAGE_S)
        finally:
            _signal_group(stack.kafka.pid, signal.SIGCONT)
        recover_s = _time_to(lambda: _fully_ready(client), "/ready fully ready after Kafka resumes")
        drain_s = _time_to(lambda: _outbox_pending(stack.mesh) == 0, "the users outbox drained")
    _report(
        record_property,
        "kafka_sigstop",
        tally,
        statuses=tally.signup_statuses,
        recover_s=round(recover_s, 2),
        outbox_drain_s=round(drain_s, 2),
    )
    assert tally.signups > 0
    assert tally.signups_ok == tally.signups, tally.signup_statuses
    assert tally.ready_200 == tally.ready_polls, "/ready must not take the gateway out of rotation"
    assert tally.degraded_seen > 0, "/ready never named Kafka as degraded"


def test_redis_killed_keeps_signups_and_readiness(
    stack: Stack, record_property: Callable[[str, object], None]
) -> None:
    assert stack.redis.pid is not None
    with httpx.Client(base_url=stack.mesh.gateway_url) as client:
        wait_until(lambda: _fully_ready(client), 60, "every dependency up before the fault")
        tally = Tally()
        _signal_group(stack.redis.pid, signal.SIGKILL)
        _drive(client, tally, "blip-redis", "redis", time.monotonic() + OUTAGE_S)
        stack.redis.stop()  # reap the killed server, then start it again with empty memory
        stack.redis.start()
        stack.redis.wait_ready()
        recover_s = _time_to(lambda: _fully_ready(client), "/ready fully ready after Redis restarts")
    _report(
        record_property, "redis_sigkill", tally, statuses=tally.signup_statuses, recover_s=round(recover_s, 2)
    )
    assert tally.signups > 0
    assert tally.signups_ok == tally.signups, tally.signup_statuses
    assert tally.ready_200 == tally.ready_polls, "/ready must not take the gateway out of rotation"
    assert tally.degraded_seen > 0, "/ready never named Redis as degraded"
