"""Settings: per-backend prefixes, mesh-wide shared names, TLS consistency."""

from __future__ import annotations

import pytest

from backends.users.config import UsersSettings
from gateway.config import GatewaySettings
from meshkit.config.serve import BackendSettings
from meshkit.rpc.tls import server_credentials


def test_backend_defaults_match_the_contract_ports() -> None:
    settings = UsersSettings()
    assert (settings.host, settings.port, settings.metrics_port) == ("127.0.0.1", 50051, 9101)


def test_backend_prefix_and_shared_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_USERS_PORT", "6001")
    monkeypatch.setenv("PORTICO_AUTH_PORT", "6002")  # another backend's setting must not leak in
    monkeypatch.setenv("PORTICO_KAFKA_BOOTSTRAP", "10.0.0.1:9092")
    monkeypatch.setenv("PORTICO_SHUTDOWN_GRACE", "3.5")
    settings = UsersSettings()
    assert settings.port == 6001
    assert settings.kafka_bootstrap == "10.0.0.1:9092"
    assert settings.shutdown_grace == 3.5


def test_gateway_targets_come_from_the_backend_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_POSTS_TARGET", "dns:///posts:50053")
    monkeypatch.setenv("PORTICO_GATEWAY_PORT", "9000")
    settings = GatewaySettings()
    assert settings.port == 9000
    assert settings.upstream_targets()["posts"] == "dns:///posts:50053"
    assert settings.upstream_targets()["users"] == "127.0.0.1:50051"


def test_tls_needs_both_certificate_and_key(tmp_path: pytest.TempPathFactory) -> None:
    settings = BackendSettings(port=1, metrics_port=2, tls_cert_file="/nonexistent/cert.pem")
    with pytest.raises(ValueError, match="both a certificate and a private key"):
        server_credentials(settings)
    assert server_credentials(BackendSettings(port=1, metrics_port=2)) is None


def test_settings_built_in_code_honour_the_shared_fields() -> None:
    settings = GatewaySettings(kafka_bootstrap="10.0.0.2:9092", redis_url="redis://10.0.0.2:6379/0")
    assert settings.kafka_bootstrap == "10.0.0.2:9092"
    assert settings.redis_url == "redis://10.0.0.2:6379/0"
    assert UsersSettings(kafka_bootstrap="10.0.0.3:9092").kafka_bootstrap == "10.0.0.3:9092"
