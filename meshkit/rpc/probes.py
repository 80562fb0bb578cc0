"""Ready-made probes for what backends depend on: Kafka and Redis, with their readiness impact.

Neither makes a backend unready by default: changes wait in the outbox while Kafka is away, and Redis
has fallbacks (cache bypass, local limits, revocations kept in process). The broker, whose whole service
is Kafka, asks for ``impact=Impact.UNREADY``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from meshkit.events.security import PLAINTEXT, KafkaSecurity
from meshkit.readiness import Impact
from meshkit.redis_client import RedisClient
from meshkit.rpc.health import Dependency

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker


def kafka_dependency(
    broker: KafkaBroker, timeout: float = 1.5, impact: Impact = Impact.DEGRADED
) -> Dependency:
    """Kafka is up when the broker is connected and the cluster answers a describe request."""

    async def check() -> bool:
        return broker.running and await broker.ping(timeout)

    return Dependency("kafka", check, impact)


class KafkaPing:
    """Kafka is up when the cluster answers a describe request over an admin connection kept open: the
    probe of a backend that runs no FastStream broker (:func:`kafka_dependency` asks through the
    broker's own). The connection is opened by the first check that finds Kafka there."""

    def __init__(
        self, bootstrap: str, *, client_id: str, timeout: float = 1.5, security: KafkaSecurity = PLAINTEXT
    ) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._client_id = client_id
        self._timeout = timeout
        self._admin: AIOKafkaAdminClient | None = None

    def dependency(self, impact: Impact = Impact.DEGRADED) -> Dependency:
        return Dependency("kafka", self.check, impact)

    async def check(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                if self._admin is None:
                    self._admin = await self._open()
                await self._admin.describe_cluster()
        except (KafkaError, OSError, TimeoutError):
            return False
        return True

    async def _open(self) -> AIOKafkaAdminClient:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            request_timeout_ms=int(self._timeout * 1000),
            **self._security.client_kwargs(),
        )
        try:
            await admin.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await admin.close()
            raise
        return admin

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None


def redis_dependency(redis: RedisClient) -> Dependency:
    """Redis is up when it answers PING."""

    async def check() -> bool:
        return bool(await redis.ping())

    return Dependency("redis", check, Impact.DEGRADED)
