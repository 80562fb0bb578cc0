"""A short soak of the real gateway: a steady mixed load (``bench.soak_load``), its RSS flat after the
warm-up.

A mesh of our own (the four backends and a gateway on free ports, the session's Kafka, Redis and
PostgreSQL). The route table is refreshed every ``REFRESH`` seconds instead of every 30 s, so memory
kept per refresh (a replaced table that stays alive) shows within the run, as do per-request leaks
(the load varies client IPs, paths, query strings, request ids and tokens). The verdict compares the
median RSS of the first and last thirds of the samples after the warm-up (``bench.rss.plateau``):
robust to the allocator's steps and to a busy machine, which slow the gateway but do not make it grow.
The 30-minute figure comes from ``python -m bench.soak --minutes 30 --rps 50``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from bench.soak import soak
from bench.soak_load import SOAK_ENV, register
from harness.infra import InfraEnv
from harness.mesh import Mesh, start_mesh

SECONDS = 150
WARMUP = 50  # imports finished, caches and connection pools filled
RPS = 30
SAMPLE_SECONDS = 2
REFRESH = 2  # seconds between route-table refreshes (the gateway's default is 30)
MAX_SERVER_ERROR_RATE = 0.02  # 5xx answers (a backend deadline on a very busy machine may give a few)
MIN_ANSWERED = 0.5  # of the requests offered: below that, the load was not applied and RSS means little


@pytest.fixture(scope="module")
def own_mesh(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    env = {**infra.env(), **SOAK_ENV, "PORTICO_GATEWAY_ROUTES_REFRESH_SECONDS": str(REFRESH)}
    mesh = start_mesh(env, tmp_path_factory.mktemp("soak-mesh"))
    yield mesh
    mesh.stop()


def test_gateway_memory_levels_off_under_a_steady_mixed_load(
    own_mesh: Mesh, record_property: Callable[[str, object], None]
) -> None:
    url = own_mesh.gateway_url
    account = register(url)
    result = asyncio.run(
        soak(
            url,
            own_mesh.procs["gateway"].popen.pid,
            account,
            rps=RPS,
            seconds=SECONDS,
            sample_seconds=SAMPLE_SECONDS,
            report_seconds=SECONDS / 5,
            warmup=WARMUP,
        )
    )
    verdict = result.verdict
    statuses: Counter[str] = Counter()
    for row in result.rows:
        statuses.update(row.statuses)
    server_errors = sum(n for status, n in statuses.items() if status.startswith("5"))
    answered = result.requests - statuses["error"]
    figures = {
        "seconds": SECONDS,
        "rps_offered": RPS,
        "requests": result.requests,
        "answered": answered,
        "server_errors": server_errors,
        "transport_errors": statuses["error"],
        "rss_start_mib": round(result.samples[0][1] / 2**20, 1),
        "rss_first_third_mib": round(verdict.first_mib, 1),
        "rss_last_third_mib": round(verdict.last_mib, 1),
        "growth_mib": round(verdict.growth_mib, 2),
        "bound_mib": round(verdict.bound_mib, 2),
        "slope_mib_per_h": round(verdict.slope_mib_per_hour, 1),
    }
    print("FAULT soak: " + " ".join(f"{key}={value}" for key, value in figures.items()))
    for key, value in figures.items():
        record_property(key, value)

    # Timeouts of a starved machine count against neither: the load must have been applied, though,
    # and what the gateway answered must not be its own failures.
    assert answered >= RPS * SECONDS * MIN_ANSWERED, statuses
    assert server_errors <= answered * MAX_SERVER_ERROR_RATE, statuses
    assert verdict.flat, verdict.describe()
