"""The capacity model's arithmetic: the mix's proportions, cores per rate, and what saturates first."""

from __future__ import annotations

from collections import Counter

from bench.capacity import (
    MIX,
    PRIMARY_CORES,
    RATES,
    UTILISATION,
    Measured,
    first_to_saturate,
    format_tables,
    plan,
)


def test_the_schedule_keeps_the_mix_proportions() -> None:
    from bench.capacity import schedule

    counts = Counter(schedule(100_000))
    for kind, share in MIX:
        assert abs(counts[kind] / 100_000 - share / 1000) < 0.01, kind
    assert schedule(50) == schedule(50)  # reproducible


def test_cores_are_rate_times_cpu_over_the_planned_utilisation() -> None:
    rows = plan(Measured(requests=1000, seconds=1.0, cpu_us={"gateway": 600.0, "redis": 30.0}))
    gateway = next(r for r in rows if r.component == "gateway")
    assert gateway.cores[1_000] == 1_000 * 600e-6 / UTILISATION  # 1 core at 60 %
    assert gateway.cores[100_000] == 100 * gateway.cores[1_000]


def test_the_primary_saturates_first_when_its_writes_outgrow_one_machine() -> None:
    heavy = PRIMARY_CORES * UTILISATION / RATES[-1] * 1e6 * 2  # twice the cores a primary gets
    rows = plan(Measured(1000, 1.0, {"gateway": 900.0, "postgres": heavy}))
    assert first_to_saturate(rows).startswith("PostgreSQL")
    light = plan(Measured(1000, 1.0, {"gateway": 900.0, "postgres": 10.0}))
    assert first_to_saturate(light).startswith("gateway")


def test_the_table_rounds_python_replicas_up_and_sums_cores() -> None:
    cpu = {"gateway": 900.0, "auth": 300.0, "redis": 60.0}
    text = format_tables(Measured(1000, 2.0, cpu, {"gateway": 0.02, "auth": 0.01, "redis": 0.0}), 16)
    assert "| gateway | 0.02 | 900 | 1.5 | 15.0 | 150.0 | 2 / 15 / 150 |" in text
    assert "| redis | 0.00 | 60 | 0.1 | 1.0 | 10.0 | — |" in text
    assert "| **all** | **0.03** | **1260** |" in text
    assert "500 req/s" in text
