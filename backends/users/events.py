"""What the users backend publishes: profile changes on ``portico.users.v1``."""

from __future__ import annotations

from meshkit.events.envelope import Channel

USERS = Channel(
    "portico.users.v1",
    publisher="users",
    entity="user",
    types=("user.created", "user.updated", "user.deleted"),
    description="Changes to user profiles.",
)
