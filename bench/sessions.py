"""CPU time and resident memory of a whole process session, from ``/proc``.

Every server a benchmark measures is started with ``start_new_session``, so its session holds the server
and whatever it spawned (granian's worker, say): summing over the session counts all of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from bench.rss import rss_bytes

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _session_stats(leader: int) -> Iterator[tuple[int, list[str]]]:
    """(pid, stat fields from field 3 on) of every process in ``leader``'s session."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on; comm may hold spaces
        if int(fields[3]) == leader:  # field 6: session id
            yield int(entry.name), fields


def session_cpu_seconds(leader: int) -> float:
    """utime + stime of every process in ``leader``'s session (all threads included), in seconds."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in _session_stats(leader))  # fields 14, 15
    return ticks / CLK_TCK


def session_rss_bytes(leader: int) -> int:
    """``VmRSS`` summed over the processes of ``leader``'s session."""
    total = 0
    for pid, _ in _session_stats(leader):
        try:
            total += rss_bytes(pid)
        except OSError:  # gone meanwhile
            continue
    return total


def listening_pid(port: int) -> int:
    """The pid of the process listening on TCP ``port`` (an infra server the benchmark did not start)."""
    inodes = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(f"{entry.path}/fd"):
                if os.readlink(fd.path) in inodes:
                    return int(entry.name)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    raise LookupError(f"no process listens on port {port}")


def session_of(pid: int) -> int:
    """The session id of ``pid``."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    return int(raw[raw.rindex(")") + 2 :].split()[3])


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and every descendant, in seconds: for servers whose children leave the
    session (PostgreSQL's backends each call ``setsid``)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])  # field 4: ppid
        ticks[pid] = int(fields[11]) + int(fields[12])
    inside = {root}
    grew = True
    while grew:
        found = {pid for pid, parent in parents.items() if parent in inside} - inside
        grew = bool(found)
        inside |= found
    return sum(ticks.get(pid, 0) for pid in inside) / CLK_TCK
