"""Creates the topics Portico uses, replicated for the cluster they are on, before anything else would.

Left to others, an event topic would rest on one broker: Kafka's auto-creation uses the cluster's
``default.replication.factor`` (1 unless an operator changed it), and a FastStream subscriber creates a
missing topic with 1 partition and 1 replica. So the kit creates each topic it subscribes to, dead-letters
to or relays an outbox to, once per process: 3 replicas with ``min.insync.replicas=2`` when the cluster's
metadata lists 3 or more brokers (with ``acks=all`` a write is then on two brokers before it is
acknowledged, and one broker may die), else one per broker. A topic that exists is left as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from meshkit.events.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

NO_ERROR, TOPIC_EXISTS = 0, 36
SAFE_REPLICAS = 3


class TopicCreationError(Exception):
    """Kafka did not answer, or refused to create a topic (say, the client may not): retried by the caller."""


def replication_for(brokers: int) -> tuple[int, dict[str, str]]:
    """Replicas and topic configs of a new topic on a cluster of ``brokers``."""
    replicas = max(1, min(SAFE_REPLICAS, brokers))
    return replicas, ({"min.insync.replicas": "2"} if replicas >= SAFE_REPLICAS else {})


class TopicCreator:
    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        partitions: int = 3,
        replication_factor: int | None = None,
        security: KafkaSecurity = PLAINTEXT,
        timeout: float = 10.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._partitions = partitions
        self._replication_factor = replication_factor  # None: from the cluster's size
        self._security = security
        self._timeout = timeout
        self._ensured: set[str] = set()
        self._lock = asyncio.Lock()

    async def ensure(self, topics: Iterable[str]) -> None:
        """Create those of ``topics`` this process has not ensured yet; raises :class:`TopicCreationError`."""
        async with self._lock:
            missing = sorted(set(topics) - self._ensured)
            if not missing:
                return
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                request_timeout_ms=int(self._timeout * 1000),
                **self._security.client_kwargs(),
            )
            try:
                async with asyncio.timeout(self._timeout):
                    await admin.start()
                    await self._create(admin, missing)
            except (KafkaError, OSError, TimeoutError) as exc:
                raise TopicCreationError(f"topic creation failed: {type(exc).__name__}") from exc
            finally:
                await admin.close()
            self._ensured.update(missing)

    async def _create(self, admin: AIOKafkaAdminClient, topics: list[str]) -> None:
        brokers = len((await admin.describe_cluster())["brokers"])
        replicas, configs = replication_for(brokers)
        if self._replication_factor is not None:
            replicas = self._replication_factor
            configs = replication_for(replicas)[1]
        new = [NewTopic(topic, self._partitions, replicas, topic_configs=configs) for topic in topics]
        response = await admin.create_topics(new, timeout_ms=int(self._timeout * 1000))
        for result in response.to_object()["topic_errors"]:
            if result["error_code"] == NO_ERROR:
                log.info("kafka topic created", extra={"topic": result["topic"], "replicas": replicas})
            elif result["error_code"] != TOPIC_EXISTS:
                raise TopicCreationError(
                    f"creating {result['topic']} failed with error {result['error_code']}"
                )
