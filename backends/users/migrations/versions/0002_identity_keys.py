"""Uniqueness of username and email by stored identity keys instead of the database's ``lower()``.

Adds ``username_key`` and ``email_key`` (``meshkit.identity.identity_key`` of each), fills them for every
existing row, and moves the two partial unique indexes from ``lower(column)`` onto them. Plain ADD COLUMN
on both dialects: rebuilding ``users`` on SQLite would renumber the rowids that ``users_fts`` points at.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The function the store calls, not a copy: the keys written here must be the keys the code looks up.
from meshkit.identity import identity_key

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("deleted_at IS NULL")
_INDEXES = (("uq_users_tenant_email_live", "email"), ("uq_users_tenant_username_live", "username"))


def upgrade() -> None:
    # NOT NULL needs a default to add a column to existing rows on SQLite; every row is filled below.
    for field in ("username", "email"):
        op.add_column("users", sa.Column(f"{field}_key", sa.Text, nullable=False, server_default=""))
    users = sa.table("users", sa.column("id"), sa.column("username"), sa.column("email"))
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.id, users.c.username, users.c.email)).all()
    for row in rows:
        bind.execute(
            sa.text("UPDATE users SET username_key = :username_key, email_key = :email_key WHERE id = :id"),
            {"id": row.id, "username_key": identity_key(row.username), "email_key": identity_key(row.email)},
        )
    if bind.dialect.name == "postgresql":  # SQLite cannot drop a default without rebuilding the table
        for field in ("username", "email"):
            op.alter_column("users", f"{field}_key", server_default=None)
    for name, field in _INDEXES:
        op.drop_index(name, table_name="users")
        op.create_index(
            name,
            "users",
            ["tenant_id", f"{field}_key"],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )


def downgrade() -> None:
    for name, field in _INDEXES:
        op.drop_index(name, table_name="users")
        op.create_index(
            name,
            "users",
            ["tenant_id", sa.text(f"lower({field})")],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )
    for field in ("username", "email"):
        op.drop_column("users", f"{field}_key")
