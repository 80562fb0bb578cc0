"""Idle memory of the mesh: the gateway and the four backends after a short warm-up, one table.

    .venv/bin/python -m bench.footprint                  # Kafka and Redis of its own, SQLite, as `make up`
    .venv/bin/python -m bench.footprint --modules        # also: what each process imported, by package
    .venv/bin/python -m bench.footprint --env MALLOC_ARENA_MAX=2   # try a setting on every process

Starts a local Kafka and Redis on free ports (or uses the ones ``PORTICO_KAFKA_BOOTSTRAP`` /
``PORTICO_REDIS_URL`` name), the four backends and the gateway as ``make up`` runs them (``python -m
...``, SQLite stores unless ``--postgres``), waits until the gateway is ready, warms the mesh up through
the gateway (a sign-up, a login, the user read back, a text post written and listed), lets it idle
``--idle`` seconds, then samples each process ``--samples`` times a second apart. Each figure is the
median of the samples: ``VmRSS`` from ``/proc/<pid>/status`` (what the issue's goal counts), its
anonymous and file-backed parts, and ``Pss`` from ``smaps_rollup`` (shared library pages split between
the processes that map them). Nothing is written to the docs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.rss import MIB

PROCESSES = ("gateway", "users", "auth", "posts", "broker")
PASSWORD = "footprint-Idle-memory-2026"  # noqa: S105 (the warm-up user's password)
FIELDS = ("VmRSS", "RssAnon", "RssFile", "Threads")


def log(message: str) -> None:
    print(f"[footprint] {message}", file=sys.stderr, flush=True)


def proc_status(pid: int) -> dict[str, int]:
    """The fields of :data:`FIELDS` from ``/proc/<pid>/status`` (sizes in bytes) and ``Pss`` from
    ``smaps_rollup``."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in FIELDS:
            number = int(value.split()[0])
            found[key] = number if key == "Threads" else number * 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            found["Pss"] = int(line.split()[1]) * 1024
    return found


@dataclass(frozen=True)
class Footprint:
    name: str
    pid: int
    figures: dict[str, float]  # medians: sizes in MiB, Threads as a count


def sample(pids: dict[str, int], samples: int, interval: float = 1.0) -> list[Footprint]:
    """Median of ``samples`` readings of each process, ``interval`` seconds apart."""
    readings: dict[str, list[dict[str, int]]] = {name: [] for name in pids}
    for index in range(samples):
        if index:
            time.sleep(interval)
        for name, pid in pids.items():
            readings[name].append(proc_status(pid))
    result = []
    for name, pid in pids.items():
        keys = readings[name][0].keys()
        figures = {
            key: statistics.median(r[key] for r in readings[name]) / (1 if key == "Threads" else MIB)
            for key in keys
        }
        result.append(Footprint(name, pid, figures))
    return result


def table(rows: list[Footprint]) -> str:
    columns = ("VmRSS", "RssAnon", "RssFile", "Pss", "Threads")
    lines = [f"{'process':<9} {'RSS MiB':>8} {'anon':>7} {'file':>7} {'PSS':>7} {'threads':>7}"]
    for row in rows:
        values = [row.figures.get(key, float("nan")) for key in columns]
        lines.append(
            f"{row.name:<9} {values[0]:8.1f} {values[1]:7.1f} {values[2]:7.1f} {values[3]:7.1f} "
            f"{values[4]:7.0f}"
        )
    totals = [sum(row.figures.get(key, 0.0) for row in rows) for key in columns]
    lines.append(
        f"{'total':<9} {totals[0]:8.1f} {totals[1]:7.1f} {totals[2]:7.1f} {totals[3]:7.1f} {totals[4]:7.0f}"
    )
    return "\n".join(lines)


_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s?( *)(\S+)")


def imported_packages(log_text: str) -> Counter[str]:
    """Modules a process imported (from its ``-X importtime`` lines), counted by top-level package."""
    counts: Counter[str] = Counter()
    for line in log_text.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            counts[match.group(2).split(".")[0]] += 1
    return counts


def warm_up(url: str) -> None:
    """A sign-up, a login, the user read back, a text post written and listed: every backend serves."""
    tenant = f"fp-{uuid.uuid4().hex[:8]}"
    body = {"tenant_id": tenant, "username": "idler", "email": "idler@example.com", "password": PASSWORD}
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/api/v1/auth/register", json=body).raise_for_status()
        login = {"tenant_id": tenant, "username": "idler", "password": PASSWORD}
        reply = client.post("/api/v1/auth/login", json=login)
        reply.raise_for_status()
        headers = {"Authorization": f"Bearer {reply.json()['data']['access_token']}"}
        client.get("/api/v1/users/me", headers=headers).raise_for_status()
        post = {"title": "idle", "content": "a text post"}
        client.post("/api/v1/posts", json=post, headers=headers).raise_for_status()
        client.get("/api/v1/posts", headers=headers).raise_for_status()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle after the warm-up")
    parser.add_argument("--samples", type=int, default=5, help="readings per process, 1 s apart")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL stores instead of SQLite")
    parser.add_argument("--modules", action="store_true", help="list imported packages per process")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment, repeatable"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from harness.mesh import start_mesh
    from infra.local import LocalKafka, LocalPostgres, LocalRedis, free_port

    args = parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.env)
    if args.modules:
        extra["PYTHONPROFILEIMPORTTIME"] = "1"
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="portico-footprint-") as tmp:
        base = Path(tmp)
        kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=base / "kafka")
        redis = LocalRedis(port=free_port(), data_dir=base / "redis")
        env = {"PORTICO_KAFKA_BOOTSTRAP": kafka.bootstrap, "PORTICO_REDIS_URL": redis.url}
        servers: list[LocalKafka | LocalRedis | LocalPostgres] = [kafka, redis]
        if args.postgres:
            postgres = LocalPostgres(port=free_port(), data_dir=base / "postgres")
            servers.append(postgres)
            env["PORTICO_DATABASE_URL"] = postgres.url
        for server in servers:
            stack.callback(server.stop)
            server.start()
        for server in servers:
            server.wait_ready(timeout=90)
        env |= extra
        (base / "logs").mkdir()
        log("starting the four backends and the gateway")
        mesh = start_mesh(env, base / "logs", timeout=120)
        stack.callback(mesh.stop)
        warm_up(mesh.gateway_url)
        log(f"warmed up; idle for {args.idle:g} s, then {args.samples} samples")
        time.sleep(args.idle)
        pids = {name: mesh.procs[name].popen.pid for name in PROCESSES}
        print(table(sample(pids, args.samples)), flush=True)
        if args.modules:
            for name in PROCESSES:
                counts = imported_packages(mesh.procs[name].log())
                top = ", ".join(f"{pkg} {n}" for pkg, n in counts.most_common(25))
                print(f"\n{name}: {sum(counts.values())} modules: {top}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
