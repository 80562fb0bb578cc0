"""Login keys by ``meshkit.identity.identity_key``, and room to park a name another credential still holds.

- ``username_key`` and ``email_key`` become nullable (NULL: the name is parked) and are recomputed with
  the shared identity function; ``username_parked`` and ``email_parked`` hold the key a parked name waits
  for.
- Recomputing may make two enabled credentials of a tenant share a key they did not share before (names
  that differ only in a way ``lower()`` kept apart): the earlier-created one keeps it and the later one's
  name is parked, exactly as the store parks a name an event brings while another credential holds it.

The partial unique indexes are dropped first and created again last: SQLite changes nullability by
copying the table, which would not keep their ``WHERE``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# The function the store calls, not a copy: the keys written here must be the keys the code looks up.
from meshkit.identity import identity_key

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENABLED = sa.text("disabled_at IS NULL")
_INDEXES = (
    ("uq_credentials_tenant_username_live", "username_key"),
    ("uq_credentials_tenant_email_live", "email_key"),
)
_FIELDS = ("username", "email")


def _create_indexes() -> None:
    for name, key in _INDEXES:
        op.create_index(
            name,
            "credentials",
            ["tenant_id", key],
            unique=True,
            sqlite_where=_ENABLED,
            postgresql_where=_ENABLED,
        )


def _drop_indexes() -> None:
    for name, _ in _INDEXES:
        op.drop_index(name, table_name="credentials")


def upgrade() -> None:
    _drop_indexes()
    with op.batch_alter_table("credentials") as batch:
        for field in _FIELDS:
            batch.alter_column(f"{field}_key", existing_type=sa.Text, nullable=True)
            batch.add_column(sa.Column(f"{field}_parked", sa.Text, nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT user_id, tenant_id, username, email, disabled_at FROM credentials"
            " ORDER BY created_at, user_id"
        )
    ).all()
    taken: set[tuple[str, str, str]] = set()  # (tenant, field, key) of enabled credentials, oldest first
    for row in rows:
        values: dict[str, str | None] = {"user_id": row.user_id}
        for field in _FIELDS:
            key = identity_key(getattr(row, field))
            clash = row.disabled_at is None and (row.tenant_id, field, key) in taken
            values[f"{field}_key"], values[f"{field}_parked"] = (None, key) if clash else (key, None)
            if row.disabled_at is None:
                taken.add((row.tenant_id, field, key))
        bind.execute(
            sa.text(
                "UPDATE credentials SET username_key = :username_key, email_key = :email_key,"
                " username_parked = :username_parked, email_parked = :email_parked WHERE user_id = :user_id"
            ),
            values,
        )
    _create_indexes()


def downgrade() -> None:
    # A parked name gets a key no login can type (usernames have no '#', emails need an '@'), so the
    # columns can be NOT NULL again; the next change of that user's name sets a real key.
    bind = op.get_bind()
    for field in _FIELDS:
        bind.execute(
            sa.text(f"UPDATE credentials SET {field}_key = '#parked:' || user_id WHERE {field}_key IS NULL")  # noqa: S608
        )
    _drop_indexes()
    with op.batch_alter_table("credentials") as batch:
        for field in _FIELDS:
            batch.drop_column(f"{field}_parked")
            batch.alter_column(f"{field}_key", existing_type=sa.Text, nullable=False)
    _create_indexes()
