"""PublishMessage's checks with Kafka faked out: size limit in UTF-8 bytes (key included), where the
record goes, and Kafka failures as UNAVAILABLE; and the subscription caps."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiokafka.errors import KafkaTimeoutError
from google.rpc import error_details_pb2, status_pb2
from prometheus_client import CollectorRegistry

from backends.broker import service as service_module
from backends.broker.config import BrokerSettings
from backends.broker.metrics import BrokerMetrics
from backends.broker.service import BrokerDeps, MessageService
from backends.broker.subscriptions import PROCESS_LIMIT, TENANT_LIMIT, SubscriptionSlots
from meshkit.auth.tokens import Principal
from stubs.broker.v1 import broker_pb2

LIMIT = 64


@dataclass
class Stored:
    partition: int = 1
    offset: int = 41


@dataclass
class FakeProducer:
    fail: bool = False
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send_and_wait(self, topic: str, value: bytes, **kwargs: Any) -> Stored:
        if self.fail:
            raise KafkaTimeoutError()
        self.sent.append({"topic": topic, "value": value, **kwargs})
        return Stored()


@dataclass
class FakeClients:
    made: FakeProducer
    bootstrap: str = "127.0.0.1:1"

    async def producer(self) -> FakeProducer:
        return self.made


class FakeDirectory:
    def __init__(self) -> None:
        self.ensured: list[str] = []

    async def ensure(self, topic: str) -> None:
        self.ensured.append(topic)


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: Sequence[tuple[str, Any]]) -> None:
        super().__init__(details)
        self.code, self.details, self.trailers = code, details, trailers


class FakeContext:
    def time_remaining(self) -> float | None:
        return 10.0

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        raise Aborted(code, details, trailing_metadata or ())


def principal(tenant: str = "acme") -> Principal:
    now = time.time()
    return Principal("user-1", tenant, "", frozenset({"user"}), "jti", now, now + 600, "token")


@pytest.fixture
def producer() -> FakeProducer:
    return FakeProducer()


@pytest.fixture
def publish(monkeypatch: pytest.MonkeyPatch, producer: FakeProducer) -> Any:
    monkeypatch.setattr(service_module, "current_principal", principal)
    settings = BrokerSettings(max_message_bytes=LIMIT)
    metrics = BrokerMetrics(CollectorRegistry())
    slots = SubscriptionSlots(metrics, total=1, per_tenant=1)
    deps = BrokerDeps(settings, FakeClients(producer), FakeDirectory(), slots, metrics)  # type: ignore[arg-type]
    servicer = MessageService(deps)

    async def call(**fields: str) -> broker_pb2.PublishMessageResponse:
        request = broker_pb2.PublishMessageRequest(**fields)
        return await servicer.PublishMessage(request, FakeContext())  # type: ignore[arg-type]

    return call


def error_info(error: Aborted) -> error_details_pb2.ErrorInfo:
    [raw] = [value for key, value in error.trailers if key == "grpc-status-details-bin"]
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status_pb2.Status.FromString(raw).details)
    return info


async def test_a_message_up_to_the_limit_is_published_to_the_tenant_topic(
    publish: Any, producer: FakeProducer
) -> None:
    reply = await publish(topic="orders", message="m" * (LIMIT - 3), key="k-1")
    assert (reply.status, reply.topic, reply.partition, reply.offset) == ("published", "orders", 1, 41)
    [sent] = producer.sent
    assert sent["topic"] == "portico.t.acme.orders"
    assert sent["value"] == b"m" * (LIMIT - 3)
    assert sent["key"] == b"k-1"
    assert ("content-type", b"text/plain; charset=utf-8") in sent["headers"]


async def test_no_key_is_a_record_without_key(publish: Any, producer: FakeProducer) -> None:
    await publish(topic="orders", message="hello")
    assert producer.sent[0]["key"] is None


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ("m" * (LIMIT + 1), ""),
        ("m" * (LIMIT - 3), "k-12"),  # the key counts
        ("é" * (LIMIT // 2 + 1), ""),  # bytes, not characters: 66 bytes in 33 characters
    ],
)
async def test_over_the_limit_is_resource_exhausted_payload_too_large(
    publish: Any, producer: FakeProducer, message: str, key: str
) -> None:
    with pytest.raises(Aborted) as err:
        await publish(topic="orders", message=message, key=key)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(err.value).reason == "PAYLOAD_TOO_LARGE"
    assert producer.sent == []


async def test_kafka_failure_is_unavailable(publish: Any, producer: FakeProducer) -> None:
    producer.fail = True
    with pytest.raises(Aborted) as err:
        await publish(topic="orders", message="hello")
    assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert "Kafka" not in err.value.details


def test_subscription_caps_per_process_and_per_tenant() -> None:
    registry = CollectorRegistry()
    slots = SubscriptionSlots(BrokerMetrics(registry), total=3, per_tenant=2)

    def gauge() -> float | None:
        return registry.get_sample_value("portico_broker_subscriptions_open")

    assert [slots.take("a"), slots.take("a"), slots.take("a")] == [None, None, TENANT_LIMIT]
    assert [slots.take("b"), slots.take("c")] == [None, PROCESS_LIMIT]
    assert gauge() == 3
    slots.give_back("a")
    assert slots.take("c") is None
    for tenant in ("a", "b", "c"):
        slots.give_back(tenant)
    assert gauge() == 0
    assert slots.open == 0
    refused = "portico_broker_subscriptions_refused_total"
    assert registry.get_sample_value(refused, {"limit": TENANT_LIMIT}) == 1
    assert registry.get_sample_value(refused, {"limit": PROCESS_LIMIT}) == 1
