"""user.created / user.updated / user.deleted reach Kafka from the outbox, keyed by the user id."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from backends.users.events import USERS
from harness.infra import InfraEnv
from harness.tokens import TokenIssuer
from harness.users import UsersBackend, start_users_backend
from stubs.events.v1 import events_pb2
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra


async def _events_for(
    bootstrap: str, user_id: str, want: int, timeout: float = 30, topic: str = USERS.topic
) -> list[tuple[bytes, dict[str, bytes], events_pb2.Event]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, bytes], events_pb2.Event]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < want:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        event = events_pb2.Event.FromString(record.value)
                        if event.entity_id == user_id:
                            found.append((record.key, dict(record.headers), event))
    finally:
        await consumer.stop()
    return found


async def test_changes_are_published_in_order_with_headers(
    users_backend: UsersBackend, infra: InfraEnv
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    admin, admin_token = users_backend.admin(tenant)
    user = users_backend.create_user(admin_token, email="ev@example.com", username="evuser", first_name="Eve")
    channel, stub = users_backend.stub()
    with channel:
        stub.UpdateUser(
            users_pb2.UpdateUserRequest(user_id=user["id"], username="eve2"),
            metadata=users_backend.metadata(admin_token),
            timeout=10,
        )
        stub.DeleteUser(
            users_pb2.DeleteUserRequest(user_id=user["id"]),
            metadata=users_backend.metadata(admin_token),
            timeout=10,
        )

    events = await _events_for(infra.kafka_bootstrap, user["id"], 3)
    assert [e.type for _, _, e in events] == ["user.created", "user.updated", "user.deleted"]
    for key, headers, event in events:
        assert key == user["id"].encode()
        assert headers["content-type"] == b"application/x-protobuf"
        assert headers["event-type"] == event.type.encode()
        assert headers["traceparent"].startswith(b"00-")
        assert event.tenant_id == tenant
        assert event.actor.user_id == admin["id"]
        assert event.HasField("occurred_at")
    assert events[1][2].user.username == "eve2"
    assert len({e.event_id for _, _, e in events}) == 3


async def test_the_user_events_topic_is_the_seed_001_setting(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path
) -> None:
    """`KAFKA_USER_TOPIC` (seed 001's name for `PORTICO_USER_EVENTS_TOPIC`) moves the events."""
    topic = f"seed-user-events-{uuid.uuid4().hex[:8]}"
    backend = start_users_backend(infra, issuer, tmp_path, extra_env={"KAFKA_USER_TOPIC": topic})
    try:
        _, admin_token = backend.admin(f"t-{uuid.uuid4().hex[:10]}")
        user = backend.create_user(admin_token, email="topic@example.com", username="topicuser")
        events = await _events_for(infra.kafka_bootstrap, user["id"], 1, topic=topic)
    finally:
        backend.stop()
    assert [e.type for _, _, e in events] == ["user.created"]
