"""Portico's gateway read against the Go grpc-gateway peer: the ratios, the Markdown the benchmark writes
into docs/benchmarks.md, the check that both gateways answer the same user, and the option parsing.
No timing is asserted: the rows are made up."""

from __future__ import annotations

import argparse
import json

import pytest

from bench.docs_section import markers, replace_section
from bench.gateway_compare import (
    DIRECT,
    PEER,
    Idle,
    Row,
    added_table,
    baseline,
    before_after_table,
    compare,
    comparison_table,
    idle_table,
    portico,
    rows_table,
    verdict,
)
from bench.gateway_users import check_same_user, concurrency_list
from bench.ghz import BenchError
from bench.go_peer import source_digest

LOADS = ["c=1", "c=16", "c=64"]


def row(
    name: str, load: str, rps: float, p50: float, p99: float, gateway_cpu: float | None, users: float
) -> Row:
    return Row(name, load, int(rps * 10), rps, p50, p99, gateway_cpu, users)


ROWS = [
    row(DIRECT, "c=1", 700.0, 1.25, 3.0, None, 900.0),
    row(portico("uvicorn"), "c=1", 400.0, 2.05, 5.5, 960.0, 950.0),
    row(PEER, "c=1", 600.0, 1.5, 3.5, 320.0, 905.0),
    row(DIRECT, "c=16", 1400.0, 10.0, 18.0, None, 880.0),
    row(portico("uvicorn"), "c=16", 1100.0, 13.0, 60.0, 650.0, 930.0),
    row(PEER, "c=16", 1375.0, 11.0, 20.0, 200.0, 890.0),
]


def test_portico_over_the_peer_per_load() -> None:
    c = compare(ROWS, "uvicorn", LOADS)
    assert c.portico_cpu_us == [960.0, 650.0, None]  # no c=64 rows: unknown, not zero
    assert c.cpu_ratio == pytest.approx([3.0, 3.25, None])
    assert c.rps_ratio == pytest.approx([400 / 600, 0.8, None])
    assert c.users_cpu_us[1] == (880.0, 930.0, 890.0)
    p50, p99 = c.added_c1_ms[portico("uvicorn")]
    assert (p50, p99) == pytest.approx((0.8, 2.5))
    assert c.added_c1_ms[PEER] == pytest.approx((0.25, 0.5))
    assert not c.goal_met()


def test_the_cpu_goal_needs_every_measured_load_within_one_and_a_half() -> None:
    within = [
        r if r.name != PEER else row(r.name, r.load, r.rps, 1, 1, (r.gateway_cpu_us or 0) * 3, 1)
        for r in ROWS
    ]
    assert compare(within, "uvicorn", LOADS).goal_met()  # 960/960 and 650/600
    assert not compare([r for r in ROWS if r.name != PEER], "uvicorn", LOADS).goal_met()  # no peer: unknown


def test_markdown_tables() -> None:
    c = compare(ROWS, "uvicorn", LOADS)
    table = comparison_table(c)
    assert table.splitlines()[0] == "| Portico (uvicorn) against the peer | c=1 | c=16 | c=64 |"
    assert "| **CPU per request, Portico / peer** (goal ≤ 1.5x) | **3.00x** | **3.25x** | **-** |" in table
    assert "| users backend CPU-µs/req: direct / via Portico / via peer | 900 / 950 / 905 |" in table
    assert "| Portico gateway, uvicorn (wrk) | +0.80 ms | +2.50 ms |" in added_table(c)
    assert "| Go grpc-gateway peer (wrk) | c=16 | 13750 | 1375 | 11.00 | 20.00 | 200 | 890 |" in rows_table(
        ROWS
    )
    assert "| GetUser direct (ghz) | c=1 | 7000 | 700 | 1.25 | 3.00 | - | 900 |" in rows_table(ROWS)
    assert "| Go grpc-gateway peer | 12.5 MiB |" in idle_table(
        [Idle("Go grpc-gateway peer", 12 * 2**20 + 2**19)]
    )
    assert verdict(c).startswith(
        "Portico (uvicorn) gateway CPU per request ≤ 1.5x the peer's: NOT met (3.00x at c=1"
    )


def test_the_docs_section_is_replaced_whole_and_the_rest_kept() -> None:
    begin, end = markers("bench.x")
    text = f"# Benchmarks\n\nbefore\n\n{begin}\nold figures\n{end}\n\nafter\n"
    once = replace_section(text, "bench.x", "new figures\n")
    assert once == f"# Benchmarks\n\nbefore\n\n{begin}\nnew figures\n{end}\n\nafter\n"
    assert replace_section(once, "bench.x", "new figures") == once


def test_a_file_without_the_section_gets_it_appended() -> None:
    begin, end = markers("bench.x")
    assert (
        replace_section("# Benchmarks\n", "bench.x", "figures")
        == f"# Benchmarks\n\n{begin}\nfigures\n{end}\n"
    )


def test_a_begin_marker_without_its_end_is_refused() -> None:
    begin, _ = markers("bench.x")
    with pytest.raises(ValueError, match="without"):
        replace_section(f"{begin}\nfigures, then the file was cut\n", "bench.x", "new")


USER = {"id": "u-1", "tenant_id": "t", "username": "zoe", "roles": ["user"], "avatar_url": ""}


def test_both_gateways_must_answer_the_same_user() -> None:
    portico_body = json.dumps({"data": USER}, separators=(",", ":")).encode()
    peer_body = json.dumps(
        {"data": dict(reversed(USER.items()))}, indent=1
    ).encode()  # other bytes, same JSON
    check_same_user({"portico": portico_body, "peer": peer_body}, "u-1")
    with pytest.raises(BenchError, match="different JSON"):
        check_same_user(
            {"portico": portico_body, "peer": json.dumps({"data": {**USER, "roles": []}}).encode()}, "u-1"
        )
    with pytest.raises(BenchError, match="another user"):
        check_same_user({"portico": portico_body}, "u-2")
    with pytest.raises(BenchError, match="not a"):
        check_same_user({"peer": json.dumps(USER).encode()}, "u-1")  # no envelope


def test_concurrency_option_needs_the_ratios_loads() -> None:
    assert concurrency_list("64,1,16,16") == [1, 16, 64]
    for bad in ("1,64", "16", "0,1,16"):
        with pytest.raises(argparse.ArgumentTypeError):
            concurrency_list(bad)


def test_the_peer_binary_is_named_after_what_it_is_built_from() -> None:
    assert source_digest("go1.26.8") == source_digest("go1.26.8")
    assert source_digest("go1.26.8") != source_digest("go1.27.0")  # another toolchain: another binary


def test_the_gateway_before_and_after_in_one_run_each_over_the_peer() -> None:
    rows = [
        *ROWS,
        row(baseline("0060d07"), "c=1", 300.0, 2.75, 7.0, 1280.0, 960.0),
        row(baseline("0060d07"), "c=16", 825.0, 20.0, 80.0, 1000.0, 940.0),
    ]
    lines = before_after_table(rows, "0060d07", "uvicorn", ["c=1", "c=16"]).splitlines()
    assert lines[0] == "| Portico's gateway, at 0060d07 → now | c=1 | c=16 |"
    assert lines[2] == "| gateway CPU-µs/req | 1280 → 960 | 1000 → 650 |"
    assert (
        lines[3]
        == "| **CPU per request over the peer** (goal ≤ 1.5x) | **4.00x → 3.00x** | **5.00x → 3.25x** |"
    )
    assert lines[4] == "| rps over the peer | 0.50x → 0.67x | 0.60x → 0.80x |"
    assert lines[5] == "| added p50 at c=1 over GetUser direct | +1.50 ms → +0.80 ms |  |"
