"""broker.v1.MessageService over real gRPC against a real Kafka: publish, subscribe from the start or
the end, tenant isolation, event topics out of reach, validation, authentication."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from backends.broker.topics import internal_topic
from harness.broker import (
    BrokerBackend,
    broker_backend_fixture,
    publish,
    read,
    subscribe,
    unique,
)
from harness.infra import InfraEnv
from harness.tokens import TokenIssuer
from meshkit.rpc.status import violations_of
from stubs.broker.v1 import broker_pb2

pytestmark = pytest.mark.infra
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def broker(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerBackend]:
    yield from broker_backend_fixture(infra, issuer, tmp_path_factory.mktemp("broker"))


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def test_publish_answers_partition_and_offset(broker: BrokerBackend, tenant: str) -> None:
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        replies = [await publish(stub, auth, "orders", f"order {n}", key="customer-7") for n in range(3)]
    assert {r.status for r in replies} == {"published"}
    assert {r.topic for r in replies} == {"orders"}
    assert len({r.partition for r in replies}) == 1  # one key, one partition
    assert [r.offset for r in replies] == [0, 1, 2]  # a new topic: the first offsets of that partition


async def test_a_new_topic_gets_the_configured_partitions_and_retention(
    broker: BrokerBackend, infra: InfraEnv, tenant: str
) -> None:
    async with broker.stub() as stub:
        await publish(stub, broker.auth(tenant), "configured", "hello")
    topic = internal_topic(tenant, "configured")
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        [configs] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    assert len(described["partitions"]) == 3
    entries = {
        e["config_names"]: e["config_value"] for e in configs.to_object()["resources"][0]["config_entries"]
    }
    assert entries["retention.ms"] == str(7 * 24 * 3600 * 1000)


async def test_subscribe_from_earliest_gets_every_field(broker: BrokerBackend, tenant: str) -> None:
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        before = time.time()
        sent = await publish(stub, auth, "news", "first story", key="k1")
        await publish(stub, auth, "news", "second story")
        call = await subscribe(stub, auth, "news", "earliest")
        items = await read(call, 2)
        call.cancel()
    by_message = {item.message: item for item in items}
    first = by_message["first story"]
    assert (first.topic, first.partition, first.offset, first.key) == (
        "news",
        sent.partition,
        sent.offset,
        "k1",
    )
    assert before - 1 <= first.timestamp.ToMilliseconds() / 1000 <= time.time() + 1
    assert by_message["second story"].key == ""


async def test_subscribe_from_latest_gets_only_new_messages(broker: BrokerBackend, tenant: str) -> None:
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        await publish(stub, auth, "ticks", "old")
        call = await subscribe(stub, auth, "ticks")  # `from` absent: latest
        # Published right after the subscription is confirmed: it must be seen (positions are fixed
        # before the confirmation, not at the consumer's first fetch).
        sent = await publish(stub, auth, "ticks", "new")
        [item] = await read(call, 1)
        call.cancel()
    assert (item.message, item.offset, item.partition) == ("new", sent.offset, sent.partition)


async def test_a_subscription_to_a_topic_not_created_yet_waits_for_its_first_message(
    broker: BrokerBackend, tenant: str
) -> None:
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        started = time.monotonic()
        call = await subscribe(stub, auth, "later", "latest")
        confirmed = time.monotonic() - started
        sent = await publish(stub, auth, "later", "the very first")
        [item] = await read(call, 1)
        call.cancel()
    assert confirmed < 2  # the client learns at once that it is subscribed
    assert (item.message, item.offset) == ("the very first", sent.offset)
    assert sent.offset == 0


async def test_messages_of_one_key_arrive_in_order(broker: BrokerBackend, tenant: str) -> None:
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        call = await subscribe(stub, auth, "ordered")
        for n in range(30):
            await publish(stub, auth, "ordered", str(n), key="same")
        items = await read(call, 30)
        call.cancel()
    assert [item.message for item in items] == [str(n) for n in range(30)]
    assert [item.offset for item in items] == list(range(items[0].offset, items[0].offset + 30))


async def test_tenants_never_see_each_others_topic_of_the_same_name(broker: BrokerBackend) -> None:
    alpha, beta = f"alpha-{uuid.uuid4().hex[:6]}", f"beta-{uuid.uuid4().hex[:6]}"
    async with broker.stub() as stub:
        seen_by_beta = await subscribe(stub, broker.auth(beta), "shared", "earliest")
        await publish(stub, broker.auth(alpha), "shared", "alpha's secret")
        await publish(stub, broker.auth(beta), "shared", "beta's note")
        alpha_call = await subscribe(stub, broker.auth(alpha), "shared", "earliest")
        [alpha_item] = await read(alpha_call, 1)
        [beta_item] = await read(seen_by_beta, 1)
        # Nothing else arrives for either of them.
        for call in (alpha_call, seen_by_beta):
            with pytest.raises(TimeoutError):
                await read(call, 1, timeout=1.5)
            call.cancel()
    assert (alpha_item.message, alpha_item.topic, alpha_item.offset) == ("alpha's secret", "shared", 0)
    assert (beta_item.message, beta_item.topic, beta_item.offset) == ("beta's note", "shared", 0)


async def test_event_topics_cannot_be_reached_by_their_name(
    broker: BrokerBackend, infra: InfraEnv, tenant: str
) -> None:
    secret = f"internal-{uuid.uuid4().hex}".encode()
    # An internal topic of Portico's namespace with a record in it. Not the real users.v1 topic: the
    # session's Kafka is shared, and its consumers (and other tests) expect only Event envelopes there.
    internal = f"portico.internal-{uuid.uuid4().hex[:8]}.v1"
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(internal, secret)
    finally:
        await producer.stop()
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        sent = await publish(stub, auth, internal, "mine")
        call = await subscribe(stub, auth, internal, "earliest")
        [item] = await read(call, 1)
        with pytest.raises(TimeoutError):
            await read(call, 1, timeout=1.5)
        call.cancel()
    assert (item.message, item.topic, item.offset) == ("mine", internal, 0)
    assert sent.offset == 0  # its own new topic, not the event topic (which has records)


@pytest.mark.parametrize("name", ["", "a b", "a/b", "x" * 101, "ünï", "topic:1"])
async def test_invalid_topic_names_are_invalid_argument(
    broker: BrokerBackend, tenant: str, name: str
) -> None:
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        with pytest.raises(grpc.aio.AioRpcError) as published:
            await publish(stub, auth, name, "x")
        call = stub.SubscribeToTopic(
            broker_pb2.SubscribeToTopicRequest(topic=name), metadata=auth, timeout=10
        )
        with pytest.raises(grpc.aio.AioRpcError) as subscribed:
            await call.read()
    for error in (published.value, subscribed.value):
        assert error.code() == Code.INVALID_ARGUMENT
        assert [field for field, _ in violations_of(error)] == ["topic"]


async def test_an_unknown_start_is_invalid_argument(broker: BrokerBackend, tenant: str) -> None:
    request = broker_pb2.SubscribeToTopicRequest(topic="x", **{"from": "beginning"})
    async with broker.stub() as stub:
        call = stub.SubscribeToTopic(request, metadata=broker.auth(tenant), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
    assert err.value.code() == Code.INVALID_ARGUMENT
    assert [field for field, _ in violations_of(err.value)] == ["from"]


async def test_a_message_over_the_limit_is_resource_exhausted(broker: BrokerBackend, tenant: str) -> None:
    limit = 512 * 1024
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        at_limit = await publish(stub, auth, "big", "m" * (limit - 1), key="k")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await publish(stub, auth, "big", "m" * limit, key="k")
        call = await subscribe(stub, auth, "big", "earliest")
        [item] = await read(call, 1)
        call.cancel()
    assert at_limit.status == "published"
    assert err.value.code() == Code.RESOURCE_EXHAUSTED
    assert len(item.message) == limit - 1


@pytest.mark.parametrize("token", [None, "not-a-jwt"])
async def test_callers_without_a_valid_token_are_refused(broker: BrokerBackend, token: str | None) -> None:
    auth = (("authorization", f"Bearer {token}"),) if token else ()
    async with broker.stub() as stub:
        with pytest.raises(grpc.aio.AioRpcError) as published:
            await publish(stub, auth, "orders", "x")
        call = stub.SubscribeToTopic(
            broker_pb2.SubscribeToTopicRequest(topic="orders"), metadata=auth, timeout=10
        )
        with pytest.raises(grpc.aio.AioRpcError) as subscribed:
            await call.read()
    assert published.value.code() == subscribed.value.code() == Code.UNAUTHENTICATED


async def test_an_expired_token_is_refused(broker: BrokerBackend, tenant: str) -> None:
    expired = broker.issuer.token("user-1", tenant, exp=int(time.time()) - 3600)
    async with broker.stub() as stub:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await publish(stub, (("authorization", f"Bearer {expired}"),), "orders", "x")
    assert err.value.code() == Code.UNAUTHENTICATED


async def test_the_topic_is_named_as_the_client_named_it(broker: BrokerBackend, tenant: str) -> None:
    name = unique("Mixed.Case_name")
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        reply = await publish(stub, auth, name, "x")
        call = await subscribe(stub, auth, name, "earliest")
        [item] = await read(call, 1)
        call.cancel()
    assert reply.topic == item.topic == name


async def test_a_cursor_continues_after_it_in_every_partition_within_what_they_hold(
    broker: BrokerBackend, tenant: str
) -> None:
    """Each item's cursor resumes right after it; a partition the cursor leaves out starts at its
    beginning; an offset past a partition's end starts at the end (no replay of what it holds)."""
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        sent = [await publish(stub, auth, "cursored", f"m{n}", key=f"k{n % 5}") for n in range(12)]
        call = await subscribe(stub, auth, "cursored", "earliest")
        items = await read(call, 12)
        call.cancel()
        assert len({s.partition for s in sent}) > 1  # the cursor has more than one partition to carry
        assert items[-1].cursor == ",".join(
            f"{p}:{max((s.offset for s in sent if s.partition == p), default=-1)}" for p in range(3)
        )
        middle = items[4]
        call = await subscribe(stub, auth, "cursored", middle.cursor)
        rest = await read(call, 7)
        call.cancel()
        assert sorted(i.message for i in [*items[:5], *rest]) == sorted(f"m{n}" for n in range(12))

        one = sent[0].partition  # only that partition named, far past its end
        call = await subscribe(stub, auth, "cursored", f"{one}:999999")
        others = await read(call, sum(1 for s in sent if s.partition != one))
        late = await publish(stub, auth, "cursored", "late", key="k0")
        [after] = await read(call, 1)
        call.cancel()
    assert {i.partition for i in others} == {p for p in range(3)} - {one}
    assert (after.message, after.offset) == ("late", late.offset)


async def test_a_malformed_cursor_or_one_naming_a_missing_partition_is_invalid(
    broker: BrokerBackend, tenant: str
) -> None:
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        await publish(stub, auth, "strict", "x")
        for start, field in (("0:x", "from"), ("3:0", "from")):
            request = broker_pb2.SubscribeToTopicRequest(topic="strict", **{"from": start})
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await read(stub.SubscribeToTopic(request, metadata=auth), 1)
            assert refused.value.code() == Code.INVALID_ARGUMENT
            assert [f for f, _ in violations_of(refused.value)] == [field]
        request = broker_pb2.SubscribeToTopicRequest(topic="strict", last_event_id="nope", **{"from": "0:0"})
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await read(stub.SubscribeToTopic(request, metadata=auth), 1)
        assert [f for f, _ in violations_of(refused.value)] == ["last_event_id"]
