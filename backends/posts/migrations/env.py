"""Alembic environment of the posts backend: ``meshkit.db.migrations.upgrade`` runs it."""

from __future__ import annotations

from alembic import context

from backends.posts.models import metadata
from meshkit.db.migrations import run_env

run_env(context.config, metadata)
