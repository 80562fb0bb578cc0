"""gRPC health (``grpc.health.v1``) whose status follows the backend's dependencies.

A backend is SERVING only while every dependency it names answers; a monitor re-checks them on an
interval so that orchestrators and the gateway's ``/ready`` see Kafka or Redis going away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer as AsyncHealthServicer  # public as health.aio; untyped

__all__ = ["AsyncHealthServicer", "Dependency", "HealthMonitor"]

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Dependency:
    """Something the backend cannot serve without, with a cheap liveness probe."""

    name: str
    check: Check


class HealthMonitor:
    """Keeps the health servicer's status for the whole server and each service in step with checks."""

    def __init__(
        self,
        servicer: AsyncHealthServicer,
        services: Sequence[str],
        dependencies: Sequence[Dependency],
        *,
        interval: float,
        probe_timeout: float = 2.0,
    ) -> None:
        self._servicer = servicer
        self._services = ("", *services)  # "" is the whole server, as the health protocol defines
        self._deps = dependencies
        self._interval = interval
        self._probe_timeout = probe_timeout
        self.down: tuple[str, ...] | None = None

    async def _probe(self, dep: Dependency) -> bool:
        try:
            return await asyncio.wait_for(dep.check(), self._probe_timeout)
        except Exception:  # a probe that raises or hangs means the dependency is down
            return False

    async def check_once(self) -> tuple[str, ...]:
        """Probe every dependency concurrently, publish the status, return the names that are down."""
        results = await asyncio.gather(*(self._probe(d) for d in self._deps))
        down = tuple(d.name for d, ok in zip(self._deps, results, strict=True) if not ok)
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING if down else health_pb2.HealthCheckResponse.SERVING
        )
        for name in self._services:
            await self._servicer.set(name, status)
        if down != self.down:
            if down:
                log.warning("not serving: dependencies down", extra={"down": list(down)})
            else:
                log.info("serving: all dependencies up")
            self.down = down
        return down

    async def run(self) -> None:
        """Check forever; cancelled on shutdown."""
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval)
