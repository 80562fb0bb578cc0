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
    # The id is the cursor: every partition's last offset, this message's own among them.
    cursor = ",".join(f"{p}:{0 if p == sent['partition'] else -1}" for p in range(3))
    assert stored["id"] == cursor
    assert sent["offset"] == "0"
    data = json.loads(stored["data"])
    assert {k: v for k, v in data.items() if k != "timestamp"} == {
        "topic": "news",
        "partition": sent["partition"],
        "offset": "0",
        "key": "k1",
        "message": "stored",
        "cursor": cursor,
    }
    assert data["timestamp"].endswith("Z")
    assert abs(datetime.fromisoformat(data["timestamp"]).timestamp() - before) < 30
    assert arrived["id"] == cursor.replace(f"{sent['partition']}:0", f"{sent['partition']}:1")
    assert live["offset"] == "1"
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


async def test_a_cut_stream_resumes_exactly_after_its_last_event(client: httpx.AsyncClient) -> None:
    """Messages flow over three partitions while the stream is cut twice: resumed once with SSE's
    Last-Event-ID (the first URL resent, as a browser does), once as NDJSON with `from=<cursor>`.
    Counted by message: every one arrives, none twice."""
    auth = await login(client)
    topic, total = "resumable", 60
    await post(client, auth, topic, message="m0", key="k0")  # the topic exists before the first read

    async def publish() -> None:
        for i in range(1, total):
            sent = await post(client, auth, topic, message=f"m{i}", key=f"k{i % 7}")
            assert sent.status_code == 202, sent.text
            await asyncio.sleep(0.02)

    publisher = asyncio.create_task(publish())
    seen: list[str] = []
    try:
        url = f"/api/v1/topics/{topic}/messages?from=earliest"
        async with client.stream("GET", url, headers={**auth, **SSE}) as response:
            assert response.status_code == 200
            events = await sse_events(response.aiter_lines(), 15)
        seen += [json.loads(e["data"])["message"] for e in events]
        assert all(e["id"] == json.loads(e["data"])["cursor"] for e in events)

        await asyncio.sleep(0.3)  # messages go on arriving while nobody listens
        resumed = {**auth, **SSE, "Last-Event-ID": events[-1]["id"]}
        async with client.stream("GET", url, headers=resumed) as response:
            assert response.status_code == 200
            events = await sse_events(response.aiter_lines(), 20)
        seen += [json.loads(e["data"])["message"] for e in events]

        await asyncio.sleep(0.3)
        cursor = events[-1]["id"]
        async with client.stream(
            "GET", f"/api/v1/topics/{topic}/messages", params={"from": cursor}, headers={**auth, **NDJSON}
        ) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            async with asyncio.timeout(30):
                while len(seen) < total:
                    seen.append(json.loads(await anext(lines))["message"])
        await publisher
    finally:
        publisher.cancel()
    assert sorted(seen) == sorted(f"m{i}" for i in range(total))  # none lost, none repeated
    assert len(set(seen)) == len(seen) == total


async def test_a_malformed_cursor_is_a_400_naming_where_it_came_from(client: httpx.AsyncClient) -> None:
    auth = await login(client)
    await post(client, auth, "cursors", message="x")
    path = "/api/v1/topics/cursors/messages"
    cases = [
        (await client.get(path, params={"from": "0:1,0:2"}, headers={**auth, **SSE}), "from"),
        (await client.get(path, params={"from": "7:0"}, headers={**auth, **NDJSON}), "from"),  # 3 partitions
        (await client.get(path, headers={**auth, **SSE, "Last-Event-ID": "garbage"}), "last_event_id"),
    ]
    for response, field in cases:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["details"][0]["field"]) == ("BAD_REQUEST", field)
