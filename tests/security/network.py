"""Where the suite's requests come from, and the settings of the stricter gateway it also speaks to.

Each test speaks from its own loopback address (127.77.x.y: Linux routes all of 127/8 to loopback), so
the per-IP budgets it spends — the gateway's rate limits, auth's count of failed logins — are its own,
and no test's attack changes another test's answer.
"""

from __future__ import annotations

import itertools

# The stricter gateway: limits small enough to reach in a test, CORS on for one origin.
STRICT_PER_IP = 20
STRICT_LOGIN = 2
ALLOWED_ORIGIN = "https://app.example"

_hosts = itertools.count(1)


def fresh_address() -> str:
    """A loopback address no other test of the session speaks from."""
    n = next(_hosts)
    return f"127.77.{n // 250}.{n % 250 + 1}"
