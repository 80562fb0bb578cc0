"""One Kafka security value gives every client the same settings; the password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from pydantic import SecretStr, ValidationError

from harness.certs import make_pki
from meshkit.config.events import KafkaSettings
from meshkit.events.security import PLAINTEXT, KafkaSecurity, KafkaSecurityError, Mechanism
from meshkit.events.topics import replication_for

SECRET = "do-not-print-me"  # noqa: S105 - a test value


def test_plaintext_adds_nothing_to_the_clients() -> None:
    assert PLAINTEXT.client_kwargs() == {}
    assert PLAINTEXT.faststream() is None
    assert PLAINTEXT.ssl_context is None


def test_tls_verifies_the_broker_with_the_given_ca(tmp_path: Path) -> None:
    ca, _server, client = make_pki(tmp_path)
    security = KafkaSecurity("SSL", ca_file=ca.cert, cert_file=client.cert, key_file=client.key)
    kwargs = security.client_kwargs()
    assert kwargs["security_protocol"] == "SSL"
    context = kwargs["ssl_context"]
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "Portico test CA"),),)]
    fast = security.faststream()
    assert type(fast) is BaseSecurity
    assert fast.use_ssl
    assert fast.ssl_context is context


@pytest.mark.parametrize(
    ("mechanism", "kind"), [("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)]
)
def test_scram_over_tls_carries_the_credentials(mechanism: Mechanism, kind: type[BaseSecurity]) -> None:
    security = KafkaSecurity("SASL_SSL", mechanism=mechanism, username="svc", password=SecretStr(SECRET))
    kwargs = security.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == mechanism
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("svc", SECRET)
    fast = security.faststream()
    assert isinstance(fast, kind)
    assert fast.use_ssl
    assert SECRET not in repr(security)


def test_settings_build_the_value_and_hide_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PORTICO_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("PORTICO_KAFKA_SASL_PASSWORD", SECRET)
    settings = KafkaSettings()
    assert SECRET not in repr(settings)
    assert settings.kafka_security().client_kwargs()["sasl_plain_password"] == SECRET


def test_incomplete_settings_fail_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PORTICO_KAFKA_SASL_USERNAME", "svc")
    with pytest.raises(ValidationError, match="username and password"):
        KafkaSettings()
    with pytest.raises(KafkaSecurityError, match="both"):
        KafkaSecurity("SSL", cert_file=Path("client.crt"))


@pytest.mark.parametrize(
    ("brokers", "replicas", "configs"),
    [(1, 1, {}), (2, 2, {}), (3, 3, {"min.insync.replicas": "2"}), (5, 3, {"min.insync.replicas": "2"})],
)
def test_new_topics_are_replicated_for_the_cluster_size(
    brokers: int, replicas: int, configs: dict[str, str]
) -> None:
    assert replication_for(brokers) == (replicas, configs)
