"""The validation rules of broker.v1's requests (broker.proto), run by the real validator."""

from __future__ import annotations

import pytest

from backends.broker import cursor
from meshkit.rpc.interceptors.validation import request_violations
from stubs.broker.v1 import broker_pb2

TOPIC_RULE = "must be 1 to 100 characters: letters, digits, '.', '_' or '-'"


@pytest.mark.parametrize(
    "name", ["a", "orders", "Orders.v1", "a_b-c.d", "x" * 100, "...", "-", "portico.users.v1"]
)
def test_valid_topic_names(name: str) -> None:
    assert request_violations(broker_pb2.PublishMessageRequest(topic=name, message="hi")) == []
    assert request_violations(broker_pb2.SubscribeToTopicRequest(topic=name)) == []


@pytest.mark.parametrize("name", ["", "x" * 101, "a b", "a/b", "ünï", "a:b", "a\nb", "#", "a*"])
def test_invalid_topic_names_are_reported_on_the_field(name: str) -> None:
    assert dict(request_violations(broker_pb2.PublishMessageRequest(topic=name, message="hi"))) == {
        "topic": TOPIC_RULE
    }
    assert dict(request_violations(broker_pb2.SubscribeToTopicRequest(topic=name))) == {"topic": TOPIC_RULE}


def test_a_message_is_required() -> None:
    problems = dict(request_violations(broker_pb2.PublishMessageRequest(topic="t")))
    assert problems == {"message": "is required"}


@pytest.mark.parametrize("start", ["", "latest", "earliest", "0:41,1:17,2:-1", "LATEST", "0"])
def test_from_is_left_to_the_broker_which_parses_cursors(start: str) -> None:
    # `from` takes a cursor too, which only the broker's parser can judge (it names the problem).
    request = broker_pb2.SubscribeToTopicRequest(topic="t", last_event_id=start, **{"from": start})
    assert request_violations(request) == []
    if start not in ("", "latest", "earliest", "0:41,1:17,2:-1"):
        with pytest.raises(cursor.CursorError):
            cursor.parse(start)
