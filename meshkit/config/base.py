"""The conventions every settings class follows: names, prefixes and how they read the environment.

A mesh-wide setting is read from ``PORTICO_<NAME>`` by whichever process uses it; a process's own setting
from ``PORTICO_<PROCESS>_<NAME>``. Peer addresses are mesh-wide and named after the peer they reach
(``PORTICO_USERS_TARGET`` is where the users backend listens, for every process that calls it).
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "PORTICO_"


def process_prefix(process: str) -> str:
    """``PORTICO_<PROCESS>_``: the prefix of a process's own settings."""
    return f"{PREFIX}{process.upper()}_"


def settings_config(process: str | None = None) -> SettingsConfigDict:
    """The model config of a settings class: mesh-wide without ``process``, else that process's prefix."""
    prefix = process_prefix(process) if process else PREFIX
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


# Variables of the services Portico replaces (its seeds), read as their deployments already set them:
# the only names outside the ``PORTICO_*`` scheme.
SEED_NAMES = frozenset({"EXPIRY_TIME", "KAFKA_USER_TOPIC"})


def env(name: str, *fallbacks: str, **field: Any) -> Any:
    """A field read from the environment variable ``name``, or else from ``fallbacks`` (older names that
    the public contract publishes), whatever the composing class's prefix is."""
    return Field(validation_alias=AliasChoices(name, *fallbacks), **field)


class MeshSettings(BaseSettings):
    """Root of every settings class; mesh-wide pieces are composed into each process's settings."""

    model_config = settings_config()
