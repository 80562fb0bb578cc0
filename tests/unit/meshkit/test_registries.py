"""Metric families are built once per registry, however many objects ask for them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from meshkit.registries import per_registry

built: list[CollectorRegistry] = []


@per_registry
def families(registry: CollectorRegistry) -> Counter:
    built.append(registry)
    return Counter("portico_test_things_total", "Things.", registry=registry)


def test_one_build_per_registry() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    assert families(first) is families(first)  # a second registration would raise a ValueError
    assert families(second) is not families(first)
    assert built == [first, second]
