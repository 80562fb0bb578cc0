"""Real Kafka, Redis and PostgreSQL for a test session.

In order of preference: services the environment already names (``PORTICO_KAFKA_BOOTSTRAP``,
``PORTICO_REDIS_URL``, ``PORTICO_DATABASE_URL``), containers when a Docker engine answers, else local
processes from ``infra`` on free ports (the path that runs on machines without Docker).
"""

from __future__ import annotations

import os
import socket
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from infra.local import LocalKafka, LocalPostgres, LocalRedis, free_port


@dataclass(frozen=True)
class InfraEnv:
    kafka_bootstrap: str
    redis_url: str
    database_url: str

    def env(self) -> dict[str, str]:
        return {
            "PORTICO_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "PORTICO_REDIS_URL": self.redis_url,
            "PORTICO_DATABASE_URL": self.database_url,
        }


def _engine_socket_answers() -> bool:
    """Connect to the engine's unix socket ourselves: docker-py leaks its socket when this fails."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a TCP engine: let the client find out
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(host.removeprefix("unix://"))
        except OSError:
            return False
    return True


def docker_available() -> bool:
    """True when a Docker engine answers (the docker client alone is not enough)."""
    if not _engine_socket_answers():
        return False
    try:
        import docker

        client = docker.from_env()
    except Exception:  # no client library, or the engine refused the version handshake
        return False
    try:
        return bool(client.ping())
    except Exception:  # the engine went away between the two checks
        return False
    finally:
        client.close()


def _containers(stack: ExitStack) -> dict[str, str]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer

    kafka = stack.enter_context(KafkaContainer().with_kraft())
    redis = stack.enter_context(RedisContainer())
    pg = stack.enter_context(PostgresContainer(driver="asyncpg"))
    return {
        "kafka": kafka.get_bootstrap_server(),
        "redis": f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
        "database": pg.get_connection_url(),
    }


def _local(stack: ExitStack, base: Path, wanted: set[str]) -> dict[str, str]:
    """Start the wanted local servers in parallel (start all, then wait for each)."""
    servers: dict[str, LocalKafka | LocalRedis | LocalPostgres] = {}
    if "kafka" in wanted:
        servers["kafka"] = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=base / "kafka")
    if "redis" in wanted:
        servers["redis"] = LocalRedis(port=free_port(), data_dir=base / "redis")
    if "database" in wanted:
        servers["database"] = LocalPostgres(port=free_port(), data_dir=base / "postgres")
    for server in servers.values():
        stack.callback(server.stop)
        server.start()
    for server in servers.values():
        server.wait_ready(timeout=90)
    return {
        name: server.bootstrap if isinstance(server, LocalKafka) else server.url
        for name, server in servers.items()
    }


def start_infra(stack: ExitStack, base: Path) -> InfraEnv:
    """Start (or find) the three services; everything started is stopped when ``stack`` closes."""
    found = {
        "kafka": os.environ.get("PORTICO_KAFKA_BOOTSTRAP"),
        "redis": os.environ.get("PORTICO_REDIS_URL"),
        "database": os.environ.get("PORTICO_DATABASE_URL"),
    }
    wanted = {name for name, value in found.items() if not value}
    if wanted:
        started = _containers(stack) if docker_available() else _local(stack, base, wanted)
        found.update({name: started[name] for name in wanted})
    return InfraEnv(str(found["kafka"]), str(found["redis"]), str(found["database"]))
