"""Soak the gateway: a steady mixed load for minutes, its resident memory sampled from /proc.

    .venv/bin/python -m bench.soak --minutes 30 --rps 50     # starts Kafka, Redis, PostgreSQL, the mesh
    .venv/bin/python -m bench.soak --minutes 10 --tracemalloc /tmp/memtrace   # what grows, by site

Starts what the tests' mesh starts (``harness/mesh.py``) with its gateway stopped, then a gateway of its
own (``python -m gateway``, as ``make up`` runs it) with the limits in ``bench.soak_load.SOAK_ENV``, and
offers the mix of ``bench.soak_load`` at ``--rps``. Every ``--sample-seconds`` it reads the gateway's
RSS; every ``--report-seconds`` it prints a row (elapsed time, median RSS of the row's samples, answers
per second, errors, p99 latency). At the end: a plateau verdict on the samples after ``--warmup``
(``bench.rss.plateau``: the lowest RSS of the last half against that of the first half).

Exit status: 0 on a plateau with an error rate at most ``--max-error-rate``; 1 otherwise; 2 on a setup
problem. With ``--tracemalloc DIR`` the gateway runs under ``bench.memtrace`` and the sites that grew most
between the end of the warm-up and the end are listed (the RSS then includes tracemalloc's own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.ghz import BenchError
from bench.rss import MIB, Verdict, plateau, rss_bytes
from bench.soak_load import SOAK_ENV, Account, Tally, errors_in, register, run_load


def log(message: str) -> None:
    print(f"[soak] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Row:
    elapsed: float
    rss_mib: float
    rps: float
    errors: int
    statuses: Counter[str]
    p99_ms: float | None


@dataclass
class SoakResult:
    rows: list[Row]
    samples: list[tuple[float, int]]  # (seconds since start, RSS bytes), every sample
    verdict: Verdict
    requests: int
    errors: int


async def soak(
    url: str,
    pid: int,
    account: Account,
    *,
    rps: float,
    seconds: float,
    sample_seconds: float,
    report_seconds: float,
    warmup: float,
    on_row: Callable[[Row], None] | None = None,
    max_in_flight: int = 200,
) -> SoakResult:
    """Load the gateway at ``url`` (process ``pid``) for ``seconds``; sample and judge its RSS.
    ``max_in_flight`` bounds the requests open at once (beyond it an offered request counts as an
    error): a machine that stalls then cannot turn a steady load into a burst of concurrency."""
    tally = Tally()
    load = asyncio.create_task(run_load(url, account, rps, seconds, tally, max_in_flight=max_in_flight))
    start = time.monotonic()
    samples: list[tuple[float, int]] = []
    rows: list[Row] = []
    window: list[int] = []
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    last_row = start
    total: Counter[str] = Counter()
    while not load.done():
        await asyncio.wait({load}, timeout=sample_seconds)
        now = time.monotonic()
        rss = rss_bytes(pid)
        samples.append((now - start, rss))
        window.append(rss)
        taken, lat = tally.take()
        statuses.update(taken)
        latencies.extend(lat)
        if now - last_row >= report_seconds - 1e-6 or load.done():
            answered = sum(statuses.values())
            p99 = statistics.quantiles(latencies, n=100)[98] * 1e3 if len(latencies) >= 2 else None
            row = Row(
                now - start,
                statistics.median(window) / MIB,
                answered / (now - last_row),
                errors_in(statuses),
                statuses,
                p99,
            )
            rows.append(row)
            if on_row is not None:
                on_row(row)
            total.update(statuses)
            window, statuses, latencies, last_row = [], Counter(), [], now
    load.result()  # a failure of the load itself is a setup problem, not a figure
    after_warmup = [(t, rss) for t, rss in samples if t >= warmup]
    return SoakResult(rows, samples, plateau(after_warmup), sum(total.values()), errors_in(total))


HEADER = f"{'time':>7} {'RSS MiB':>8} {'rps':>6} {'errors':>6} {'p99 ms':>7}  statuses"


def format_row(row: Row) -> str:
    p99 = f"{row.p99_ms:7.1f}" if row.p99_ms is not None else f"{'n/a':>7}"
    statuses = " ".join(f"{status}:{n}" for status, n in sorted(row.statuses.items()))
    minutes, secs = divmod(int(row.elapsed), 60)
    return f"{minutes:4d}:{secs:02d} {row.rss_mib:8.1f} {row.rps:6.1f} {row.errors:6d} {p99}  {statuses}"


@contextmanager
def soak_gateway(
    tracemalloc_dir: Path | None, sample_seconds: float, refresh_seconds: float | None
) -> Iterator[tuple[str, int]]:
    """The mesh's backends and infrastructure on free ports, and a gateway of ours; yields (URL, pid)."""
    from harness.gateway import gateway_ready
    from harness.mesh import start_backends_on_infra
    from harness.processes import spawn, wait_until
    from infra.procs import free_port

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="portico-soak-") as tmp:
        base = Path(tmp)
        log(
            "starting Kafka, Redis, PostgreSQL (or using PORTICO_KAFKA_BOOTSTRAP/_REDIS_URL/_DATABASE_URL)"
            " and the four backends"
        )
        mesh = start_backends_on_infra(stack, base, SOAK_ENV)
        port = free_port()
        env = {**mesh.env, **SOAK_ENV, "PORTICO_GATEWAY_PORT": str(port)}
        if refresh_seconds is not None:
            env["PORTICO_GATEWAY_ROUTES_REFRESH_SECONDS"] = str(refresh_seconds)
        args = ["-m", "gateway"]
        if tracemalloc_dir is not None:
            args = ["-m", "bench.memtrace"]
            env |= {
                "MEMTRACE_DIR": str(tracemalloc_dir),
                "MEMTRACE_SECONDS": "60",
            }
        proc = spawn("gateway-soak", args, env, base / "logs")
        stack.callback(proc.terminate)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: proc.popen.poll() is None and gateway_ready(url), 180, "gateway /ready")
        except TimeoutError as exc:
            raise BenchError(f"{exc}; its log ends:\n{proc.log()[-3000:]}") from exc
        yield url, proc.popen.pid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load (default 10)")
    parser.add_argument("--rps", type=float, default=50.0, help="requests offered per second (default 50)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds not judged (default 20%% of the run)"
    )
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--report-seconds", type=float, default=60.0, help="seconds per printed row")
    parser.add_argument("--max-error-rate", type=float, default=0.001, help="errors / requests allowed")
    parser.add_argument(
        "--refresh-seconds",
        type=float,
        default=None,
        help="the gateway's route-table refresh interval (default: its own, 30 s); short makes any "
        "growth per refresh show within minutes",
    )
    parser.add_argument("--tracemalloc", type=Path, default=None, metavar="DIR", help="trace allocations")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every process started here is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seconds = args.minutes * 60
    warmup = seconds * 0.2 if args.warmup is None else args.warmup
    try:
        with soak_gateway(args.tracemalloc, args.sample_seconds, args.refresh_seconds) as (url, pid):
            account = register(url)
            log(f"soaking {url} (pid {pid}) at {args.rps:g} req/s for {args.minutes:g} min")
            print(HEADER, flush=True)
            result = asyncio.run(
                soak(
                    url,
                    pid,
                    account,
                    rps=args.rps,
                    seconds=seconds,
                    sample_seconds=args.sample_seconds,
                    report_seconds=args.report_seconds,
                    warmup=warmup,
                    on_row=lambda row: print(format_row(row), flush=True),
                )
            )
    except (BenchError, TimeoutError) as exc:
        log(f"setup failed: {exc}")
        return 2
    rate = result.errors / result.requests if result.requests else 1.0
    print(f"requests {result.requests}, errors {result.errors} ({rate:.3%})")
    print(result.verdict.describe())
    if args.tracemalloc is not None:
        from bench.memtrace import top_growth

        snapshots = sorted(args.tracemalloc.glob("snapshot-*.pickle"))
        first = next(
            (s for s in snapshots if int(s.stem.split("-")[1]) * args.sample_seconds >= warmup), None
        )
        if first is not None and snapshots[-1] != first:
            print(f"allocation sites that grew most, {first.name} -> {snapshots[-1].name}:")
            print("\n".join(top_growth(first, snapshots[-1])))
    return 0 if result.verdict.flat and rate <= args.max_error_rate else 1


if __name__ == "__main__":
    sys.exit(main())
