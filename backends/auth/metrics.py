"""Prometheus metrics of the auth backend: login outcomes and refresh-token replays.

Labels are bounded on purpose: an outcome from a fixed set, never a tenant, a username or an id.
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter

__all__ = ["AuthMetrics", "LoginOutcome"]


class LoginOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    # Unknown account, disabled or deleted user, wrong password: one outcome, as the answer is one.
    INVALID_CREDENTIALS = "invalid_credentials"
    LOCKED = "locked"  # refused by the brute-force throttle before the password counted
    INVALID_REQUEST = "invalid_request"  # no identifier or no password


class AuthMetrics:
    """The auth backend's counters; unregistered (still counting) when no registry is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.logins = Counter(
            "portico_auth_logins_total",
            "Login attempts by outcome.",
            ("outcome",),
            registry=registry,
        )
        for outcome in LoginOutcome:  # every series from the start, so rate() sees the first failure
            self.logins.labels(outcome.value)
        self.refresh_reuse = Counter(
            "portico_auth_refresh_reuse_detected_total",
            "Spent refresh tokens presented again (each revokes its whole login).",
            registry=registry,
        )

    def login(self, outcome: LoginOutcome) -> None:
        self.logins.labels(outcome.value).inc()
