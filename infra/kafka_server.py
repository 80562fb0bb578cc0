"""Kafka broker command lines: render server.properties, format KRaft storage, build the JVM argv.

Runs `kafka.Kafka` straight from the jars `install` copied out of Maven Central, so no tarball and no
Docker are needed. Both `python -m infra run kafka` (exec) and `LocalKafka` (Popen) use these pieces.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from infra import paths

HEAP_OPTS = ("-Xms256m", "-Xmx512m")
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
JVM_OPTS = (
    # The client JIT only: C2's compilations were about 40 % of the broker's CPU until it answers (3.9 s ->
    # 2.3 s, 14.0 s -> 6.4 s to ready on the loaded 2-core machine), and a local broker never runs long or
    # hot enough to earn them back. The G1 -> Serial GC swap was measured too and changed nothing.
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
    "-Dlog4j2.shutdownHookEnabled=false",  # keep logging through the broker's own shutdown hook
)


@dataclass(frozen=True)
class KafkaTls:
    """A TLS client listener on the layout's port from PEM files (Kafka 4 reads PEM key and trust stores),
    and a SCRAM-over-TLS (SASL_SSL) one on ``sasl_port`` with ``scram_users``. The broker keeps a plaintext
    listener on ``internal_port`` (loopback) for its peers and for the readiness probe, which speaks
    neither TLS nor SASL."""

    ca_file: Path
    cert_file: Path
    key_file: Path  # unencrypted PKCS#8
    internal_port: int
    sasl_port: int | None = None
    scram_users: tuple[tuple[str, str], ...] = ()  # (name, password), for SCRAM-SHA-256 and -512
    client_auth: bool = False  # the TLS listener requires a client certificate from the CA (mutual TLS)


@dataclass(frozen=True)
class KafkaLayout:
    """One broker instance: its ports and its folder (`data/` log dirs, `logs/`, server.properties).

    A node of a cluster names every node's controller in ``voters`` and shares ``cluster_id``; topics and
    the internal topics are then replicated 3 times (min ISR 2) once the cluster has 3 nodes.
    """

    port: int
    controller_port: int
    data_dir: Path
    node_id: int = 1
    voters: tuple[tuple[int, int], ...] = ()  # (node id, controller port) of every node; () = alone
    tls: KafkaTls | None = None
    cluster_id: str | None = None  # None: a fresh one when the storage is formatted

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def probe_bootstrap(self) -> str:
        """A plaintext listener of this node, for :mod:`infra.kafka_probe`."""
        return self.bootstrap if self.tls is None else f"127.0.0.1:{self.tls.internal_port}"

    @property
    def quorum(self) -> tuple[tuple[int, int], ...]:
        return self.voters or ((self.node_id, self.controller_port),)

    @property
    def replication(self) -> int:
        return min(3, len(self.quorum))

    @property
    def min_insync_replicas(self) -> int:
        return 2 if self.replication >= 3 else 1

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def keystore_file(self) -> Path:
        return self.data_dir / "keystore.pem"

    def is_formatted(self) -> bool:
        return (self.log_dirs / "meta.properties").exists()


BROKERS_ENV = "PORTICO_KAFKA_BROKERS"
MAX_LOCAL_BROKERS = 5


def local_brokers(env: Mapping[str, str]) -> int:
    """How many nodes a local run starts (``PORTICO_KAFKA_BROKERS``, default 1)."""
    raw = env.get(BROKERS_ENV, "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LOCAL_BROKERS:
        raise RuntimeError(
            f"{BROKERS_ENV} must be a number of brokers from 1 to {MAX_LOCAL_BROKERS}, not {raw!r}"
        )
    return int(raw)


def cluster_bootstrap(port: int, brokers: int) -> str:
    """The client addresses of a local cluster's nodes (:func:`cluster_layouts`)."""
    return ",".join(f"127.0.0.1:{port + 2 * i}" for i in range(brokers))


def cluster_layouts(port: int, controller_port: int, brokers: int, data_dir: Path) -> list[KafkaLayout]:
    """The nodes of a local cluster: node ``i`` (from 0) listens on ``port + 2i`` and its controller on
    ``controller_port + 2i`` (9092/9093, 9094/9095, 9096/9097 by default), data in ``data_dir/node-<id>``."""
    cluster_id = random_cluster_id()
    voters = tuple((i + 1, controller_port + 2 * i) for i in range(brokers))
    return [
        KafkaLayout(
            port=port + 2 * i,
            controller_port=controller_port + 2 * i,
            data_dir=data_dir / f"node-{i + 1}",
            node_id=i + 1,
            voters=voters,
            cluster_id=cluster_id,
        )
        for i in range(brokers)
    ]


def java_bin() -> str:
    """`$JAVA_HOME/bin/java` when set, else `java` from PATH (Java 17+ is required by Kafka 4)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("java not found: run `python -m infra install --only kafka`")
    return found


def classpath() -> str:
    """Explicit, sorted jar list (not `libs/*`): AppCDS only accepts an archive for the same classpath."""
    jars = sorted(paths.kafka_libs_dir().glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no Kafka jars in {paths.kafka_libs_dir()}: run `python -m infra install`")
    return os.pathsep.join(str(jar) for jar in jars)


def _listeners(layout: KafkaLayout) -> dict[str, str]:
    controller = f"CONTROLLER://127.0.0.1:{layout.controller_port}"
    if layout.tls is None:
        plain = f"PLAINTEXT://127.0.0.1:{layout.port}"
        return {
            "listeners": f"{plain},{controller}",
            "advertised_listeners": plain,
            "inter_broker_listener": "PLAINTEXT",
            "protocol_map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        }
    served = [f"CLIENT://127.0.0.1:{layout.port}", f"INTERNAL://127.0.0.1:{layout.tls.internal_port}"]
    protocols = "CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,CLIENT:SSL"
    if layout.tls.sasl_port is not None:
        served.append(f"SASL://127.0.0.1:{layout.tls.sasl_port}")
        protocols += ",SASL:SASL_SSL"
    return {
        "listeners": ",".join([*served, controller]),
        "advertised_listeners": ",".join(served),
        "inter_broker_listener": "INTERNAL",
        "protocol_map": protocols,
    }


def _security_lines(layout: KafkaLayout) -> str:
    tls = layout.tls
    if tls is None:
        return ""
    # One PEM file with the key then its chain: Kafka's PEM key store reads both from the location.
    layout.keystore_file.write_text(tls.key_file.read_text() + tls.cert_file.read_text())
    layout.keystore_file.chmod(0o600)
    lines = [
        "# The client listener's TLS (and SCRAM): PEM stores written by infra/kafka_server.py.",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={layout.keystore_file}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={tls.ca_file}",
    ]
    if tls.client_auth:  # on the TLS listener only: SCRAM proves the client on the other
        lines.append("listener.name.client.ssl.client.auth=required")
    if tls.sasl_port is not None:
        module = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        lines += [
            f"sasl.enabled.mechanisms={','.join(SCRAM_MECHANISMS)}",
            *(f"listener.name.sasl.{m.lower()}.sasl.jaas.config={module}" for m in SCRAM_MECHANISMS),
        ]
    return "\n".join(lines) + "\n"


def write_properties(layout: KafkaLayout) -> Path:
    """Render server.properties for these ports and folders (rewritten every start: ports may change)."""
    template = Template((paths.KAFKA_FILES_DIR / "server.properties.template").read_text())
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    layout.logs_dir.mkdir(parents=True, exist_ok=True)
    text = template.substitute(
        node_id=layout.node_id,
        voters=",".join(f"{node}@127.0.0.1:{port}" for node, port in layout.quorum),
        log_dirs=layout.log_dirs,
        replication=layout.replication,
        min_isr=layout.min_insync_replicas,
        security=_security_lines(layout),
        **_listeners(layout),
    )
    layout.properties_file.write_text(text)
    return layout.properties_file


def random_cluster_id() -> str:
    """A Kafka cluster id (22-char base64url UUID) without starting a JVM for `StorageTool random-uuid`."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids these too: they look like CLI flags
            return cluster_id


def format_storage(layout: KafkaLayout) -> bool:
    """Format the KRaft log dir once (the broker refuses to start without meta.properties).

    Returns True when it formatted, False when the storage was already formatted.
    """
    if layout.is_formatted():
        return False
    argv = [
        java_bin(),
        *JVM_OPTS,
        *_use_cds_opts(),
        f"-Dlog4j2.configurationFile={paths.KAFKA_FILES_DIR / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={layout.logs_dir}",
        "-cp",
        classpath(),
        "kafka.tools.StorageTool",
        "format",
        "-t",
        layout.cluster_id or random_cluster_id(),
        "-c",
        str(layout.properties_file),
        "--ignore-formatted",
    ]
    if layout.tls is not None:  # SCRAM users live in the metadata log: added when it is created
        for name, password in layout.tls.scram_users:
            for mechanism in SCRAM_MECHANISMS:
                argv += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"kafka storage format failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return True


def cds_archive() -> Path:
    """AppCDS archive for this Kafka version and this exact JVM binary (an archive only fits its JVM)."""
    java = Path(java_bin()).resolve()
    key = hashlib.sha256(f"{java}:{java.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    return paths.kafka_home() / f"kafka-{key}.jsa"


def _use_cds_opts() -> list[str]:
    """Start from the AppCDS archive when `install` built one (measured: ~3.0 s -> ~1.7 s to ready).

    A stale archive (other JVM, re-fetched jars) is silently ignored by the JVM, so this is always safe.
    """
    archive = cds_archive()
    if not archive.exists():
        return []
    return [f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]


def server_argv(layout: KafkaLayout, *, cds_dump: Path | None = None, use_cds: bool = True) -> list[str]:
    """The broker's JVM command line: capped heap, G1, log4j2 config, AppCDS archive if one was built.

    `cds_dump` asks the JVM to write a new AppCDS archive there when it exits (used by `install`).
    """
    cds: list[str] = []
    if cds_dump is not None:
        cds = [f"-XX:ArchiveClassesAtExit={cds_dump}"]
    elif use_cds:
        cds = _use_cds_opts()
    return [
        java_bin(),
        *HEAP_OPTS,
        *JVM_OPTS,
        *cds,
        f"-Dlog4j2.configurationFile={paths.KAFKA_FILES_DIR / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={layout.logs_dir}",
        "-cp",
        classpath(),
        "kafka.Kafka",
        str(layout.properties_file),
    ]


def prepare(layout: KafkaLayout) -> None:
    """Everything before the JVM starts: properties file and (first time only) storage format."""
    write_properties(layout)
    format_storage(layout)
