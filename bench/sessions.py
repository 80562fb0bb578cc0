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
