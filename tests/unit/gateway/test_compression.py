"""Compression of JSON answers: the coding a client's Accept-Encoding picks, which answers qualify, and
the bytes and headers on the outermost layer."""

from __future__ import annotations

import gzip

import brotli
import pytest
from opentelemetry.sdk.trace import TracerProvider
from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from gateway.compression import Compression, choose_coding
from gateway.request_edge import RequestEdgeMiddleware

BIG = b'{"data": "' + b"x" * 2000 + b'"}'


@pytest.mark.parametrize(
    ("header", "coding"),
    [
        ("", None),
        ("identity", None),
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("GZip, deflate", "gzip"),
        ("br", "br"),
        ("gzip, deflate, br, zstd", "br"),  # a tie: br
        ("br;q=0.5, gzip", "gzip"),  # the client prefers gzip
        ("br;q=0.9, gzip;q=0.8", "br"),
        ("gzip;q=0, br;q=0", None),
        ("*", "br"),
        ("*;q=0.5, gzip", "gzip"),
        ("*, br;q=0", "gzip"),
        ("gzip;q=abc", None),
        ("deflate", None),
    ],
)
def test_the_coding_follows_the_q_values(header: str, coding: str | None) -> None:
    assert choose_coding(header) == coding


def _start(
    status: int = 200, media: str = "application/json", length: int = len(BIG), **extra: str
) -> Message:
    headers = [(b"content-type", media.encode()), (b"content-length", str(length).encode())]
    headers += [(k.replace("_", "-").encode(), v.encode()) for k, v in extra.items()]
    return {"type": "http.response.start", "status": status, "headers": headers}


def _scope(method: str = "GET", accept: str = "gzip") -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": "/x",
        "headers": [(b"accept-encoding", accept.encode())],
    }


@pytest.mark.parametrize(
    ("start", "method", "coding", "varies"),
    [
        (_start(), "GET", "gzip", True),
        (_start(media="application/json; charset=utf-8"), "GET", "gzip", True),
        (_start(), "HEAD", None, True),  # no body to compress; the same Vary as its GET
        (_start(length=1023), "GET", None, False),
        (_start(status=304), "GET", None, False),
        (_start(status=204), "GET", None, False),
        (_start(media="image/png"), "GET", None, False),
        (_start(media="text/event-stream"), "GET", None, False),
        (_start(media="application/x-ndjson"), "GET", None, False),
        (_start(content_encoding="br"), "GET", None, False),
    ],
)
def test_which_answers_are_compressed(start: Message, method: str, coding: str | None, varies: bool) -> None:
    headers = MutableHeaders(scope=start)
    assert Compression(1024).coding_for(_scope(method), start, headers) == coding
    assert ("accept-encoding" in headers.get("vary", "").lower()) is varies


def test_vary_is_added_to_an_existing_one() -> None:
    start = _start(vary="Origin")
    headers = MutableHeaders(scope=start)
    Compression(1024).coding_for(_scope(), start, headers)
    assert headers["vary"] == "Origin, Accept-Encoding"


@pytest.mark.parametrize(("coding", "decode"), [("gzip", gzip.decompress), ("br", brotli.decompress)])
def test_encode_rewrites_the_length_and_reuses_the_last_body(coding: str, decode: object) -> None:
    compression = Compression(1024)
    start = _start()
    body = compression.encode(start, {"type": "http.response.body", "body": BIG}, coding)
    assert decode(body["body"]) == BIG  # type: ignore[operator]
    headers = MutableHeaders(scope=start)
    assert headers["content-encoding"] == coding
    assert headers["content-length"] == str(len(body["body"])) != str(len(BIG))
    again = compression.encode(_start(), {"type": "http.response.body", "body": BIG}, coding)
    assert again["body"] is body["body"]


def test_a_body_in_parts_is_sent_as_it_is() -> None:
    part = {"type": "http.response.body", "body": BIG, "more_body": True}
    assert Compression(1024).encode(_start(), part, "gzip") is part


async def _through_edge(body: bytes, accept: str, media: str = "application/json") -> list[Message]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(_start(media=media, length=len(body)))
        await send({"type": "http.response.body", "body": body})

    edge = RequestEdgeMiddleware(app, TracerProvider(), compression=Compression(1024))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await edge({**_scope(accept=accept), "state": {}}, receive, send)
    return sent


async def test_the_edge_sends_the_compressed_answer_with_its_request_id() -> None:
    start, body = await _through_edge(BIG, "gzip")
    headers = MutableHeaders(scope=start)
    assert (headers["content-encoding"], headers["vary"]) == ("gzip", "Accept-Encoding")
    assert "x-request-id" in headers
    assert gzip.decompress(body["body"]) == BIG
    start, body = await _through_edge(BIG, "")
    assert "content-encoding" not in MutableHeaders(scope=start)
    assert body["body"] == BIG
    start, body = await _through_edge(BIG, "br", media="image/png")
    assert body["body"] == BIG


def test_without_brotli_only_gzip_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.compression._OFFERED", ("gzip",))
    assert choose_coding("br") is None
    assert choose_coding("gzip, deflate, br") == "gzip"
