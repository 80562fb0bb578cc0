"""The real gateway process names no server software: no ``Server`` (uvicorn's default) or
``X-Powered-By`` header on any answer, and no interpreter version on ``/health`` or ``/metrics``."""

from __future__ import annotations

import platform

import httpx
import pytest

pytestmark = pytest.mark.infra


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", "/metrics", 200),
        ("GET", "/no/such/route", 404),
        ("GET", "/api/v1/users/me", 401),
        ("POST", "/api/v1/auth/login", 400),
    ],
)
def test_no_answer_names_the_server_software(
    client: httpx.Client, method: str, path: str, status: int
) -> None:
    body = b"{" if method == "POST" else None  # a truncated JSON body
    response = client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert "server" not in response.headers
    assert "x-powered-by" not in response.headers
    assert "uvicorn" not in response.text.lower()
    assert platform.python_version() not in response.text
