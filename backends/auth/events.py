"""What the auth backend publishes (its audit trail on ``portico.auth.v1``, revocations on
``portico.revocations.v1``) and consumes (user events).

The users topic is named here, as the contract names it, rather than imported: a backend never imports
another backend.
"""

from __future__ import annotations

from meshkit.auth.revocation_feed import REVOCATIONS_TOPIC
from meshkit.events.envelope import Channel

AUTH = Channel(
    "portico.auth.v1",
    publisher="auth",
    entity="auth_audit",
    types=(
        "login.succeeded",
        "login.failed",
        "token.refreshed",
        "token.reuse_detected",
        "logout",
        "password.changed",
        "password.change_failed",
        "password.reset",
        "credential.created",
    ),
    description="Audit trail of logins, tokens and passwords.",
)

REVOCATIONS = Channel(
    REVOCATIONS_TOPIC,
    publisher="auth",
    entity="revocation",
    types=("token.revoked", "session.ended", "user.sessions_ended"),
    description=(
        "Every revocation of access tokens (a logout, an ended login, a deleted or deactivated user), "
        "read from the start by every token verifier. Retention must exceed the access-token lifetime."
    ),
)

USERS_TOPIC = "portico.users.v1"
