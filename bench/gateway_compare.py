"""The gateway benchmark's rows read against each other: Portico's gateway over the Go grpc-gateway peer
(CPU per request, rps), both over direct gRPC (latency added at c=1), the users backend's CPU per
request behind each, and idle memory; rendered as the Markdown that goes into docs/benchmarks.md.

Only ratios of rows measured in the same run, rounds interleaved, are compared: on a shared 2-core
machine the absolute figures move with whatever else runs, the ratios much less.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

DIRECT = "grpc direct (ghz)"
PEER = "grpc-gateway peer (wrk)"
CPU_GOAL = 1.5  # Portico's gateway CPU per request <= this x the peer's
MIB = 1024 * 1024
Show = Callable[[float | None], str]  # a figure as the tables print it


def portico(server: str) -> str:
    """The row name of Portico's gateway under ``server``."""
    return f"gateway {server} (wrk)"


def baseline(rev: str) -> str:
    """The row name of Portico's gateway as it was at the git revision ``rev`` (under uvicorn)."""
    return f"gateway at {rev} (wrk)"


def load_name(concurrency: int) -> str:
    return f"c={concurrency}"


@dataclass(frozen=True)
class Row:
    name: str
    load: str  # "c=N": N requests in flight
    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    gateway_cpu_us: float | None  # per request; None for direct gRPC
    backend_cpu_us: float  # users backend, per request


@dataclass(frozen=True)
class Idle:
    """Resident memory of one process (its whole session) while nothing is sent to it."""

    name: str
    rss_bytes: int


def find(rows: Sequence[Row], name: str, load: str) -> Row | None:
    return next((r for r in rows if r.name == name and r.load == load), None)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def added(gateway: float | None, direct: float | None) -> float | None:
    return gateway - direct if gateway is not None and direct is not None else None


@dataclass(frozen=True)
class Comparison:
    """One Portico server against the peer, per load (the same order as ``loads``)."""

    server: str
    loads: list[str]
    portico_cpu_us: list[float | None]
    peer_cpu_us: list[float | None]
    cpu_ratio: list[float | None]  # Portico / peer, gateway CPU-µs per request
    rps_ratio: list[float | None]  # Portico / peer
    users_cpu_us: list[tuple[float | None, float | None, float | None]]  # direct, via Portico, via peer
    added_c1_ms: dict[str, tuple[float | None, float | None]]  # row name -> (p50, p99) over direct at c=1

    def goal_met(self) -> bool:
        """Portico's CPU per request within ``CPU_GOAL`` x the peer's at every load measured."""
        known = [r for r in self.cpu_ratio if r is not None]
        return bool(known) and all(r <= CPU_GOAL for r in known)


def compare(rows: Sequence[Row], server: str, loads: Sequence[str]) -> Comparison:
    def of(name: str, load: str) -> Row | None:
        return find(rows, name, load)

    def cpu(name: str, load: str) -> float | None:
        row = of(name, load)
        return None if row is None else row.gateway_cpu_us

    def users(name: str, load: str) -> float | None:
        row = of(name, load)
        return None if row is None else row.backend_cpu_us

    def rps(name: str, load: str) -> float | None:
        row = of(name, load)
        return None if row is None else row.rps

    direct_c1 = of(DIRECT, "c=1")
    added_c1: dict[str, tuple[float | None, float | None]] = {}
    for name in (portico(server), PEER):
        row = of(name, "c=1")
        if row is not None and direct_c1 is not None:
            added_c1[name] = (added(row.p50_ms, direct_c1.p50_ms), added(row.p99_ms, direct_c1.p99_ms))
    mine = portico(server)
    return Comparison(
        server=server,
        loads=list(loads),
        portico_cpu_us=[cpu(mine, load) for load in loads],
        peer_cpu_us=[cpu(PEER, load) for load in loads],
        cpu_ratio=[ratio(cpu(mine, load), cpu(PEER, load)) for load in loads],
        rps_ratio=[ratio(rps(mine, load), rps(PEER, load)) for load in loads],
        users_cpu_us=[(users(DIRECT, load), users(mine, load), users(PEER, load)) for load in loads],
        added_c1_ms=added_c1,
    )


# --- Markdown -------------------------------------------------------------------------------------------


def num(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def times(value: float | None) -> str:
    return num(value, ".2f", "x")


def plus_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f} ms"


def label(name: str) -> str:
    """A row name as the docs say it."""
    if name == DIRECT:
        return "GetUser direct (ghz)"
    if name == PEER:
        return "Go grpc-gateway peer (wrk)"
    if name.startswith("gateway at "):
        return f"Portico {name}"
    return name.replace("gateway ", "Portico gateway, ")


def rows_table(rows: Sequence[Row]) -> str:
    lines = [
        "| row | load | requests | rps | p50 ms | p99 ms | gateway CPU-µs/req | users CPU-µs/req |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {label(r.name)} | {r.load} | {r.requests} | {r.rps:.0f} | {num(r.p50_ms, '.2f')} | "
            f"{num(r.p99_ms, '.2f')} | {num(r.gateway_cpu_us)} | {r.backend_cpu_us:.0f} |"
        )
    return "\n".join(lines)


def comparison_table(c: Comparison) -> str:
    head = " | ".join(c.loads)
    lines = [f"| Portico ({c.server}) against the peer | {head} |", "|---|" + "---|" * len(c.loads)]

    def line(what: str, cells: Sequence[str]) -> None:
        lines.append(f"| {what} | {' | '.join(cells)} |")

    line("gateway CPU-µs/req, Portico", [num(v) for v in c.portico_cpu_us])
    line("gateway CPU-µs/req, peer", [num(v) for v in c.peer_cpu_us])
    line(
        f"**CPU per request, Portico / peer** (goal ≤ {CPU_GOAL}x)", [f"**{times(v)}**" for v in c.cpu_ratio]
    )
    line("rps, Portico / peer", [times(v) for v in c.rps_ratio])
    line(
        "users backend CPU-µs/req: direct / via Portico / via peer",
        [" / ".join(num(v) for v in trio) for trio in c.users_cpu_us],
    )
    return "\n".join(lines)


def added_table(c: Comparison) -> str:
    lines = ["| at c=1, over GetUser direct | added p50 | added p99 |", "|---|---|---|"]
    for name, (p50, p99) in c.added_c1_ms.items():
        lines.append(f"| {label(name)} | {plus_ms(p50)} | {plus_ms(p99)} |")
    return "\n".join(lines)


def idle_table(idle: Sequence[Idle]) -> str:
    lines = ["| process, idle after the warm-up | RSS |", "|---|---|"]
    lines += [f"| {item.name} | {item.rss_bytes / MIB:.1f} MiB |" for item in idle]
    return "\n".join(lines)


def verdict(c: Comparison) -> str:
    ratios = ", ".join(f"{times(v)} at {load}" for load, v in zip(c.loads, c.cpu_ratio, strict=True))
    word = "met" if c.goal_met() else "NOT met"
    return f"Portico ({c.server}) gateway CPU per request ≤ {CPU_GOAL}x the peer's: {word} ({ratios})"


def before_after_table(rows: Sequence[Row], rev: str, server: str, loads: Sequence[str]) -> str:
    """Portico's gateway at ``rev`` and now, both measured in this run; each also over the peer."""
    before, now = baseline(rev), portico(server)

    def value(name: str, load: str, attr: str) -> float | None:
        row = find(rows, name, load)
        return None if row is None else getattr(row, attr)

    def over_peer(name: str, load: str, attr: str) -> float | None:
        return ratio(value(name, load, attr), value(PEER, load, attr))

    def arrows(of: Callable[[str, str, str], float | None], attr: str, show: Show) -> list[str]:
        return [f"{show(of(before, load, attr))} → {show(of(now, load, attr))}" for load in loads]

    def line(what: str, cells: Sequence[str]) -> str:
        return f"| {what} | {' | '.join(cells)} |"

    direct = value(DIRECT, "c=1", "p50_ms")
    p50 = [plus_ms(added(value(name, "c=1", "p50_ms"), direct)) for name in (before, now)]
    return "\n".join(
        [
            line(f"Portico's gateway, at {rev} → now", list(loads)),
            "|---|" + "---|" * len(loads),
            line("gateway CPU-µs/req", arrows(value, "gateway_cpu_us", num)),
            line(
                f"**CPU per request over the peer** (goal ≤ {CPU_GOAL}x)",
                [f"**{cell}**" for cell in arrows(over_peer, "gateway_cpu_us", times)],
            ),
            line("rps over the peer", arrows(over_peer, "rps", times)),
            line("added p50 at c=1 over GetUser direct", [f"{p50[0]} → {p50[1]}", *[""] * (len(loads) - 1)]),
        ]
    )
