"""Which tenant topics exist, and creating them.

Policy: a topic is created by its first publish, with the configured partitions, replication factor
and retention (never by Kafka's own auto-creation, which would use the cluster's defaults). A
subscription to a topic that does not exist yet does not create it: it waits, and once the topic
appears it streams from the topic's first message, so nothing published after the subscription
opened is missed.

An operator may add partitions to a topic (``kafka-topics --alter --partitions``); producers use them
once their metadata refreshes, so open subscriptions ask :meth:`TopicDirectory.current_partitions` now
and then and read the new ones too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaError

from backends.broker.kafka_clients import KafkaClients, KafkaUnavailable
from backends.broker.metrics import BrokerMetrics

log = logging.getLogger(__name__)

NO_ERROR, UNKNOWN_TOPIC, LEADER_NOT_AVAILABLE, TOPIC_EXISTS = 0, 3, 5, 36
# Topics known to exist are remembered (bounded: the oldest are forgotten, and simply asked again).
KNOWN_MAX = 100_000


class TopicDirectory:
    def __init__(
        self,
        clients: KafkaClients,
        metrics: BrokerMetrics,
        *,
        partitions: int,
        replication_factor: int | None,
        retention_ms: int,
        poll_seconds: float,
        timeout: float,
    ) -> None:
        self._clients = clients
        self._metrics = metrics
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._retention_ms = retention_ms
        self._poll_seconds = poll_seconds
        self._timeout = timeout
        self._known: dict[str, int] = {}  # topic → partition count
        self._asked: dict[str, float] = {}  # topic → when Kafka was last asked its count (monotonic)
        self._created = asyncio.Event()  # set (and replaced) whenever this process creates a topic

    def _remember(self, topic: str, partitions: int) -> None:
        self._known[topic] = partitions
        while len(self._known) > KNOWN_MAX:
            oldest = next(iter(self._known))
            self._known.pop(oldest)
            self._asked.pop(oldest, None)

    def forget(self, topic: str) -> None:
        """Drop a topic Kafka no longer knows (deleted behind our back): the next publish creates it."""
        self._known.pop(topic, None)
        self._asked.pop(topic, None)

    async def _ready_partitions(self, topic: str) -> int | None:
        """The partition count once every partition has a leader; None when the topic does not exist."""
        metadata = await self._clients.topic_metadata(topic)
        code = metadata["error_code"]
        if code == UNKNOWN_TOPIC:
            return None
        partitions = metadata["partitions"]
        if code not in (NO_ERROR, LEADER_NOT_AVAILABLE):
            raise KafkaUnavailable(f"metadata error {code}")
        if not partitions or any(p["error_code"] != NO_ERROR or p["leader"] < 0 for p in partitions):
            return 0  # being created: exists, not usable yet
        return len(partitions)

    async def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has, or None when it does not exist (yet)."""
        if topic in self._known:
            return self._known[topic]
        count = await self._ready_partitions(topic)
        if count:
            self._remember(topic, count)
        return count or None

    async def current_partitions(self, topic: str, max_age: float = 0.0) -> int | None:
        """How many partitions ``topic`` has, asked of Kafka unless someone asked within ``max_age``
        seconds (every open subscription of a topic checks: one request serves them all); None when it
        does not exist (yet). A count only grows: Kafka cannot take partitions away, and a topic whose
        partitions are still getting their leaders keeps its last count until they have them."""
        now = time.monotonic()
        if topic in self._known and now - self._asked.get(topic, -math.inf) < max_age:
            return self._known[topic]
        self._asked[topic] = now  # before asking: the checks that come meanwhile use the count we have
        count = await self._ready_partitions(topic)
        if count is None:
            return None
        if count > self._known.get(topic, 0):
            self._remember(topic, count)
        return self._known.get(topic)

    async def ensure(self, topic: str) -> None:
        """Create ``topic`` unless it exists, and return once its partitions have leaders."""
        if topic in self._known:
            return
        replicas = self._replication_factor or await self._clients.replicas_for_new_topics()
        configs = {"retention.ms": str(self._retention_ms)}
        if replicas >= 3:  # acks=all then survives one broker down and never rests on one copy
            configs["min.insync.replicas"] = "2"
        new = NewTopic(topic, self._partitions, replicas, topic_configs=configs)
        admin = await self._clients.admin()
        try:
            async with asyncio.timeout(self._timeout):
                response = await admin.create_topics([new], timeout_ms=int(self._timeout * 1000))
                code = response.to_object()["topic_errors"][0]["error_code"]
                if code not in (NO_ERROR, TOPIC_EXISTS):
                    raise KafkaUnavailable(f"topic creation failed with error {code}")
                if code == NO_ERROR:
                    self._metrics.topics_created.inc()
                    log.info("topic created", extra={"topic": topic, "partitions": self._partitions})
                # Producing before the leaders are elected only earns retries; wait for them here.
                count = await self._ready_partitions(topic)
                while not count:
                    await asyncio.sleep(0.05)
                    count = await self._ready_partitions(topic)
        except (KafkaError, TimeoutError) as exc:
            raise KafkaUnavailable("topic creation did not complete") from exc
        self._remember(topic, count)
        self._created.set()
        self._created = asyncio.Event()

    async def wait_for(self, topic: str) -> int:
        """The partition count of ``topic``, waiting for the topic to be created if it does not exist.

        A publish through this process wakes the waiters at once; one through another process is
        seen at the next poll.
        """
        count = await self.partition_count(topic)
        while count is None:
            created = self._created
            try:
                async with asyncio.timeout(self._poll_seconds):
                    await created.wait()
                count = self._known.get(topic)
            except TimeoutError:
                count = await self.partition_count(topic)
        return count
