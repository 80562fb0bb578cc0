"""Write events into the outbox, in the caller's transaction: the event exists exactly when the change does.

Nothing is published here. The relay (:mod:`meshkit.events.relay`) publishes pending rows; the wake-up
callback, run once the caller's transaction commits, lets it do so at once instead of at its next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate
from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.events.envelope import CONTENT_TYPE
from stubs.events.v1 import events_pb2

__all__ = ["Outbox", "outbox_headers"]


def outbox_headers(event: events_pb2.Event) -> dict[str, str]:
    """Kafka headers of ``event``, with the trace context active now (``traceparent``, ``tracestate``)."""
    headers = {"content-type": CONTENT_TYPE, "event-type": event.type}
    propagate.inject(headers)  # the global propagator: W3C trace context and baggage by default
    return headers


class Outbox:
    """The outbox table of one backend."""

    def __init__(self, table: Table, wake: Callable[[], None] | None = None) -> None:
        self.table = table
        self._wake = wake

    async def add(self, session: AsyncSession, topic: str, event: events_pb2.Event) -> None:
        """Insert ``event`` for ``topic`` (key: its ``entity_id``) in ``session``'s open transaction."""
        await session.execute(
            self.table.insert().values(
                event_id=event.event_id,
                topic=topic,
                key=event.entity_id,
                event_type=event.type,
                payload=event.SerializeToString(),
                headers=outbox_headers(event),
                created_at=datetime.now(UTC),
            )
        )
        self._wake_after_commit(session)

    def _wake_after_commit(self, session: AsyncSession) -> None:
        if self._wake is None or session.info.get(self):
            return
        session.info[self] = True  # once per session and outbox, however many events it adds
        wake = self._wake

        def after_commit(_session: Any) -> None:
            wake()  # runs on the event loop's thread (SQLAlchemy's greenlet), so plain calls are safe

        event.listen(session.sync_session, "after_commit", after_commit)
