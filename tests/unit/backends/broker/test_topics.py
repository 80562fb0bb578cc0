"""Public topic names and their tenant-scoped Kafka topics: injectivity, Kafka's own rules,
and Portico's event topics out of reach."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.broker.topics import (
    KAFKA_TOPIC_MAX,
    PACKED_PREFIX,
    READABLE_PREFIX,
    internal_topic,
    parse_internal,
)
from backends.channels import CHANNELS

ALPHABET = "abcXYZ019._-"
names = st.text(alphabet=ALPHABET, min_size=1, max_size=100)
tenants = st.text(alphabet=ALPHABET, min_size=1, max_size=100)
KAFKA_LEGAL = re.compile(r"[A-Za-z0-9._-]{1,249}")


def test_readable_form() -> None:
    assert internal_topic("acme", "orders") == "portico.t.acme.orders"
    assert internal_topic("ac-me", "or_ders.v1") == "portico.t.ac--me.or-uders-dv1"
    assert parse_internal("portico.t.ac--me.or-uders-dv1") == ("ac-me", "or_ders.v1")


def test_pairs_that_concatenate_alike_stay_apart() -> None:
    # The same characters split differently between tenant and name, and '.' against '_'.
    pairs = [("a.b", "c"), ("a", "b.c"), ("a_b", "c"), ("a", "b_c"), ("a-b", "c"), ("a", "b-c")]
    topics = {internal_topic(tenant, name) for tenant, name in pairs}
    assert len(topics) == len(pairs)
    assert len({topic.replace(".", "_") for topic in topics}) == len(pairs)


def test_the_longest_pairs_are_packed_within_kafkas_limit() -> None:
    worst = internal_topic("_" * 100, "." * 100)
    assert worst.startswith(PACKED_PREFIX)
    assert len(worst) <= KAFKA_TOPIC_MAX
    assert parse_internal(worst) == ("_" * 100, "." * 100)
    assert internal_topic("t" * 50, "n" * 100).startswith(READABLE_PREFIX)  # no escapes: readable


@settings(max_examples=500, deadline=None)
@given(tenants, names)
def test_every_pair_round_trips_to_one_legal_kafka_topic(tenant: str, name: str) -> None:
    topic = internal_topic(tenant, name)
    assert parse_internal(topic) == (tenant, name)  # injective: the pair is recovered
    assert KAFKA_LEGAL.fullmatch(topic)
    assert topic not in (".", "..")
    assert "_" not in topic  # so Kafka's '.'/'_' collision rule can never refuse one of them


@settings(max_examples=300, deadline=None)
@given(st.tuples(tenants, names), st.tuples(tenants, names))
def test_different_pairs_never_collide_even_with_dots_as_underscores(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    if first != second:
        one, two = internal_topic(*first), internal_topic(*second)
        assert one != two
        assert one.replace(".", "_") != two.replace(".", "_")


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: c.topic)
def test_event_topics_are_out_of_reach(channel: object) -> None:
    topic = channel.topic  # type: ignore[attr-defined]
    assert not topic.startswith((READABLE_PREFIX, PACKED_PREFIX))
    with pytest.raises(ValueError, match="not a tenant topic"):
        parse_internal(topic)
    # Its own name, as a public name, lands in the tenant's namespace.
    assert internal_topic("acme", topic) == "portico.t.acme." + topic.replace(".", "-d")


@settings(max_examples=300, deadline=None)
@given(tenants, names)
def test_no_pair_reaches_an_event_topic(tenant: str, name: str) -> None:
    assert internal_topic(tenant, name) not in {channel.topic for channel in CHANNELS}


@pytest.mark.parametrize(
    "topic",
    ["portico.t.acme", "portico.t.ac-me.x", "portico.t.a.b.c", "portico.x.!!", "portico.x.0", "other.acme.x"],
)
def test_foreign_topics_do_not_parse(topic: str) -> None:
    with pytest.raises(ValueError, match="not"):
        parse_internal(topic)


def test_packed_spelling_of_a_short_pair_is_not_accepted() -> None:
    # Each pair has exactly one topic: a packed form of a pair that fits readably is foreign.
    from backends.broker.topics import _pack

    with pytest.raises(ValueError, match="not a tenant topic"):
        parse_internal(PACKED_PREFIX + _pack("acme/orders"))


@pytest.mark.parametrize(("tenant", "name"), [("", "x"), ("a/b", "x"), ("acme", ""), ("acme", "a b")])
def test_invalid_input_is_refused(tenant: str, name: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        internal_topic(tenant, name)
