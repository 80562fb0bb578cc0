"""A steady, mixed HTTP load on the gateway: the answers a real edge sees, not one hot path.

Every request varies what a leak would be keyed by: the client IP (``X-Forwarded-For`` from a large
pool, the gateway trusting 127.0.0.1 as a proxy), the path and query string, the ``X-Request-ID``, the
token. The mix gives 200s (a user reading themself, a list, /health), 400s (an unknown query
parameter), 404s (an unknown user, an unmatched path), 401s (no token, a forged
token, a wrong password) and 429s (one hot client IP over its limit, failed logins over theirs).
The load is open-loop: a request starts every ``1/rps`` seconds whether or not earlier ones have
finished (up to a cap in flight), so a slow gateway shows as latency and errors, not as a lower
offered rate.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from bench.ghz import require_loopback

HOT_IP = "198.51.100.7"  # sends a share of the load: over its per-IP limit, so some answers are 429
# Failed logins come from one address, over its login limit: a few reach the auth backend (a password
# hash each, the most expensive call there is), the rest are 429 at the edge.
LOGIN_IP = "198.51.100.9"
PASSWORD = "soak-Gateway-memory-2026"  # noqa: S105 (the soak user's password)
# Limits of the gateway under soak: high enough for the random client IPs, low enough for the hot one.
SOAK_ENV = {
    "PORTICO_GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
    "PORTICO_GATEWAY_RATE_LIMIT_PER_IP": "120/minute",
    "PORTICO_GATEWAY_RATE_LIMIT_PER_USER": "100000000/hour",
    "PORTICO_GATEWAY_RATE_LIMIT_LOGIN": "10/minute",
    "PORTICO_AUTH_ACCESS_TOKEN_TTL": "7200",
}
EXPECTED = frozenset({200, 400, 401, 404, 429})  # anything else (5xx, a transport error) is an error


@dataclass
class Account:
    user_id: str
    token: str
    tenant: str
    username: str


@dataclass
class Tally:
    """Answers since the last :meth:`take`, by status ("error" for a transport failure)."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def take(self) -> tuple[Counter[str], list[float]]:
        statuses, latencies = self.statuses, self.latencies
        self.statuses, self.latencies = Counter(), []
        return statuses, latencies


def errors_in(statuses: Counter[str]) -> int:
    return sum(n for status, n in statuses.items() if status == "error" or int(status) not in EXPECTED)


def register(url: str) -> Account:
    """A fresh user in a fresh tenant, through the gateway."""
    require_loopback(urlsplit(url).netloc)
    tenant = f"soak-{uuid.uuid4().hex[:8]}"
    body = {
        "tenant_id": tenant,
        "username": "soaker",
        "email": "soaker@soak.example.com",
        "password": PASSWORD,
    }
    reply = httpx.post(f"{url}/api/v1/auth/register", json=body, timeout=30)
    reply.raise_for_status()
    data = reply.json()["data"]
    return Account(data["user"]["id"], data["access_token"], tenant, "soaker")


def _client_ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def next_request(rng: random.Random, account: Account) -> tuple[str, str, dict[str, str], object | None]:
    """(method, path with query, headers, JSON body) of one request of the mix."""
    headers = {"x-forwarded-for": _client_ip(rng)}
    if rng.random() < 0.5:  # the other half get an id made by the gateway
        headers["x-request-id"] = uuid.uuid4().hex
    bearer = {"authorization": f"Bearer {account.token}"}
    tag = uuid.uuid4().hex[:12]
    roll = rng.random()
    if roll < 0.22:
        return "GET", f"/api/v1/users/{account.user_id}", headers | bearer, None
    if roll < 0.30:
        page = f"page={rng.randrange(1, 50)}&page_size={rng.randrange(1, 101)}"
        return "GET", f"/api/v1/users?{page}", headers | bearer, None
    if roll < 0.35:  # a query parameter the route does not take: 400
        return "GET", f"/api/v1/users/{account.user_id}?v={tag}", headers | bearer, None
    if roll < 0.50:
        return "GET", f"/api/v1/users/{uuid.uuid4()}", headers | bearer, None
    if roll < 0.58:
        return "GET", f"/api/v1/users/{uuid.uuid4()}?q={tag}", headers, None
    if roll < 0.63:
        forged = {"authorization": f"Bearer eyJhbGciOiJFZERTQSJ9.{tag}.{tag}"}
        return "GET", f"/api/v1/users/{account.user_id}", headers | forged, None
    if roll < 0.73:
        return "GET", f"/no/such/{tag}/path?q={tag}&n={rng.randrange(10**6)}", headers, None
    if roll < 0.80:
        body = {"tenant_id": account.tenant, "username": account.username, "password": f"wrong-{tag}"}
        return "POST", "/api/v1/auth/login", headers | {"x-forwarded-for": LOGIN_IP}, body
    if roll < 0.85:
        return "GET", f"/health?probe={tag}", headers, None
    # The hot client: one IP, past its per-IP limit most of the time.
    return "GET", f"/api/v1/users/{account.user_id}", headers | bearer | {"x-forwarded-for": HOT_IP}, None


async def _one(
    client: httpx.AsyncClient, tally: Tally, request: tuple[str, str, dict[str, str], object | None]
) -> None:
    method, path, headers, body = request
    started = time.perf_counter()
    try:
        reply = await client.request(method, path, headers=headers, json=body)
        status = str(reply.status_code)
    except httpx.HTTPError:
        status = "error"
    tally.statuses[status] += 1
    tally.latencies.append(time.perf_counter() - started)


async def run_load(
    url: str,
    account: Account,
    rps: float,
    seconds: float,
    tally: Tally,
    *,
    seed: int = 7,
    max_in_flight: int = 200,
) -> None:
    """Offer ``rps`` requests a second for ``seconds``; answers go to ``tally``."""
    require_loopback(urlsplit(url).netloc)
    rng = random.Random(seed)  # noqa: S311 (a reproducible load mix, not a secret)
    connections = min(64, max_in_flight)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < seconds:
            due = int((now - start) * rps) + 1
            while sent < due:
                if len(tasks) >= max_in_flight:  # the gateway is far behind: count it, do not pile up
                    tally.statuses["error"] += 1
                else:
                    task = asyncio.create_task(_one(client, tally, next_request(rng, account)))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(max(0.0, start + sent / rps - time.monotonic()))
        if tasks:
            await asyncio.wait(tasks, timeout=15)
