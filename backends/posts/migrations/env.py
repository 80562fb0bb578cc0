"""Alembic environment of the posts backend: ``backends.kit.migrations.upgrade`` runs it."""

from __future__ import annotations

from alembic import context

from backends.kit.migrations import run_env
from backends.posts.models import metadata

run_env(context.config, metadata)
