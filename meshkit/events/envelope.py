"""The event envelope and the registry of what each backend publishes where.

:data:`CHANNELS` is the one declaration of the topics, their event types and the entity each event
carries: :func:`new_event` checks events against it, and the AsyncAPI document is generated from it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from stubs.events.v1 import events_pb2
from stubs.posts.v1 import posts_pb2
from stubs.users.v1 import users_pb2

__all__ = [
    "AUTH_TOPIC",
    "CHANNELS",
    "CONTENT_TYPE",
    "POSTS_TOPIC",
    "USERS_TOPIC",
    "Channel",
    "channel_of",
    "new_event",
]

USERS_TOPIC = "portico.users.v1"
POSTS_TOPIC = "portico.posts.v1"
AUTH_TOPIC = "portico.auth.v1"

# The record value is a serialized events.v1.Event.
CONTENT_TYPE = "application/x-protobuf"


@dataclass(frozen=True)
class Channel:
    """One topic: who publishes it, the event types on it, and the ``Event.entity`` field they carry."""

    topic: str
    publisher: str
    entity: str
    types: tuple[str, ...]
    description: str


CHANNELS: tuple[Channel, ...] = (
    Channel(
        USERS_TOPIC,
        publisher="users",
        entity="user",
        types=("user.created", "user.updated", "user.deleted"),
        description="Changes to user profiles.",
    ),
    Channel(
        POSTS_TOPIC,
        publisher="posts",
        entity="post",
        types=("post.created", "post.updated", "post.deleted"),
        description="Changes to posts.",
    ),
    Channel(
        AUTH_TOPIC,
        publisher="auth",
        entity="auth_audit",
        types=("login.succeeded", "login.failed", "token.refreshed", "token.reuse_detected", "logout"),
        description="Audit trail of logins and tokens.",
    ),
)

_BY_TYPE = {event_type: channel for channel in CHANNELS for event_type in channel.types}


def channel_of(event_type: str) -> Channel:
    """The channel an event type is published on; ``ValueError`` for a type nobody declared."""
    try:
        return _BY_TYPE[event_type]
    except KeyError:
        raise ValueError(f"unknown event type {event_type!r}; declare it in CHANNELS") from None


def new_event(
    type: str,
    tenant_id: str,
    entity_id: str,
    *,
    actor: events_pb2.Actor | None,
    user: users_pb2.User | None = None,
    post: posts_pb2.Post | None = None,
    auth: events_pb2.AuthAudit | None = None,
) -> events_pb2.Event:
    """A new envelope with a fresh ``event_id`` and ``occurred_at`` now, carrying its channel's entity."""
    channel = channel_of(type)
    entities = {"user": user, "post": post, "auth_audit": auth}
    given = [name for name, value in entities.items() if value is not None]
    if given != [channel.entity]:
        raise ValueError(f"{type} events carry exactly the {channel.entity!r} entity, got {given}")
    event = events_pb2.Event(
        event_id=str(uuid.uuid4()), type=type, tenant_id=tenant_id, entity_id=entity_id, actor=actor
    )
    getattr(event, channel.entity).CopyFrom(entities[channel.entity])
    event.occurred_at.FromDatetime(datetime.now(UTC))
    return event
