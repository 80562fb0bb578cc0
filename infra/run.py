"""`python -m infra run <service>`: one server in the foreground, for honcho (`make up`).

After preparing (properties, format, initdb) the process *becomes* the server via exec, so honcho's
SIGTERM reaches the server itself and it shuts down cleanly. When the service's URL env var points at
an existing server, nothing is started and the process just waits for SIGTERM/SIGINT, so honcho keeps
the other processes running.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import sys
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from infra import kafka_server, paths, postgres_server, redis_server
from infra.local import LocalKafkaCluster
from meshkit.config import defaults

EXTERNAL_ENV = {
    "kafka": "PORTICO_KAFKA_BOOTSTRAP",
    "redis": "PORTICO_REDIS_URL",
    "postgres": "PORTICO_DATABASE_URL",
}


def _say(message: str) -> None:
    print(f"[run] {message}", flush=True)


def _port(env: str, default: int) -> int:
    return int(os.environ.get(env, default))


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _check_port_free(service: str, port: int, env: str) -> None:
    """Fail early and clearly when something already listens there (e.g. a second `make up`)."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(
                f"[run] {service}: port {port} is already in use; set {env} to another port or "
                f"{EXTERNAL_ENV[service]} to use the server that is there"
            )


def _wait_for_stop(service: str, target: str) -> int:
    _say(f"{service}: using the external service at {target} ({EXTERNAL_ENV[service]}); starting nothing")
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    received = signal.sigwait(stop_signals)
    _say(f"{service}: {signal.Signals(received).name} received, exiting")
    return 0


def _exec(argv: list[str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # noqa: S606 - replace this process: signals must reach the server


def run_kafka() -> int:
    brokers = kafka_server.local_brokers(os.environ)
    if brokers > 1:
        return run_kafka_cluster(brokers)
    layout = kafka_server.KafkaLayout(
        port=_port("PORTICO_KAFKA_PORT", defaults.KAFKA_PORT),
        controller_port=_port("PORTICO_KAFKA_CONTROLLER_PORT", defaults.KAFKA_CONTROLLER_PORT),
        data_dir=paths.run_dir() / "kafka",
    )
    _check_port_free("kafka", layout.port, "PORTICO_KAFKA_PORT")
    _check_port_free("kafka", layout.controller_port, "PORTICO_KAFKA_CONTROLLER_PORT")
    kafka_server.write_properties(layout)
    formatted = kafka_server.format_storage(layout)
    _say(
        f"kafka {paths.kafka_version()}: {layout.bootstrap} (controller :{layout.controller_port}), "
        f"data {layout.data_dir}{' (storage formatted)' if formatted else ''}"
    )
    _exec(kafka_server.server_argv(layout))
    return 1  # not reached


def run_kafka_cluster(brokers: int) -> int:
    """Several nodes cannot all be this process: start them as children, each logging to its own file,
    and stop them all on SIGTERM/SIGINT or as soon as one of them exits."""
    port = _port("PORTICO_KAFKA_PORT", defaults.KAFKA_PORT)
    controller_port = _port("PORTICO_KAFKA_CONTROLLER_PORT", defaults.KAFKA_CONTROLLER_PORT)
    cluster = LocalKafkaCluster(
        brokers=brokers,
        port=port,
        controller_port=controller_port,
        data_dir=paths.run_dir() / "kafka-cluster",
    )
    for node in cluster.nodes:
        _check_port_free("kafka", node.layout.port, "PORTICO_KAFKA_PORT")
        _check_port_free("kafka", node.layout.controller_port, "PORTICO_KAFKA_CONTROLLER_PORT")
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    cluster.start()
    for node in cluster.nodes:
        _say(
            f"kafka {paths.kafka_version()} node {node.layout.node_id}/{brokers}: {node.bootstrap} "
            f"(controller :{node.layout.controller_port}), log {node.log_file}"
        )
    _say(
        f"kafka: topics get {cluster.nodes[0].layout.replication} replicas, min ISR "
        f"{cluster.nodes[0].layout.min_insync_replicas}; bootstrap {cluster.bootstrap}"
    )
    try:
        while (received := signal.sigtimedwait(stop_signals, 1.0)) is None:
            dead = [node for node in cluster.nodes if not node.running]
            if dead:
                _say(f"kafka node {dead[0].layout.node_id} exited; stopping the cluster")
                return 1
        _say(f"kafka: {signal.Signals(received.si_signo).name} received, stopping the cluster")
        return 0
    finally:
        cluster.stop()


def run_redis() -> int:
    port = _port("PORTICO_REDIS_PORT", defaults.REDIS_PORT)
    data_dir = paths.run_dir() / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    _check_port_free("redis", port, "PORTICO_REDIS_PORT")
    _say(f"redis: {redis_server.url(port)} (no persistence)")
    _exec(redis_server.server_argv(port=port, data_dir=data_dir))
    return 1


def run_postgres() -> int:
    port = _port("PORTICO_POSTGRES_PORT", defaults.POSTGRES_PORT)
    data_dir = paths.run_dir() / "postgres"
    _check_port_free("postgres", port, "PORTICO_POSTGRES_PORT")
    created = postgres_server.prepare(data_dir)
    argv = postgres_server.server_argv(port=port, data_dir=data_dir)
    _say(f"postgres: {postgres_server.url(port)}, data {data_dir}{' (new cluster)' if created else ''}")
    os.chdir(postgres_server.cluster_dir(data_dir))
    user = postgres_server.os_user()
    if user is not None:  # exec as `postgres` directly (no runuser/su parent in between)
        entry = pwd.getpwnam(user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        os.environ["HOME"] = entry.pw_dir
    _exec(argv)
    return 1


RUNNERS: dict[str, Callable[[], int]] = {"kafka": run_kafka, "redis": run_redis, "postgres": run_postgres}


def run(service: str) -> int:
    external = os.environ.get(EXTERNAL_ENV[service])
    if external:
        return _wait_for_stop(service, _redact(external))
    return RUNNERS[service]()
