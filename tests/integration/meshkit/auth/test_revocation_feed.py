"""The revocation feed against the real Kafka: it loads what was published before it started (and only
then says it is ready), follows what comes after, skips what is not an event, and finds a topic that is
created after it started."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from harness.events import eventually
from harness.infra import InfraEnv
from harness.kafka import create_topic
from meshkit.auth.revocation_feed import RevocationFeed
from meshkit.auth.revocation_set import JTI, USER, RevocationSet
from meshkit.auth.tokens import Principal
from stubs.events.v1 import events_pb2

pytestmark = [pytest.mark.infra, pytest.mark.timeout(120)]


def revocation_event(kind: str, key: str, *, valid_after: float = 0.0) -> bytes:
    revocation = events_pb2.Revocation(kind=kind, key=key, tenant_id="t")
    revocation.expires_at.FromMicroseconds(int((time.time() + 600) * 1e6))
    revocation.valid_after.FromMicroseconds(int(valid_after * 1e6))
    event = events_pb2.Event(event_id=str(uuid.uuid4()), type="token.revoked", entity_id=key)
    event.revocation.CopyFrom(revocation)
    return event.SerializeToString()


async def publish(bootstrap: str, topic: str, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def token(jti: str = "j", sub: str = "u", issued_at: float | None = None) -> Principal:
    now = time.time() if issued_at is None else issued_at
    return Principal(sub, "t", "", frozenset(), jti, now, now + 600, "tok")


@contextlib.asynccontextmanager
async def following(bootstrap: str, topic: str, revocations: RevocationSet) -> AsyncIterator[RevocationFeed]:
    feed = RevocationFeed(
        bootstrap, revocations, client_id="test-feed", registry=CollectorRegistry(), topic=topic
    )
    task = asyncio.create_task(feed.run())
    try:
        yield feed
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_loads_everything_published_before_it_is_ready_then_follows(infra: InfraEnv) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = await create_topic(bootstrap)
    before = time.time() - 1
    await publish(
        bootstrap,
        topic,
        *(revocation_event(JTI, f"old-{n}") for n in range(50)),
        b"not an event",
        revocation_event(USER, "gone", valid_after=time.time()),
    )
    revocations = RevocationSet()
    async with following(bootstrap, topic, revocations) as feed:
        await eventually(lambda: _true(revocations.ready), timeout=30, what="the feed to load")
        # Ready means loaded: everything published before the start is known at that moment.
        assert all(revocations.is_revoked(token(f"old-{n}")) for n in range(50))
        assert revocations.is_revoked(token(sub="gone", issued_at=before))
        assert feed.ready_after is not None
        await publish(bootstrap, topic, revocation_event(JTI, "new"))
        await eventually(lambda: _true(revocations.is_revoked(token("new"))), timeout=10, what="a new one")


async def test_a_topic_created_after_the_start_is_found(infra: InfraEnv) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = f"portico.test.revocations.{uuid.uuid4().hex[:12]}"
    revocations = RevocationSet()
    async with following(bootstrap, topic, revocations):
        # No topic: nothing was ever revoked, so the empty set is complete.
        await eventually(lambda: _true(revocations.ready), timeout=30, what="the feed to be ready")
        await publish(bootstrap, topic, revocation_event(JTI, "first"))  # the topic is created now
        await eventually(
            lambda: _true(revocations.is_revoked(token("first"))), timeout=15, what="the first revocation"
        )


async def _true(value: bool) -> bool:
    return value
