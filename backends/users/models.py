"""Tables of the users backend (SQLAlchemy Core). The migrations in ``migrations/`` create them.

Search objects that differ per dialect live only in the migration and in :mod:`backends.users.store`:
on SQLite the FTS5 table ``users_fts`` (external content over ``users.rowid``), on PostgreSQL the
generated ``users.search_vector`` column.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
)

from meshkit.db.sqltypes import UTCDateTime
from meshkit.events.tables import outbox_table, processed_events_table

__all__ = ["EMAIL_INDEX", "USERNAME_INDEX", "UTCDateTime", "metadata", "outbox", "processed_events", "users"]

EMAIL_INDEX = "uq_users_tenant_email_live"
USERNAME_INDEX = "uq_users_tenant_username_live"


metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True, comment="A UUID, lower-case."),
    Column("tenant_id", String(50), nullable=False),
    Column("username", String(32), nullable=False),
    Column("email", String(255), nullable=False, comment="As given."),
    # meshkit.identity.identity_key of username and email, written by the store: what uniqueness compares.
    Column("username_key", Text, nullable=False, comment="Identity key of the username; unique per tenant."),
    Column("email_key", Text, nullable=False, comment="Identity key of the email; unique per tenant."),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("phone", String(16), nullable=False),
    Column("avatar_url", String(2048), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True, comment="Set by soft delete; the row stays."),
    # Written by the store from search.document(): the text both dialects' full-text indexes read.
    Column("search_name", Text, nullable=False, comment="First and last name, one phrase."),
    Column("search_email", Text, nullable=False),
    Column("search_username", Text, nullable=False),
)

_live = users.c.deleted_at.is_(None)
_has_email = and_(_live, users.c.email_key != "")
# Unique among non-deleted users only, so a deleted user's email and username can be taken again; a user
# created without an email (username only) claims none.
Index(
    EMAIL_INDEX,
    users.c.tenant_id,
    users.c.email_key,
    unique=True,
    sqlite_where=_has_email,
    postgresql_where=_has_email,
)
Index(
    USERNAME_INDEX,
    users.c.tenant_id,
    users.c.username_key,
    unique=True,
    sqlite_where=_live,
    postgresql_where=_live,
)
Index(
    "ix_users_tenant_created_live",
    users.c.tenant_id,
    users.c.created_at,
    users.c.id,
    sqlite_where=_live,
    postgresql_where=_live,
)

outbox = outbox_table(metadata, "users")
processed_events = processed_events_table(metadata, "users")
