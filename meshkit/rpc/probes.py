"""Ready-made liveness probes for what backends depend on: Kafka and Redis."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from meshkit.rpc.health import Dependency


def kafka_dependency(broker: KafkaBroker, timeout: float = 1.5) -> Dependency:
    """Kafka is up when the broker is connected and the cluster answers a describe request."""

    async def check() -> bool:
        return broker.running and await broker.ping(timeout)

    return Dependency("kafka", check)


def redis_dependency(redis: Redis) -> Dependency:
    """Redis is up when it answers PING."""

    async def check() -> bool:
        return bool(await redis.ping())

    return Dependency("redis", check)
