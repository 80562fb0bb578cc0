"""The health status follows the dependencies, and graceful shutdown pins NOT_SERVING."""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health, health_pb2

from meshkit.rpc.health import Dependency, HealthMonitor

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(servicer: health.aio.HealthServicer, service: str) -> int:
    reply = await servicer.Check(health_pb2.HealthCheckRequest(service=service), None)  # type: ignore[arg-type]
    return int(reply.status)


async def test_status_follows_dependencies() -> None:
    state = {"kafka": True, "redis": True}

    def dep(name: str) -> Dependency:
        async def check() -> bool:
            return state[name]

        return Dependency(name, check)

    servicer = health.aio.HealthServicer()
    monitor = HealthMonitor(servicer, ["users.v1.UserService"], [dep("kafka"), dep("redis")], interval=1)

    assert await monitor.check_once() == ()
    assert await _status(servicer, "") == SERVING
    assert await _status(servicer, "users.v1.UserService") == SERVING

    state["redis"] = False
    assert await monitor.check_once() == ("redis",)
    assert await _status(servicer, "") == NOT_SERVING

    state["redis"] = True
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
        [Dependency("slow", hangs), Dependency("broken", raises)],
        interval=1,
        probe_timeout=0.05,
    )
    assert await monitor.check_once() == ("slow", "broken")
    assert await _status(servicer, "") == NOT_SERVING
