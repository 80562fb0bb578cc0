"""The event envelope (``events.v1.Event``) and the :class:`Channel` a backend declares for each topic.

The kit knows no particular backend: a backend declares its channel (topic, event types, the envelope
field its events carry) in its own ``events.py`` and builds every event through it, so an event that its
channel does not declare cannot be written. The AsyncAPI document is generated from the same
declarations (``scripts/gen_asyncapi.py`` collects them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import Message

from stubs.events.v1 import events_pb2

__all__ = ["CONTENT_TYPE", "Channel"]

# The record value is a serialized events.v1.Event.
CONTENT_TYPE = "application/x-protobuf"


@dataclass(frozen=True)
class Channel:
    """One topic: who publishes it, the event types on it, and the ``Event`` field their entity sits in."""

    topic: str
    publisher: str
    entity: str
    types: tuple[str, ...]
    description: str

    def __post_init__(self) -> None:
        field = events_pb2.Event.DESCRIPTOR.fields_by_name.get(self.entity)
        if field is None or field.message_type is None:
            raise ValueError(f"events.v1.Event has no message field {self.entity!r}")

    def event(
        self, type: str, tenant_id: str, entity_id: str, *, actor: events_pb2.Actor | None, entity: Message
    ) -> events_pb2.Event:
        """A new envelope with a fresh ``event_id`` and ``occurred_at`` now, carrying ``entity``."""
        if type not in self.types:
            raise ValueError(f"{type!r} is not an event type of {self.topic} (declared: {self.types})")
        expected = events_pb2.Event.DESCRIPTOR.fields_by_name[self.entity].message_type
        if expected is None or entity.DESCRIPTOR is not expected:
            want = expected.full_name if expected else self.entity
            raise ValueError(f"{type} events carry a {want}, got {entity.DESCRIPTOR.full_name}")
        event = events_pb2.Event(
            event_id=str(uuid.uuid4()), type=type, tenant_id=tenant_id, entity_id=entity_id, actor=actor
        )
        getattr(event, self.entity).CopyFrom(entity)
        event.occurred_at.FromDatetime(datetime.now(UTC))
        return event
