"""Fixtures shared by the gateway's integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local import LocalRedis, free_port


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis of the module's own (a test may watch or flush it without touching the session's)."""
    server = LocalRedis(port=free_port(), data_dir=Path(tmp_path_factory.mktemp("redis")))
    server.start()
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()
