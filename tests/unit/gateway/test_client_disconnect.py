"""A client that leaves while its body is being read is not a server error: a quiet 499, no traceback."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient
from starlette.types import Message

from gateway.app import create_app
from gateway.config import GatewaySettings
from harness.gateway import offline_settings


def _settings() -> GatewaySettings:
    return offline_settings()


def test_a_client_gone_mid_body_gets_a_quiet_499(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(_settings())
    sent: list[Message] = []
    events = iter(
        [
            {"type": "http.request", "body": b'{"tenant_id": "t", ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> Message:
        return next(events)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/login",  # public: the body is read before anything else is asked
        "raw_path": b"/api/v1/auth/login",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"portico")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    with caplog.at_level(logging.WARNING), TestClient(app) as client:
        client.portal.call(app, {**scope, "state": dict(client.app_state)}, receive, send)
        metrics = client.get("/metrics").text
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 499
    # aiokafka's own connection errors (the revocation feed retrying the absent Kafka) are not the
    # request's: the gateway's entry point silences that logger.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "aiokafka"]
    assert 'status="500"' not in metrics
    assert 'status="499"' in metrics
