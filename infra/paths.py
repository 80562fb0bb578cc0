"""Where things live: computed from this package's location so a checkout can sit anywhere."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
CACHE_DIR = REPO_ROOT / ".cache"
BIN_DIR = CACHE_DIR / "bin"
KAFKA_FILES_DIR = PACKAGE_DIR / "kafka"
KAFKA_POM = KAFKA_FILES_DIR / "pom.xml"


def run_dir() -> Path:
    """Root for server data of `python -m infra run` (git-ignored); `PORTICO_RUN_DIR` overrides it."""
    return Path(os.environ.get("PORTICO_RUN_DIR", str(REPO_ROOT / ".run")))


@cache
def kafka_version() -> str:
    """The Kafka version pinned in the pom, so the version is written down in exactly one place."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text())
    if match is None:
        raise RuntimeError(f"no <kafka.version> in {KAFKA_POM}")
    return match.group(1).strip()


def kafka_home() -> Path:
    """Per-version cache folder: `libs/` (jars) and the AppCDS archive."""
    return CACHE_DIR / "kafka" / kafka_version()


def kafka_libs_dir() -> Path:
    return kafka_home() / "libs"
