"""The readiness policy: unready only for what the process cannot serve without, degraded otherwise,
with each dependency's state since its last change."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from meshkit.readiness import Impact, Readiness


def test_only_an_unready_dependency_makes_the_process_unready() -> None:
    now = [1_700_000_000.0]
    registry = CollectorRegistry()
    readiness = Readiness(
        "users",
        {"database": Impact.UNREADY, "kafka": Impact.DEGRADED, "redis": Impact.DEGRADED},
        registry,
        clock=lambda: now[0],
    )
    readiness.record({"database": True, "kafka": True, "redis": True})
    assert readiness.unready_for == ()
    assert readiness.degraded_by == ()

    now[0] += 30
    readiness.record({"database": True, "kafka": False, "redis": False})
    assert readiness.unready_for == ()
    assert readiness.degraded_by == ("kafka", "redis")
    report = readiness.report()
    assert report["kafka"] == {"status": "degraded", "since": "2023-11-14T22:13:50Z"}
    assert report["database"] == {"status": "ok", "since": "2023-11-14T22:13:20Z"}

    now[0] += 10  # still down: "since" stays at the change
    readiness.record({"database": False, "kafka": False, "redis": False})
    assert readiness.unready_for == ("database",)
    assert readiness.report()["kafka"]["since"] == "2023-11-14T22:13:50Z"
    assert readiness.report()["database"] == {"status": "down", "since": "2023-11-14T22:14:00Z"}
    labels = {"process": "users", "dependency": "database", "impact": "unready"}
    assert registry.get_sample_value("portico_dependency_up", labels) == 0


def test_a_dependency_the_policy_does_not_name_is_strict() -> None:
    readiness = Readiness("posts", {})
    readiness.record({"something": False})
    assert readiness.unready_for == ("something",)
