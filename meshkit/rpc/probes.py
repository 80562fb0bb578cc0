"""Ready-made probes for what backends depend on: Kafka and Redis, with their readiness impact.

Neither makes a backend unready by default: changes wait in the outbox while Kafka is away, and Redis
has fallbacks (cache bypass, local limits, revocations kept in process). The broker, whose whole service
is Kafka, asks for ``impact=Impact.UNREADY``.
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from meshkit.readiness import Impact
from meshkit.rpc.health import Dependency


def kafka_dependency(
    broker: KafkaBroker, timeout: float = 1.5, impact: Impact = Impact.DEGRADED
) -> Dependency:
    """Kafka is up when the broker is connected and the cluster answers a describe request."""

    async def check() -> bool:
        return broker.running and await broker.ping(timeout)

    return Dependency("kafka", check, impact)


def redis_dependency(redis: Redis) -> Dependency:
    """Redis is up when it answers PING."""

    async def check() -> bool:
        return bool(await redis.ping())

    return Dependency("redis", check, Impact.DEGRADED)
