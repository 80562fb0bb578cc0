"""Alembic environment of the auth backend: ``backends.kit.migrations.upgrade`` runs it."""

from __future__ import annotations

from alembic import context

from backends.auth.models import metadata
from backends.kit.migrations import run_env

run_env(context.config, metadata)
