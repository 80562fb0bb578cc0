"""Messages through the real gateway and mesh: publish (202), subscribe as SSE and NDJSON, tenant
isolation, errors in the contract's envelope, and a client that leaves closes the broker's consumer."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.accounts import bearer, register_async
from harness.mesh import Mesh

pytestmark = pytest.mark.infra
OPEN_GAUGE = "portico_broker_subscriptions_open"
SSE = {"Accept": "text/event-stream"}
NDJSON = {"Accept": "application/x-ndjson"}


@pytest.fixture
async def client(mesh: Mesh) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=15) as http:
        yield http


async def login(client: httpx.AsyncClient, tenant: str | None = None) -> dict[str, str]:
    """Register a user in a fresh tenant; the Authorization header of its access token."""
    return bearer(await register_async(client, tenant or f"msg-{uuid.uuid4().hex[:8]}"))


async def post(client: httpx.AsyncClient, auth: dict[str, str], topic: str, **body: str) -> httpx.Response:
    return await client.post(f"/api/v1/topics/{topic}/messages", json=body, headers=auth)


def open_subscriptions(mesh: Mesh) -> float:
    text = httpx.get(f"http://127.0.0.1:{mesh.metrics_ports['broker']}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == OPEN_GAUGE:
                return float(sample.value)
    raise AssertionError(f"{OPEN_GAUGE} is not exported")


async def wait_until_no_subscription(mesh: Mesh, timeout: float = 10) -> None:
    for _ in range(int(timeout * 10)):
        if open_subscriptions(mesh) == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the broker still holds a subscription")


async def sse_events(lines: AsyncIterator[str], count: int) -> list[dict[str, str]]:
    """The next ``count`` SSE events of a stream's lines, as field → value (keep-alives skipped)."""
    events: list[dict[str, str]] = []
    event: dict[str, str] = {}
    async with asyncio.timeout(15):
        async for line in lines:
            if not line:
                if event:
                    events.append(event)
                    event = {}
                if len(events) == count:
                    return events
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                event[name] = value
    raise AssertionError(f"the stream ended after {len(events)} events")


async def test_publish_answers_202_with_partition_and_offset(client: httpx.AsyncClient) -> None:
    auth = await login(client)
    first = await post(client, auth, "orders", message="first", key="customer-1")
    second = await post(client, auth, "orders", message="second", key="customer-1")
    assert first.status_code == second.status_code == 202, first.text
    data = first.json()["data"]
    assert (data["status"], data["topic"], data["offset"]) == ("published", "orders", "0")
    assert data["partition"] in range(3)
    again = second.json()["data"]
    assert again["partition"] == data["partition"]  # one key, one partition
    assert again["offset"] == "1"  # int64 is a decimal string in proto3 JSON


async def test_subscribe_as_sse_from_earliest_then_live(mesh: Mesh, client: httpx.AsyncClient) -> None:
    auth = await login(client)
    sent = (await post(client, auth, "news", message="stored", key="k1")).json()["data"]
    before = time.time()
    async with client.stream(
        "GET", "/api/v1/topics/news/messages?from=earliest", headers={**auth, **SSE}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        [stored] = await sse_events(lines, 1)
        live = (await post(client, auth, "news", message="live", key="k1")).json()["data"]
        [arrived] = await sse_events(lines, 1)
        assert open_subscriptions(mesh) >= 1
    assert stored["id"] == sent["offset"] == "0"
    data = json.loads(stored["data"])
    assert {k: v for k, v in data.items() if k != "timestamp"} == {
        "topic": "news",
        "partition": sent["partition"],
        "offset": "0",
        "key": "k1",
        "message": "stored",
    }
    assert data["timestamp"].endswith("Z")
    assert abs(datetime.fromisoformat(data["timestamp"]).timestamp() - before) < 30
    assert arrived["id"] == live["offset"] == "1"
    assert json.loads(arrived["data"])["message"] == "live"
    await wait_until_no_subscription(mesh)  # the client left: the broker closed its consumer


async def test_subscribe_as_ndjson_from_latest(mesh: Mesh, client: httpx.AsyncClient) -> None:
    auth = await login(client)
    await post(client, auth, "feed", message="old")
    async with client.stream("GET", "/api/v1/topics/feed/messages", headers={**auth, **NDJSON}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        await post(client, auth, "feed", message="new 1")
        await post(client, auth, "feed", message="new 2", key="k")
        lines = response.aiter_lines()
        async with asyncio.timeout(15):
            items = [json.loads(await anext(lines)) for _ in range(2)]
    assert {item["message"] for item in items} == {"new 1", "new 2"}  # "old" was before the subscription
    assert {item["topic"] for item in items} == {"feed"}
    assert all(item["offset"].isdigit() for item in items)
    await wait_until_no_subscription(mesh)


async def test_tenants_do_not_share_topics(client: httpx.AsyncClient) -> None:
    alpha, beta = await login(client), await login(client)
    await post(client, alpha, "shared", message="alpha only")
    await post(client, beta, "shared", message="beta only")
    async with client.stream(
        "GET", "/api/v1/topics/shared/messages?from=earliest", headers={**beta, **NDJSON}
    ) as r:
        lines = r.aiter_lines()
        first = json.loads(await asyncio.wait_for(anext(lines), 15))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(lines), 1.5)
    assert (first["message"], first["offset"]) == ("beta only", "0")


async def test_a_disconnect_closes_the_broker_consumer_at_once(mesh: Mesh, client: httpx.AsyncClient) -> None:
    auth = await login(client)
    for _ in range(5):
        async with client.stream("GET", "/api/v1/topics/quiet/messages", headers={**auth, **SSE}) as response:
            assert response.status_code == 200  # opened on the broker's confirmation, no message needed
    started = time.monotonic()
    await wait_until_no_subscription(mesh)
    assert time.monotonic() - started < 5


async def test_errors_use_the_contract_envelope(client: httpx.AsyncClient) -> None:
    auth = await login(client)
    invalid = await post(client, auth, "bad%20name", message="x")
    too_large = await post(client, auth, "big", message="x" * (512 * 1024 + 1))
    no_message = await post(client, auth, "orders")
    bad_start = await client.get("/api/v1/topics/orders/messages?from=beginning", headers={**auth, **SSE})
    anonymous = await client.post("/api/v1/topics/orders/messages", json={"message": "x"})
    cases = [
        (invalid, 400, "BAD_REQUEST"),
        (too_large, 413, "PAYLOAD_TOO_LARGE"),
        (no_message, 400, "BAD_REQUEST"),
        (bad_start, 400, "BAD_REQUEST"),
        (anonymous, 401, "UNAUTHORIZED"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert invalid.json()["error"]["details"][0]["field"] == "topic"
    assert bad_start.json()["error"]["details"][0]["field"] == "from"
