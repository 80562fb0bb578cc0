"""The broker backend's own Kafka producer and admin client, started on first use.

Why not the kit's FastStream broker: its Prometheus middleware labels every publish with the topic,
and tenant topics are unbounded (and name tenants), so publishing there would grow the metrics without
limit. The producer here is configured the same way: ``acks=all`` and idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from meshkit.events.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka did not answer in time, or answered with an error a client cannot act on."""


class KafkaClients:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        timeout: float,
        max_request_bytes: int,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._bootstrap = bootstrap
        self.security = security  # the subscriptions' consumers connect alike
        self._client_id = client_id
        self._timeout = timeout
        self._max_request_bytes = max_request_bytes
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()

    @property
    def bootstrap(self) -> str:
        return self._bootstrap

    async def _start(self) -> tuple[AIOKafkaProducer, AIOKafkaAdminClient]:
        async with self._lock:
            if self._producer is not None and self._admin is not None:
                return self._producer, self._admin
            timeout_ms = int(self._timeout * 1000)
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self._client_id}-producer",
                acks="all",
                enable_idempotence=True,
                request_timeout_ms=timeout_ms,
                max_request_size=self._max_request_bytes,
                **self.security.client_kwargs(),
            )
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self._client_id}-admin",
                request_timeout_ms=timeout_ms,
                **self.security.client_kwargs(),
            )
            try:
                async with asyncio.timeout(self._timeout):
                    await producer.start()
                    await admin.start()
            except (KafkaError, OSError, TimeoutError) as exc:
                await _close(producer, admin)
                raise KafkaUnavailable("kafka did not answer") from exc
            self._producer, self._admin = producer, admin
            log.info("kafka clients started")
            return producer, admin

    async def producer(self) -> AIOKafkaProducer:
        return (await self._start())[0]

    async def admin(self) -> AIOKafkaAdminClient:
        return (await self._start())[1]

    async def replicas_for_new_topics(self) -> int:
        """3 on a cluster of 3 or more brokers (as the cluster's metadata lists them), else one per broker."""
        brokers = len((await self.producer()).client.cluster.brokers())
        return max(1, min(3, brokers))

    async def topic_metadata(self, topic: str) -> dict[str, Any]:
        """One topic's metadata, asked so that Kafka never auto-creates it (``error_code`` 3: no such
        topic). The admin client's ``describe_topics`` would let a broker with auto-creation on create it."""
        client = (await self.producer()).client
        node = client.get_random_node()
        if node is None:
            raise KafkaUnavailable("no kafka broker known")
        try:
            async with asyncio.timeout(self._timeout):
                response = await client.send(node, MetadataRequest([topic], allow_auto_topic_creation=False))
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable("kafka metadata request failed") from exc
        topics: list[dict[str, Any]] = response.to_object()["topics"]
        return topics[0]

    async def close(self) -> None:
        async with self._lock:
            producer, admin, self._producer, self._admin = self._producer, self._admin, None, None
            await _close(producer, admin)

    async def run(self) -> None:
        """Background task for the kit: start early (the first publish then pays nothing), close on
        shutdown."""
        try:
            with contextlib.suppress(KafkaUnavailable):
                await self._start()
            await asyncio.Event().wait()
        finally:
            await self.close()


async def _close(producer: AIOKafkaProducer | None, admin: AIOKafkaAdminClient | None) -> None:
    # A stopping producer flushes what it holds; when Kafka is away that never ends, so it is bounded.
    if producer is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await producer.stop()
    if admin is not None:
        with contextlib.suppress(Exception):
            await admin.close()
