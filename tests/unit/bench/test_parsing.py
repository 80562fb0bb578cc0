"""The benchmark harness reads wrk's and ghz's real output correctly (samples in samples/, captured
with the harness's own Lua script and ghz options against the mesh) and merges runs right. No timing is
asserted."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bench.gateway_compare import Row
from bench.gateway_users import (
    Tally,
    check_all_200,
    ghz_weights_us,
    goals,
    percentile_ms,
    recommend,
    wrk_weights_us,
)
from bench.ghz import BenchError, GhzResult
from bench.rss import rss_bytes
from bench.sessions import session_cpu_seconds, session_rss_bytes
from bench.wrk import WrkResult

SAMPLES = Path(__file__).parent / "samples"
WRK_OK = (SAMPLES / "wrk_ok.txt").read_text()
WRK_REFUSED = (SAMPLES / "wrk_refused.txt").read_text()  # a token the gateway refuses: all 401
GHZ_REPORT = json.loads((SAMPLES / "ghz_getuser.json").read_text())


def test_wrk_output_parsed_from_the_lua_summary_lines() -> None:
    result = WrkResult.parse(WRK_OK)
    assert (result.requests, result.non_2xx, result.socket_errors) == (300, 0, 0)
    assert result.seconds == pytest.approx(1.003744)
    assert [result.p50_ms, result.p99_ms] == pytest.approx([6.217, 16.911])
    assert result.rps == pytest.approx(300 / 1.003744)
    assert len(result.quantiles_us) == 1000
    assert list(result.quantiles_us) == sorted(result.quantiles_us)
    assert result.quantiles_us[0] >= 3000  # within the run's min..max
    assert result.quantiles_us[-1] <= 25163


def test_wrk_non_2xx_answers_are_counted() -> None:
    result = WrkResult.parse(WRK_REFUSED)
    assert result.requests == result.non_2xx == 1900
    assert result.mismatched == 0  # no body was expected: the script printed no count


def test_wrk_answers_other_than_the_expected_body_are_counted() -> None:
    checked = WRK_OK.replace('"timeout":0}', '"timeout":0,"mismatched":3}', 1)
    assert WrkResult.parse(checked).mismatched == 3


def test_wrk_output_without_the_summary_lines_is_a_setup_error() -> None:
    text_only = "\n".join(line for line in WRK_OK.splitlines() if not line.startswith("PORTICO_WRK"))
    with pytest.raises(BenchError, match="PORTICO_WRK"):
        WrkResult.parse(text_only)
    truncated = WRK_OK.replace(",3270,", ",", 1)
    with pytest.raises(BenchError, match="999 latency quantiles"):
        WrkResult.parse(truncated)


def test_ghz_report_parsed() -> None:
    result = GhzResult.from_report(GHZ_REPORT)
    assert (result.count, result.errors, result.end_reason) == (12, 0, "normal")
    assert result.rps == pytest.approx(324.364905003926)
    assert [result.p50_ms, result.p99_ms] == pytest.approx([5.078943, 21.972411])


def test_merged_latencies_agree_with_each_tools_own_percentiles() -> None:
    ghz = GhzResult.from_report(GHZ_REPORT)
    weights = ghz_weights_us(ghz)
    assert sum(weights.values()) == 12
    assert percentile_ms(weights, 50) == pytest.approx(ghz.p50_ms, abs=0.001)
    assert percentile_ms(weights, 99) == pytest.approx(ghz.p99_ms, abs=0.001)
    wrk = WrkResult.parse(WRK_OK)
    weights = wrk_weights_us(wrk)
    assert sum(weights.values()) == pytest.approx(300)
    # Rank resolution of 1000 quantiles: within one quantile step of wrk's own percentile.
    assert wrk.quantiles_us[498] / 1e3 <= (percentile_ms(weights, 50) or 0) <= wrk.quantiles_us[501] / 1e3
    assert wrk.quantiles_us[988] / 1e3 <= (percentile_ms(weights, 99) or 0) <= wrk.quantiles_us[991] / 1e3


def test_tally_sums_rounds() -> None:
    wrk = WrkResult.parse(WRK_OK)
    tally = Tally()
    for _ in range(2):
        tally.add(wrk.requests, wrk.seconds, wrk_weights_us(wrk), {"gateway": 0.3, "users": 0.45})
    row = tally.row("gateway uvicorn (wrk)", "c=16")
    assert row.requests == 600
    assert row.rps == pytest.approx(wrk.rps)
    assert row.p50_ms == percentile_ms(wrk_weights_us(wrk), 50)
    assert [row.gateway_cpu_us, row.backend_cpu_us] == pytest.approx([1000.0, 1500.0])


def test_gateway_answers_must_all_be_200() -> None:
    assert check_all_200({"200": 10.0}, {"200": 110.0}, 100, 16, "run") == 0
    with pytest.raises(BenchError, match="429"):
        check_all_200({"200": 10.0}, {"200": 110.0, "429": 1.0}, 100, 16, "run")
    with pytest.raises(BenchError, match="90 x 200"):
        check_all_200({}, {"200": 90.0}, 100, 16, "run")


def test_requests_abandoned_when_wrk_stops_are_tolerated_up_to_the_connections() -> None:
    assert check_all_200({"200": 0.0}, {"200": 100.0, "500": 3.0}, 100, 16, "run") == 3
    with pytest.raises(BenchError, match="500"):
        check_all_200({"200": 0.0}, {"200": 100.0, "500": 17.0}, 100, 16, "run")


def test_session_cpu_counts_this_process() -> None:
    before = session_cpu_seconds(os.getsid(0))
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert session_cpu_seconds(os.getsid(0)) > before


def test_session_rss_counts_this_process() -> None:
    assert session_rss_bytes(os.getsid(0)) >= rss_bytes(os.getpid()) > 0


def rows(gateway_rps: float, gateway_c1_p50: float, gateway_p50: float = 12.0) -> list[Row]:
    return [
        Row("grpc direct (ghz)", "c=16", 1000, 1000.0, 10.0, 20.0, None, 900.0),
        Row("grpc direct (ghz)", "c=1", 500, 500.0, 1.0, 2.0, None, 900.0),
        Row("gateway uvicorn (wrk)", "c=16", 800, gateway_rps, gateway_p50, 25.0, 600.0, 900.0),
        Row("gateway uvicorn (wrk)", "c=1", 400, 400.0, gateway_c1_p50, 3.0, 700.0, 900.0),
        Row("gateway granian (wrk)", "c=16", 650, 650.0, 13.0, 24.0, 650.0, 900.0),
        Row("gateway granian (wrk)", "c=1", 400, 400.0, 1.6, 3.0, 700.0, 900.0),
    ]


def test_goals_compare_with_direct_grpc() -> None:
    lines, met = goals(rows(800.0, 1.2), ["uvicorn", "granian"])
    assert met
    assert "uvicorn: rps 0.80 x direct at c=16 (goal >= 0.7) met; added p50 at c=1 0.200 ms" in lines[0]
    assert lines[1].count("NOT met") == 2
    _, met = goals(rows(600.0, 1.2), ["uvicorn", "granian"])
    assert not met


def test_recommendation_goes_to_the_server_winning_more_measures() -> None:
    line = recommend(rows(800.0, 1.2), ["uvicorn", "granian"])
    assert line.startswith("server: uvicorn wins 3 of 4")
    assert "split" not in line  # uvicorn also uses less CPU per request


def test_recommendation_says_when_the_leaner_server_loses_on_speed() -> None:
    # granian: more rps, lower p50 and p99; uvicorn: less CPU per request
    line = recommend(rows(600.0, 1.2, gateway_p50=14.0), ["uvicorn", "granian"])
    assert line.startswith("server: granian wins 3 of 4")
    assert "measures split: uvicorn uses less gateway CPU per request" in line
