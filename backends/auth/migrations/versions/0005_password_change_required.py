"""An admin's password reset makes the next login ask for a new password.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN on both dialects, as in 0002; no existing password was set by an admin's reset.
    op.add_column(
        "credentials",
        sa.Column("password_change_required", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("credentials", "password_change_required")
