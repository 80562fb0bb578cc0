"""Slowloris: many connections to the real gateway that send a request head a byte at a time.

A mesh of our own (the four backends and a gateway on free ports, the session's Kafka, Redis and
PostgreSQL) with a short request-head deadline. 200 connections each drip one header byte every
``DRIP`` seconds and never finish; meanwhile a user reads themself through the gateway, one request
after another. Every normal request must be answered 200, and every slow connection must be closed by
the gateway once its deadline passes (not by us: each would go on dripping for ``GIVE_UP`` seconds).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.infra import InfraEnv
from harness.mesh import Mesh, start_mesh

HEADER_TIMEOUT = 2.0  # the gateway's deadline in this test (the default is 10 s)
SLOW_CONNECTIONS = 200
DRIP = 0.5  # seconds between the bytes of a slow head
GIVE_UP = HEADER_TIMEOUT + 20  # a slow connection still open by then was never closed by the gateway
# Each slow head is longer than GIVE_UP / DRIP bytes: it never completes on its own.
NORMAL_REQUESTS = 100
PASSWORD = "Slowloris-fault-2026"  # noqa: S105 (the test user's password)


@pytest.fixture(scope="module")
def own_mesh(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    env = {**infra.env(), "PORTICO_GATEWAY_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}
    mesh = start_mesh(env, tmp_path_factory.mktemp("slowloris-mesh"))
    yield mesh
    mesh.stop()


def _register(url: str) -> tuple[str, str]:
    body = {
        "tenant_id": f"slow-{uuid.uuid4().hex[:8]}",
        "username": "reader",
        "email": "reader@slowloris.example.com",
        "password": PASSWORD,
    }
    reply = httpx.post(f"{url}/api/v1/auth/register", json=body, timeout=30)
    assert reply.status_code == 201, reply.text
    data = reply.json()["data"]
    return data["user"]["id"], data["access_token"]


async def _slow_connection(port: int, opened: asyncio.Event) -> float | None:
    """Drip a request head until the gateway closes the connection; seconds until it did (None if it
    never did within ``GIVE_UP``)."""
    started = time.monotonic()  # before the connection exists: the gateway's clock starts later
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened.set()
    head = b"GET /api/v1/users/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 1000

    async def drip() -> None:
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(DRIP)

    dripping = asyncio.create_task(drip())
    try:
        async with asyncio.timeout(GIVE_UP):
            while await reader.read(4096):  # the 408, then the end of the stream
                pass
        return time.monotonic() - started
    except TimeoutError:
        return None
    except ConnectionError:  # reset while we wrote: closed by the gateway all the same
        return time.monotonic() - started
    finally:
        dripping.cancel()
        writer.close()


async def _normal_requests(url: str, user_id: str, token: str) -> tuple[list[float], list[int]]:
    latencies, statuses = [], []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        headers = {"authorization": f"Bearer {token}"}
        for _ in range(NORMAL_REQUESTS):
            started = time.perf_counter()
            try:
                status = (await client.get(f"/api/v1/users/{user_id}", headers=headers)).status_code
            except httpx.HTTPError:
                status = 0
            latencies.append(time.perf_counter() - started)
            statuses.append(status)
            await asyncio.sleep(0.02)
    return latencies, statuses


async def _attack(
    url: str, port: int, user_id: str, token: str
) -> tuple[list[float | None], list[float], list[int]]:
    events = [asyncio.Event() for _ in range(SLOW_CONNECTIONS)]
    slow = [asyncio.create_task(_slow_connection(port, event)) for event in events]
    async with asyncio.timeout(30):
        await asyncio.gather(*(event.wait() for event in events))
    latencies, statuses = await _normal_requests(url, user_id, token)
    closed_after = await asyncio.gather(*slow)
    return closed_after, latencies, statuses


def _ms(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1e3


def test_slow_heads_are_cut_off_while_normal_requests_are_served(
    own_mesh: Mesh, record_property: Callable[[str, object], None]
) -> None:
    url = own_mesh.gateway_url
    port = int(url.rsplit(":", 1)[1])
    user_id, token = _register(url)
    baseline, _ = asyncio.run(_normal_requests(url, user_id, token))

    closed_after, latencies, statuses = asyncio.run(_attack(url, port, user_id, token))

    closed = [seconds for seconds in closed_after if seconds is not None]
    ok = sum(1 for status in statuses if status == 200)
    figures = {
        "slow_conns": SLOW_CONNECTIONS,
        "closed_by_server": len(closed),
        "header_timeout_s": HEADER_TIMEOUT,
        "closed_after_min_s": round(min(closed), 2) if closed else None,
        "closed_after_max_s": round(max(closed), 2) if closed else None,
        "normal_ok": f"{ok}/{NORMAL_REQUESTS}",
        "baseline_p50_ms": round(_ms(baseline, 50), 1),
        "p50_ms": round(_ms(latencies, 50), 1),
        "p99_ms": round(_ms(latencies, 99), 1),
    }
    print("FAULT slowloris: " + " ".join(f"{key}={value}" for key, value in figures.items()))
    for key, value in figures.items():
        record_property(key, value)

    assert ok == NORMAL_REQUESTS, f"normal requests answered: {statuses}"
    assert len(closed) == SLOW_CONNECTIONS, f"{SLOW_CONNECTIONS - len(closed)} slow connections never closed"
    # Never before the deadline; after it, within the slack of a busy machine's event loop.
    assert min(closed) >= HEADER_TIMEOUT * 0.95
    assert max(closed) < HEADER_TIMEOUT + 10
