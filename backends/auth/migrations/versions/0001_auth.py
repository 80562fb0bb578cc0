"""Credentials, refresh-token families and tokens, and the auth backend's outbox and processed events.

The columns are written out here rather than taken from ``backends.auth.models``: a migration must keep
creating the schema of its own revision when the models move on.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from meshkit.events.tables import create_kit_tables, drop_kit_tables

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENABLED = sa.text("disabled_at IS NULL")
_LIVE = sa.text("used_at IS NULL")


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("username_key", sa.Text, nullable=False),
        sa.Column("email_key", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("disabled_at", _when(), nullable=True),
    )
    for name, key in (
        ("uq_credentials_tenant_username_live", "username_key"),
        ("uq_credentials_tenant_email_live", "email_key"),
    ):
        op.create_index(
            name,
            "credentials",
            ["tenant_id", key],
            unique=True,
            sqlite_where=_ENABLED,
            postgresql_where=_ENABLED,
        )

    op.create_table(
        "refresh_families",
        sa.Column("family_id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("absolute_expires_at", _when(), nullable=False),
        sa.Column("revoked_at", _when(), nullable=True),
        sa.Column("revoked_reason", sa.String(50), nullable=True),
    )
    op.create_index("ix_refresh_families_user", "refresh_families", ["user_id"])

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "family_id",
            sa.String(36),
            sa.ForeignKey("refresh_families.family_id", ondelete="CASCADE", name="fk_refresh_tokens_family"),
            nullable=False,
        ),
        sa.Column("parent_hash", sa.String(64), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("idle_expires_at", _when(), nullable=False),
        sa.Column("used_at", _when(), nullable=True),
    )
    op.create_index(
        "uq_refresh_tokens_family_live",
        "refresh_tokens",
        ["family_id"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_index("ix_refresh_tokens_family", "refresh_tokens", ["family_id"])

    create_kit_tables(op, "auth")


def downgrade() -> None:
    drop_kit_tables(op, "auth")
    op.drop_table("refresh_tokens")
    op.drop_table("refresh_families")
    op.drop_table("credentials")
