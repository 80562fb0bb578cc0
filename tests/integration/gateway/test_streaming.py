"""The gateway's non-unary paths for real: uvicorn serving the app on a free port, a real Redis for the
limits, the test JWKS issuer, and the purpose-built posts/broker upstream of harness/."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.config import GatewaySettings
from harness.servers.upstreams import FakeUpstreams, start_fake_upstreams
from harness.tokens import TokenIssuer
from infra.local import free_port
from meshkit.auth.revocation import revoke_jti

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
MIB = 1024 * 1024


@dataclass
class Running:
    url: str
    upstream: FakeUpstreams
    token: str
    metrics: Any

    def auth(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


async def run_gateway(
    issuer: TokenIssuer, redis_url: str, tracer_provider: TracerProvider | None = None, **overrides: Any
) -> AsyncIterator[Running]:
    upstream = await start_fake_upstreams()
    port = free_port()
    settings = GatewaySettings(
        port=port,
        users_target=issuer.target,  # answers no reflection: the descriptor set's table stays in force
        auth_target=issuer.target,
        posts_target=upstream.target,
        broker_target=upstream.target,
        redis_url=redis_url,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        routes_refresh_seconds=3600,
        **{
            "rate_limit_per_ip": "100000/minute",
            "rate_limit_per_user": "100000/hour",
            "stream_keepalive_seconds": 0.3,
            "retry_backoff_ms": 5.0,
            **overrides,
        },
    )
    app = create_app(settings, tracer_provider=tracer_provider)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, ws="none")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.025)
        assert server.started, "the gateway did not start"
        yield Running(f"http://127.0.0.1:{port}", upstream, issuer.token("u-1"), app.state)
    finally:
        server.should_exit = True
        await serving
        await upstream.server.stop(grace=None)


@pytest.fixture
async def gw(issuer: TokenIssuer, redis_url: str) -> AsyncIterator[Running]:
    async for running in run_gateway(issuer, redis_url):
        yield running


async def metric(gw: Running, name: str) -> float:
    async with httpx.AsyncClient(base_url=gw.url) as client:
        text = (await client.get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def wait_for(check: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- uploads


async def test_multipart_create_binds_fields_and_the_file(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as client:
        answer = await client.post(
            "/api/v1/posts",
            data={"title": "Hello", "content": "With a picture"},
            files={"image": ("cat.png", PNG, "image/png")},
            headers=gw.auth(),
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["data"]["title"] == "Hello"
    received = gw.upstream.record.created[-1]
    assert (received.title, received.content, received.image, received.image_content_type) == (
        "Hello",
        "With a picture",
        PNG,
        "image/png",
    )
    assert "x-ratelimit-remaining" in answer.headers
    assert gw.upstream.record.metadata[-1]["authorization"] == f"Bearer {gw.token}"


async def test_the_backend_call_is_a_child_of_the_gateway_span(issuer: TokenIssuer, redis_url: str) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async for gw in run_gateway(issuer, redis_url, tracer_provider=provider):
        async with httpx.AsyncClient(base_url=gw.url) as client:
            answer = await client.post(
                "/api/v1/posts",
                json={"title": "Traced", "content": "one tree"},
                headers=gw.auth(traceparent=f"00-{trace_id}-00f067aa0ba902b7-01"),
            )
        assert answer.status_code == 201, answer.text
        sent = gw.upstream.record.metadata[-1]["traceparent"].split("-")
    (server,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.context is not None
    assert server.parent is not None
    assert server.parent.span_id == int("00f067aa0ba902b7", 16)  # the caller's span
    # The backend is told: same trace, and the gateway's span (not the caller's) as its parent.
    assert sent[1] == trace_id == format(server.context.trace_id, "032x")
    assert sent[2] == format(server.context.span_id, "016x")


async def test_json_body_still_works_on_an_upload_route(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as client:
        answer = await client.post(
            "/api/v1/posts", json={"title": "Plain", "content": "no image"}, headers=gw.auth()
        )
    assert answer.status_code == 201, answer.text
    assert gw.upstream.record.created[-1].image == b""


async def test_multipart_update_with_path_and_typed_optional_fields(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as client:
        # What a browser sends for a form whose file input was left empty.
        body = (
            b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nNew\r\n'
            b'--b\r\nContent-Disposition: form-data; name="image"; filename=""\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n\r\n--b--\r\n"
        )
        answer = await client.put(
            "/api/v1/posts/p-9",
            content=body,
            headers=gw.auth(**{"Content-Type": "multipart/form-data; boundary=b"}),
        )
    assert answer.status_code == 200, answer.text
    received = gw.upstream.record.updated[-1]
    assert received.post_id == "p-9"
    assert received.HasField("title")
    assert not received.HasField("content")
    assert received.image == b""  # an empty file input means "keep the image"


@pytest.mark.parametrize(
    ("data", "files", "status", "field"),
    [
        ({"title": "x", "colour": "red"}, {"image": ("a.png", PNG, "image/png")}, 400, "colour"),
        ({"title": "x"}, {"image": ("a.txt", b"hello", "text/plain")}, 415, None),
        ({"title": "x"}, {"image": ("a.png", b"MZ not an image", "image/png")}, 415, None),
        ({"title": "x"}, {"content": ("c.txt", b"text", "text/plain")}, 400, "content"),
        ({"title": "x"}, {"image": (None, "not a file")}, 400, "image"),
        ({"title": "x"}, {"other": ("o.png", PNG, "image/png")}, 400, "other"),
    ],
)
async def test_multipart_refusals_use_the_envelope(
    gw: Running, data: dict[str, str], files: dict[str, Any], status: int, field: str | None
) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as client:
        answer = await client.post("/api/v1/posts", data=data, files=files, headers=gw.auth())
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["status_code"] == status
    assert error["request_id"]
    if field is not None:
        assert field in [d["field"] for d in error.get("details", [])], error
    assert gw.upstream.record.created == []


async def test_two_files_for_one_field_is_a_400(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url) as client:
        answer = await client.post(
            "/api/v1/posts",
            data={"title": "x"},
            files=[("image", ("a.png", PNG, "image/png")), ("image", ("b.png", PNG, "image/png"))],
            headers=gw.auth(),
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == [
        {"field": "image", "description": "only one file is accepted"}
    ]


async def test_a_50_mib_upload_is_refused_after_about_the_limit(gw: Running) -> None:
    """The 413 arrives while the client is still sending: the gateway stopped reading near 5 MiB."""
    boundary = "portico-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nbig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    total = len(head) + 50 * MIB
    reader, writer = await asyncio.open_connection("127.0.0.1", int(gw.url.rsplit(":", 1)[1]))
    writer.write(
        (
            f"POST /api/v1/posts HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {gw.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {total}\r\n\r\n"
        ).encode()
        + head
        + PNG
    )
    sent = len(head) + len(PNG)
    answer = asyncio.ensure_future(reader.read(65536))
    chunk = b"\0" * (256 * 1024)
    try:
        while not answer.done() and sent < total:
            writer.write(chunk)
            sent += len(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 1)
            except (ConnectionError, TimeoutError):
                break
        status = (await asyncio.wait_for(answer, 5)).split(b" ", 2)[1]
    finally:
        writer.close()
    assert status == b"413"
    print(f"413 after the client sent {sent / MIB:.1f} MiB of 50")
    # The limit plus what the sockets' buffers took before the refusal reached the client.
    assert sent < 20 * MIB, f"{sent / MIB:.1f} MiB sent before the 413"
    assert gw.upstream.record.created == []


# ---------------------------------------------------------------- streams


async def read_items(response: httpx.Response, count: int) -> list[str]:
    """The first ``count`` SSE events (blocks separated by a blank line), comments included."""
    items: list[str] = []
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer and len(items) < count:
            block, buffer = buffer.split("\n\n", 1)
            items.append(block)
        if len(items) >= count:
            break
    return items


async def test_sse_stream_events_keepalive_and_disconnect_cancels(gw: Running) -> None:
    record = gw.upstream.record
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10) as client,
        client.stream(
            "GET", "/api/v1/topics/news/messages?from=earliest", headers=gw.auth(Accept="text/event-stream")
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        assert "x-ratelimit-limit" in response.headers
        events = await read_items(response, 4)
        assert record.active_streams == 1
    first = events[0].splitlines()
    assert first[0] == "id: 0:0"
    data = json.loads(first[1].removeprefix("data: "))
    assert data == {
        "topic": "news",
        "partition": 0,
        "offset": "0",
        "key": "k0",
        "message": "earliest #0",
        "timestamp": "2023-11-14T22:13:20Z",
        "cursor": "0:0",
    }
    assert [e.splitlines()[0] for e in events[:3]] == ["id: 0:0", "id: 0:1", "id: 0:2"]
    assert events[3] == ": keep-alive"
    await wait_for(lambda: record.active_streams == 0)
    assert record.cancelled_streams == 1


async def test_ndjson_by_accept(gw: Running) -> None:
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10) as client,
        client.stream(
            "GET", "/api/v1/topics/news/messages", headers=gw.auth(Accept="application/x-ndjson")
        ) as response,
    ):
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = []
        async for line in response.aiter_lines():
            lines.append(json.loads(line))
            if len(lines) == 3:
                break
    assert [item["offset"] for item in lines] == ["0", "1", "2"]
    await wait_for(lambda: gw.upstream.record.active_streams == 0)


async def test_last_event_id_reaches_the_backend_and_wins_over_from(gw: Running) -> None:
    """A reconnecting EventSource resends its first URL (`from=earliest`) with `Last-Event-ID`."""
    headers = gw.auth(Accept="text/event-stream", **{"Last-Event-ID": "0:1,1:5"})
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10) as client,
        client.stream("GET", "/api/v1/topics/news/messages?from=earliest", headers=headers) as response,
    ):
        assert response.status_code == 200
        (event,) = await read_items(response, 1)
    assert json.loads(event.splitlines()[1].removeprefix("data: "))["message"] == "0:1,1:5 #0"
    await wait_for(lambda: gw.upstream.record.active_streams == 0)


async def test_a_quiet_stream_opens_with_headers_and_keepalives_and_is_cancelled(gw: Running) -> None:
    started = time.monotonic()
    async with (
        httpx.AsyncClient(base_url=gw.url, timeout=10) as client,
        client.stream("GET", "/api/v1/topics/quiet/messages", headers=gw.auth()) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")  # the default
        assert time.monotonic() - started < 1.5  # the backend's initial metadata opened it
        assert await read_items(response, 2) == [": keep-alive", ": keep-alive"]
    await wait_for(lambda: gw.upstream.record.active_streams == 0)
    assert gw.upstream.record.cancelled_streams == 1


@pytest.mark.parametrize(
    ("topic", "status", "code"), [("invalid", 400, "BAD_REQUEST"), ("down", 503, "UNAVAILABLE")]
)
async def test_errors_before_the_first_message_are_plain_responses(
    gw: Running, topic: str, status: int, code: str
) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        answer = await client.get(f"/api/v1/topics/{topic}/messages", headers=gw.auth())
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code


async def test_errors_after_the_start_end_the_stream_with_an_error_event(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        sse = await client.get("/api/v1/topics/breaks/messages", headers=gw.auth())
        ndjson = await client.get(
            "/api/v1/topics/breaks/messages", headers=gw.auth(Accept="application/x-ndjson")
        )
    blocks = sse.text.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["id: 0:0", "id: 0:1", "event: error"]
    envelope = json.loads(blocks[2].splitlines()[1].removeprefix("data: "))
    assert envelope["error"]["code"] == "UNAVAILABLE"
    assert envelope["error"]["status_code"] == 503
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert lines[-1]["error"]["code"] == "UNAVAILABLE"
    assert len(lines) == 3


async def test_streams_need_a_token_and_an_acceptable_type(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        anonymous = await client.get("/api/v1/topics/news/messages")
        json_only = await client.get(
            "/api/v1/topics/news/messages", headers=gw.auth(Accept="application/json")
        )
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "UNAUTHORIZED"
    assert json_only.status_code == 406
    assert json_only.json()["error"]["code"] == "NOT_ACCEPTABLE"
    assert gw.upstream.record.metadata == []  # neither reached the backend


# ---------------------------------------------------------------- retries


async def test_idempotent_reads_are_retried_on_unavailable(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        recovered = await client.get("/api/v1/posts/flaky-2", headers=gw.auth())
        down = await client.get("/api/v1/posts/down", headers=gw.auth())
    assert recovered.status_code == 200
    assert gw.upstream.record.calls["GetPost:flaky-2"] == 3
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "UNAVAILABLE"
    assert gw.upstream.record.calls["GetPost:down"] == 3  # the configured attempts, no more
    assert await metric(gw, 'portico_gateway_upstream_retries_total{backend="posts.v1.PostService"}') == 4


async def test_writes_are_never_retried(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        answer = await client.put("/api/v1/posts/flaky-1", json={"title": "t"}, headers=gw.auth())
    assert answer.status_code == 503
    assert gw.upstream.record.calls["UpdatePost:flaky-1"] == 1


# ---------------------------------------------------------------- unmatched routes and limits


async def test_unknown_paths_are_charged_and_limited(issuer: TokenIssuer, redis_url: str) -> None:
    # Its own Redis database: earlier tests charged the same client IP.
    own_db = redis_url.rsplit("/", 1)[0] + "/3"
    async for gw in run_gateway(issuer, own_db, rate_limit_per_ip="5/minute"):
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            answers = [await client.get(f"/wp-admin/{i}.php") for i in range(5)]
            answers.append(await client.delete("/api/v1/posts"))
    assert [a.status_code for a in answers] == [404, 404, 404, 404, 404, 429]
    for answer in answers:
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "ratelimit", "ratelimit-policy"} <= set(
            answer.headers
        )
    assert answers[0].headers["x-ratelimit-remaining"] == "4"
    assert answers[-1].json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"


async def test_method_not_allowed_carries_limit_headers(gw: Running) -> None:
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
        answer = await client.delete("/api/v1/posts")
    assert answer.status_code == 405
    assert "GET" in answer.headers["allow"]
    assert "x-ratelimit-remaining" in answer.headers


async def test_a_revoked_token_never_reaches_the_backend(gw: Running, redis_url: str) -> None:
    """A logged-out token is refused at the edge (and charged to the IP), before any backend call."""
    claims = jwt.decode(gw.token, options={"verify_signature": False})
    redis = Redis.from_url(redis_url)
    try:
        await revoke_jti(redis, claims["tenant_id"], claims["jti"], claims["exp"])
    finally:
        await redis.aclose()
    async with httpx.AsyncClient(base_url=gw.url) as client:
        answer = await client.post("/api/v1/posts", json={"title": "after logout"}, headers=gw.auth())
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "Token has been revoked"
    assert "x-ratelimit-remaining" in answer.headers
    assert gw.upstream.record.created == []
