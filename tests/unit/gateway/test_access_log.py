"""The access log on the outermost layer: its fields, its sampling (5xx always) and what it never holds."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from starlette.types import Message, Receive, Scope, Send

from gateway.access_log import AccessLog
from gateway.client_ip import parse_networks
from gateway.request_edge import RequestEdgeMiddleware
from observability.logs import JsonFormatter, TraceContextFilter

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"  # noqa: S105 (a made-up token)


def _scope(**extra: object) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/users/42",
        "query_string": b"password=hunter2&page=1",
        "client": ("10.0.0.9", 5555),
        "headers": [
            (b"x-request-id", b"req-7"),
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"x-forwarded-for", b"203.0.113.5"),
        ],
        "state": {"trusted_proxies": parse_networks("10.0.0.0/8")},
        **extra,
    }


def _app(status: int, **state: str) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"].update(state)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b'{"password": "hunter2"}'})

    return app


async def _run(app: object, ratio: float, scope: Scope | None = None) -> None:
    edge = RequestEdgeMiddleware(app, TracerProvider(), AccessLog(ratio))  # type: ignore[arg-type]

    async def receive() -> Message:
        return {"type": "http.request", "body": b"secret body"}

    async def send(message: Message) -> None:
        pass

    await edge(scope or _scope(), receive, send)


def _lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "gateway.access"]


async def test_one_line_with_the_route_template_user_and_trace(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.access")
    caplog.handler.addFilter(TraceContextFilter())
    app = _app(201, route_template="/api/v1/users/{user_id}", user_id="u1", client_ip="203.0.113.5")
    await _run(app, 1.0)
    [record] = _lines(caplog)
    line = json.loads(JsonFormatter("portico-gateway").format(record))
    assert line["message"] == "POST /api/v1/users/{user_id} 201"
    assert {k: line[k] for k in ("method", "route", "status", "request_id", "client_ip", "user_id")} == {
        "method": "POST",
        "route": "/api/v1/users/{user_id}",
        "status": 201,
        "request_id": "req-7",
        "client_ip": "203.0.113.5",
        "user_id": "u1",
    }
    assert line["duration_ms"] >= 0
    assert len(line["trace_id"]) == 32
    text = json.dumps(line)
    for secret in (TOKEN, "hunter2", "secret body", "/api/v1/users/42"):
        assert secret not in text


async def test_a_request_the_dispatcher_did_not_see_derives_its_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "gateway.access")
    await _run(_app(200), 1.0, _scope(path="/health"))
    [record] = _lines(caplog)
    assert (record.route, record.client_ip, record.user_id) == ("/health", "203.0.113.5", "")  # type: ignore[attr-defined]
    caplog.clear()
    await _run(_app(200), 1.0, _scope(path="/nowhere", state={"trusted_proxies": ()}))
    [record] = _lines(caplog)
    assert (record.route, record.client_ip) == ("unmatched", "10.0.0.9")  # type: ignore[attr-defined]


async def test_sampling_drops_successes_but_never_a_server_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.access")
    for status in (200, 404, 503, 500):
        await _run(_app(status), 0.0)
    assert [r.status for r in _lines(caplog)] == [503, 500]  # type: ignore[attr-defined]


def test_the_ratio_is_a_probability() -> None:
    half = AccessLog(0.5)
    drawn = sum(half.sampled(200) for _ in range(4000))
    assert 1700 < drawn < 2300
    assert all(AccessLog(1.0).sampled(200) for _ in range(100))


async def test_nothing_is_written_below_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "gateway.access")
    await _run(_app(500), 1.0)
    assert _lines(caplog) == []
