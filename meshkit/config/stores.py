"""Where state is kept: the run directory, the database and Redis (mesh-wide ``PORTICO_*``)."""

from __future__ import annotations

from pathlib import Path

from meshkit.config import defaults
from meshkit.config.base import MeshSettings, env

_REPO_ROOT = Path(__file__).resolve().parents[2]


def _repo_run_dir() -> Path:
    """``.run/`` in the repository."""
    return _REPO_ROOT / ".run"


class RunDirSettings(MeshSettings):
    """The directory of local state when no URL names another place."""

    run_dir: Path = env(
        "PORTICO_RUN_DIR",
        default_factory=_repo_run_dir,
        description="Directory of local state (SQLite files, signing keys, images) when no URL is set",
    )


def run_dir() -> Path:
    """The run directory, read from the environment now (``PORTICO_RUN_DIR``, default ``.run/``)."""
    return RunDirSettings().run_dir


class DatabaseSettings(MeshSettings):
    """The SQL database of a backend that keeps tables."""

    database_url: str | None = env(
        "PORTICO_DATABASE_URL",
        default=None,
        description="SQLAlchemy async URL of the database; a SQLite file in the run directory when unset",
    )


class RedisSettings(MeshSettings):
    """The Redis server: token revocations, rate limits and caches."""

    redis_url: str = env(
        "PORTICO_REDIS_URL",
        default=defaults.REDIS_URL,
        description="Redis URL (token revocations, login lockouts, rate limits, caches)",
    )
