"""Stream format negotiation and the SSE/NDJSON framing, without a server."""

from __future__ import annotations

import json

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.streaming import KEEP_ALIVE, NDJSON, SSE, Framing, ndjson_line, negotiate, resume, sse_event
from stubs.broker.v1 import broker_pb2


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, SSE),
        ("", SSE),
        ("*/*", SSE),
        ("text/event-stream", SSE),
        ("application/x-ndjson", NDJSON),
        ("application/x-ndjson, */*;q=0.1", NDJSON),
        ("text/event-stream;q=0.5, application/x-ndjson", NDJSON),
        ("application/*", NDJSON),
        ("text/*, application/x-ndjson;q=0.9", SSE),
        ("text/event-stream;q=0, */*", NDJSON),
        ("application/json", None),
        ("text/html, application/json;q=0.9", None),
        ("*/*;q=0", None),
        ("text/event-stream;q=bogus", None),
    ],
)
def test_negotiate(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


def test_sse_event_lines() -> None:
    assert sse_event({"a": "x\ny"}, event_id="7") == b'id: 7\ndata: {"a":"x\\ny"}\n\n'
    assert sse_event({"e": 1}, event="error") == b'event: error\ndata: {"e":1}\n\n'
    # An id can never break the framing.
    assert sse_event({}, event_id="1\r\n2\0") == b"id: 12\ndata: {}\n\n"
    assert KEEP_ALIVE == b": keep-alive\n\n"


def test_ndjson_line_is_one_compact_line() -> None:
    assert ndjson_line({"m": "é\nx"}) == '{"m":"é\\nx"}\n'.encode()


def _message() -> broker_pb2.SubscribeToTopicResponse:
    stamp = Timestamp()
    stamp.FromSeconds(1_705_314_600)
    return broker_pb2.SubscribeToTopicResponse(
        topic="t", partition=1, offset=42, key="", message="hi", timestamp=stamp, cursor="0:-1,1:42"
    )


def test_framing_an_sse_item_uses_the_id_field_and_proto_names() -> None:
    frame = Framing(SSE, "cursor").item(_message()).decode()
    id_line, data_line, *_ = frame.split("\n")
    assert id_line == "id: 0:-1,1:42"
    assert json.loads(data_line.removeprefix("data: ")) == {
        "topic": "t",
        "partition": 1,
        "offset": "42",
        "key": "",
        "message": "hi",
        "timestamp": "2024-01-15T10:30:00Z",
        "cursor": "0:-1,1:42",
    }
    assert frame.endswith("\n\n")
    assert Framing(SSE).item(_message()).startswith(b"data: ")  # no id field: no id line


def test_framing_ndjson_items_and_errors() -> None:
    ndjson = Framing(NDJSON, "cursor")
    assert json.loads(ndjson.item(_message()))["cursor"] == "0:-1,1:42"
    envelope = {"error": {"code": "UNAVAILABLE", "status_code": 503}}
    assert json.loads(ndjson.error(envelope)) == envelope
    assert ndjson.keep_alive == b""
    assert Framing(SSE).error(envelope).startswith(b"event: error\ndata: ")
    assert Framing(SSE).keep_alive == KEEP_ALIVE


def test_last_event_id_goes_into_the_request_field_of_that_name() -> None:
    request = broker_pb2.SubscribeToTopicRequest(topic="t", **{"from": "latest"})
    resume(request, "0:41,1:17")
    assert (request.last_event_id, getattr(request, "from")) == ("0:41,1:17", "latest")
    untouched = broker_pb2.SubscribeToTopicRequest(topic="t")
    resume(untouched, None)
    resume(untouched, "")
    assert untouched.last_event_id == ""
    # A stream whose request has no such field ignores the header.
    other = broker_pb2.PublishMessageRequest(topic="t")
    resume(other, "0:1")
    assert other == broker_pb2.PublishMessageRequest(topic="t")
