"""Run wrk (Debian's ``/usr/bin/wrk``) against one HTTP URL with a bearer token, and read its figures.

A small Lua script adds the ``Authorization`` header (the token comes from the environment, not the
command line, which other users can read) and prints, at the end, one JSON line with wrk's exact latency
percentiles and error counts and one line with 1000 evenly spaced latency quantiles (so several runs can
be merged);
nothing depends on wrk's rounded human-readable text. Given an expected body, the script also counts
every answer that is not a 200 with exactly that body (``mismatched``).
Loopback URLs only, like ``bench.ghz``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.ghz import BenchError, require_loopback

WRK = Path("/usr/bin/wrk")
MARKER = "PORTICO_WRK "
QUANTILES_MARKER = "PORTICO_WRK_QUANTILES "
QUANTILES = 1000  # the latency quantiles at (k + 0.5) / 10 %, k = 0..999
TOKEN_ENV = "PORTICO_BENCH_TOKEN"  # noqa: S105 (the name of a variable, not a secret)
EXPECT_ENV = "PORTICO_BENCH_EXPECT"

# Names spelled as in MARKER, QUANTILES_MARKER, TOKEN_ENV and EXPECT_ENV above.
LUA = r"""
local token = os.getenv("PORTICO_BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- Each thread counts its own answers; done() (in the main interpreter) adds them up.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local expected = os.getenv("PORTICO_BENCH_EXPECT")
mismatched = 0
if expected then  -- defined only when checking: wrk reads bodies only for a script with response()
  function response(status, headers, body)
    if status ~= 200 or body ~= expected then
      mismatched = mismatched + 1
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local m = 0
  for _, thread in ipairs(threads) do
    m = m + (thread:get("mismatched") or 0)
  end
  io.write(string.format(
    'PORTICO_WRK {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
    .. '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"mismatched":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout, m))
  -- The latency quantiles at (k + 0.5) / 10 %, k = 0..999, so several runs can be merged.
  local parts = {}
  for k = 0, 999 do
    parts[#parts + 1] = latency:percentile((k + 0.5) / 10)
  end
  io.write("PORTICO_WRK_QUANTILES " .. table.concat(parts, ",") .. "\n")
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run; latencies in milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int  # wrk counts statuses above 399 (its "Non-2xx or 3xx responses")
    socket_errors: int  # connect + read + write + timeout
    quantiles_us: tuple[int, ...]  # QUANTILES latencies in µs, evenly spaced in rank
    mismatched: int = 0  # answers other than a 200 with the expected body (0 when none was given)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def parse(cls, output: str) -> WrkResult:
        """The figures from wrk's standard output (the two lines our Lua ``done`` prints)."""
        lines = output.splitlines()
        summary = next((line for line in lines if line.startswith(MARKER)), None)
        quantiles = next((line for line in lines if line.startswith(QUANTILES_MARKER)), None)
        if summary is None or quantiles is None:
            raise BenchError(f"no {MARKER.strip()} lines in wrk's output:\n{output[-2000:]}")
        data = json.loads(summary[len(MARKER) :])
        values = tuple(int(float(v)) for v in quantiles[len(QUANTILES_MARKER) :].split(",") if v)
        if len(values) != QUANTILES:
            raise BenchError(f"wrk printed {len(values)} latency quantiles, not {QUANTILES}")
        return cls(
            requests=int(data["requests"]),
            seconds=int(data["duration_us"]) / 1e6,
            p50_ms=int(data["p50_us"]) / 1e3,
            p99_ms=int(data["p99_us"]) / 1e3,
            non_2xx=int(data["status"]),
            socket_errors=sum(int(data[k]) for k in ("connect", "read", "write", "timeout")),
            quantiles_us=values,
            mismatched=int(data.get("mismatched", 0)),
        )


def run_wrk(
    url: str,
    *,
    token: str,
    connections: int,
    seconds: float,
    threads: int = 1,
    timeout: str = "5s",
    expect_body: bytes | None = None,
    wrk: Path = WRK,
) -> WrkResult:
    """One wrk run of ``seconds`` at ``connections`` keep-alive connections; killed if it overruns.
    With ``expect_body``, every answer but a 200 with exactly that body is counted in ``mismatched``."""
    require_loopback(urlsplit(url).netloc)
    if not wrk.exists():
        raise BenchError(f"{wrk} not found: `apt-get install wrk`")
    with tempfile.TemporaryDirectory(prefix="portico-wrk-") as tmp:
        script = Path(tmp, "auth.lua")
        script.write_text(LUA)
        argv = [
            str(wrk),
            f"--threads={min(threads, connections)}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            f"--timeout={timeout}",
            f"--script={script}",
            url,
        ]
        env = {**os.environ, TOKEN_ENV: token}
        if expect_body is not None:
            env[EXPECT_ENV] = expect_body.decode()  # JSON: text, and never holds a NUL
        try:
            done = subprocess.run(
                argv,
                env=env,
                capture_output=True,
                text=True,
                timeout=seconds + 30,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"wrk still running {seconds + 30:g}s after start: stopped") from exc
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return WrkResult.parse(done.stdout)
