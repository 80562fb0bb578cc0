"""Settings: per-process prefixes, mesh-wide names, the contract's older names, TLS consistency."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from backends.auth.config import AuthSettings
from backends.users.config import UsersSettings
from gateway.config import GatewaySettings
from meshkit.config.reference import process_settings, rows
from meshkit.config.serve import BackendSettings
from meshkit.config.stores import run_dir
from meshkit.config.telemetry import TelemetrySettings
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


# The names the public contract publishes, renamed under their process's prefix: each still works.
FALLBACKS = [
    (
        "gateway",
        "rate_limit_per_ip",
        "PORTICO_RATE_LIMIT_PER_IP",
        "PORTICO_GATEWAY_RATE_LIMIT_PER_IP",
        "7/second",
    ),
    (
        "gateway",
        "rate_limit_per_user",
        "PORTICO_RATE_LIMIT_PER_USER",
        "PORTICO_GATEWAY_RATE_LIMIT_PER_USER",
        "7/day",
    ),
    ("gateway", "rate_limit_login", "PORTICO_RATE_LIMIT_LOGIN", "PORTICO_GATEWAY_RATE_LIMIT_LOGIN", "7/hour"),
    (
        "gateway",
        "trusted_proxies",
        "PORTICO_TRUSTED_PROXIES",
        "PORTICO_GATEWAY_TRUSTED_PROXIES",
        "10.0.0.0/8",
    ),
    ("auth", "access_token_ttl", "PORTICO_ACCESS_TOKEN_TTL", "PORTICO_AUTH_ACCESS_TOKEN_TTL", "900"),
    ("auth", "admin_password", "PORTICO_ADMIN_PASSWORD", "PORTICO_AUTH_ADMIN_PASSWORD", "Adm1n-pass-word"),
    ("auth", "expiry_time", "EXPIRY_TIME", "PORTICO_AUTH_EXPIRY_TIME", "15"),
    ("users", "users_topic", "KAFKA_USER_TOPIC", "PORTICO_USER_EVENTS_TOPIC", "user-events"),
]
_NUMBERS = {"access_token_ttl", "expiry_time"}


def _value(process: str, field: str) -> object:
    value = getattr(process_settings()[process](), field)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.mark.parametrize(("process", "field", "old", "new", "raw"), FALLBACKS, ids=[f[2] for f in FALLBACKS])
def test_the_contract_names_still_work(
    monkeypatch: pytest.MonkeyPatch, process: str, field: str, old: str, new: str, raw: str
) -> None:
    monkeypatch.delenv(new, raising=False)
    monkeypatch.setenv(old, raw)
    expected = int(raw) if field in _NUMBERS else raw
    assert _value(process, field) == expected
    # Both set: the prefixed name wins.
    newer = "other-topic" if field == "users_topic" else "1/second"
    monkeypatch.setenv(new, "60" if field in _NUMBERS else newer)
    assert _value(process, field) == (60 if field in _NUMBERS else newer)


def test_seed_001s_expiry_time_is_the_access_token_lifetime_in_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("PORTICO_AUTH_ACCESS_TOKEN_TTL", "PORTICO_ACCESS_TOKEN_TTL", "PORTICO_AUTH_EXPIRY_TIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXPIRY_TIME", "15")
    assert _value("auth", "access_token_ttl") == 900
    # The seconds setting is Portico's own: given, it wins.
    monkeypatch.setenv("PORTICO_ACCESS_TOKEN_TTL", "120")
    assert _value("auth", "access_token_ttl") == 120
    monkeypatch.setenv("EXPIRY_TIME", "0")
    with pytest.raises(ValidationError):
        _value("auth", "access_token_ttl")


def test_the_user_events_topic_is_one_setting_of_users_auth_and_posts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PORTICO_USER_EVENTS_TOPIC", raising=False)
    monkeypatch.setenv("KAFKA_USER_TOPIC", "user-events")
    assert {p: _value(p, "users_topic") for p in ("users", "auth", "posts")} == dict.fromkeys(
        ("users", "auth", "posts"), "user-events"
    )
    monkeypatch.setenv("KAFKA_USER_TOPIC", "no spaces")
    with pytest.raises(ValidationError):
        _value("users", "users_topic")


def test_every_fallback_is_exercised() -> None:
    assert {old for *_, old, _new, _raw in FALLBACKS} == {o for row in rows() for o in row.fallbacks}


def test_a_mesh_wide_name_is_the_same_for_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_REDIS_URL", "redis://10.0.0.4:6379/1")
    monkeypatch.setenv("PORTICO_USERS_REDIS_URL", "redis://wrong:1/0")  # no prefixed twin is read
    for settings in process_settings().values():
        assert settings().redis_url == "redis://10.0.0.4:6379/1"  # type: ignore[attr-defined]


def test_a_backend_reports_its_own_telemetry_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTICO_LOG_FORMAT", "text")
    telemetry = UsersSettings().telemetry()
    assert isinstance(telemetry, TelemetrySettings)
    assert telemetry.log_format == "text"


def test_the_run_directory_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PORTICO_RUN_DIR", str(tmp_path))
    assert run_dir() == tmp_path
    assert AuthSettings().keys_dir == tmp_path / "auth-keys"
