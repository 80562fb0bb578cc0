"""Users, their full-text search, and the users backend's outbox and processed-events tables.

Search differs per dialect (the rest is shared):
- SQLite: FTS5 table ``users_fts`` with external content ``users`` (key: ``users.rowid``), kept in step
  by triggers. A later migration that rebuilds ``users`` in batch mode drops these triggers with the
  old table: recreate them and run ``INSERT INTO users_fts(users_fts) VALUES('rebuild')``.
- PostgreSQL: generated ``search_vector`` with a GIN index, in the ``users_search`` configuration.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from meshkit.events.tables import create_kit_tables, drop_kit_tables

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("deleted_at IS NULL")
_SEARCH_COLUMNS = ("search_name", "search_email", "search_username")

_SQLITE_FTS = [
    "CREATE VIRTUAL TABLE users_fts USING fts5("
    "search_name, search_email, search_username, content='users', tokenize='porter unicode61')",
    # The 'delete' command must be given the indexed (old) values: FTS5 does not store them itself.
    """CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
        INSERT INTO users_fts(rowid, search_name, search_email, search_username)
        VALUES (new.rowid, new.search_name, new.search_email, new.search_username);
    END""",
    """CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
        INSERT INTO users_fts(users_fts, rowid, search_name, search_email, search_username)
        VALUES ('delete', old.rowid, old.search_name, old.search_email, old.search_username);
    END""",
    """CREATE TRIGGER users_fts_update AFTER UPDATE OF search_name, search_email, search_username
    ON users BEGIN
        INSERT INTO users_fts(users_fts, rowid, search_name, search_email, search_username)
        VALUES ('delete', old.rowid, old.search_name, old.search_email, old.search_username);
        INSERT INTO users_fts(rowid, search_name, search_email, search_username)
        VALUES (new.rowid, new.search_name, new.search_email, new.search_username);
    END""",
]

_PG_CONFIG = [
    # English stemming without stop words ("Will", "Don" are names), to match FTS5.
    "CREATE TEXT SEARCH DICTIONARY users_english_stem (TEMPLATE = snowball, LANGUAGE = english)",
    "CREATE TEXT SEARCH CONFIGURATION users_search (COPY = english)",
    "ALTER TEXT SEARCH CONFIGURATION users_search ALTER MAPPING REPLACE english_stem WITH users_english_stem",
]
# A '|' lexeme between fields (no query can contain it) keeps a phrase from spanning two fields, as
# FTS5 columns do. '\:' is a plain colon to SQLAlchemy's text(), which would read ':1' as a parameter.
_FIELD_BREAK = r"'''|''\:1'::tsvector"
# Names weigh more than email and username in the ranking.
_PG_VECTOR = f" || {_FIELD_BREAK} || ".join(
    f"setweight(to_tsvector('users_search'::regconfig, {column}), '{weight}')"
    for column, weight in (("search_name", "A"), ("search_email", "B"), ("search_username", "B"))
)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(50), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("avatar_url", sa.String(2048), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *(sa.Column(name, sa.Text, nullable=False) for name in _SEARCH_COLUMNS),
    )
    for name, field in (
        ("uq_users_tenant_email_live", "email"),
        ("uq_users_tenant_username_live", "username"),
    ):
        op.create_index(
            name,
            "users",
            ["tenant_id", sa.text(f"lower({field})")],
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )
    op.create_index(
        "ix_users_tenant_created_live",
        "users",
        ["tenant_id", "created_at", "id"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _PG_CONFIG:
            op.execute(statement)
        op.add_column(
            "users", sa.Column("search_vector", postgresql.TSVECTOR, sa.Computed(_PG_VECTOR, persisted=True))
        )
        op.create_index("ix_users_search_vector", "users", ["search_vector"], postgresql_using="gin")
    else:
        for statement in _SQLITE_FTS:
            op.execute(statement)
    create_kit_tables(op, "users")


def downgrade() -> None:
    drop_kit_tables(op, "users")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_users_search_vector", table_name="users")
        op.drop_column("users", "search_vector")
        op.execute("DROP TEXT SEARCH CONFIGURATION users_search")
        op.execute("DROP TEXT SEARCH DICTIONARY users_english_stem")
    else:
        for trigger in ("users_fts_insert", "users_fts_delete", "users_fts_update"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE users_fts")
    op.drop_table("users")
