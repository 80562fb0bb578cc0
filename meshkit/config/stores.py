"""Where state is kept: the run directory, the database and Redis (mesh-wide ``PORTICO_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
        description=(
            "Redis URL (token revocations, login lockouts, rate limits, caches); rediss:// for TLS. In"
            " cluster mode any node of the cluster; in sentinel mode its scheme, password and database"
        ),
    )
    redis_mode: Literal["standalone", "cluster", "sentinel"] = env(
        "PORTICO_REDIS_MODE",
        default="standalone",
        description="standalone: one server; cluster: a Redis Cluster; sentinel: the master Sentinel names",
    )
    redis_sentinels: str = env(
        "PORTICO_REDIS_SENTINELS",
        default="",
        description="Sentinel mode: comma-separated host:port of the sentinels",
    )
    redis_sentinel_master: str = env(
        "PORTICO_REDIS_SENTINEL_MASTER",
        default="mymaster",
        description="Sentinel mode: the name of the master the sentinels watch",
    )
    redis_tls_ca_file: Path | None = env(
        "PORTICO_REDIS_TLS_CA_FILE",
        default=None,
        description="PEM CA bundle that verifies the Redis server (rediss://); the system's when unset",
    )
    redis_tls_cert_file: Path | None = env(
        "PORTICO_REDIS_TLS_CERT_FILE",
        default=None,
        description="PEM client certificate presented to Redis (mutual TLS)",
    )
    redis_tls_key_file: Path | None = env(
        "PORTICO_REDIS_TLS_KEY_FILE",
        default=None,
        description="PEM private key of the client certificate",
    )
