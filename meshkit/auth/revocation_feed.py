"""Keeps a verifier's :class:`~meshkit.auth.revocation_set.RevocationSet` current from Kafka.

The auth backend publishes every revocation (through its outbox, in the transaction that made it) on
``portico.revocations.v1``. Each verifier reads that topic with its own group-less consumer: from the
start of the topic's retention when it starts (so it knows every revocation still alive — the topic's
retention must exceed the access-token lifetime), then live. Once it has read up to the end offsets it
found at start the set is *ready*: from then on it may decide alone while Redis is away. If Kafka goes
away later the set keeps what it has and the feed resumes from where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry, Gauge

from meshkit.auth.revocation_set import RevocationSet
from meshkit.events.security import PLAINTEXT, KafkaSecurity
from stubs.events.v1 import events_pb2

log = logging.getLogger(__name__)

REVOCATIONS_TOPIC = "portico.revocations.v1"


class RevocationFeed:
    """Follows the revocation topic into ``revocations`` until cancelled, reconnecting with back-off."""

    def __init__(
        self,
        bootstrap: str,
        revocations: RevocationSet,
        *,
        client_id: str,
        registry: CollectorRegistry | None = None,
        topic: str = REVOCATIONS_TOPIC,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._set = revocations
        self._client_id = client_id
        self._topic = topic
        self._positions: dict[TopicPartition, int] = {}
        self._started = time.monotonic()
        self.ready_after: float | None = None  # seconds from start until the set was ready
        self._ready = Gauge(
            "portico_revocation_feed_ready",
            "1 once the in-process revocation set holds every revocation published before start.",
            registry=registry,
        )
        self._known = Gauge(
            "portico_revocations_known",
            "Live revocations held in this process's memory.",
            registry=registry,
        )
        self._known.set_function(lambda: len(self._set))

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError) as exc:
                log.warning("revocation feed interrupted, retrying", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _mark_ready(self) -> None:
        if not self._set.ready:
            self._set.ready = True
            self.ready_after = time.monotonic() - self._started
            self._ready.set(1)
            log.info("revocations loaded", extra={"known": len(self._set), "seconds": self.ready_after})

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,  # a revocation must reach every verifier quickly
            **self._security.client_kwargs(),
        )
        try:
            await consumer.start()
            partitions = await self._wait_for_topic(consumer)
            tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            for tp in tps:
                if tp in self._positions:
                    consumer.seek(tp, self._positions[tp])
                else:
                    await consumer.seek_to_beginning(tp)
            end = await consumer.end_offsets(tps)
            while True:
                if not self._set.ready and await self._caught_up(consumer, end):
                    self._mark_ready()
                batch = await consumer.getmany(timeout_ms=500)
                for tp, records in batch.items():
                    for record in records:
                        self._apply(record)
                        self._positions[tp] = record.offset + 1
        finally:
            await consumer.stop()

    async def _caught_up(self, consumer: AIOKafkaConsumer, end: dict[TopicPartition, int]) -> bool:
        for tp, offset in end.items():
            position = self._positions.get(tp)
            if position is None:
                position = await consumer.position(tp)
            if position < offset:
                return False
        return True

    async def _wait_for_topic(self, consumer: AIOKafkaConsumer) -> set[int]:
        """The topic's partitions; while it does not exist no revocation was ever published, so the
        (empty) set is complete."""
        while True:
            # The public topics() drops the partitions and partitions_for_topic() reads only the topics
            # the client already tracks, so ask the cluster for everything and read the answer.
            cluster = await consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(self._topic)
            if partitions:
                return set(partitions)
            self._mark_ready()
            await asyncio.sleep(0.5)

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        event = events_pb2.Event()
        try:
            event.ParseFromString(record.value or b"")
        except DecodeError:
            log.error("skipping a record that is not an event", extra={"offset": record.offset})
            return
        if event.WhichOneof("entity") == "revocation":
            self._set.apply(event.revocation)
