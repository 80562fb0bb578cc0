"""compose.yaml, checked without a Docker engine: Debian's docker-compose validates it (`config`), then its
resolved form is held to what the processes really read (settings, ports, the Procfile's commands) and
to the files it mounts (collector, Prometheus, Grafana provisioning)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml

from backends.auth.config import AuthSettings
from backends.broker.config import BrokerSettings
from backends.posts.config import PostsSettings
from backends.users.config import UsersSettings
from gateway.config import GatewaySettings
from harness.procfile import procfile_modules
from infra.paths import REPO_ROOT
from meshkit.config.serve import BackendSettings

ROOT = REPO_ROOT
COMPOSE = ROOT / "compose.yaml"
BACKENDS: dict[str, type[BackendSettings]] = {
    "users": UsersSettings,
    "auth": AuthSettings,
    "posts": PostsSettings,
    "broker": BrokerSettings,
}
PORTICO = (*BACKENDS, "gateway")
COLLECTOR = "otel-collector"
# Environment names that hold credentials: never a literal in the file (see docs/deploying.md).
SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|TOKEN|ACCESS_KEY")
DEV_DEFAULT = re.compile(r"^\$\{[A-Z0-9_]+:-[^}]*dev-only[^}]*\}$")
URL_CREDENTIALS = re.compile(r"[a-z0-9+]+://[^:/@\s]+:([^@\s]+)@")

Json = dict[str, Any]


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    assert found, "docker-compose (Debian) is installed by `python -m infra install` (make test does it)"
    return found


def run_compose(*args: str, file: Path = COMPOSE) -> subprocess.CompletedProcess[str]:
    # Interpolation must come from the file's own defaults, never from the caller's shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTICO_", "COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [docker_compose(), "--project-directory", str(ROOT), "-f", str(file), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@cache
def resolved() -> Json:
    """The file as compose itself understands it: anchors merged, variables interpolated."""
    result = run_compose("config")
    assert result.returncode == 0, result.stderr
    return cast(Json, yaml.safe_load(result.stdout))


@cache
def raw() -> Json:
    return cast(Json, yaml.safe_load(COMPOSE.read_text()))


def services() -> dict[str, Json]:
    return cast(dict[str, Json], resolved()["services"])


def env_of(service: str) -> dict[str, str | None]:
    return cast(dict[str, str | None], services()[service].get("environment", {}))


def named_volume_target(service: str, target: str) -> str | None:
    """The named volume mounted at ``target`` in ``service`` (None when it is not a named volume)."""
    for mount in services()[service].get("volumes", []):
        source, _, rest = str(mount).partition(":")
        if rest.split(":")[0] == target and not source.startswith(("/", ".")):
            return source
    return None


def bind_mounts(service: str) -> dict[str, Path]:
    """Container path → host path of the bind mounts of ``service``."""
    mounts = {}
    for mount in services()[service].get("volumes", []):
        source, _, rest = str(mount).partition(":")
        if source.startswith(("/", ".")):
            mounts[rest.split(":")[0]] = Path(source)
    return mounts


def published(service: str) -> set[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port, short or long syntax."""
    found = set()
    for port in services()[service].get("ports", []):
        if isinstance(port, dict):
            found.add((str(port.get("host_ip", "")), int(port["published"]), int(port["target"])))
        else:
            host_ip, host, container = str(port).split("/")[0].rsplit(":", 2)
            found.add((host_ip, int(host), int(container)))
    return found


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    assert parts.hostname is not None, url
    assert parts.port is not None, url
    return parts.hostname, parts.port


# --- the real validator ------------------------------------------------------------------------------


def test_docker_compose_accepts_the_file() -> None:
    result = run_compose("config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_docker_compose_rejects_a_broken_copy(tmp_path: Path) -> None:
    """The validator is real: the same file with a wrong depends_on condition is refused."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("service_healthy", "service_ready", 1))
    result = run_compose("config", "--quiet", file=broken)
    assert result.returncode != 0
    assert "service_ready" in result.stderr


# --- health and start order --------------------------------------------------------------------------


def test_every_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert len(check["test"]) > 1, name


def test_every_dependency_waits_for_health() -> None:
    for name, service in services().items():
        for dependency, how in service.get("depends_on", {}).items():
            assert how == {"condition": "service_healthy"} or how.get("condition") == "service_healthy", (
                f"{name} → {dependency}: {how}"
            )
            assert dependency in services(), f"{name} depends on unknown {dependency}"


def test_the_gateway_starts_after_every_backend() -> None:
    assert set(BACKENDS) <= set(services()["gateway"]["depends_on"])


def test_portico_healthchecks_ask_the_right_port() -> None:
    for name, settings in BACKENDS.items():
        test = services()[name]["healthcheck"]["test"]
        port = settings.model_fields["port"].default
        assert test == ["CMD", "python", "deploy/healthcheck.py", "grpc", str(port)], name
    gateway = services()["gateway"]["healthcheck"]["test"]
    assert gateway == ["CMD", "python", "deploy/healthcheck.py", "http", "http://127.0.0.1:8080/ready"]
    assert (ROOT / "deploy" / "healthcheck.py").is_file()


# --- the Portico processes ---------------------------------------------------------------------------


def test_portico_services_are_the_procfile_processes_from_one_image() -> None:
    modules = procfile_modules()
    assert set(modules) == set(PORTICO)
    images = set()
    for name, module in modules.items():
        service = services()[name]
        assert service["command"] == ["python", "-m", module], name
        assert service["build"]["context"] == str(ROOT), name
        images.add(service["image"])
    assert len(images) == 1, images


def test_portico_processes_listen_on_all_interfaces_inside_their_container() -> None:
    for name in BACKENDS:
        assert env_of(name)[f"PORTICO_{name.upper()}_HOST"] == "0.0.0.0"
    assert env_of("gateway")["PORTICO_GATEWAY_HOST"] == "0.0.0.0"


def test_every_portico_process_exports_traces_to_the_collector() -> None:
    collector = yaml.safe_load((ROOT / "observability" / "otel-collector" / "config.yaml").read_text())
    grpc_port = host_port(collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])[1]
    for name in PORTICO:
        endpoint = env_of(name).get("PORTICO_OTLP_ENDPOINT")
        assert endpoint, f"{name} has no PORTICO_OTLP_ENDPOINT"
        assert host_port(endpoint) == (COLLECTOR, grpc_port), name


def test_backends_with_a_database_use_postgresql_and_the_others_none() -> None:
    postgres_env = cast(dict[str, str], services()["postgres"]["environment"])
    for name in PORTICO:
        url = env_of(name).get("PORTICO_DATABASE_URL")
        if (ROOT / "backends" / name / "migrations").is_dir():
            assert url, f"{name} has migrations but no PORTICO_DATABASE_URL"
            parts = urlsplit(url)
            assert parts.scheme == "postgresql+asyncpg", url
            assert (parts.hostname, parts.port) == ("postgres", 5432)
            assert parts.username == postgres_env["POSTGRES_USER"]
            assert parts.password == postgres_env["POSTGRES_PASSWORD"]
            assert parts.path == f"/{postgres_env['POSTGRES_DB']}"
            assert services()[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
        else:
            assert url is None, f"{name} keeps no data and gets no database credentials"


def test_shared_services_are_reached_by_service_name() -> None:
    for name in PORTICO:
        env = env_of(name)
        assert host_port(str(env["PORTICO_KAFKA_BOOTSTRAP"])) == ("kafka", 9092), name
        assert host_port(str(env["PORTICO_REDIS_URL"])) == ("redis", 6379), name
        assert {"kafka", "redis"} <= set(services()[name]["depends_on"]), name


def test_gateway_upstream_targets_name_the_backend_services() -> None:
    env = env_of("gateway")
    for name, settings in BACKENDS.items():
        target = env[f"PORTICO_{name.upper()}_TARGET"]
        assert target == f"dns:///{name}:{settings.model_fields['port'].default}", name
    assert set(GatewaySettings().upstream_targets()) == set(BACKENDS)


def test_backends_find_the_auth_keys_and_users() -> None:
    auth_port = AuthSettings.model_fields["port"].default
    users_port = UsersSettings.model_fields["port"].default
    for name in BACKENDS:
        assert env_of(name)["PORTICO_AUTH_TARGET"] == f"dns:///auth:{auth_port}", name
    for name in ("auth", "posts"):
        assert env_of(name)["PORTICO_USERS_TARGET"] == f"dns:///users:{users_port}", name


def test_gateway_is_published_on_8080_of_localhost_only() -> None:
    assert ("127.0.0.1", 8080, GatewaySettings.model_fields["port"].default) in published("gateway")
    for name in services():
        for host_ip, host, _ in published(name):
            assert host_ip == "127.0.0.1", f"{name} publishes {host} beyond this machine"


def test_durable_state_lives_in_named_volumes() -> None:
    declared = set(resolved()["volumes"])
    keys_dir = env_of("auth")["PORTICO_AUTH_KEYS_DIR"]
    assert keys_dir
    assert named_volume_target("auth", keys_dir) in declared
    blobs = env_of("posts")["PORTICO_POSTS_BLOB_STORE_URL"]
    assert blobs
    assert named_volume_target("posts", blobs) in declared
    assert named_volume_target("postgres", "/var/lib/postgresql/data") in declared
    assert named_volume_target("kafka", "/var/lib/kafka/data") in declared
    assert env_of("kafka")["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


# --- images and credentials --------------------------------------------------------------------------


def test_third_party_images_are_pinned() -> None:
    for name, service in services().items():
        if name in PORTICO:
            continue
        image = str(service["image"])
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"


def _strings(node: object, path: str = "") -> list[tuple[str, object]]:
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _strings(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in _strings(value, f"{path}[{i}]")]
    return [(path, node)]


def test_no_credential_is_written_in_the_file() -> None:
    """Credentials are either passed through from the shell (no value) or a visible dev-only default."""
    checked = 0
    for path, value in _strings(raw()):
        key = path.rsplit(".", 1)[-1]
        if SECRET_NAME.search(key) and ".environment." in path:
            checked += 1
            literal = isinstance(value, str) and not DEV_DEFAULT.match(value)
            assert value is None or not literal, f"{path}: {value!r}"
            assert value is None or isinstance(value, str), path
        if isinstance(value, str):
            for password in URL_CREDENTIALS.findall(value):
                checked += 1
                assert DEV_DEFAULT.match(password), f"{path}: a password in a URL must be ${{VAR:-…dev-only}}"
    assert checked >= 4  # postgres, the database URL, Grafana, the auth passphrase and admin password


def test_pass_through_secrets_really_pass_through() -> None:
    auth = env_of("auth")
    for name in ("PORTICO_AUTH_ADMIN_PASSWORD", "PORTICO_ADMIN_PASSWORD", "PORTICO_AUTH_KEYS_PASSPHRASE"):
        assert name in auth, name
        assert auth[name] is None, name


# --- the telemetry stack and its mounted files -------------------------------------------------------


def test_mounted_files_exist_in_the_repository() -> None:
    mounted = 0
    for name in services():
        for target, source in bind_mounts(name).items():
            assert source.exists(), f"{name} mounts missing {source} at {target}"
            assert source.resolve().is_relative_to(ROOT), source
            mounted += 1
    assert mounted >= 4


def test_collector_pipeline_sends_traces_to_jaeger_over_otlp() -> None:
    config = yaml.safe_load((ROOT / "observability" / "otel-collector" / "config.yaml").read_text())
    mounted = bind_mounts(COLLECTOR)
    command = services()[COLLECTOR]["command"]
    assert any(f"--config={target}" == arg for arg in command for target in mounted), command
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    for kind in ("receivers", "processors", "exporters"):
        for component in traces[kind]:
            assert component in config[kind], f"{kind}: {component} used but not defined"
    assert traces["processors"][0] == "memory_limiter"
    (exporter,) = traces["exporters"]
    assert exporter.split("/")[0] == "otlp"
    assert host_port(config["exporters"][exporter]["endpoint"]) == ("jaeger", 4317)
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"], extension
    assert services()[COLLECTOR]["depends_on"]["jaeger"] == {"condition": "service_healthy"}


def test_prometheus_loads_the_repository_config_and_rules() -> None:
    mounts = bind_mounts("prometheus")
    assert mounts["/etc/prometheus"] == ROOT / "observability" / "prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services()["prometheus"]["command"]


def test_grafana_provisioning_points_at_the_compose_services() -> None:
    mounts = bind_mounts("grafana")
    provisioning = ROOT / "observability" / "grafana" / "provisioning"
    assert mounts["/etc/grafana/provisioning"] == provisioning
    sources = yaml.safe_load((provisioning / "datasources" / "portico.yml").read_text())["datasources"]
    by_type = {source["type"]: source for source in sources}
    assert host_port(by_type["prometheus"]["url"]) == ("prometheus", 9090)
    assert host_port(by_type["jaeger"]["url"]) == ("jaeger", 16686)
    exemplars = by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplars == [{"name": "trace_id", "datasourceUid": by_type["jaeger"]["uid"]}]
    providers = yaml.safe_load((provisioning / "dashboards" / "portico.yml").read_text())["providers"]
    (provider,) = providers
    dashboards_dir = provider["options"]["path"]
    assert mounts[dashboards_dir] == ROOT / "observability" / "grafana" / "dashboards"


@pytest.mark.parametrize("name", ["prometheus", "jaeger", "grafana"])
def test_telemetry_uis_are_published(name: str) -> None:
    assert published(name), f"{name} publishes no port"
