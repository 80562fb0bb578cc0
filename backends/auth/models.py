"""Tables of the auth backend (SQLAlchemy Core). The migrations in ``migrations/`` create them.

Only what authentication needs: the login credentials of each user (profiles live in the users
backend), refresh tokens in families, one family per login, and the revocations of access tokens.
Refresh tokens are stored only as the SHA-256 of the opaque token.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
)

from meshkit.db.sqltypes import UTCDateTime
from meshkit.events.tables import outbox_table, processed_events_table

__all__ = [
    "EMAIL_INDEX",
    "FAMILY_LIVE_INDEX",
    "USERNAME_INDEX",
    "UTCDateTime",
    "credentials",
    "metadata",
    "outbox",
    "processed_events",
    "refresh_families",
    "refresh_tokens",
    "revocations",
]

EMAIL_INDEX = "uq_credentials_tenant_email_live"
USERNAME_INDEX = "uq_credentials_tenant_username_live"
FAMILY_LIVE_INDEX = "uq_refresh_tokens_family_live"


metadata = MetaData()

credentials = Table(
    "credentials",
    metadata,
    Column("user_id", String(36), primary_key=True, comment="The users backend's id of the user."),
    Column("tenant_id", String(50), nullable=False),
    Column("username", String(32), nullable=False, comment="As given."),
    Column("email", String(255), nullable=False, comment="As given."),
    # meshkit.identity.identity_key of the name, computed in Python (as the users backend does), never by
    # the database's lower(). NULL while the name is parked: held by another credential whose own change
    # has not arrived yet (see backends.auth.store); a NULL key matches no login and no unique index.
    Column("username_key", Text, nullable=True, comment="Login key of the username; NULL while parked."),
    Column("email_key", Text, nullable=True, comment="Login key of the email; NULL while parked."),
    Column("username_parked", Text, nullable=True, comment="The username's key, waiting for its holder."),
    Column("email_parked", Text, nullable=True, comment="The email's key, waiting for its holder."),
    Column("password_hash", Text, nullable=False, comment="argon2id, PHC string format."),
    Column("roles", JSON, nullable=False, comment="Copied from the profile, for the access token."),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True, comment="NULL: may log in. Set when deleted."),
    Column(
        "active",
        Boolean,
        nullable=False,
        server_default=true(),
        comment="The profile's is_active (user.updated): an inactive user may not log in or refresh.",
    ),
    Column(
        "password_change_required",
        Boolean,
        nullable=False,
        server_default=false(),
        comment="Set by an admin's reset, cleared by the user's own change; said in the login answer.",
    ),
)

_enabled = credentials.c.disabled_at.is_(None)
# Unique among enabled credentials only, so a deleted user's username and email can be registered again.
Index(
    USERNAME_INDEX,
    credentials.c.tenant_id,
    credentials.c.username_key,
    unique=True,
    sqlite_where=_enabled,
    postgresql_where=_enabled,
)
Index(
    EMAIL_INDEX,
    credentials.c.tenant_id,
    credentials.c.email_key,
    unique=True,
    sqlite_where=_enabled,
    postgresql_where=_enabled,
)

refresh_families = Table(
    "refresh_families",
    metadata,
    Column("family_id", String(36), primary_key=True, comment="A UUID: one login or registration."),
    Column("user_id", String(36), nullable=False),
    Column("tenant_id", String(50), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("absolute_expires_at", UTCDateTime, nullable=False, comment="No token of the family lives on."),
    Column("revoked_at", UTCDateTime, nullable=True, comment="NULL: live."),
    Column("revoked_reason", String(50), nullable=True, comment="logout, reuse, user_deleted, ..."),
)
# revoke_user: every family of a user.
Index("ix_refresh_families_user", refresh_families.c.user_id)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True, comment="SHA-256 hex of the opaque token."),
    Column(
        "family_id",
        String(36),
        ForeignKey("refresh_families.family_id", ondelete="CASCADE", name="fk_refresh_tokens_family"),
        nullable=False,
    ),
    Column("parent_hash", String(64), nullable=True, comment="The token this one replaced; NULL: first."),
    Column("created_at", UTCDateTime, nullable=False),
    Column("idle_expires_at", UTCDateTime, nullable=False, comment="Capped by the family's absolute expiry."),
    Column("used_at", UTCDateTime, nullable=True, comment="NULL: the live token of the family."),
)

_live = refresh_tokens.c.used_at.is_(None)
# At most one live token per family: a second rotation of one token can never leave two, whatever
# the locking does. Also how rotate finds the live token of a family.
Index(
    FAMILY_LIVE_INDEX,
    refresh_tokens.c.family_id,
    unique=True,
    sqlite_where=_live,
    postgresql_where=_live,
)
# The foreign key's index: deleting a family (purge_expired) finds its tokens through it.
Index("ix_refresh_tokens_family", refresh_tokens.c.family_id)

# The source of truth of revocations (Redis and each verifier's memory are copies): written in the
# transaction that revokes, kept until no access token it names can still be valid.
revocations = Table(
    "revocations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False, comment="jti (one token), sid (one login) or user."),
    Column("key", String(64), nullable=False, comment="The jti, the sid (refresh family) or the user id."),
    Column("tenant_id", String(50), nullable=False),
    Column("valid_after", UTCDateTime, nullable=True, comment="user: tokens issued up to it are dead."),
    Column("expires_at", UTCDateTime, nullable=False, comment="No token it names is valid after it."),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_revocations_expires_at", revocations.c.expires_at)

outbox = outbox_table(metadata, "auth")
processed_events = processed_events_table(metadata, "auth")
