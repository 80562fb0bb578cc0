"""Metric families created once per Prometheus registry.

A family may be registered only once per registry, yet several objects of a process (two relays, two
consumers) and many tests (one registry each) need the same families: :func:`per_registry` turns a
function that builds them into one that builds them at most once per registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry

T = TypeVar("T")


def per_registry(build: Callable[[CollectorRegistry], T]) -> Callable[[CollectorRegistry], T]:
    """``build(registry)`` the first time for each registry; the same result afterwards."""
    built: WeakKeyDictionary[CollectorRegistry, T] = WeakKeyDictionary()

    def families(registry: CollectorRegistry) -> T:
        if registry not in built:
            built[registry] = build(registry)
        return built[registry]

    return families
