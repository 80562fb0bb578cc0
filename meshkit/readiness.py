"""Readiness policy: which dependency makes a process unready, which only degrades it, and since when.

A process is *unready* only for what it cannot serve without (a backend's own database, the broker's
Kafka, the gateway's route table). Anything else that goes away *degrades* it: Kafka behind an outbox,
Redis behind local fallbacks, a backend behind the gateway. Draining a replica for a dependency every
replica shares would take the whole API out of rotation while requests were still being served.

:class:`Readiness` keeps, per dependency, whether it answered its last probe and since when, exports
``portico_dependency_up{process,dependency,impact}`` and answers the ``/ready`` body's per-dependency
report (``ok``, ``degraded`` or ``down``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from prometheus_client import CollectorRegistry, Gauge

__all__ = ["DependencyState", "Impact", "Readiness"]


class Impact(StrEnum):
    """What a dependency being down does to the process's readiness."""

    UNREADY = "unready"  # the process cannot serve without it: leave the load balancer's rotation
    DEGRADED = "degraded"  # the process serves on (fallbacks, outbox, 503 on the affected calls only)


@dataclass(frozen=True)
class DependencyState:
    up: bool
    impact: Impact
    since: float  # epoch seconds of the last change between up and down (or of the first probe)

    @property
    def status(self) -> str:
        """``ok`` when up; when down, ``down`` if the process cannot serve without it, else ``degraded``."""
        if self.up:
            return "ok"
        return "down" if self.impact is Impact.UNREADY else "degraded"


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Readiness:
    """The latest probe result per dependency of one process, under that process's policy."""

    def __init__(
        self,
        process: str,
        impacts: Mapping[str, Impact],
        registry: CollectorRegistry | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._process = process
        self._impacts = dict(impacts)
        self._clock = clock
        self._states: dict[str, DependencyState] = {}
        self._gauge = (
            Gauge(
                "portico_dependency_up",
                "1 when the dependency answered the process's last probe, else 0; impact says whether the "
                "process is unready (unready) or serves on without it (degraded).",
                ["process", "dependency", "impact"],
                registry=registry,
            )
            if registry is not None
            else None
        )

    def impact(self, name: str) -> Impact:
        return self._impacts.get(name, Impact.UNREADY)  # an unnamed dependency keeps the strict meaning

    def record(self, results: Mapping[str, bool]) -> None:
        """Take one round of probe results (name → answered)."""
        now = self._clock()
        for name, up in results.items():
            impact = self.impact(name)
            previous = self._states.get(name)
            if previous is None or previous.up != up:
                self._states[name] = DependencyState(up, impact, now)
            if self._gauge is not None:
                self._gauge.labels(self._process, name, impact.value).set(1 if up else 0)

    @property
    def states(self) -> Mapping[str, DependencyState]:
        return self._states

    @property
    def unready_for(self) -> tuple[str, ...]:
        """The dependencies down that the process cannot serve without (empty: ready)."""
        return tuple(n for n, s in self._states.items() if not s.up and s.impact is Impact.UNREADY)

    @property
    def degraded_by(self) -> tuple[str, ...]:
        """The dependencies down that the process serves on without."""
        return tuple(n for n, s in self._states.items() if not s.up and s.impact is Impact.DEGRADED)

    def report(self) -> dict[str, dict[str, str]]:
        """Per dependency: ``{"status": "ok"|"degraded"|"down", "since": RFC 3339}``."""
        return {n: {"status": s.status, "since": _rfc3339(s.since)} for n, s in self._states.items()}
