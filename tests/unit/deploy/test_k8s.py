"""deploy/k8s, checked offline: kustomize (pinned, built by `python -m infra install`) renders the base and
the production overlay, kubernetes-validate checks every resource against the schemas of a pinned
Kubernetes version (strict: unknown fields are errors), and the rendered Deployments are held to what
the processes need — probes on their health endpoints, limits, a non-root security context, several
replicas and no durable state on the node."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from typing import Any, cast
from urllib.parse import urlsplit

import kubernetes_validate
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
from meshkit.rpc.health import LIVENESS

ROOT = REPO_ROOT
KUSTOMIZE = ROOT / ".cache" / "bin" / "kustomize"
KUBERNETES_VERSION = "1.33.0"  # the oldest minor still supported upstream when this was written
BASE = "deploy/k8s/base"
OVERLAYS = ("deploy/k8s/overlays/production",)
BACKENDS: dict[str, type[BackendSettings]] = {
    "users": UsersSettings,
    "auth": AuthSettings,
    "posts": PostsSettings,
    "broker": BrokerSettings,
}
PORTICO = (*BACKENDS, "gateway")
SCRATCH = "/tmp"  # noqa: S108 (the containers' scratch mount, not a file this test writes)
SECRET_NAME = re.compile(r"PASSWORD|PASSPHRASE|SECRET|TOKEN|ACCESS_KEY|DATABASE_URL")

Json = dict[str, Any]


@cache
def render(directory: str) -> tuple[Json, ...]:
    assert KUSTOMIZE.exists(), "kustomize is built by `python -m infra install` (make test does it)"
    result = subprocess.run(
        [str(KUSTOMIZE), "build", str(ROOT / directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(cast(Json, doc) for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(resources: tuple[Json, ...], kind: str) -> dict[str, Json]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def container(deployment: Json) -> Json:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return cast(Json, only)


def port_number(main: Json, port: int | str) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in main["ports"] if p["name"] == port]
    return int(number)


def env_value(main: Json, name: str) -> Json | None:
    return next((cast(Json, e) for e in main.get("env", []) if e["name"] == name), None)


def config_map(resources: tuple[Json, ...]) -> dict[str, str]:
    maps = [m for name, m in of_kind(resources, "ConfigMap").items() if name.startswith("portico-config")]
    (only,) = maps
    return cast(dict[str, str], only["data"])


RENDERED = (BASE, *OVERLAYS)


def test_kustomize_is_the_pinned_version() -> None:
    from infra.install import GO_TOOLS

    result = subprocess.run([str(KUSTOMIZE), "version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == GO_TOOLS["kustomize"][1]


@pytest.mark.parametrize("directory", RENDERED)
def test_every_resource_is_valid_for_the_pinned_kubernetes(directory: str) -> None:
    resources = render(directory)
    assert len(resources) >= 15
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_an_unknown_field() -> None:
    """kubernetes-validate is strict: a misspelt probe is an error, not silently ignored."""
    deployment = of_kind(render(BASE), "Deployment")["users"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    container(broken)["readinesProbe"] = container(broken).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("directory", RENDERED)
def test_one_deployment_per_procfile_process(directory: str) -> None:
    deployments = of_kind(render(directory), "Deployment")
    modules = procfile_modules()
    assert set(deployments) == set(modules) == set(PORTICO)
    images = set()
    for name, module in modules.items():
        main = container(deployments[name])
        assert main["command"] == ["python", "-m", module], name
        images.add(main["image"])
    assert len(images) == 1, images


@pytest.mark.parametrize("directory", RENDERED)
def test_backend_probes_use_grpc_health(directory: str) -> None:
    deployments = of_kind(render(directory), "Deployment")
    for name, settings in BACKENDS.items():
        main = container(deployments[name])
        grpc_port = settings.model_fields["port"].default
        assert {p["containerPort"] for p in main["ports"]} == {
            grpc_port,
            settings.model_fields["metrics_port"].default,
        }
        # Ready: grpc.health.v1 service "" SERVING, which follows only what the backend cannot serve
        # without (its database; the broker's Kafka).
        assert main["readinessProbe"]["grpc"] == {"port": grpc_port}, name
        # Alive (and started): the liveness health service, which follows no dependency (a Kafka or
        # Redis outage restarts nothing) but needs the process to answer.
        for probe in ("livenessProbe", "startupProbe"):
            assert main[probe]["grpc"] == {"port": grpc_port, "service": LIVENESS}, f"{name}: {probe}"
        env = {e["name"]: e.get("value") for e in main["env"]}
        assert env[f"PORTICO_{name.upper()}_HOST"] == "0.0.0.0", name


@pytest.mark.parametrize("directory", RENDERED)
def test_gateway_probes_use_health_and_ready(directory: str) -> None:
    main = container(of_kind(render(directory), "Deployment")["gateway"])
    port = GatewaySettings.model_fields["port"].default
    readiness = main["readinessProbe"]["httpGet"]
    liveness = main["livenessProbe"]["httpGet"]
    assert (readiness["path"], port_number(main, readiness["port"])) == ("/ready", port)
    assert (liveness["path"], port_number(main, liveness["port"])) == ("/health", port)
    assert main["startupProbe"]["httpGet"]["path"] == "/health"
    assert env_value(main, "PORTICO_GATEWAY_HOST") == {"name": "PORTICO_GATEWAY_HOST", "value": "0.0.0.0"}


@pytest.mark.parametrize("directory", RENDERED)
def test_every_container_has_requests_and_limits(directory: str) -> None:
    for name, deployment in of_kind(render(directory), "Deployment").items():
        resources = container(deployment)["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), f"{name}: {bound}"


@pytest.mark.parametrize("directory", RENDERED)
def test_every_pod_runs_unprivileged(directory: str) -> None:
    for name, deployment in of_kind(render(directory), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for main in pod["containers"]:
            context = main["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert not context.get("privileged"), name


@pytest.mark.parametrize("directory", RENDERED)
def test_every_process_runs_several_replicas_and_keeps_one_through_disruptions(directory: str) -> None:
    resources = render(directory)
    budgets = of_kind(resources, "PodDisruptionBudget")
    autoscalers = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(resources, "HorizontalPodAutoscaler").values()
    }
    for name, deployment in of_kind(resources, "Deployment").items():
        assert deployment["spec"]["replicas"] >= 2, name
        if name in autoscalers:
            assert autoscalers[name]["spec"]["minReplicas"] >= 2, name
        selector = deployment["spec"]["selector"]["matchLabels"]
        covering = [b for b in budgets.values() if b["spec"]["selector"]["matchLabels"] == selector]
        assert covering, f"{name} has no PodDisruptionBudget"
        assert covering[0]["spec"]["minAvailable"] >= 1, name
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name


def image_run_dir() -> str:
    """``PORTICO_RUN_DIR`` as the image sets it."""
    found = re.search(r"PORTICO_RUN_DIR=(\S+)", (REPO_ROOT / "Dockerfile").read_text())
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("directory", RENDERED)
def test_every_process_can_write_its_run_directory(directory: str) -> None:
    """The root filesystem is read-only: the run directory (where a verifier keeps the last key set it
    fetched, to check tokens after a restart while auth is unreachable) must be a volume."""
    for name, deployment in of_kind(render(directory), "Deployment").items():
        run_dir = env_value(container(deployment), "PORTICO_RUN_DIR")
        path = run_dir["value"] if run_dir is not None else image_run_dir()
        mounts = [m["mountPath"] for m in container(deployment).get("volumeMounts", [])]
        assert path in mounts, f"{name}: {path} is not writable"


@pytest.mark.parametrize("directory", RENDERED)
def test_no_durable_state_on_the_node(directory: str) -> None:
    """Stateless replicas: no hostPath, emptyDir only as /tmp scratch, and the one volume (the auth keys)
    is a ReadWriteMany claim that every replica shares."""
    resources = render(directory)
    claims = of_kind(resources, "PersistentVolumeClaim")
    for name, deployment in of_kind(resources, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for volume in volumes.values():
            assert "hostPath" not in volume, name
            if "persistentVolumeClaim" in volume:
                claim = claims[volume["persistentVolumeClaim"]["claimName"]]
                assert claim["spec"]["accessModes"] == ["ReadWriteMany"], name
        for mount in container(deployment).get("volumeMounts", []):
            if "emptyDir" in volumes[mount["name"]]:
                # Scratch, or the run directory, which holds only a cache (the last JWKS key set).
                where = mount["mountPath"]
                assert where in (SCRATCH, image_run_dir()), f"{name}: emptyDir at {where} is lost"
    auth = container(of_kind(resources, "Deployment")["auth"])
    keys_dir = env_value(auth, "PORTICO_AUTH_KEYS_DIR")
    assert keys_dir is not None
    keys_mount = next(m for m in auth["volumeMounts"] if m["mountPath"] == keys_dir["value"])
    auth_volumes = of_kind(resources, "Deployment")["auth"]["spec"]["template"]["spec"]["volumes"]
    assert any(v["name"] == keys_mount["name"] and "persistentVolumeClaim" in v for v in auth_volumes)


@pytest.mark.parametrize("directory", RENDERED)
def test_post_images_go_to_object_storage(directory: str) -> None:
    blob_store = config_map(render(directory))["PORTICO_POSTS_BLOB_STORE_URL"]
    assert urlsplit(blob_store).scheme == "s3", blob_store


@pytest.mark.parametrize("directory", RENDERED)
def test_credentials_come_from_the_secret(directory: str) -> None:
    resources = render(directory)
    assert not of_kind(resources, "Secret"), "secrets are created out of band, never rendered from the repo"
    for key in config_map(resources):
        assert not SECRET_NAME.search(key), f"{key} belongs in the Secret, not the ConfigMap"
    for name, deployment in of_kind(resources, "Deployment").items():
        main = container(deployment)
        for entry in main.get("env", []):
            if SECRET_NAME.search(entry["name"]):
                assert "value" not in entry, f"{name}: {entry['name']} is written in the manifest"
                assert entry["valueFrom"]["secretKeyRef"]["name"] == "portico-secrets", name
        database = env_value(main, "PORTICO_DATABASE_URL")
        if (ROOT / "backends" / name / "migrations").is_dir():
            assert database is not None, f"{name} has migrations but no database URL"
            assert database["valueFrom"]["secretKeyRef"]["key"] == "database-url"
        else:
            assert database is None, f"{name} keeps no data and gets no database credentials"


@pytest.mark.parametrize("directory", RENDERED)
def test_services_and_targets_agree(directory: str) -> None:
    resources = render(directory)
    services = of_kind(resources, "Service")
    config = config_map(resources)
    assert urlsplit(config["PORTICO_OTLP_ENDPOINT"]).port == 4317
    for name, settings in BACKENDS.items():
        service = services[name]
        assert service["spec"]["clusterIP"] == "None", f"{name}: headless, so gRPC balances across replicas"
        grpc_port = settings.model_fields["port"].default
        assert {"name": "grpc", "port": grpc_port, "targetPort": "grpc", "appProtocol": "grpc"} in service[
            "spec"
        ]["ports"]
        assert config[f"PORTICO_{name.upper()}_TARGET"] == f"dns:///{name}:{grpc_port}"
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}
    gateway = services["gateway"]
    assert gateway["spec"]["ports"][0]["targetPort"] == "http"
    (config_name,) = [name for name in of_kind(resources, "ConfigMap") if name.startswith("portico-config")]
    for name, deployment in of_kind(resources, "Deployment").items():
        assert {"configMapRef": {"name": config_name}} in container(deployment)["envFrom"], name


@pytest.mark.parametrize("directory", OVERLAYS)
def test_overlay_pins_the_image_and_isolates_the_namespace(directory: str) -> None:
    resources = render(directory)
    (namespace,) = of_kind(resources, "Namespace").values()
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == namespace["metadata"]["name"], resource["metadata"][
                "name"
            ]
    for name, deployment in of_kind(resources, "Deployment").items():
        image = container(deployment)["image"]
        repository, _, tag = image.rpartition(":")
        assert "/" in repository, f"{name}: {image} names no registry"
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not a pinned release"


def selects(selector: Json, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and In/NotIn expressions) matches ``labels``."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"]) in expression.get("values", [])
        if (expression["operator"] == "In") != present:
            return False
    return True


@pytest.mark.parametrize("directory", RENDERED)
def test_backend_grpc_ports_answer_only_portico_pods(directory: str) -> None:
    resources = render(directory)
    policies = of_kind(resources, "NetworkPolicy").values()
    deployments = of_kind(resources, "Deployment")
    pod_labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    outsider = {"app.kubernetes.io/name": "something-else"}
    for name, settings in BACKENDS.items():
        covering = [p for p in policies if selects(p["spec"]["podSelector"], pod_labels[name])]
        assert covering, f"{name} has no NetworkPolicy: any pod in the cluster may call it"
        grpc_port = settings.model_fields["port"].default
        allowed = [
            rule
            for policy in covering
            for rule in policy["spec"]["ingress"]
            if not rule.get("ports") or any(p["port"] == grpc_port for p in rule["ports"])
        ]
        assert allowed, f"{name}: nothing may reach its gRPC port"
        for rule in allowed:
            sources = rule.get("from")
            assert sources, f"{name}: its gRPC port is open to every pod"
            assert not any(selects(s.get("podSelector", {}), outsider) for s in sources), name
            for caller in PORTICO:
                if caller != name:
                    assert any(selects(s["podSelector"], pod_labels[caller]) for s in sources), (name, caller)
    gateway = [p for p in policies if selects(p["spec"]["podSelector"], pod_labels["gateway"])]
    assert gateway, "the gateway has no NetworkPolicy"


def spread(deployment: Json) -> dict[str, Json]:
    """The pod's topology spread constraints by topology key."""
    constraints = deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
    return {c["topologyKey"]: cast(Json, c) for c in constraints}


@pytest.mark.parametrize("directory", RENDERED)
def test_replicas_prefer_different_nodes(directory: str) -> None:
    for name, deployment in of_kind(render(directory), "Deployment").items():
        node = spread(deployment).get("kubernetes.io/hostname")
        assert node is not None, f"{name}: replicas may pile onto one node"
        # A preference: a cluster with fewer nodes than replicas still runs them all.
        assert node["whenUnsatisfiable"] == "ScheduleAnyway", name
        assert node["maxSkew"] == 1, name
        assert node["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"], name


@pytest.mark.parametrize("directory", OVERLAYS)
def test_production_spreads_every_process_over_zones(directory: str) -> None:
    """Losing a zone takes at most its share of each process: a hard constraint, evaluated per revision
    (pod-template-hash) and only over nodes whose taints the pods tolerate."""
    for name, deployment in of_kind(render(directory), "Deployment").items():
        zone = spread(deployment).get("topology.kubernetes.io/zone")
        assert zone is not None, f"{name}: one zone may hold every replica"
        assert zone["whenUnsatisfiable"] == "DoNotSchedule", name
        assert zone["maxSkew"] == 1, name
        assert zone["nodeTaintsPolicy"] == "Honor", name
        assert zone["matchLabelKeys"] == ["pod-template-hash"], name
        assert zone["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"], name
        assert "minDomains" not in zone, f"{name}: minDomains would leave pods Pending on a two-zone cluster"


@pytest.mark.parametrize("directory", RENDERED)
def test_readiness_acts_before_liveness(directory: str) -> None:
    """Ready and live are different questions (docs/operations.md); a replica that stops answering
    leaves the Service before it is restarted, and a slow start is not killed by liveness."""
    for name, deployment in of_kind(render(directory), "Deployment").items():
        main = container(deployment)
        ready, live, started = main["readinessProbe"], main["livenessProbe"], main["startupProbe"]
        assert ready != live, f"{name}: readiness and liveness are the same probe"
        ready_after = ready["periodSeconds"] * ready["failureThreshold"]
        live_after = live["periodSeconds"] * live["failureThreshold"]
        assert ready_after < live_after, name
        assert started["periodSeconds"] * started["failureThreshold"] >= live_after, name


@pytest.mark.parametrize("directory", RENDERED)
def test_autoscalers_agree_with_deployments_and_budgets(directory: str) -> None:
    resources = render(directory)
    deployments = of_kind(resources, "Deployment")
    budgets = of_kind(resources, "PodDisruptionBudget")
    for hpa_name, hpa in of_kind(resources, "HorizontalPodAutoscaler").items():
        spec = hpa["spec"]
        target = spec["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment"), hpa_name
        deployment = deployments[target["name"]]
        low, high = spec["minReplicas"], spec["maxReplicas"]
        assert 2 <= low < high, hpa_name
        # `kubectl apply` resets the Deployment's count; within the bounds the autoscaler does not fight it.
        assert low <= deployment["spec"]["replicas"] <= high, hpa_name
        (budget,) = [b for b in budgets.values() if b["spec"]["selector"] == deployment["spec"]["selector"]]
        assert budget["spec"]["minAvailable"] < low, f"{hpa_name}: at the minimum, a node drain would block"
        for metric in spec["metrics"]:
            if metric["type"] == "Resource":
                resource = metric["resource"]["name"]
                assert resource in container(deployment)["resources"]["requests"], (
                    f"{hpa_name}: utilisation of {resource} needs a request"
                )


def effective_database(deployment: Json, config: dict[str, str]) -> str:
    """Where a backend's database is: "secret" (PostgreSQL: docs/deploying.md), or a literal URL; unset
    means DatabaseSettings' default, a SQLite file in the pod's own run directory."""
    entry = env_value(container(deployment), "PORTICO_DATABASE_URL")
    if entry is None:
        return config.get("PORTICO_DATABASE_URL", "sqlite (default)")
    return "secret" if "valueFrom" in entry else str(entry["value"])


@pytest.mark.parametrize("directory", RENDERED)
def test_no_replicated_backend_keeps_its_data_in_sqlite(directory: str) -> None:
    """SQLite is one file in one pod: a second replica would have a database of its own. Every backend
    with tables runs several replicas, so its URL must come from the Secret (PostgreSQL), and the key is
    required: a Secret without it stops the pod instead of starting it on the SQLite default."""
    resources = render(directory)
    config = config_map(resources)
    scaled = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(resources, "HorizontalPodAutoscaler").values()
    }
    for name, deployment in of_kind(resources, "Deployment").items():
        if not (ROOT / "backends" / name / "migrations").is_dir():
            continue
        database = effective_database(deployment, config)
        if deployment["spec"]["replicas"] > 1 or name in scaled:
            assert database == "secret", f"{name}: {database} with several replicas"
            reference = env_value(container(deployment), "PORTICO_DATABASE_URL")
            assert reference is not None
            assert not reference["valueFrom"]["secretKeyRef"].get("optional"), name
        assert "sqlite" not in database or deployment["spec"]["replicas"] == 1, name


def test_the_documented_database_url_is_postgresql() -> None:
    documented = re.findall(r"database-url='([^']+)'", (ROOT / "docs" / "deploying.md").read_text())
    assert documented, "docs/deploying.md shows how to create the Secret"
    assert all(urlsplit(url).scheme == "postgresql+asyncpg" for url in documented), documented
