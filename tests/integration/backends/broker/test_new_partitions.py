"""Partitions added to a topic while streams are open (an operator's ``kafka-topics --alter``): open
streams read the new partitions too, every message once, and cursors naming them are taken."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from backends.broker.cursor import parse
from backends.broker.topics import internal_topic
from harness.broker import BrokerBackend, Metadata, broker_backend_fixture, publish, read, subscribe
from harness.infra import InfraEnv
from harness.tokens import TokenIssuer

pytestmark = pytest.mark.infra
CHECK_SECONDS = 0.3


@pytest.fixture(scope="module")
def broker(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerBackend]:
    yield from broker_backend_fixture(
        infra,
        issuer,
        tmp_path_factory.mktemp("broker-partitions"),
        {"PORTICO_BROKER_STREAM_PARTITION_CHECK_SECONDS": str(CHECK_SECONDS)},
    )


def fresh_topic(broker: BrokerBackend, name: str) -> tuple[str, Metadata]:
    """A topic of a tenant of its own: its Kafka name, and the tenant's call credentials."""
    tenant = f"p-{uuid.uuid4().hex[:10]}"
    return internal_topic(tenant, name), broker.auth(tenant)


async def grow_topic(bootstrap: str, topic: str, total: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_partitions({topic: NewPartitions(total_count=total)})
    finally:
        await admin.close()


async def produce_to(bootstrap: str, topic: str, messages: dict[int, list[str]]) -> None:
    """Straight into given partitions: the backend's producer uses new partitions only once its metadata
    is refreshed (every 5 minutes), a client of Kafka of its own at once."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, texts in messages.items():
            for text in texts:
                await producer.send_and_wait(topic, text.encode(), partition=partition)
    finally:
        await producer.stop()


async def test_open_streams_read_partitions_added_to_their_topic(
    broker: BrokerBackend, infra: InfraEnv
) -> None:
    name = "grown"
    topic, auth = fresh_topic(broker, name)
    async with broker.stub() as stub:
        assert (await publish(stub, auth, name, "before")).partition < 3  # created with 3 partitions
        latest = await subscribe(stub, auth, name, "latest")
        earliest = await subscribe(stub, auth, name, "earliest")
        await grow_topic(infra.kafka_bootstrap, topic, 5)
        sent = [f"old-{n}" for n in range(6)]
        for n, text in enumerate(sent):
            await publish(stub, auth, name, text, key=str(n))
        added = {3: ["new3-0", "new3-1"], 4: ["new4-0"]}
        await produce_to(infra.kafka_bootstrap, topic, added)
        sent += [text for texts in added.values() for text in texts]

        items = await read(latest, len(sent))
        assert sorted(item.message for item in items) == sorted(sent)
        assert {item.partition for item in items} >= {3, 4}
        assert set(parse(items[-1].cursor)) == {0, 1, 2, 3, 4}
        assert sorted(item.message for item in await read(earliest, len(sent) + 1)) == sorted(
            [*sent, "before"]
        )
        # Nothing delivered twice: the next item on both streams is the one published after all the rest.
        await publish(stub, auth, name, "last")
        assert [item.message for item in await read(latest, 1)] == ["last"]
        assert [item.message for item in await read(earliest, 1)] == ["last"]

        # A cursor naming the new partitions is taken, and continues exactly after it.
        middle = next(n for n, item in enumerate(items) if item.partition >= 3)
        resumed = await subscribe(stub, auth, name, items[middle].cursor)
        rest = await read(resumed, len(items) - middle)
        assert sorted(item.message for item in rest) == sorted(
            [item.message for item in items[middle + 1 :]] + ["last"]
        )
        for call in (latest, earliest, resumed):
            call.cancel()
    assert "Traceback" not in broker.proc.log()


async def test_a_stream_opened_after_the_growth_starts_every_partition_at_latest(
    broker: BrokerBackend, infra: InfraEnv
) -> None:
    name = "grown-before"
    topic, auth = fresh_topic(broker, name)
    async with broker.stub() as stub:
        await publish(stub, auth, name, "creates it")
        await grow_topic(infra.kafka_bootstrap, topic, 4)
        await produce_to(infra.kafka_bootstrap, topic, {3: ["older"]})
        call = await subscribe(stub, auth, name, "latest")
        await produce_to(infra.kafka_bootstrap, topic, {3: ["newer"]})
        assert [item.message for item in await read(call, 1)] == ["newer"]  # not "older" from before the open
        call.cancel()
