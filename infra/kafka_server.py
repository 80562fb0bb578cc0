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
from dataclasses import dataclass
from pathlib import Path
from string import Template

from infra import paths

HEAP_OPTS = ("-Xms256m", "-Xmx512m")
JVM_OPTS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
    "-Dlog4j2.shutdownHookEnabled=false",  # keep logging through the broker's own shutdown hook
)


@dataclass(frozen=True)
class KafkaLayout:
    """One broker instance: its ports and its folder (`data/` log dirs, `logs/`, server.properties)."""

    port: int
    controller_port: int
    data_dir: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "data"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    def is_formatted(self) -> bool:
        return (self.log_dirs / "meta.properties").exists()


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


def write_properties(layout: KafkaLayout) -> Path:
    """Render server.properties for these ports and folders (rewritten every start: ports may change)."""
    template = Template((paths.KAFKA_FILES_DIR / "server.properties.template").read_text())
    text = template.substitute(
        port=layout.port, controller_port=layout.controller_port, log_dirs=layout.log_dirs
    )
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    layout.logs_dir.mkdir(parents=True, exist_ok=True)
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
        random_cluster_id(),
        "-c",
        str(layout.properties_file),
        "--ignore-formatted",
    ]
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
