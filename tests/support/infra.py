"""Real Kafka, Redis and PostgreSQL for a test session.

In order of preference: services the environment already names (``PORTICO_KAFKA_BOOTSTRAP``,
``PORTICO_REDIS_URL``, ``PORTICO_DATABASE_URL``), containers when a Docker engine answers, else local
processes from ``infra`` on free ports (the path that runs on machines without Docker).
"""

from __future__ import annotations

import os
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


def docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:  # no client library, no socket, or no engine behind the socket
        return False
    return True


def _containers(stack: ExitStack) -> tuple[str, str, str]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer

    kafka = stack.enter_context(KafkaContainer().with_kraft())
    redis = stack.enter_context(RedisContainer())
    pg = stack.enter_context(PostgresContainer(driver="asyncpg"))
    redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
    return kafka.get_bootstrap_server(), redis_url, pg.get_connection_url()


def _local(stack: ExitStack, base: Path) -> tuple[str, str, str]:
    kafka = stack.enter_context(
        LocalKafka(
            port=free_port(),
            controller_port=free_port(),
            data_dir=base / "kafka",
            log_file=base / "kafka.log",
        )
    )
    redis = stack.enter_context(LocalRedis(port=free_port(), data_dir=base / "redis"))
    pg = stack.enter_context(LocalPostgres(port=free_port(), data_dir=base / "postgres"))
    return kafka.bootstrap, redis.url, pg.url


def start_infra(stack: ExitStack, base: Path) -> InfraEnv:
    """Start (or find) the three services; everything started is stopped when ``stack`` closes."""
    existing = (
        os.environ.get("PORTICO_KAFKA_BOOTSTRAP"),
        os.environ.get("PORTICO_REDIS_URL"),
        os.environ.get("PORTICO_DATABASE_URL"),
    )
    if all(existing):
        return InfraEnv(*existing)  # type: ignore[arg-type]
    kafka, redis, database = _containers(stack) if docker_available() else _local(stack, base)
    return InfraEnv(existing[0] or kafka, existing[1] or redis, existing[2] or database)
