"""The configuration reference: every variable described, one default per name, one naming scheme,
the generated ``docs/configuration.md`` current, and the ports and limits repeated outside Python equal to
``meshkit.config.defaults``."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from infra.paths import REPO_ROOT
from meshkit.config import defaults
from meshkit.config.base import SEED_NAMES, process_prefix
from meshkit.config.reference import Row, declarations, markdown, process_settings, rows
from meshkit.config.serve import BackendSettings
from stubs.portico.gateway.v1 import options_pb2
from stubs.posts.v1 import posts_pb2

ROOT = REPO_ROOT
ROWS = list(rows())
PROCESSES = tuple(process_settings())
# Variables that compose.yaml interpolates itself (passwords of the third-party containers); no Portico
# process reads them.
COMPOSE_OWN = {"PORTICO_POSTGRES_PASSWORD", "PORTICO_GRAFANA_ADMIN_PASSWORD"}


def all_settings() -> dict[str, type[BaseSettings]]:
    return {**process_settings(), "backend": BackendSettings}


def row(name: str) -> Row:
    return next(r for r in ROWS if r.name == name)


@pytest.mark.parametrize("name", list(all_settings()))
def test_every_field_says_what_it_does(name: str) -> None:
    for field_name, field in all_settings()[name].model_fields.items():
        assert field.description, f"{name}.{field_name} has no description"
        # A description explains the setting itself, not a document the reader cannot open.
        assert not re.search(r"\b(seed|issue) \d", field.description, re.IGNORECASE), field_name


def test_the_generated_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == markdown(), "docs/configuration.md is stale: run `make config-docs`"


def test_the_processes_are_those_of_the_procfile() -> None:
    assert set(PROCESSES) == {"gateway", "users", "auth", "posts", "broker"}


def test_the_reference_has_one_table_per_scope_and_every_variable() -> None:
    text = markdown()
    assert text.count("\n## ") == len({r.scope for r in ROWS})
    for found in ROWS:
        assert f"| `{found.name}`" in text, found.name


def test_no_variable_has_two_defaults() -> None:
    seen: dict[str, set[str]] = {}
    for name, _process, default in declarations():
        seen.setdefault(name, set()).add(default)
    assert {name: found for name, found in seen.items() if len(found) > 1} == {}


def test_no_variable_is_declared_twice_under_different_names() -> None:
    names = [n for r in ROWS for n in (r.name, *r.fallbacks)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("found", ROWS, ids=lambda r: r.name)
def test_one_naming_scheme(found: Row) -> None:
    assert re.fullmatch(r"PORTICO_[A-Z0-9]+(_[A-Z0-9]+)*", found.name), found.name
    owner = next((p for p in PROCESSES if found.name.startswith(process_prefix(p))), None)
    if found.scope in PROCESSES:
        # A process's own setting carries its prefix and is read by that process only.
        assert owner == found.scope, found.name
        assert found.read_by == (found.scope,), found.name
    elif owner is not None:
        # Mesh-wide names start with a process only as a peer's address, or as where that process
        # itself listens (the serving pieces every backend composes under its own prefix).
        is_peer = found.scope == "peers" and found.name == f"{process_prefix(owner)}TARGET"
        assert is_peer or found.read_by == (owner,), found.name
    # An older name is the same setting without the process part: the public contract's spelling; or
    # a seed's own name, as its deployments set it.
    for old in set(found.fallbacks) - SEED_NAMES:
        assert owner is not None, found.name
        assert old == "PORTICO_" + found.name.removeprefix(process_prefix(owner)), old


def test_processes_get_only_the_settings_they_read() -> None:
    settings = process_settings()
    gateway = settings["gateway"].model_fields
    for backend_only in ("database_url", "jwks_target", "outbox_retention_hours"):
        assert backend_only not in gateway, backend_only
    assert "shutdown_grace" in gateway  # the grace of its open requests and its shutdown deadline
    for process in ("users", "broker"):
        assert "users_target" not in settings[process].model_fields, process
    for process in PROCESSES:
        if process != "gateway":
            assert "posts_target" not in settings[process].model_fields, process
            assert "broker_target" not in settings[process].model_fields, process
    assert "admin_password" not in settings["posts"].model_fields
    # The broker keeps no database; users publishes events but applies none.
    for backend_store in ("database_url", "outbox_retention_hours", "processed_events_retention_hours"):
        assert backend_store not in settings["broker"].model_fields, backend_store
    for consumer_only in ("processed_events_retention_hours", "consumer_lag_interval"):
        assert consumer_only not in settings["users"].model_fields, consumer_only


def test_defaults_are_the_contract_ports_and_image_limit() -> None:
    assert defaults.GATEWAY_PORT == 8080
    assert defaults.BACKEND_PORTS == {"users": 50051, "auth": 50052, "posts": 50053, "broker": 50054}
    assert defaults.METRICS_PORTS == {"users": 9101, "auth": 9102, "posts": 9103, "broker": 9104}
    assert (defaults.KAFKA_PORT, defaults.REDIS_PORT) == (9092, 6379)
    assert defaults.MAX_IMAGE_BYTES == 5 * 1024 * 1024
    # The image and the rest of its request fit in one gRPC message, even at the highest allowed limit.
    assert defaults.MAX_IMAGE_BYTES <= defaults.MAX_IMAGE_BYTES_CEILING < defaults.GRPC_MAX_MESSAGE_BYTES


def test_settings_defaults_come_from_the_constants() -> None:
    settings = process_settings()
    for backend in ("users", "auth", "posts", "broker"):
        fields = settings[backend].model_fields
        assert fields["port"].default == defaults.BACKEND_PORTS[backend], backend
        assert fields["metrics_port"].default == defaults.METRICS_PORTS[backend], backend
    assert settings["gateway"].model_fields["port"].default == defaults.GATEWAY_PORT
    for backend in ("users", "auth", "posts", "broker"):
        assert row(f"PORTICO_{backend.upper()}_TARGET").default == f"`{defaults.local_target(backend)}`"
    assert row("PORTICO_KAFKA_BOOTSTRAP").default == f"`{defaults.KAFKA_BOOTSTRAP}`"
    assert row("PORTICO_REDIS_URL").default == f"`{defaults.REDIS_URL}`"
    assert settings["posts"].model_fields["max_image_bytes"].default == defaults.MAX_IMAGE_BYTES


def test_the_gateway_upload_limit_is_the_image_limit() -> None:
    """The proto options cannot import Python: they repeat the number, and must agree with it."""
    limits = []
    for method in posts_pb2.DESCRIPTOR.services_by_name["PostService"].methods:
        route = method.GetOptions().Extensions[options_pb2.route]
        limits += [upload.max_bytes for upload in route.uploads if upload.form_field == "image"]
    assert limits, "no image upload route found"
    assert set(limits) == {defaults.MAX_IMAGE_BYTES}


def compose_environment() -> dict[str, dict[str, object]]:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"]
    return {name: dict(service.get("environment") or {}) for name, service in services.items()}


def test_compose_targets_use_the_default_ports() -> None:
    for environment in compose_environment().values():
        for backend, port in defaults.BACKEND_PORTS.items():
            target = environment.get(f"PORTICO_{backend.upper()}_TARGET")
            if target is not None:
                assert str(target).endswith(f":{port}"), (backend, target)


# Where variables are named outside the settings classes: YAML names them bare, Python as quoted keys.
NAMED_IN = {
    "compose.yaml": ("compose.yaml", r"\b(PORTICO_[A-Z0-9_]+)\b"),
    "deploy/k8s": ("deploy/k8s/**/*.yaml", r"\b(PORTICO_[A-Z0-9_]+)\b"),
    "harness": ("harness/**/*.py", r"\"(PORTICO_[A-Z0-9_]+)\""),
    "bench": ("bench/**/*.py", r"\"(PORTICO_[A-Z0-9_]+)\""),
}
# What the benchmarks and example clients pass to themselves (a token, a user id, wrk's options and
# the body it expects).
TOOLING = {
    "PORTICO_TOKEN",
    "PORTICO_USER_ID",
    "PORTICO_WRK",
    "PORTICO_WRK_QUANTILES",
    "PORTICO_BENCH_TOKEN",
    "PORTICO_BENCH_EXPECT",
}


@pytest.mark.parametrize("where", list(NAMED_IN))
def test_deployment_files_name_only_known_variables(where: str) -> None:
    """A renamed variable left behind in a deployment file would be silently ignored."""
    known = {n for r in ROWS for n in (r.name, *r.fallbacks)} | COMPOSE_OWN | TOOLING
    glob, pattern = NAMED_IN[where]
    files = sorted(ROOT.glob(glob))
    assert files, glob
    for file in files:
        for name in re.findall(pattern, file.read_text(encoding="utf-8")):
            assert name in known, f"{file.relative_to(ROOT)} names {name}, which no process reads"


def test_the_generator_check_fails_on_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.ROOT, script.OUTPUT = tmp_path, tmp_path / "configuration.md"
    assert script.main(["--check"]) == 1  # missing
    assert script.main([]) == 0
    assert script.OUTPUT.read_text(encoding="utf-8") == markdown()
    assert script.main(["--check"]) == 0
    script.OUTPUT.write_text(
        markdown().replace("| `PORTICO_REDIS_URL`", "| `PORTICO_REDIS`"), encoding="utf-8"
    )
    assert script.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().out
