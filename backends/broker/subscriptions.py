"""One subscription = one Kafka consumer of its own, and the caps on how many may be open.

The consumer has no group (nothing is committed, no rebalance can take a partition away): it is
assigned every partition of the topic and positioned explicitly, at the end (``latest``), the
beginning (``earliest``) or right after a client's cursor (:mod:`backends.broker.cursor`), before the
client is told it is subscribed, so no message published after that is missed. Partitions added to
the topic later are read from their beginning once the subscription learns of them (:meth:`grow`).

Memory stays bounded however slow the client: the consumer fetches ahead at most
``fetch_bytes`` (and ``partition_fetch_bytes`` per partition), and fetches again only once that has
been taken; the subscription takes at most ``batch`` records at a time and takes more only when the
client has received them (a gRPC write waits while the client's flow-control window is full).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from backends.broker.cursor import Positions
from backends.broker.kafka_clients import KafkaUnavailable
from backends.broker.metrics import BrokerMetrics
from meshkit.events.security import PLAINTEXT, KafkaSecurity

PROCESS_LIMIT, TENANT_LIMIT = "process", "tenant"


@dataclass(frozen=True)
class ConsumerLimits:
    fetch_bytes: int
    partition_fetch_bytes: int
    batch: int
    timeout: float


class Subscription:
    def __init__(
        self, bootstrap: str, topic: str, limits: ConsumerLimits, security: KafkaSecurity = PLAINTEXT
    ) -> None:
        self.topic = topic
        self.partitions = 0  # how many of the topic's partitions it reads (0 to partitions - 1)
        self._limits = limits
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=f"portico-broker-sub-{uuid.uuid4().hex[:8]}",
            group_id=None,
            enable_auto_commit=False,
            # Only used when a slow subscriber falls behind retention: go on from the oldest record left.
            auto_offset_reset="earliest",
            fetch_max_bytes=limits.fetch_bytes,
            max_partition_fetch_bytes=limits.partition_fetch_bytes,
            request_timeout_ms=int(limits.timeout * 1000),
            **security.client_kwargs(),
        )

    async def open(
        self, partitions: int, *, from_beginning: bool = False, after: Mapping[int, int] | None = None
    ) -> Positions:
        """Start the consumer on every partition, positioned; returns when positions are known, with
        each partition's offset before its first record to come (the stream's cursor so far).

        ``after`` (a client's cursor) starts each partition right after the offset it names, kept
        within what the partition holds: a cursor older than retention starts at the oldest record
        left, one past the end (not ours, or a recreated topic) at the end. A partition it does not
        name starts at its beginning, so nothing in it is missed.
        """
        tps = [TopicPartition(self.topic, partition) for partition in range(partitions)]
        try:
            async with asyncio.timeout(self._limits.timeout):
                await self._consumer.start()
                self._consumer.assign(tps)
                # Explicit offsets rather than a lazy reset: "latest" must mean "now", not "at the
                # first fetch", which may come after the client was told it is subscribed.
                resuming = after is not None
                none: dict[TopicPartition, int] = {}
                first = await self._consumer.beginning_offsets(tps) if from_beginning or resuming else none
                end = none if from_beginning and not resuming else await self._consumer.end_offsets(tps)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise KafkaUnavailable("could not open a consumer") from exc
        starts: dict[TopicPartition, int] = {}
        for tp in tps:
            if after is not None:
                wanted = after[tp.partition] + 1 if tp.partition in after else 0
                starts[tp] = min(max(wanted, first[tp]), end[tp])
            else:
                starts[tp] = first[tp] if from_beginning else end[tp]
            self._consumer.seek(tp, starts[tp])
        self.partitions = partitions
        return {tp.partition: offset - 1 for tp, offset in starts.items()}

    async def grow(self, partitions: int, positions: Positions) -> None:
        """Read the partitions added to the topic since the subscription opened too, each from its
        beginning: all they hold came after the open. Call it between batches, with every record taken
        so far delivered: the others go on right after ``positions`` (which gains the new partitions),
        as assigning anew drops what the consumer had fetched ahead."""
        if partitions <= self.partitions:
            return
        added = [TopicPartition(self.topic, partition) for partition in range(self.partitions, partitions)]
        try:
            async with asyncio.timeout(self._limits.timeout):
                first = await self._consumer.beginning_offsets(added)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise KafkaUnavailable("could not read the new partitions' offsets") from exc
        # Nothing above changed the consumer; from here on nothing awaits, so no fetch comes between.
        self._consumer.assign([TopicPartition(self.topic, partition) for partition in range(partitions)])
        for partition in range(self.partitions):
            self._consumer.seek(TopicPartition(self.topic, partition), positions[partition] + 1)
        for tp in added:
            self._consumer.seek(tp, first[tp])
            positions[tp.partition] = first[tp] - 1
        self.partitions = partitions

    async def batches(self) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
        """Records as they arrive, at most ``batch`` at a time; the next batch is taken only when the
        caller asks for it. A second without records yields an empty batch, so the caller gets a turn
        (to look for new partitions) on a quiet topic too."""
        while True:
            try:
                fetched = await self._consumer.getmany(timeout_ms=1000, max_records=self._limits.batch)
            except KafkaError as exc:
                raise KafkaUnavailable("consumer failed") from exc
            yield [record for partition in fetched.values() for record in partition]

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing must not fail; the sockets go either way
            await self._consumer.stop()


class SubscriptionSlots:
    """Open subscriptions, per process and per tenant, capped; the gauge follows them."""

    def __init__(self, metrics: BrokerMetrics, *, total: int, per_tenant: int) -> None:
        self._metrics = metrics
        self._total = total
        self._per_tenant = per_tenant
        self._open: dict[str, int] = {}
        self.open = 0

    def take(self, tenant_id: str) -> str | None:
        """Take a slot; None, or the limit that refuses it."""
        refusal = None
        if self.open >= self._total:
            refusal = PROCESS_LIMIT
        elif self._open.get(tenant_id, 0) >= self._per_tenant:
            refusal = TENANT_LIMIT
        if refusal is not None:
            self._metrics.refused_subscriptions.labels(refusal).inc()
            return refusal
        self._open[tenant_id] = self._open.get(tenant_id, 0) + 1
        self.open += 1
        self._metrics.open_subscriptions.inc()
        return None

    def give_back(self, tenant_id: str) -> None:
        left = self._open[tenant_id] - 1
        if left:
            self._open[tenant_id] = left
        else:
            del self._open[tenant_id]
        self.open -= 1
        self._metrics.open_subscriptions.dec()
