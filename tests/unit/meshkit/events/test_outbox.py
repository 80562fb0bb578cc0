"""The outbox writes an event in the caller's transaction, with its headers and the writer's trace context;
a channel builds envelopes that match its declaration."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import MetaData, Table, select

from backends.channels import CHANNELS
from backends.users.events import USERS
from meshkit.db.database import Database
from meshkit.events.envelope import Channel
from meshkit.events.outbox import Outbox
from meshkit.events.tables import outbox_table
from stubs.events.v1 import events_pb2
from stubs.posts.v1 import posts_pb2
from stubs.users.v1 import users_pb2


@pytest.fixture
async def outbox_db(tmp_path: Path) -> AsyncIterator[tuple[Database, Table]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    metadata = MetaData()
    table = outbox_table(metadata, "unit")
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield db, table
    await db.dispose()


def user_event(user_id: str = "u-1") -> events_pb2.Event:
    return USERS.event(
        "user.updated",
        "acme",
        user_id,
        actor=events_pb2.Actor(user_id="admin", request_id="req-1"),
        entity=users_pb2.User(id=user_id, tenant_id="acme", username="ada"),
    )


async def test_add_writes_the_row_with_headers_and_the_trace_context(
    outbox_db: tuple[Database, Table],
) -> None:
    db, table = outbox_db
    wakes: list[None] = []
    outbox = Outbox(table, wake=lambda: wakes.append(None))
    event = user_event()
    tracer = TracerProvider().get_tracer("test")

    with tracer.start_as_current_span("request") as span:
        async with db.write() as session:
            await outbox.add(session, USERS.topic, event)
            assert wakes == []  # not before the commit: the relay would find nothing yet
    assert wakes == [None]

    async with db.read() as session:
        row = (await session.execute(select(table))).mappings().one()
    context = span.get_span_context()
    assert row["event_id"] == event.event_id
    assert row["topic"] == USERS.topic
    assert row["key"] == "u-1"
    assert row["event_type"] == "user.updated"
    assert events_pb2.Event.FromString(row["payload"]) == event
    assert row["headers"] == {
        "content-type": "application/x-protobuf",
        "event-type": "user.updated",
        "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}",
    }
    created = row["created_at"].replace(tzinfo=UTC)
    assert datetime.now(UTC) - created < timedelta(seconds=5)
    assert row["published_at"] is None
    assert row["attempts"] == 0
    assert row["last_error"] is None


async def test_without_a_trace_the_headers_carry_no_context(outbox_db: tuple[Database, Table]) -> None:
    db, table = outbox_db
    async with db.write() as session:
        await Outbox(table).add(session, USERS.topic, user_event())
    async with db.read() as session:
        headers = (await session.execute(select(table.c.headers))).scalar_one()
    assert headers == {"content-type": "application/x-protobuf", "event-type": "user.updated"}


async def test_one_wake_per_commit_however_many_events(outbox_db: tuple[Database, Table]) -> None:
    db, table = outbox_db
    wakes: list[None] = []
    outbox = Outbox(table, wake=lambda: wakes.append(None))
    async with db.write() as session:
        for i in range(3):
            await outbox.add(session, USERS.topic, user_event(f"u-{i}"))
    assert wakes == [None]


async def test_a_rolled_back_transaction_writes_no_row_and_wakes_nobody(
    outbox_db: tuple[Database, Table],
) -> None:
    db, table = outbox_db
    wakes: list[None] = []
    outbox = Outbox(table, wake=lambda: wakes.append(None))

    async def failing_change() -> None:
        async with db.write() as session:
            await outbox.add(session, USERS.topic, user_event())
            raise RuntimeError("change failed")

    with pytest.raises(RuntimeError, match="change failed"):
        await failing_change()
    async with db.read() as session:
        assert (await session.execute(select(table))).all() == []
    assert wakes == []


def test_a_channel_fills_the_envelope() -> None:
    before = datetime.now(UTC)
    event = user_event("u-9")
    assert uuid.UUID(event.event_id).version == 4
    assert event.type == "user.updated"
    assert event.tenant_id == "acme"
    assert event.entity_id == "u-9"
    assert event.WhichOneof("entity") == "user"
    assert event.user.username == "ada"
    assert event.actor.request_id == "req-1"
    assert before - timedelta(seconds=1) <= event.occurred_at.ToDatetime(UTC) <= datetime.now(UTC)
    assert user_event().event_id != user_event().event_id


def test_a_channel_refuses_types_it_does_not_declare_and_the_wrong_entity() -> None:
    with pytest.raises(ValueError, match=r"not an event type of portico\.users\.v1"):
        USERS.event("user.renamed", "acme", "u-1", actor=None, entity=users_pb2.User())
    with pytest.raises(ValueError, match=r"carry a users\.v1\.User, got posts\.v1\.Post"):
        USERS.event("user.created", "acme", "u-1", actor=None, entity=posts_pb2.Post())
    with pytest.raises(ValueError, match="no message field 'nope'"):
        Channel("t", publisher="x", entity="nope", types=("x.y",), description="")
    audit = Channel("t", publisher="x", entity="auth_audit", types=("login.failed",), description="")
    event = audit.event("login.failed", "acme", "ada", actor=None, entity=events_pb2.AuthAudit(reason="x"))
    assert event.WhichOneof("entity") == "auth_audit"


def test_the_mesh_names_each_type_once_on_its_topic() -> None:
    assert [c.topic for c in CHANNELS] == ["portico.users.v1", "portico.posts.v1", "portico.auth.v1"]
    types = [t for c in CHANNELS for t in c.types]
    assert len(types) == len(set(types)) == 15
    oneof = {f.name for f in events_pb2.Event.DESCRIPTOR.oneofs_by_name["entity"].fields}
    assert {c.entity for c in CHANNELS} <= oneof
