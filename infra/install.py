"""`python -m infra install`: fetch or install whatever is missing, one progress line per step.

Every step first checks cheaply whether its result is already there (no JVM start, no network), so a
complete setup is verified in well under a second.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra import apt, kafka_probe, kafka_server, paths, postgres_server
from infra.procs import free_ports, spawn, stop_group, wait_until

GO_TOOLS = {
    "grpcurl": ("github.com/fullstorydev/grpcurl/cmd/grpcurl", "v1.9.3"),
    "ghz": ("github.com/bojand/ghz/cmd/ghz", "v0.120.0"),
    "kustomize": ("sigs.k8s.io/kustomize/kustomize/v5", "v5.7.1"),  # renders deploy/k8s for its tests
}
JAVA_MIN_MAJOR = 17  # Kafka 4 brokers need Java 17+
LIBS_COMPLETE = ".complete"  # written last, so a half-copied libs/ is never taken as present


class InstallError(RuntimeError):
    pass


@dataclass(frozen=True)
class Step:
    """One install step: `run` returns None when the thing was already there, else what it did."""

    label: str
    run: Callable[[], str | None]


# --- Kafka -----------------------------------------------------------------------------------------


def _java_major(java: str) -> int:
    """Java feature version from the JDK's `release` file (no JVM start), else from `java -version`."""
    release = Path(java).resolve().parent.parent / "release"
    text = release.read_text() if release.exists() else ""
    if not text:
        text = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version\s*[=\s]"?(\d+)', text, re.IGNORECASE)
    return int(match.group(1)) if match else 0


def ensure_java() -> str | None:
    java = shutil.which("java") if not os.environ.get("JAVA_HOME") else kafka_server.java_bin()
    if java and _java_major(java) >= JAVA_MIN_MAJOR:
        return None
    apt.install(["default-jre-headless"])
    if _java_major(kafka_server.java_bin()) < JAVA_MIN_MAJOR:
        raise InstallError(f"Java {JAVA_MIN_MAJOR}+ needed for Kafka 4; set JAVA_HOME to one")
    return "installed"


def check_jar_set(libs: Path) -> None:
    """Fail on a mixed jar set (two versions of one artifact, or of jackson/log4j/scala/kafka)."""
    versions: dict[str, str] = {}
    for jar in libs.glob("*.jar"):
        match = re.fullmatch(r"(.+?)-(\d[\w.]*(?:-[\w.]+)?)\.jar", jar.name)
        if match is None:
            continue
        artifact, version = match.groups()
        if artifact in versions:
            raise InstallError(f"two versions of {artifact} in {libs}")
        versions[artifact] = version
    families: dict[str, set[str]] = {}
    for artifact, version in versions.items():
        if artifact.startswith("jackson-"):
            families.setdefault("jackson", set()).add(".".join(version.split(".")[:2]))  # annotations: 2.x
        elif artifact.startswith("log4j-"):
            families.setdefault("log4j", set()).add(version)
        elif artifact in ("scala-library", "scala-reflect"):
            families.setdefault("scala", set()).add(version)
        elif artifact.startswith("kafka"):
            families.setdefault("kafka", set()).add(version)
    mixed = {name: sorted(found) for name, found in families.items() if len(found) > 1}
    if mixed:
        raise InstallError(f"incoherent Kafka jar set in {libs}: {mixed}")
    if "log4j-slf4j-impl" not in versions:
        raise InstallError("log4j-slf4j-impl missing: the broker would log nothing")


def fetch_kafka_jars() -> str | None:
    """Maven copies the broker's runtime jars into .cache/kafka/<version>/libs (staged, then renamed)."""
    libs = paths.kafka_libs_dir()
    if (libs / LIBS_COMPLETE).exists():
        return None
    if shutil.which("mvn") is None:
        apt.install(["maven"])
    staging = libs.with_name(f"libs.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        "mvn",
        "-B",
        "--no-transfer-progress",
        "-f",
        str(paths.KAFKA_POM),
        f"-Dkafka.libs.dir={staging}",
        "package",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(f"maven failed ({result.returncode}):\n{result.stdout[-4000:]}{result.stderr}")
    check_jar_set(staging)
    (staging / LIBS_COMPLETE).touch()
    shutil.rmtree(libs, ignore_errors=True)
    for stale in paths.kafka_home().glob("kafka-*.jsa"):  # archives are bound to the old jar files
        stale.unlink()
    staging.rename(libs)
    return "fetched"


def build_cds_archive() -> str | None:
    """Boot a scratch broker once with -XX:ArchiveClassesAtExit so later starts load classes faster.

    Doubles as a smoke test: install fails if the broker cannot start.
    """
    archive = kafka_server.cds_archive()
    if archive.exists():
        return None
    scratch = paths.kafka_home() / f"cds-train-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    port, controller_port = free_ports(2)
    layout = kafka_server.KafkaLayout(port=port, controller_port=controller_port, data_dir=scratch)
    dump = archive.with_name(f"{archive.name}.tmp-{os.getpid()}")
    try:
        kafka_server.prepare(layout)
        log = scratch / "kafka.log"
        proc = spawn(kafka_server.server_argv(layout, cds_dump=dump), log_file=log)
        try:
            wait_until(
                lambda: kafka_probe.is_ready(layout.bootstrap),
                timeout=90,
                what="kafka (CDS training)",
                proc=proc,
                log_file=log,
            )
        finally:
            stop_group(proc, timeout=30)
        if not dump.exists():
            raise InstallError(f"the JVM wrote no AppCDS archive; see {log}")
        dump.rename(archive)
    finally:
        dump.unlink(missing_ok=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return "built"


# --- Redis, PostgreSQL -------------------------------------------------------------------------------


def ensure_redis() -> str | None:
    if shutil.which("redis-server"):
        return None
    apt.install(["redis-server"])
    return "installed"


def ensure_postgres() -> str | None:
    try:
        postgres_server.bin_dir()
        postgres_server.os_user()
        return None
    except RuntimeError:
        apt.install(["postgresql"])
    postgres_server.bin_dir()
    return "installed"


# --- Developer tools ---------------------------------------------------------------------------------


def debian_tool(command: str, package: str) -> Callable[[], str | None]:
    """A command from a Debian package (wrk for the gateway benchmark, chromium for the /docs check)."""

    def run() -> str | None:
        if shutil.which(command):
            return None
        apt.install([package])
        return "installed"

    return run


def go_tool(name: str) -> Callable[[], str | None]:
    """`go install <module>@<pinned>` into .cache/bin; a stamp file records which version is there."""
    module, version = GO_TOOLS[name]

    def run() -> str | None:
        binary = paths.BIN_DIR / name
        stamp = paths.BIN_DIR / f".{name}.version"
        if binary.exists() and stamp.exists() and stamp.read_text().strip() == version:
            return None
        go = shutil.which("go")
        if go is None:
            raise InstallError(f"{name}: `go` not found (Go 1.21+ is needed to build it)")
        paths.BIN_DIR.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(paths.BIN_DIR), "CGO_ENABLED": "0"}
        result = subprocess.run(
            [go, "install", f"{module}@{version}"], capture_output=True, text=True, env=env, check=False
        )
        if result.returncode != 0:
            raise InstallError(f"go install {module}@{version} failed:\n{result.stdout}{result.stderr}")
        stamp.write_text(version + "\n")
        return "built"

    return run


NPM_MARKERS = ("node_modules/.bin/buf", "node_modules/swagger-ui-dist/swagger-ui-bundle.js")


def npm_packages() -> str | None:
    """buf and swagger-ui-dist come from npm (package.json at the repo root): `npm ci` when one is missing."""
    if not (paths.REPO_ROOT / "package.json").exists():
        return "skipped (no package.json)"
    if all((paths.REPO_ROOT / marker).exists() for marker in NPM_MARKERS):
        return None
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError("`npm` not found (apt-get install nodejs npm)")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=paths.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InstallError(f"npm ci failed:\n{result.stdout[-3000:]}{result.stderr}")
    return "installed"


def steps(component: str) -> list[Step]:
    version = paths.kafka_version()
    table: dict[str, list[Step]] = {
        "kafka": [
            Step("java 17+", ensure_java),
            Step(f"kafka jars ({version})", fetch_kafka_jars),
            Step("kafka AppCDS archive", build_cds_archive),
        ],
        "redis": [Step("redis-server", ensure_redis)],
        "postgres": [Step("postgresql", ensure_postgres)],
        # swagger-ui-dist serves the gateway's /docs; buf, from the same package.json, lints the protos.
        "npm": [Step("npm ci (buf, swagger-ui-dist)", npm_packages)],
        # What only the tests and benchmarks use: `make up` never installs these.
        "tools": [
            *(Step(f"{name} {GO_TOOLS[name][1]}", go_tool(name)) for name in GO_TOOLS),
            Step("wrk", debian_tool("wrk", "wrk")),
            Step("chromium", debian_tool("chromium", "chromium")),
            # Static checks of the deployment files: compose.yaml, observability/prometheus.
            Step("docker-compose", debian_tool("docker-compose", "docker-compose")),
            Step("promtool", debian_tool("promtool", "prometheus")),
        ],
    }
    return table[component]


COMPONENTS = ("kafka", "redis", "postgres", "npm", "tools")
# What each purpose needs: `make up` runs Kafka, Redis and the mesh on SQLite (PostgreSQL only by URL);
# `make test` (and `make bench`) need everything, PostgreSQL and the developer tools included.
PURPOSES: dict[str, tuple[str, ...]] = {"up": ("kafka", "redis", "npm"), "test": COMPONENTS}


def install(components: list[str]) -> None:
    """Run the steps of `components` in order; raise InstallError/AptError on the first failure."""
    for component in components:
        for step in steps(component):
            started = time.monotonic()
            print(f"[install] {step.label} ... ", end="", flush=True)
            try:
                outcome = step.run()
            except Exception:
                print("FAILED", flush=True)
                raise
            elapsed = time.monotonic() - started
            if outcome is None:
                print("present", flush=True)
            elif outcome.startswith("skipped"):
                print(outcome, flush=True)
            else:
                print(f"{outcome} in {elapsed:.1f}s", flush=True)
