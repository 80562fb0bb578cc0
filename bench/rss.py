"""Resident memory of a process from ``/proc``, and whether a series of samples has levelled off.

Under a steady load a Python process's RSS is a sawtooth: garbage piles up between collections and
``malloc_trim`` (``meshkit.memory``) hands pages back every few seconds, and a busy machine makes the
teeth taller. What a leak raises is the floor the sawtooth comes back to, so a plateau is judged on the
lowest sample of each half of the run after the warm-up: each half must be longer than the sawtooth's
period (the soak's halves are 120 s; the gateway's big collections came 76-90 s apart under its load).
Medians of windows were tried first: their verdict depended on where the teeth fell and flipped on a
busy machine (a CI run read +3 MiB from a flat gateway).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """``VmRSS`` of ``pid`` in bytes (``OSError`` when the process is gone)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise OSError(f"no VmRSS for process {pid}")


@dataclass(frozen=True)
class Verdict:
    """The post-warm-up samples split in halves: the floor of each, and the trend."""

    first_mib: float  # lowest RSS of the first half after the warm-up
    last_mib: float  # lowest RSS of the last half
    growth_mib: float  # last - first
    slope_mib_per_hour: float  # least-squares slope over all post-warm-up samples
    bound_mib: float
    samples: int

    @property
    def flat(self) -> bool:
        return self.growth_mib <= self.bound_mib

    def describe(self) -> str:
        word = "PLATEAU" if self.flat else "GROWING"
        return (
            f"{word}: lowest RSS {self.first_mib:.1f} MiB (first half after warm-up) -> "
            f"{self.last_mib:.1f} MiB (last half), growth {self.growth_mib:+.2f} MiB "
            f"(bound {self.bound_mib:.2f}), slope {self.slope_mib_per_hour:+.2f} MiB/h, "
            f"{self.samples} samples"
        )


def plateau(
    samples: list[tuple[float, int]], *, min_bound_mib: float = 2.0, relative_bound: float = 0.02
) -> Verdict:
    """Judge ``(seconds, rss bytes)`` samples taken after the warm-up (at least 6).

    The bound is the larger of ``min_bound_mib`` and ``relative_bound`` of the first half's floor: a
    process that keeps growing crosses it in a long enough run, while the allocator's steps do not.
    """
    if len(samples) < 6:
        raise ValueError(f"need at least 6 samples after the warm-up, got {len(samples)}")
    half = len(samples) // 2
    first = min(rss for _, rss in samples[:half]) / MIB
    last = min(rss for _, rss in samples[-half:]) / MIB
    times = [t for t, _ in samples]
    values = [rss / MIB for _, rss in samples]
    slope = statistics.linear_regression(times, values).slope if len(set(times)) > 1 else 0.0
    return Verdict(
        first_mib=first,
        last_mib=last,
        growth_mib=last - first,
        slope_mib_per_hour=slope * 3600,
        bound_mib=max(min_bound_mib, first * relative_bound),
        samples=len(samples),
    )
