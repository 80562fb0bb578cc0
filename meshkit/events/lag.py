"""How far the event consumers are behind Kafka: ``portico_kafka_consumer_lag{group,topic,partition}``.

Lag is the number of records a group has still to read: the partition's end offset minus the group's
committed offset. A partition the group has not committed on yet counts from its first record (the
consumers start at ``earliest``), and so does a commit that retention has overtaken.

Measured from outside the consumer, every ``interval`` seconds: an admin client reads the group's
committed offsets and a consumer without a group reads the partitions' first and end offsets. FastStream's
subscriber internals stay untouched, and a rebalance does not change the answer. While Kafka does not
answer, the last values stay exported (the backlog has not gone away) and
``portico_kafka_consumer_lag_errors_total{group}`` counts the failed rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from meshkit.events.security import PLAINTEXT, KafkaSecurity
from meshkit.registries import per_registry

__all__ = ["ConsumerLagMonitor", "KafkaOffsets", "OffsetSource", "compute_lag"]

log = logging.getLogger(__name__)


class OffsetSource(Protocol):
    """Where the offsets come from (Kafka in production, a fake in unit tests)."""

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartition]: ...
    async def committed(self, group: str) -> dict[TopicPartition, int]: ...
    async def first_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def close(self) -> None: ...


def compute_lag(
    partitions: Iterable[TopicPartition],
    committed: Mapping[TopicPartition, int],
    first: Mapping[TopicPartition, int],
    end: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Records behind per partition; a partition without an end offset is left out."""
    lag: dict[TopicPartition, int] = {}
    for tp in partitions:
        if tp not in end:
            continue
        start = first.get(tp, 0)
        position = committed.get(tp, -1)  # -1: no commit yet
        # Nothing committed, or committed below what retention kept: the consumer starts at the first record.
        position = start if position < 0 else max(position, start)
        lag[tp] = max(0, end[tp] - position)
    return lag


class KafkaOffsets:
    """Offsets read with an admin client and a consumer without a group, both started on first use."""

    def __init__(
        self, bootstrap: str, *, client_id: str, timeout: float = 5.0, security: KafkaSecurity = PLAINTEXT
    ) -> None:
        self._bootstrap = bootstrap
        self._security = security
        self._client_id = client_id
        self._timeout_ms = int(timeout * 1000)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self._client_id}-admin",
                request_timeout_ms=self._timeout_ms,
                **self._security.client_kwargs(),
            )
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self._client_id}-offsets",
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=self._timeout_ms,
                **self._security.client_kwargs(),
            )
            self._admin, self._consumer = admin, consumer  # so that close() stops a half-started pair
            await admin.start()
            await consumer.start()
        return self._admin, self._consumer

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        admin, _ = await self._clients()
        # All topics: naming one would let a broker with auto-creation on create it.
        described = await admin.describe_topics()
        wanted = set(topics)
        return sorted(
            TopicPartition(topic["topic"], part["partition"])
            for topic in described
            if topic["topic"] in wanted and topic["error_code"] == 0
            for part in topic["partitions"]
        )

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        admin, _ = await self._clients()
        for attempt in range(1, 6):
            try:
                offsets = await admin.list_consumer_group_offsets(group)
            except KafkaError as exc:
                # A fresh cluster creates its offsets topic on the first lookup and answers "coordinator not
                # available" meanwhile; retriable errors are worth a short wait inside the round.
                if not exc.retriable or attempt == 5:
                    raise
                await asyncio.sleep(0.2 * attempt)
            else:
                return {tp: meta.offset for tp, meta in offsets.items()}
        raise AssertionError("unreachable")

    async def first_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        _, consumer = await self._clients()
        return dict(await consumer.beginning_offsets(list(partitions)))

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        _, consumer = await self._clients()
        return dict(await consumer.end_offsets(list(partitions)))

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()


@dataclass(frozen=True)
class _Families:
    lag: Gauge
    errors: Counter


@per_registry
def _families(registry: CollectorRegistry) -> _Families:
    return _Families(
        lag=Gauge(
            "portico_kafka_consumer_lag",
            "Records a consumer group has still to read: partition end offset minus committed offset.",
            ("group", "topic", "partition"),
            registry=registry,
        ),
        errors=Counter(
            "portico_kafka_consumer_lag_errors_total",
            "Lag refreshes that failed (Kafka unreachable or slow); the last values stay exported.",
            ("group",),
            registry=registry,
        ),
    )


class ConsumerLagMonitor:
    """Keeps the lag gauge of one consumer group on some topics current."""

    def __init__(
        self,
        source: OffsetSource,
        group: str,
        topics: Sequence[str],
        *,
        registry: CollectorRegistry,
        interval: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        self._source = source
        self.group = group
        self._topics = tuple(topics)
        self._interval = interval
        self._timeout = timeout
        families = _families(registry)
        self._gauge = families.lag
        self._errors = families.errors.labels(group)
        self._exported: set[TopicPartition] = set()
        self._failing = False

    async def measure(self) -> dict[TopicPartition, int]:
        """The lag of every partition of the watched topics (topics not created yet have none)."""
        partitions = await self._source.partitions(self._topics)
        if not partitions:
            return {}
        committed = await self._source.committed(self.group)
        first = await self._source.first_offsets(partitions)
        end = await self._source.end_offsets(partitions)
        return compute_lag(partitions, committed, first, end)

    async def refresh(self) -> bool:
        """Measure and export once; False (counted, last values kept) when Kafka did not answer."""
        try:
            async with asyncio.timeout(self._timeout):
                lag = await self.measure()
        except Exception as exc:  # any client failure means "try again next round", never a dead task
            self._errors.inc()
            if not self._failing:
                log.warning("consumer lag unavailable", extra={"group": self.group, "error": repr(exc)})
            self._failing = True
            await self._source.close()  # reconnect from scratch next round
            return False
        if self._failing:
            log.info("consumer lag available again", extra={"group": self.group})
        self._failing = False
        for gone in self._exported - lag.keys():  # a deleted topic must not leave a frozen series behind
            self._gauge.remove(self.group, gone.topic, str(gone.partition))
        for tp, behind in lag.items():
            self._gauge.labels(self.group, tp.topic, str(tp.partition)).set(behind)
        self._exported = set(lag)
        return True

    async def run(self) -> None:
        """Refresh every ``interval`` seconds until cancelled, then close the Kafka clients."""
        try:
            while True:
                await self.refresh()
                await asyncio.sleep(self._interval)
        finally:
            await self._source.close()
