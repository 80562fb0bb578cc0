"""Credentials follow the profile's ``is_active``: an inactive user may not log in or refresh.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both dialects (no table copy on SQLite, which would have to rebuild the
    # partial unique indexes). Existing users were active as far as auth knew: the default keeps them so.
    op.add_column("credentials", sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()))


def downgrade() -> None:
    op.drop_column("credentials", "active")
