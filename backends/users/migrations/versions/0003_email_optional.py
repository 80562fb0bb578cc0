"""A user may have no email (created with a username only): the empty email is unique to nobody.

The email's partial unique index leaves out rows whose ``email_key`` is empty, so any number of live
users of a tenant may be without one; an index change only, no table rebuild (see 0002).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "uq_users_tenant_email_live"


def _recreate(where: str) -> None:
    op.drop_index(_INDEX, table_name="users")
    condition = sa.text(where)
    op.create_index(
        _INDEX,
        "users",
        ["tenant_id", "email_key"],
        unique=True,
        sqlite_where=condition,
        postgresql_where=condition,
    )


def upgrade() -> None:
    _recreate("deleted_at IS NULL AND email_key <> ''")


def downgrade() -> None:
    _recreate("deleted_at IS NULL")
