"""The capacity model: CPU per request of the gateway, each backend, Redis, PostgreSQL and Kafka, measured
under a stated mix of REST calls, and the cores (and replicas) that serve 1k, 10k and 100k requests/s of it.

    .venv/bin/python -m bench.capacity                  # starts Kafka, Redis, PostgreSQL and the mesh itself
    .venv/bin/python -m bench.capacity --seconds 120 --concurrency 32 --no-docs

The mix (:data:`MIX`, per 1000 requests) is what an application in front of users does: mostly reads
(a user, a post, a page of posts), some writes (a post: PostgreSQL, the outbox, a Kafka event, consumers),
token refreshes, and a few logins and sign-ups — each an argon2id hash, the most expensive call there is.
Every answer must be a 2xx, or the run fails. CPU is utime+stime from ``/proc`` over each process's whole
session (a backend's supervisor and children, PostgreSQL's backends, the broker JVM), so the figure counts
everything a request costs there, its events included. The load generator's own CPU is left out.

The model: a Python process (the gateway, a backend) runs one event loop, so it serves at most one core;
it is planned at :data:`UTILISATION` of that core, so a replica count is ``rate x CPU per request /
UTILISATION``. Redis runs one core per node (a Cluster spreads keys over masters); PostgreSQL takes the
writes on one primary, whose cores do not grow without limit; Kafka's share is its brokers' cores.
Printed: the measured table, the model's table, and which part saturates first; with ``--docs`` (default)
it also rewrites its section of docs/deploying.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import math
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from bench.docs_section import write_section
from bench.ghz import require_loopback
from bench.sessions import listening_pid, session_cpu_seconds, tree_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "deploying.md"
SECTION = "bench.capacity"
PASSWORD = "bench-Capacity-model-2026"  # noqa: S105 (the benchmark users' password)
ACCOUNTS = 24
UTILISATION = 0.6  # plan each core at 60 %: headroom for bursts, a lost replica, GC and deploys
RATES = (1_000, 10_000, 100_000)
# Past this, one PostgreSQL primary is no longer "add cores": writes need partitioning by tenant.
PRIMARY_CORES = 32

# (kind, per 1000 requests)
MIX: tuple[tuple[str, int], ...] = (
    ("GET /api/v1/users/{id}", 560),
    ("GET /api/v1/posts", 200),
    ("GET /api/v1/posts/{id}", 120),
    ("POST /api/v1/posts", 60),
    ("POST /api/v1/auth/refresh", 40),
    ("POST /api/v1/auth/login", 15),
    ("POST /api/v1/auth/register", 5),
)
PYTHON = ("gateway", "users", "auth", "posts", "broker")
ENGINES = ("redis", "postgres", "kafka")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Account:
    user_id: str
    access: str
    refresh: str
    username: str
    tenant: str

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


@dataclass
class Load:
    """What the run sent and got, by kind."""

    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    posts: list[str] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(11))  # noqa: S311 (not for secrets)


Call = Callable[[httpx.AsyncClient, Account, Load], Awaitable[httpx.Response]]


async def _read_user(client: httpx.AsyncClient, account: Account, load: Load) -> httpx.Response:
    return await client.get(f"/api/v1/users/{account.user_id}", headers=account.auth())


async def _list_posts(client: httpx.AsyncClient, account: Account, load: Load) -> httpx.Response:
    return await client.get("/api/v1/posts", params={"page_size": "20"}, headers=account.auth())


async def _read_post(client: httpx.AsyncClient, account: Account, load: Load) -> httpx.Response:
    return await client.get(f"/api/v1/posts/{load.rng.choice(load.posts)}", headers=account.auth())


async def _create_post(client: httpx.AsyncClient, account: Account, load: Load) -> httpx.Response:
    body = {"title": "Capacity", "content": "A post written by the capacity benchmark. " * 4}
    return await client.post("/api/v1/posts", json=body, headers=account.auth())


async def _refresh(client: httpx.AsyncClient, account: Account, load: Load) -> httpx.Response:
    answer = await client.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh})
    if answer.status_code == 200:
        account.access = answer.json()["data"]["access_token"]
        account.refresh = answer.json()["data"]["refresh_token"]
    return answer


async def _login(client: httpx.AsyncClient, account: Account, load: Load) -> httpx.Response:
    body = {"tenant_id": account.tenant, "username": account.username, "password": PASSWORD}
    return await client.post("/api/v1/auth/login", json=body)


async def _register(client: httpx.AsyncClient, account: Account, load: Load) -> httpx.Response:
    name = f"c{uuid.uuid4().hex[:12]}"
    body = {
        "tenant_id": account.tenant,
        "username": name,
        "email": f"{name}@example.com",
        "password": PASSWORD,
    }
    return await client.post("/api/v1/auth/register", json=body)


CALLS: dict[str, Call] = {
    "GET /api/v1/users/{id}": _read_user,
    "GET /api/v1/posts": _list_posts,
    "GET /api/v1/posts/{id}": _read_post,
    "POST /api/v1/posts": _create_post,
    "POST /api/v1/auth/refresh": _refresh,
    "POST /api/v1/auth/login": _login,
    "POST /api/v1/auth/register": _register,
}


def schedule(count: int, seed: int = 7) -> list[str]:
    """``count`` request kinds in the proportions of :data:`MIX`, shuffled reproducibly."""
    kinds = [kind for kind, share in MIX for _ in range(share)]
    rng = random.Random(seed)  # noqa: S311 (a reproducible mix, not a secret)
    return [rng.choice(kinds) for _ in range(count)]


async def prepare(client: httpx.AsyncClient, tenant: str) -> tuple[list[Account], list[str]]:
    """The accounts the load acts as (one per worker, so refreshes never race), and posts to read."""
    accounts = []
    for i in range(ACCOUNTS):
        name = f"cap{i}{uuid.uuid4().hex[:6]}"
        body = {"tenant_id": tenant, "username": name, "email": f"{name}@example.com", "password": PASSWORD}
        answer = await client.post("/api/v1/auth/register", json=body)
        if answer.status_code != 201:
            raise SystemExit(f"registration failed: {answer.status_code} {answer.text[:300]}")
        data = answer.json()["data"]
        accounts.append(
            Account(data["user"]["id"], data["access_token"], data["refresh_token"], name, tenant)
        )
    posts = []
    for account in accounts[:8]:
        answer = await _create_post(client, account, Load())
        if answer.status_code != 201:
            raise SystemExit(f"creating a post failed: {answer.status_code} {answer.text[:300]}")
        posts.append(answer.json()["data"]["id"])
    return accounts, posts


async def drive(
    url: str, tenant: str, concurrency: int, seconds: float, idle: float, measure: Callable[[], None]
) -> Load:
    """Warm up, stay idle for ``idle`` seconds, then ``concurrency`` closed-loop workers send the mix for
    ``seconds``; ``measure`` is called at the start and end of the idle part and at the end of the load."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        accounts, posts = await prepare(client, tenant)
        load = Load(posts=posts)
        kinds = schedule(200_000)
        position = 0

        async def worker(account: Account, until: float, tally: Load) -> None:
            nonlocal position
            while time.monotonic() < until:
                kind = kinds[position % len(kinds)]
                position += 1
                answer = await CALLS[kind](client, account, load)
                tally.sent[kind] += 1
                if not 200 <= answer.status_code < 300:
                    tally.failed[kind] += 1
                    tally.examples.setdefault(kind, f"{answer.status_code} {answer.text[:200]}")

        workers = [accounts[i % len(accounts)] for i in range(min(concurrency, len(accounts)))]
        warm = Load()
        await asyncio.gather(*(worker(a, time.monotonic() + min(10.0, seconds / 4), warm) for a in workers))
        measure()
        await asyncio.sleep(idle)
        measure()
        measured = Load(posts=posts)
        await asyncio.gather(*(worker(a, time.monotonic() + seconds, measured) for a in workers))
        measure()
        return measured


@dataclass(frozen=True)
class Measured:
    requests: int
    seconds: float
    cpu_us: dict[str, float]  # per request above idle, by component
    idle_cores: dict[str, float] = field(default_factory=dict)  # what each uses doing nothing

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Planned:
    component: str
    cpu_us: float  # per request of the mix
    cores: dict[int, float]  # by rate (requests/s), at UTILISATION


def plan(measured: Measured) -> list[Planned]:
    """The model's rows: per component, the cores each rate needs."""
    return [
        Planned(name, cpu_us, {rate: rate * cpu_us / 1e6 / UTILISATION for rate in RATES})
        for name, cpu_us in measured.cpu_us.items()
    ]


def first_to_saturate(rows: list[Planned]) -> str:
    """The part that cannot simply be given more replicas, at the highest rate, or the costliest one."""
    top = RATES[-1]
    postgres = next((r for r in rows if r.component == "postgres"), None)
    if postgres is not None and postgres.cores[top] > PRIMARY_CORES:
        return (
            f"PostgreSQL: at {top:,} requests/s the primary would need {postgres.cores[top]:.0f} cores "
            f"(over {PRIMARY_CORES}): writes must be spread over primaries (by tenant) before that"
        )
    costliest = max(rows, key=lambda r: r.cpu_us)
    return f"{costliest.component}: the most CPU per request of the mix ({costliest.cpu_us:.0f} µs)"


def format_tables(measured: Measured, concurrency: int) -> str:
    rows = plan(measured)
    lines = [
        f"Measured: {measured.requests:,} requests in {measured.seconds:.0f} s ({measured.rps:.0f} req/s, "
        f"{concurrency} in flight, every answer a 2xx) on "
        f"{datetime.date.today().isoformat()}, this machine (2 shared cores).",
        "",
        "| the mix, per 1000 requests | |",
        "|---|---|",
        *(f"| `{kind}` | {share} |" for kind, share in MIX),
        "",
        "| component | idle cores | CPU-µs per request | cores at 1k req/s | 10k | 100k "
        "| replicas at 1k / 10k / 100k |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        # A Python process serves one core: its replicas are its cores, rounded up.
        python = row.component in PYTHON
        replicas = " / ".join(str(max(1, math.ceil(row.cores[r]))) for r in RATES) if python else "—"
        cores = " | ".join(f"{row.cores[r]:.1f}" for r in RATES)
        idle = measured.idle_cores.get(row.component, 0.0)
        lines.append(f"| {row.component} | {idle:.2f} | {row.cpu_us:.0f} | {cores} | {replicas} |")
    total = sum(r.cpu_us for r in rows)
    lines.append(
        f"| **all** | **{sum(measured.idle_cores.values()):.2f}** | **{total:.0f}** | "
        + " | ".join(f"**{sum(r.cores[x] for r in rows):.1f}**" for x in RATES)
        + " | |"
    )
    lines += [
        "",
        f"CPU per request is above each process's idle use (measured just before the load, without "
        f"requests); cores are planned at {UTILISATION:.0%}. First to saturate: {first_to_saturate(rows)}.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds (after a warm-up)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument(
        "--idle", type=float, default=15.0, help="seconds of idle CPU measured before the load"
    )
    parser.add_argument(
        "--no-docs", dest="docs", action="store_false", help="do not rewrite docs/deploying.md"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from harness.infra import start_infra
    from harness.mesh import start_mesh

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="portico-bench-capacity-") as tmp:
        base = Path(tmp)
        log("starting Kafka, Redis, PostgreSQL and the mesh (PostgreSQL for every backend)")
        infra = start_infra(stack, base / "infra")
        (base / "logs").mkdir()
        mesh = start_mesh({**infra.env(), "PORTICO_AUTH_ACCESS_TOKEN_TTL": "3600"}, base / "logs")
        stack.callback(mesh.stop)
        require_loopback(mesh.gateway_url.removeprefix("http://"))
        meters: dict[str, Callable[[], float]] = {
            name: partial(session_cpu_seconds, mesh.procs[name].popen.pid) for name in PYTHON
        }
        meters.update({name: partial(tree_cpu_seconds, pid) for name, pid in engine_pids(infra.env())})
        marks: list[tuple[float, dict[str, float]]] = []

        def measure() -> None:
            marks.append((time.monotonic(), {name: meter() for name, meter in meters.items()}))

        log(f"driving the mix: {args.concurrency} in flight, {args.seconds:.0f} s measured")
        tenant = f"cap-{uuid.uuid4().hex[:8]}"
        load = asyncio.run(
            drive(mesh.gateway_url, tenant, args.concurrency, args.seconds, args.idle, measure)
        )
        if load.failed:
            log(f"answers that were not 2xx: {dict(load.failed)}; e.g. {load.examples}")
            return 2
        (quiet, at_quiet), (start, before), (end, after) = marks
        idle = {name: (before[name] - at_quiet[name]) / (start - quiet) for name in meters}
        requests, seconds = sum(load.sent.values()), end - start
        cpu = {
            name: max(0.0, after[name] - before[name] - idle[name] * seconds) * 1e6 / requests
            for name in meters
        }
        text = format_tables(Measured(requests, seconds, cpu, idle), args.concurrency)
        print(text)
        if args.docs:
            command = "`.venv/bin/python -m bench.capacity`"
            write_section(DOCS, SECTION, f"{text}\n\nRe-run: {command}.")
            log(f"wrote {DOCS.relative_to(ROOT)}")
    return 0


def engine_pids(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The Redis, PostgreSQL and Kafka servers the mesh runs on (by their ports)."""
    from urllib.parse import urlsplit

    ports = {
        "redis": urlsplit(env["PORTICO_REDIS_URL"]).port,
        "postgres": urlsplit(env["PORTICO_DATABASE_URL"].replace("+asyncpg", "")).port,
        "kafka": int(env["PORTICO_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1]),
    }
    for name, port in ports.items():
        if port is not None:
            yield name, listening_pid(port)


if __name__ == "__main__":
    sys.exit(main())
