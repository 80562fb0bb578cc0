"""Resident memory of a process from ``/proc``, and whether a series of samples has levelled off.

A plateau is judged on medians of windows, not on single samples: the allocator returns memory to the
system in steps and a busy machine delays the process unevenly, so one sample says little, while the
median of a third of a run says where the process sits.
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
    """The post-warm-up samples split in thirds: where the first and last third sit, and the trend."""

    first_mib: float  # median RSS of the first third after the warm-up
    last_mib: float  # median RSS of the last third
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
            f"{word}: median RSS {self.first_mib:.1f} MiB (first third after warm-up) -> "
            f"{self.last_mib:.1f} MiB (last third), growth {self.growth_mib:+.2f} MiB "
            f"(bound {self.bound_mib:.2f}), slope {self.slope_mib_per_hour:+.2f} MiB/h, "
            f"{self.samples} samples"
        )


def plateau(
    samples: list[tuple[float, int]], *, min_bound_mib: float = 2.0, relative_bound: float = 0.02
) -> Verdict:
    """Judge ``(seconds, rss bytes)`` samples taken after the warm-up (at least 6).

    The bound is the larger of ``min_bound_mib`` and ``relative_bound`` of the first third's median:
    a process that keeps growing crosses it in a long enough run, while the allocator's steps do not.
    """
    if len(samples) < 6:
        raise ValueError(f"need at least 6 samples after the warm-up, got {len(samples)}")
    third = len(samples) // 3
    first = statistics.median(rss for _, rss in samples[:third]) / MIB
    last = statistics.median(rss for _, rss in samples[-third:]) / MIB
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
