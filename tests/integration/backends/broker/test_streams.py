"""Subscriptions' resources against a real Kafka: every dropped stream closes its consumer (the gauge and
the process's open sockets come back), and a client that stops reading holds the backend to a bounded
read-ahead instead of the whole topic."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import jwt
import pytest
from redis.asyncio import Redis

from harness.broker import (
    OPEN_GAUGE,
    BrokerBackend,
    broker_backend_fixture,
    publish,
    read,
    start_broker_backend,
    subscribe,
)
from harness.infra import InfraEnv
from harness.tokens import TokenIssuer
from meshkit.auth.revocation import revoke_jti

pytestmark = pytest.mark.infra
BATCH = 50
FETCHED = "portico_broker_records_fetched_total"
DELIVERED = "portico_broker_messages_delivered_total"


@pytest.fixture(scope="module")
def broker(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerBackend]:
    yield from broker_backend_fixture(
        infra,
        issuer,
        tmp_path_factory.mktemp("broker-streams"),
        {"PORTICO_BROKER_SUBSCRIPTION_BATCH": str(BATCH)},
    )


@pytest.fixture
def tenant() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def kafka_connections(broker: BrokerBackend, infra: InfraEnv) -> int:
    return broker.connections_to(int(infra.kafka_bootstrap.rsplit(":", 1)[1]))


async def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    for _ in range(int(timeout * 10)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"not true within {timeout} s")


async def test_fifty_dropped_streams_close_all_their_consumers(
    broker: BrokerBackend, infra: InfraEnv, tenant: str
) -> None:
    auth = broker.auth(tenant)
    assert broker.metric(OPEN_GAUGE) == 0
    async with broker.stub() as stub:
        await publish(stub, auth, "fanout", "already there")
        before = kafka_connections(broker, infra)
        calls = await asyncio.gather(
            *(subscribe(stub, auth, "fanout", "earliest" if n % 2 else "latest") for n in range(50))
        )
        assert broker.metric(OPEN_GAUGE) == 50
        assert kafka_connections(broker, infra) >= before + 50  # a consumer each, with its own connection
        # Half of them are dropped mid-flow (after a message), half while waiting for one.
        readers = [call for n, call in enumerate(calls) if n % 2]
        await asyncio.gather(*(read(call, 1) for call in readers))
        for call in calls:
            call.cancel()
        await wait_for(lambda: broker.metric(OPEN_GAUGE) == 0)
        started = time.monotonic()
        await wait_for(lambda: kafka_connections(broker, infra) == before)
    assert time.monotonic() - started < 5


async def test_dropping_a_stream_that_is_busy_writing_closes_it(broker: BrokerBackend, tenant: str) -> None:
    auth = broker.auth(tenant)
    async with broker.stub() as stub:
        await asyncio.gather(*(publish(stub, auth, "busy", "x" * 4000) for _ in range(400)))
        for _ in range(5):
            call = await subscribe(stub, auth, "busy", "earliest")
            await read(call, 1)  # the backend is now writing the rest as fast as it may
            call.cancel()
        await wait_for(lambda: broker.metric(OPEN_GAUGE) == 0)
    assert "Traceback" not in broker.proc.log()


async def test_a_client_that_stops_reading_holds_the_backend_to_a_bounded_read_ahead(
    broker: BrokerBackend, tenant: str
) -> None:
    auth = broker.auth(tenant)
    total, size = 3000, 8000  # 24 MB: far more than gRPC's flow-control windows hold
    async with broker.stub() as stub:
        started = time.monotonic()
        for chunk in range(0, total, 200):
            await asyncio.gather(
                *(
                    publish(stub, auth, "firehose", f"{n:06d}".ljust(size, "x"), key=str(n % 7))
                    for n in range(chunk, chunk + 200)
                )
            )
        rate = total / (time.monotonic() - started)
        fetched0, delivered0 = broker.metric(FETCHED), broker.metric(DELIVERED)
        call = await subscribe(stub, auth, "firehose", "earliest")
        await read(call, 1)
        await asyncio.sleep(3)  # the client reads nothing more
        fetched, delivered = broker.metric(FETCHED) - fetched0, broker.metric(DELIVERED) - delivered0
        await asyncio.sleep(2)
        assert broker.metric(FETCHED) - fetched0 == fetched  # stalled: nothing more is taken from Kafka
        print(f"publish rate {rate:.0f}/s; stalled client: {fetched:.0f} taken, {delivered:.0f} written")
        assert fetched < total / 2
        assert fetched - delivered <= BATCH  # held between Kafka and the client: one batch at most
        # The client reads again: everything arrives, nothing was dropped.
        rest = await read(call, total - 1, timeout=60)
        call.cancel()
    seen = sorted(int(item.message[:6]) for item in rest)
    assert len(set(seen)) == total - 1
    assert set(seen) <= set(range(total))


async def test_a_cancelled_call_on_a_quiet_topic_ends_at_once(broker: BrokerBackend, tenant: str) -> None:
    async with broker.stub() as stub:
        call = await subscribe(stub, broker.auth(tenant), "quiet")
        assert broker.metric(OPEN_GAUGE) == 1
        call.cancel()
        started = time.monotonic()
        await wait_for(lambda: broker.metric(OPEN_GAUGE) == 0)
        with pytest.raises(asyncio.CancelledError):
            await call.read()
    assert time.monotonic() - started < 2
    assert await call.code() == grpc.StatusCode.CANCELLED


async def test_shutdown_ends_open_streams_at_once_instead_of_waiting_out_the_grace(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path, tenant: str
) -> None:
    """SIGTERM: live streams end with UNAVAILABLE (clients reconnect elsewhere) and the process exits
    well inside PORTICO_SHUTDOWN_GRACE, which only the streams would otherwise have used up."""
    own = start_broker_backend(infra, issuer, tmp_path, {"PORTICO_SHUTDOWN_GRACE": "20"})
    try:
        async with own.stub() as stub:
            calls = [await subscribe(stub, own.auth(tenant), f"live-{n}") for n in range(3)]
            await publish(stub, own.auth(tenant), "live-0", "before the end")
            assert len(await read(calls[0], 1)) == 1
            started = time.monotonic()
            own.proc.popen.send_signal(signal.SIGTERM)
            for call in calls:
                assert await asyncio.wait_for(call.code(), 10) == grpc.StatusCode.UNAVAILABLE
                assert await call.details() == "The server is shutting down, reconnect"
            code = await asyncio.to_thread(own.proc.popen.wait, 15)
        assert code == 0
        assert time.monotonic() - started < 10  # the grace is 20 s
    finally:
        own.proc.terminate()


async def test_a_revoked_token_ends_its_open_stream(
    infra: InfraEnv, issuer: TokenIssuer, tmp_path: Path, tenant: str
) -> None:
    """Logout (the token's jti revoked in Redis) reaches a subscription that is already open."""
    own = start_broker_backend(
        infra, issuer, tmp_path, {"PORTICO_BROKER_STREAM_REVOCATION_CHECK_SECONDS": "0.3"}
    )
    try:
        token = own.token(tenant)
        auth = (("authorization", f"Bearer {token}"),)
        async with own.stub() as stub:
            kept = await subscribe(stub, own.auth(tenant), "watched")  # another token: it stays open
            call = await subscribe(stub, auth, "watched")
            claims = jwt.decode(token, options={"verify_signature": False})
            redis = Redis.from_url(infra.redis_url)
            try:
                await revoke_jti(redis, claims["tenant_id"], claims["jti"], claims["exp"])
            finally:
                await redis.aclose()
            assert await asyncio.wait_for(call.code(), 10) == grpc.StatusCode.UNAUTHENTICATED
            assert await call.details() == "Token has been revoked"
            await publish(stub, own.auth(tenant), "watched", "still flowing")
            assert [item.message for item in await read(kept, 1)] == ["still flowing"]
            kept.cancel()
    finally:
        own.proc.terminate()
