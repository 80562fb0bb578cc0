"""The benchmark harness reads wrk's and ghz's real output correctly (samples captured from a run of
``bench.gateway_users`` against the mesh; ghz's per-call ``details`` left out). No timing is asserted."""

# ruff: noqa: E501 (the captured output lines are kept verbatim)

from __future__ import annotations

import os
import time

import pytest

from bench.gateway_users import Row, check_all_200, goals, recommend, session_cpu_seconds
from bench.ghz import BenchError, GhzResult
from bench.wrk import WrkResult

WRK_OK = """\
Running 1s test @ http://127.0.0.1:51831/api/v1/users/8e339bd3-d198-4b9f-a2cc-a6615c098de1
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.87ms    0.92ms  11.79ms   78.81%
    Req/Sec   518.30     74.30   650.00     70.00%
  516 requests in 1.00s, 361.30KB read
Requests/sec:    515.91
Transfer/sec:    361.23KB
PORTICO_WRK {"requests":516,"duration_us":1000183,"bytes":369972,"p50_us":3964,"p99_us":7123,"max_us":11792,"connect":0,"read":0,"write":0,"status":0,"timeout":0}
"""

# The same run with a token the gateway refuses: every answer a 401.
WRK_REFUSED = """\
Running 1s test @ http://127.0.0.1:51831/api/v1/users/8e339bd3-d198-4b9f-a2cc-a6615c098de1
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   360.57us  172.43us   4.23ms   97.50%
    Req/Sec     5.73k   109.84     5.88k    81.82%
  6262 requests in 1.10s, 2.20MB read
  Non-2xx or 3xx responses: 6262
Requests/sec:   5693.90
Transfer/sec:      2.00MB
PORTICO_WRK {"requests":6262,"duration_us":1099773,"bytes":2304648,"p50_us":339,"p99_us":955,"max_us":4230,"connect":0,"read":0,"write":0,"status":6262,"timeout":0}
"""

GHZ_REPORT = {
    "date": "2026-11-22T08:50:19Z",
    "endReason": "normal",
    "options": {
        "call": "users.v1.UserService/GetUser",
        "host": "127.0.0.1:57037",
        "proto": "proto/users/v1/users.proto",
        "import-paths": ["proto/users/v1", ".", "proto", "proto/third_party/googleapis"],
        "insecure": True,
        "load-schedule": "const",
        "load-start": 0,
        "load-end": 0,
        "load-step": 0,
        "load-step-duration": 0,
        "load-max-duration": 0,
        "concurrency": 4,
        "concurrency-schedule": "const",
        "concurrency-start": 0,
        "concurrency-end": 0,
        "concurrency-step": 1,
        "concurrency-step-duration": 0,
        "concurrency-max-duration": 0,
        "total": 40,
        "connections": 1,
        "timeout": 5000000000,
        "dial-timeout": 10000000000,
        "data": {"user_id": "8e339bd3-d198-4b9f-a2cc-a6615c098de1"},
        "binary": False,
        "CPUs": 2,
    },
    "count": 40,
    "total": 72590437,
    "average": 7106754,
    "fastest": 1645837,
    "slowest": 31205094,
    "rps": 551.0367708628066,
    "errorDistribution": {},
    "statusCodeDistribution": {"OK": 40},
    "latencyDistribution": [
        {"percentage": 10, "latency": 2434265},
        {"percentage": 25, "latency": 4398878},
        {"percentage": 50, "latency": 4841829},
        {"percentage": 75, "latency": 5190433},
        {"percentage": 90, "latency": 9733161},
        {"percentage": 95, "latency": 26722197},
        {"percentage": 99, "latency": 31205094},
    ],
    "histogram": [
        {"mark": 0.001645837, "count": 1, "frequency": 0.025},
        {"mark": 0.0046017626999999995, "count": 11, "frequency": 0.275},
        {"mark": 0.007557688399999999, "count": 22, "frequency": 0.55},
        {"mark": 0.010513614099999999, "count": 2, "frequency": 0.05},
        {"mark": 0.0134695398, "count": 0, "frequency": 0},
        {"mark": 0.0164254655, "count": 0, "frequency": 0},
        {"mark": 0.019381391199999997, "count": 0, "frequency": 0},
        {"mark": 0.022337316899999998, "count": 0, "frequency": 0},
        {"mark": 0.025293242599999998, "count": 0, "frequency": 0},
        {"mark": 0.0282491683, "count": 3, "frequency": 0.075},
        {"mark": 0.031205094, "count": 1, "frequency": 0.025},
    ],
}


def test_wrk_output_parsed_from_the_lua_summary_line() -> None:
    result = WrkResult.parse(WRK_OK)
    assert (result.requests, result.non_2xx, result.socket_errors) == (516, 0, 0)
    assert result.seconds == pytest.approx(1.000183)
    assert [result.p50_ms, result.p99_ms] == pytest.approx([3.964, 7.123])
    assert result.rps == pytest.approx(516 / 1.000183)


def test_wrk_non_2xx_answers_are_counted() -> None:
    result = WrkResult.parse(WRK_REFUSED)
    assert result.requests == result.non_2xx == 6262


def test_wrk_output_without_the_summary_line_is_a_setup_error() -> None:
    text_only = "\n".join(line for line in WRK_OK.splitlines() if not line.startswith("PORTICO_WRK"))
    with pytest.raises(BenchError, match="PORTICO_WRK"):
        WrkResult.parse(text_only)


def test_ghz_report_parsed() -> None:
    result = GhzResult.from_report(GHZ_REPORT)
    assert (result.count, result.errors, result.end_reason) == (40, 0, "normal")
    assert result.rps == pytest.approx(551.0367708628066)
    assert [result.p50_ms, result.p99_ms] == pytest.approx([4.841829, 31.205094])


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


def rows(gateway_rps: float, gateway_c1_p50: float) -> list[Row]:
    return [
        Row("grpc direct (ghz)", "load", 1000, 1000.0, 10.0, 20.0, None, 900.0),
        Row("grpc direct (ghz)", "c=1", 500, 500.0, 1.0, 2.0, None, 900.0),
        Row("gateway uvicorn (wrk)", "load", 800, gateway_rps, 12.0, 25.0, 600.0, 900.0),
        Row("gateway uvicorn (wrk)", "c=1", 400, 400.0, gateway_c1_p50, 3.0, 700.0, 900.0),
        Row("gateway granian (wrk)", "load", 650, 650.0, 13.0, 24.0, 650.0, 900.0),
        Row("gateway granian (wrk)", "c=1", 400, 400.0, 1.6, 3.0, 700.0, 900.0),
    ]


def test_goals_compare_with_direct_grpc() -> None:
    lines, met = goals(rows(800.0, 1.2), ["uvicorn", "granian"])
    assert met
    assert "uvicorn: rps 0.80 x direct (goal >= 0.7) met; added p50 at c=1 0.200 ms" in lines[0]
    assert lines[1].count("NOT met") == 2
    _, met = goals(rows(600.0, 1.2), ["uvicorn", "granian"])
    assert not met


def test_recommendation_goes_to_the_server_winning_more_measures() -> None:
    assert recommend(rows(800.0, 1.2), ["uvicorn", "granian"]).startswith("server: uvicorn wins 3 of 4")
