"""Labelled metric children kept by label values: the same child each time, every count lands in the
family, and past the bound the values are still counted (asked of ``labels()`` each time)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from gateway.metrics import Children


def test_children_are_kept_and_counted_past_the_bound() -> None:
    registry = CollectorRegistry()
    counter = Counter("calls", "", ["route", "status"], registry=registry)
    children = Children(counter, size=2)
    assert children("/a", "200") is children("/a", "200")
    for route in ("/a", "/b", "/c", "/c"):
        children(route, "200").inc()
    assert len(children._children) == 2  # "/c" came past the bound: not kept, still counted
    for route, expected in (("/a", 1.0), ("/b", 1.0), ("/c", 2.0)):
        assert registry.get_sample_value("calls_total", {"route": route, "status": "200"}) == expected
