"""Readiness probes of what the gateway uses — its route table, each backend's gRPC health, Redis, Kafka —
and the gateway's readiness policy: only an empty route table makes it unready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import grpc
from aiokafka.admin import AIOKafkaAdminClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.routing.live import LiveRoutes
from meshkit.events.security import PLAINTEXT, KafkaSecurity
from meshkit.readiness import Impact
from meshkit.redis_client import RedisClient

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[bool]]

ROUTES = "routes"


def gateway_impacts(probes: Mapping[str, Probe]) -> dict[str, Impact]:
    """The gateway's policy: without a route table it answers nothing but 404s, so it is unready; a
    backend down only fails its own routes (503), Redis has in-process fallbacks, and the gateway does
    not use Kafka at all — each of those degrades it."""
    return {name: Impact.UNREADY if name == ROUTES else Impact.DEGRADED for name in probes}


def routes_probe(routes: LiveRoutes) -> Probe:
    """Up while the gateway has routes to serve (from the descriptor set at start, then reflection)."""

    async def probe() -> bool:
        return bool(routes.table.routes)

    return probe


def grpc_health_probe(channel: grpc.aio.Channel, timeout: float) -> Probe:
    """Up when the backend's overall health (service "") is SERVING."""
    stub = health_pb2_grpc.HealthStub(channel)

    async def probe() -> bool:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return probe


def redis_probe(redis: RedisClient) -> Probe:
    async def probe() -> bool:
        return bool(await redis.ping())

    return probe


class KafkaProbe:
    """Up when the cluster answers a describe request; connects lazily so Kafka may start after us."""

    def __init__(self, bootstrap: str, timeout: float, *, security: KafkaSecurity = PLAINTEXT) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None

    async def __call__(self) -> bool:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                request_timeout_ms=int(self._timeout * 1000),
                **self._security.client_kwargs(),
            )
            try:
                await admin.start()
            except BaseException:
                await admin.close()
                raise
            self._admin = admin
        await self._admin.describe_cluster()
        return True

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None


async def _run(probe: Probe, timeout: float) -> bool:
    try:
        return await asyncio.wait_for(probe(), timeout)
    except Exception:  # an unreachable dependency shows as "down", whatever the client library raised
        return False


async def check_all(probes: Mapping[str, Probe], timeout: float) -> dict[str, bool]:
    """Run every probe concurrently, each bounded by ``timeout``."""
    results = await asyncio.gather(*(_run(p, timeout) for p in probes.values()))
    return dict(zip(probes, results, strict=True))


async def close_quietly(closer: Callable[[], Awaitable[None]]) -> None:
    with contextlib.suppress(Exception):
        await closer()
