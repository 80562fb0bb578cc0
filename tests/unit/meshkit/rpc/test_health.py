"""Readiness follows only what the backend cannot serve without, liveness follows nothing, the gauge
shows every dependency, and graceful shutdown pins NOT_SERVING."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health, health_pb2
from prometheus_client import CollectorRegistry

from meshkit.readiness import Impact
from meshkit.rpc.health import LIVENESS, Dependency, HealthMonitor

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(servicer: health.aio.HealthServicer, service: str) -> int:
    reply = await servicer.Check(health_pb2.HealthCheckRequest(service=service), None)  # type: ignore[arg-type]
    return int(reply.status)


async def test_status_follows_only_what_the_backend_cannot_serve_without() -> None:
    state = {"kafka": True, "redis": True, "database": True}

    def dep(name: str, impact: Impact) -> Dependency:
        async def check() -> bool:
            return state[name]

        return Dependency(name, check, impact)

    servicer = health.aio.HealthServicer()
    registry = CollectorRegistry()
    deps = [
        dep("kafka", Impact.DEGRADED),
        dep("redis", Impact.DEGRADED),
        dep("database", Impact.UNREADY),
    ]
    monitor = HealthMonitor(
        servicer, ["users.v1.UserService"], deps, interval=1, process="users", registry=registry
    )

    assert await monitor.check_once() == ()
    assert await _status(servicer, "") == SERVING
    assert await _status(servicer, "users.v1.UserService") == SERVING
    assert await _status(servicer, LIVENESS) == SERVING

    # Kafka and Redis away: the backend still serves (outbox, fallbacks), so it stays in rotation.
    state["redis"] = state["kafka"] = False
    assert await monitor.check_once() == ("kafka", "redis")
    assert await _status(servicer, "") == SERVING
    assert await _status(servicer, "users.v1.UserService") == SERVING
    assert monitor.readiness.degraded_by == ("kafka", "redis")
    gauge = "portico_dependency_up"
    assert (
        registry.get_sample_value(gauge, {"process": "users", "dependency": "redis", "impact": "degraded"})
        == 0
    )
    assert (
        registry.get_sample_value(gauge, {"process": "users", "dependency": "database", "impact": "unready"})
        == 1
    )

    # Its own database away: it cannot serve a call, so it leaves rotation; liveness does not care.
    state["database"] = False
    assert await monitor.check_once() == ("kafka", "redis", "database")
    assert await _status(servicer, "") == NOT_SERVING
    assert await _status(servicer, "users.v1.UserService") == NOT_SERVING
    assert await _status(servicer, LIVENESS) == SERVING

    state.update(kafka=True, redis=True, database=True)
    await monitor.check_once()
    assert await _status(servicer, "users.v1.UserService") == SERVING

    await servicer.enter_graceful_shutdown()
    await monitor.check_once()  # dependencies are fine, but a stopping server must stay NOT_SERVING
    assert await _status(servicer, "") == NOT_SERVING


async def test_a_hanging_or_raising_probe_counts_as_down() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    async def raises() -> bool:
        raise ConnectionError("refused")

    servicer = health.aio.HealthServicer()
    monitor = HealthMonitor(
        servicer,
        [],
        [Dependency("slow", hangs), Dependency("broken", raises)],  # unready by default
        interval=1,
        probe_timeout=0.05,
    )
    assert await monitor.check_once() == ("slow", "broken")
    assert await _status(servicer, "") == NOT_SERVING
