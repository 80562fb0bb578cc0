"""A FastStream publish in this process reaches a FastStream subscriber in another, via the real Kafka."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from harness.infra import InfraEnv
from harness.processes import json_lines, spawn, wait_until
from meshkit.events.broker import build_broker, start_with_retry

pytestmark = pytest.mark.infra


async def test_publish_reaches_a_subscriber_in_another_process(infra: InfraEnv, tmp_path: Path) -> None:
    topic, group = f"portico.test.{uuid.uuid4().hex}", f"test-{uuid.uuid4().hex}"
    peer = spawn(
        "peer", ["-m", "harness.programs.kafka_peer", infra.kafka_bootstrap, topic, group], {}, tmp_path
    )
    broker = build_broker(
        infra.kafka_bootstrap, service="test", tracer_provider=TracerProvider(), registry=CollectorRegistry()
    )
    try:
        await start_with_retry(broker, infra.kafka_bootstrap)
        await broker.publish(
            b"hello from the test", topic, key=b"entity-1", headers={"event-type": "test.hello"}
        )

        def received() -> list[dict[str, object]]:
            return [line for line in json_lines(peer) if "body" in line]

        wait_until(lambda: bool(received()) or peer.popen.poll() is not None, 60, "the peer to receive")
        assert received(), peer.log()
        report = received()[0]
        assert report["body"] == "hello from the test"
        assert report["key"] == "entity-1"
        headers = report["headers"]
        assert isinstance(headers, dict)
        assert headers["event-type"] == "test.hello"
        assert "traceparent" in headers  # the telemetry middleware carries the trace across Kafka
    finally:
        await broker.stop()
        assert peer.terminate() == 0, peer.log()
