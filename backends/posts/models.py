"""Tables of the posts backend (SQLAlchemy Core). The migrations in ``migrations/`` create them.

- ``posts``: deleted posts keep their row (``deleted_at``) and lose their image reference.
- ``post_images``: one row per stored blob with the number of posts that refer to it, so the blob is
  removed with its last reference (see :mod:`backends.posts.image_refs`).
- ``posts_deleted_authors``: authors whose ``user.deleted`` event arrived. Reads leave out their posts,
  which stay stored for audit; being a separate table, it also hides a post that was created while the
  event was on its way.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text

from meshkit.db.sqltypes import UTCDateTime
from meshkit.events.tables import outbox_table, processed_events_table

__all__ = ["deleted_authors", "metadata", "outbox", "post_images", "posts", "processed_events"]

metadata = MetaData()

posts = Table(
    "posts",
    metadata,
    Column("id", String(36), primary_key=True, comment="A UUID, lower-case."),
    Column("tenant_id", String(50), nullable=False),
    Column("author_id", String(36), nullable=False),
    Column("title", String(200), nullable=False),
    Column("content", Text, nullable=False),
    Column("image_key", String(81), nullable=True, comment="Blob key (post_images.key) or NULL."),
    Column("image_type", String(32), nullable=True, comment="Media type detected from the content."),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True, comment="Set by DeletePost; the row stays."),
)

_live = posts.c.deleted_at.is_(None)
Index(
    "ix_posts_tenant_created_live",
    posts.c.tenant_id,
    posts.c.created_at,
    posts.c.id,
    sqlite_where=_live,
    postgresql_where=_live,
)
Index(
    "ix_posts_tenant_author_created_live",
    posts.c.tenant_id,
    posts.c.author_id,
    posts.c.created_at,
    posts.c.id,
    sqlite_where=_live,
    postgresql_where=_live,
)

post_images = Table(
    "post_images",
    metadata,
    Column("key", String(81), primary_key=True, comment="<tenant hash>/<sha256 of the bytes>"),
    Column("refs", Integer, nullable=False, comment="Posts whose image_key is this key."),
    Column("content_type", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

deleted_authors = Table(
    "posts_deleted_authors",
    metadata,
    Column("tenant_id", String(50), nullable=False),
    Column("author_id", String(36), nullable=False),
    Column("deleted_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "author_id"),
)

outbox = outbox_table(metadata, "posts")
processed_events = processed_events_table(metadata, "posts")
