"""What most end-to-end tests share: an HTTP client of the session's gateway (the ``mesh`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from harness.mesh import Mesh


@pytest.fixture
def client(mesh: Mesh) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mesh.gateway_url, timeout=15) as http:
        yield http
