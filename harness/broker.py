"""A running broker backend for tests (real process, real Kafka and Redis), tokens from the test issuer,
and helpers to call it and read its metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from harness.backends import BackendProcess, start_backend
from harness.infra import InfraEnv
from harness.processes import wait_until
from harness.tokens import TokenIssuer
from stubs.broker.v1 import broker_pb2, broker_pb2_grpc

if TYPE_CHECKING:
    from stubs.broker.v1.broker_pb2_grpc import MessageServiceAsyncStub

OPEN_GAUGE = "portico_broker_subscriptions_open"
Metadata = tuple[tuple[str, str], ...]


@dataclass
class BrokerBackend(BackendProcess):
    issuer: TokenIssuer

    def token(self, tenant_id: str, sub: str = "user-1", ttl: int = 600) -> str:
        return self.issuer.token(sub, tenant_id, ("user",), ttl=ttl)

    def auth(self, tenant_id: str, ttl: int = 600) -> Metadata:
        return (("authorization", f"Bearer {self.token(tenant_id, ttl=ttl)}"),)

    def connections_to(self, port: int) -> int:
        """Established TCP connections of the backend process to ``port`` (Linux ``/proc``)."""
        return len(self.client_ports(port))

    def wait_metric(self, name: str, value: float, timeout: float = 10) -> None:
        wait_until(lambda: self.metric(name) == value, timeout, f"{name} == {value}")

    @asynccontextmanager
    async def stub(self) -> AsyncIterator[MessageServiceAsyncStub]:
        async with grpc.aio.insecure_channel(self.target) as channel:
            yield broker_pb2_grpc.MessageServiceStub(channel)


async def publish(
    stub: MessageServiceAsyncStub, auth: Metadata, topic: str, message: str, key: str = ""
) -> broker_pb2.PublishMessageResponse:
    request = broker_pb2.PublishMessageRequest(topic=topic, message=message, key=key)
    return await stub.PublishMessage(request, metadata=auth, timeout=15)


async def subscribe(
    stub: MessageServiceAsyncStub, auth: Metadata, topic: str, start: str = ""
) -> grpc.aio.UnaryStreamCall[broker_pb2.SubscribeToTopicRequest, broker_pb2.SubscribeToTopicResponse]:
    """A subscription the backend has confirmed (its initial metadata arrived)."""
    request = broker_pb2.SubscribeToTopicRequest(topic=topic, **{"from": start})
    call = stub.SubscribeToTopic(request, metadata=auth)
    await asyncio.wait_for(call.initial_metadata(), 10)
    return call


async def read(
    call: grpc.aio.UnaryStreamCall[broker_pb2.SubscribeToTopicRequest, broker_pb2.SubscribeToTopicResponse],
    count: int,
    timeout: float = 15,
) -> list[broker_pb2.SubscribeToTopicResponse]:
    items: list[broker_pb2.SubscribeToTopicResponse] = []
    async with asyncio.timeout(timeout):
        for _ in range(count):
            item = await call.read()
            assert isinstance(item, broker_pb2.SubscribeToTopicResponse), "the stream ended early"
            items.append(item)
    return items


def start_broker_backend(
    infra: InfraEnv,
    issuer: TokenIssuer,
    log_dir: Path,
    extra_env: dict[str, str] | None = None,
    *,
    serving: bool = True,
) -> BrokerBackend:
    """Start one; wait until it is SERVING (with ``serving=False``, until its health answers at all)."""
    env = {**infra.env(), "PORTICO_JWKS_TARGET": issuer.target, **(extra_env or {})}
    started = start_backend("broker", env, log_dir, serving=serving)
    return BrokerBackend(started.name, started.target, started.metrics_port, started.proc, issuer)


def broker_backend_fixture(
    infra: InfraEnv, issuer: TokenIssuer, log_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[BrokerBackend]:
    backend = start_broker_backend(infra, issuer, log_dir, extra_env)
    yield backend
    backend.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"
