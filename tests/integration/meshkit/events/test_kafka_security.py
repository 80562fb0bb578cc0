"""The kit's Kafka clients over TLS and SCRAM-over-TLS, against a real broker with a throw-away CA:
publish and consume through the FastStream broker; a client that does not trust the CA, or brings a
wrong password, does not connect."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from harness.certs import make_pki
from infra.kafka_server import KafkaTls
from infra.local import LocalKafka, free_ports
from meshkit.events.broker import build_broker, kafka_answers, start_with_retry
from meshkit.events.security import KafkaSecurity, Mechanism

pytestmark = pytest.mark.infra

USER, PASSWORD = "portico", "scram-secret-for-tests"


@dataclass(frozen=True)
class SecureKafka:
    tls_bootstrap: str
    sasl_bootstrap: str
    ca_file: Path


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    base = tmp_path_factory.mktemp("secure-kafka")
    ca, server, _client = make_pki(base)
    port, controller_port, internal_port, sasl_port = free_ports(4)
    tls = KafkaTls(
        ca_file=ca.cert,
        cert_file=server.cert,
        key_file=server.key,
        internal_port=internal_port,
        sasl_port=sasl_port,
        scram_users=((USER, PASSWORD),),
    )
    kafka = LocalKafka(port=port, controller_port=controller_port, data_dir=base / "kafka", tls=tls)
    with kafka:
        yield SecureKafka(kafka.bootstrap, f"127.0.0.1:{sasl_port}", ca.cert)


def _ssl(kafka: SecureKafka) -> KafkaSecurity:
    return KafkaSecurity("SSL", ca_file=kafka.ca_file)


def _scram(kafka: SecureKafka, mechanism: Mechanism, password: str = PASSWORD) -> KafkaSecurity:
    return KafkaSecurity(
        "SASL_SSL",
        ca_file=kafka.ca_file,
        mechanism=mechanism,
        username=USER,
        password=SecretStr(password),
    )


async def _round_trip(bootstrap: str, security: KafkaSecurity) -> bytes:
    """Publish through the kit's broker and receive it in a subscriber of the same broker."""
    topic = f"portico.test.secure.{uuid.uuid4().hex[:8]}"
    broker = build_broker(
        bootstrap,
        service="secure-test",
        tracer_provider=None,
        registry=CollectorRegistry(),
        security=security,
    )
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    @broker.subscriber(topic, group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest")
    async def handle(body: bytes) -> None:
        if not received.done():
            received.set_result(body)

    try:
        async with asyncio.timeout(60):
            await start_with_retry(broker, bootstrap, security=security)
            await broker.publish(b"over tls", topic, key=b"k")
            return await received
    finally:
        await broker.stop()


async def test_publish_and_consume_over_tls(secure_kafka: SecureKafka) -> None:
    assert await _round_trip(secure_kafka.tls_bootstrap, _ssl(secure_kafka)) == b"over tls"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_publish_and_consume_over_scram_and_tls(
    secure_kafka: SecureKafka, mechanism: Mechanism
) -> None:
    security = _scram(secure_kafka, mechanism)
    assert await _round_trip(secure_kafka.sasl_bootstrap, security) == b"over tls"


async def test_clients_that_cannot_prove_or_check_identity_do_not_connect(secure_kafka: SecureKafka) -> None:
    # The same clients connect when configured right (so the refusals below are about security).
    assert await kafka_answers(secure_kafka.tls_bootstrap, security=_ssl(secure_kafka))
    assert await kafka_answers(secure_kafka.sasl_bootstrap, security=_scram(secure_kafka, "SCRAM-SHA-512"))
    # No CA: the system's trust store does not know the throw-away CA.
    assert not await kafka_answers(secure_kafka.tls_bootstrap, security=KafkaSecurity("SSL"))
    # Plaintext to a TLS listener.
    assert not await kafka_answers(secure_kafka.tls_bootstrap)
    # TLS without SCRAM to the SCRAM listener, and SCRAM with a wrong password.
    assert not await kafka_answers(secure_kafka.sasl_bootstrap, security=_ssl(secure_kafka))
    wrong = _scram(secure_kafka, "SCRAM-SHA-512", PASSWORD[::-1])
    assert not await kafka_answers(secure_kafka.sasl_bootstrap, security=wrong)
