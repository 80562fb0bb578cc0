"""What the auth backend publishes (its audit trail on ``portico.auth.v1``) and consumes (user events).

The users topic is named here, as the contract names it, rather than imported: a backend never imports
another backend.
"""

from __future__ import annotations

from meshkit.events.envelope import Channel

AUTH = Channel(
    "portico.auth.v1",
    publisher="auth",
    entity="auth_audit",
    types=("login.succeeded", "login.failed", "token.refreshed", "token.reuse_detected", "logout"),
    description="Audit trail of logins and tokens.",
)

USERS_TOPIC = "portico.users.v1"
