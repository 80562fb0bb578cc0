"""Posts, their image references, deleted authors, and the posts backend's outbox and processed events.

Revision ID: 0001
Revises:
Create Date: 2026-12-02 00:00:00
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

_LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("author_id", sa.String(36), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("image_key", sa.String(81), nullable=True),
        sa.Column("image_type", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_posts_tenant_created_live",
        "posts",
        ["tenant_id", "created_at", "id"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_index(
        "ix_posts_tenant_author_created_live",
        "posts",
        ["tenant_id", "author_id", "created_at", "id"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_table(
        "post_images",
        sa.Column("key", sa.String(81), primary_key=True),
        sa.Column("refs", sa.Integer, nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "posts_deleted_authors",
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("author_id", sa.String(36), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "author_id"),
    )
    create_kit_tables(op, "posts")


def downgrade() -> None:
    drop_kit_tables(op, "posts")
    op.drop_table("posts_deleted_authors")
    op.drop_table("post_images")
    op.drop_table("posts")
