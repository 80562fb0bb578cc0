"""The Kafka probe of a backend without a FastStream broker, against the real Kafka and an address where
nothing listens."""

from __future__ import annotations

import pytest

from harness.infra import InfraEnv
from infra.procs import free_port
from meshkit.readiness import Impact
from meshkit.rpc.probes import KafkaPing

pytestmark = pytest.mark.infra


async def test_kafka_ping_answers_up_and_keeps_its_connection(infra: InfraEnv) -> None:
    ping = KafkaPing(infra.kafka_bootstrap, client_id="portico-test-health", timeout=10)
    dependency = ping.dependency(Impact.UNREADY)
    try:
        assert (dependency.name, dependency.impact) == ("kafka", Impact.UNREADY)
        assert await dependency.check()
        assert await dependency.check()  # over the connection the first check opened
    finally:
        await ping.close()


async def test_kafka_ping_is_down_where_no_kafka_listens() -> None:
    ping = KafkaPing(f"127.0.0.1:{free_port()}", client_id="portico-test-health", timeout=1)
    try:
        assert not await ping.check()
        assert not await ping.check()
    finally:
        await ping.close()
