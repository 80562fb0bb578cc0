"""The broker backend's limits and failure modes on a real Kafka: subscription caps, streams ending with
their token, the configured topic shape and size limit, and Kafka away as UNAVAILABLE."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import grpc
import pytest

from harness.broker import (
    OPEN_GAUGE,
    BrokerBackend,
    broker_backend_fixture,
    publish,
    read,
    start_broker_backend,
    subscribe,
)
from harness.infra import InfraEnv
from harness.tokens import TokenIssuer
from infra.local import free_port
from stubs.broker.v1 import broker_pb2

if TYPE_CHECKING:
    from stubs.broker.v1.broker_pb2_grpc import MessageServiceAsyncStub

pytestmark = pytest.mark.infra
Code = grpc.StatusCode
REFUSED = "portico_broker_subscriptions_refused_total"


@pytest.fixture(scope="module")
def broker(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerBackend]:
    env = {
        "PORTICO_BROKER_MAX_SUBSCRIPTIONS": "3",
        "PORTICO_BROKER_MAX_SUBSCRIPTIONS_PER_TENANT": "2",
        "PORTICO_BROKER_TOPIC_PARTITIONS": "2",
        "PORTICO_BROKER_MAX_MESSAGE_BYTES": "1024",
        "PORTICO_JWT_LEEWAY": "0",
    }
    yield from broker_backend_fixture(infra, issuer, tmp_path_factory.mktemp("broker-limits"), env)


def tenant() -> str:
    return f"l-{uuid.uuid4().hex[:10]}"


async def refused(
    broker: BrokerBackend, stub: MessageServiceAsyncStub, tenant_id: str
) -> grpc.aio.AioRpcError:
    request = broker_pb2.SubscribeToTopicRequest(topic="capped")
    call = stub.SubscribeToTopic(request, metadata=broker.auth(tenant_id), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    return err.value


async def test_subscriptions_are_capped_per_tenant_and_per_process(broker: BrokerBackend) -> None:
    first, second, third = tenant(), tenant(), tenant()
    async with broker.stub() as stub:
        mine = [await subscribe(stub, broker.auth(first), "capped") for _ in range(2)]
        over_tenant = await refused(broker, stub, first)
        theirs = await subscribe(stub, broker.auth(second), "capped")
        over_process = await refused(broker, stub, third)
        assert broker.metric(OPEN_GAUGE) == 3
        mine[0].cancel()
        await asyncio.sleep(0.5)
        again = await subscribe(stub, broker.auth(third), "capped")  # a freed slot is usable again
        for call in (mine[1], theirs, again):
            call.cancel()
    for error, text in ((over_tenant, "for this tenant"), (over_process, "on this server")):
        assert error.code() == Code.RESOURCE_EXHAUSTED
        assert text in (error.details() or "")
    assert broker.metric(REFUSED, {"limit": "tenant"}) == 1
    assert broker.metric(REFUSED, {"limit": "process"}) == 1
    broker.wait_metric(OPEN_GAUGE, 0)


async def test_a_stream_ends_when_its_token_expires(broker: BrokerBackend) -> None:
    async with broker.stub() as stub:
        call = await subscribe(stub, broker.auth(tenant(), ttl=3), "expiring")
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await read(call, 1, timeout=10)
    assert err.value.code() == Code.UNAUTHENTICATED
    assert 1 < time.monotonic() - started < 5
    broker.wait_metric(OPEN_GAUGE, 0)


async def test_new_topics_have_the_configured_partitions_and_size_limit(broker: BrokerBackend) -> None:
    auth = broker.auth(tenant())
    async with broker.stub() as stub:
        replies = [await publish(stub, auth, "shape", "x" * 1000, key=f"key-{n}") for n in range(20)]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await publish(stub, auth, "shape", "x" * 1020, key="key-1")
    assert {reply.partition for reply in replies} == {0, 1}
    assert err.value.code() == Code.RESOURCE_EXHAUSTED


async def test_kafka_away_is_unavailable_not_an_internal_error(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    nowhere = {
        "PORTICO_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "PORTICO_BROKER_KAFKA_TIMEOUT": "1",
        "PORTICO_BROKER_PUBLISH_TIMEOUT": "2",
    }
    broker = start_broker_backend(
        infra, issuer, tmp_path_factory.mktemp("broker-nokafka"), nowhere, serving=False
    )
    try:
        auth = broker.auth(tenant())
        async with broker.stub() as stub:
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as published:
                await publish(stub, auth, "orders", "x")
            call = stub.SubscribeToTopic(
                broker_pb2.SubscribeToTopicRequest(topic="orders"), metadata=auth, timeout=10
            )
            with pytest.raises(grpc.aio.AioRpcError) as subscribed:
                await call.read()
        assert time.monotonic() - started < 8
        for error in (published.value, subscribed.value):
            assert error.code() == Code.UNAVAILABLE
            assert error.details() == "The message broker is unavailable, try again later"
        assert broker.metric(OPEN_GAUGE) == 0
    finally:
        broker.proc.terminate()
