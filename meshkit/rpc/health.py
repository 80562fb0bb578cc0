"""gRPC health (``grpc.health.v1``): readiness that follows what the backend cannot serve without, and a
liveness service that follows nothing.

- ``""`` (the whole server) and each hosted service: SERVING unless a dependency whose impact is
  :attr:`~meshkit.readiness.Impact.UNREADY` is down (the backend's database; the broker's Kafka). Kafka
  behind the outbox and Redis behind its fallbacks only degrade the backend: counted in
  ``portico_dependency_up`` and logged, never NOT_SERVING, so their blips do not drain every replica.
- :data:`READINESS` (``portico.readiness``): the same status as ``""``, under a name: what the kit's
  client channels watch to send calls only to SERVING replicas (gRPC's client-side health checking
  ignores an empty service name).
- :data:`LIVENESS` (``portico.liveness``): SERVING while the process answers, whatever its dependencies.

A monitor re-checks the dependencies on an interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer as AsyncHealthServicer  # public as health.aio; untyped
from prometheus_client import CollectorRegistry

from meshkit.readiness import Impact, Readiness

__all__ = ["LIVENESS", "READINESS", "AsyncHealthServicer", "Dependency", "HealthMonitor"]

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]

# The health service name a liveness probe asks for: it never looks at a dependency.
LIVENESS = "portico.liveness"
# The health service name the client channels watch (meshkit.rpc.channels): the whole server's readiness.
READINESS = "portico.readiness"


@dataclass(frozen=True)
class Dependency:
    """Something the backend uses, with a cheap probe, and what its absence does to readiness."""

    name: str
    check: Check
    impact: Impact = Impact.UNREADY


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
        process: str = "backend",
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._servicer = servicer
        # "" is the whole server, as the health protocol defines; READINESS the same, for the channels.
        self._services = ("", READINESS, *services)
        self._deps = dependencies
        self._interval = interval
        self._probe_timeout = probe_timeout
        self.readiness = Readiness(process, {d.name: d.impact for d in dependencies}, registry)
        self.down: tuple[str, ...] | None = None

    async def _probe(self, dep: Dependency) -> bool:
        try:
            return await asyncio.wait_for(dep.check(), self._probe_timeout)
        except Exception:  # a probe that raises or hangs means the dependency is down
            return False

    async def check_once(self) -> tuple[str, ...]:
        """Probe every dependency concurrently, publish the status, return the names that are down."""
        results = await asyncio.gather(*(self._probe(d) for d in self._deps))
        self.readiness.record({d.name: ok for d, ok in zip(self._deps, results, strict=True)})
        down = tuple(d.name for d, ok in zip(self._deps, results, strict=True) if not ok)
        unready = self.readiness.unready_for
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING if unready else health_pb2.HealthCheckResponse.SERVING
        )
        for name in self._services:
            await self._servicer.set(name, status)
        await self._servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        if down != self.down:
            if unready:
                log.warning("not serving: dependencies down", extra={"down": list(down)})
            elif down:
                log.warning("serving degraded: dependencies down", extra={"down": list(down)})
            else:
                log.info("serving: all dependencies up")
            self.down = down
        return down

    async def run(self) -> None:
        """Check forever; cancelled on shutdown."""
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval)
