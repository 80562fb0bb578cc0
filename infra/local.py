"""Throw-away servers for test sessions: start on given ports with data in a given folder, stop cleanly.

Each class starts its server with Popen in a new session (non-blocking), `wait_ready()` does a real
protocol round trip, and `stop()` leaves no process behind. Typical pytest use:

    port, controller_port = free_ports(2)
    with LocalKafka(port=port, controller_port=controller_port, data_dir=tmp / "kafka") as kafka:
        ...  # kafka.bootstrap
"""

from __future__ import annotations

import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Generic, Self, TypeVar

from infra import kafka_probe, kafka_server, postgres_server, redis_server
from infra.procs import Popen, free_port, free_ports, spawn, stop_group, wait_until

__all__ = [
    "LocalKafka",
    "LocalKafkaCluster",
    "LocalPostgres",
    "LocalRedis",
    "ServerGroup",
    "free_port",
    "free_ports",
]


class _Managed(ABC):
    """``with`` for anything that starts without waiting, then waits until usable, then stops: a failed wait
    stops what was started."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def wait_ready(self, timeout: float = 60) -> None: ...

    @abstractmethod
    def stop(self, timeout: float = 20) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _LocalServer(_Managed):
    """Shared lifecycle: start() spawns, wait_ready() polls is_ready(), stop() signals the group."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, *, data_dir: Path, log_file: Path | None) -> None:
        self.data_dir = data_dir
        self.log_file = log_file if log_file is not None else data_dir / f"{self.name}.log"
        self._proc: Popen | None = None

    # Subclasses provide these three.
    def _prepare(self) -> None:
        """One-time setup before the first start (format, initdb, ...)."""

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def _user(self) -> str | None:
        return None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Prepare and launch the server without waiting for it (so several can boot in parallel)."""
        if self._proc is not None and self._proc.poll() is None:
            raise RuntimeError(f"{self.name} already running (pid {self._proc.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        self._proc = spawn(self._argv(), log_file=self.log_file, cwd=self.data_dir, user=self._user())

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the server answers a real request; raise with the log tail if it died or timed out."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} not started")
        wait_until(self.is_ready, timeout=timeout, what=self.name, proc=self._proc, log_file=self.log_file)

    def stop(self, timeout: float = 20) -> None:
        """Graceful stop signal, SIGKILL for the whole process group after `timeout`; idempotent."""
        if self._proc is not None:
            stop_group(self._proc, sig=self.stop_signal, timeout=timeout)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the server (a crash: no controlled shutdown); ``start()`` brings it back on its data."""
        if self._proc is not None:
            stop_group(self._proc, sig=signal.SIGKILL, timeout=10)
            self._proc = None

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the server's process group: SIGSTOP freezes it (a hung host), SIGCONT thaws it."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} not started")
        os.killpg(self._proc.pid, sig)


class LocalKafka(_LocalServer):
    """KRaft Kafka (broker+controller) from the cached Maven jars: one node alone, or one of a
    :class:`LocalKafkaCluster`; with ``tls`` its client listener speaks TLS (SCRAM too with users)."""

    name = "kafka"

    def __init__(
        self,
        *,
        port: int,
        controller_port: int,
        data_dir: Path,
        log_file: Path | None = None,
        tls: kafka_server.KafkaTls | None = None,
        layout: kafka_server.KafkaLayout | None = None,
    ) -> None:
        super().__init__(data_dir=data_dir, log_file=log_file)
        self.layout = layout or kafka_server.KafkaLayout(
            port=port, controller_port=controller_port, data_dir=data_dir, tls=tls
        )

    @classmethod
    def node(cls, layout: kafka_server.KafkaLayout) -> LocalKafka:
        return cls(
            port=layout.port, controller_port=layout.controller_port, data_dir=layout.data_dir, layout=layout
        )

    @property
    def bootstrap(self) -> str:
        return self.layout.bootstrap

    def _prepare(self) -> None:
        kafka_server.prepare(self.layout)

    def _argv(self) -> list[str]:
        return kafka_server.server_argv(self.layout)

    def is_ready(self) -> bool:
        return kafka_probe.is_ready(self.layout.probe_bootstrap)


_Node = TypeVar("_Node", bound="_LocalServer")


class ServerGroup(_Managed, Generic[_Node]):
    """Servers started together (a quorum needs a majority up before any is ready), each waited for, then
    stopped together; a subclass adds its own readiness for the whole on top of :meth:`wait_ready`."""

    nodes: Sequence[_Node]

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def wait_ready(self, timeout: float = 60) -> None:
        for node in self.nodes:
            node.wait_ready(timeout)

    def stop(self, timeout: float = 20) -> None:
        for node in self.nodes:
            node.stop(timeout)


class LocalKafkaCluster(ServerGroup["LocalKafka"]):
    """``brokers`` combined broker+controller nodes on consecutive port pairs from ``port`` and
    ``controller_port`` (:func:`infra.kafka_server.cluster_layouts`); ready once every node is registered."""

    def __init__(self, *, brokers: int, port: int, controller_port: int, data_dir: Path) -> None:
        layouts = kafka_server.cluster_layouts(port, controller_port, brokers, data_dir)
        self.nodes = [LocalKafka.node(layout) for layout in layouts]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def registered(self) -> int:
        """Brokers the cluster's metadata lists, as any live node answers (0 when none does)."""
        for node in self.nodes:
            host, _, port = node.bootstrap.rpartition(":")
            try:
                return kafka_probe.broker_count(host, int(port))
            except (OSError, ValueError):
                continue
        return 0

    def wait_ready(self, timeout: float = 90) -> None:
        super().wait_ready(timeout)
        wait_until(lambda: self.registered() == len(self.nodes), timeout=timeout, what="kafka cluster")


class LocalRedis(_LocalServer):
    """redis-server without persistence."""

    name = "redis"

    def __init__(self, *, port: int, data_dir: Path, log_file: Path | None = None) -> None:
        super().__init__(data_dir=data_dir, log_file=log_file)
        self.port = port

    @property
    def url(self) -> str:
        return redis_server.url(self.port)

    def _argv(self) -> list[str]:
        return redis_server.server_argv(port=self.port, data_dir=self.data_dir)

    def is_ready(self) -> bool:
        return redis_server.is_ready(self.port)


class LocalPostgres(_LocalServer):
    """PostgreSQL with database `portico`, trust auth on 127.0.0.1, run as `postgres` when we are root."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM ("smart") would wait for clients to leave

    def __init__(
        self, *, port: int, data_dir: Path, log_file: Path | None = None, durable: bool = False
    ) -> None:
        super().__init__(data_dir=data_dir, log_file=log_file)
        self.port = port
        self.durable = durable  # see postgres_server.server_argv

    @property
    def url(self) -> str:
        return postgres_server.url(self.port)

    def _prepare(self) -> None:
        postgres_server.prepare(self.data_dir)

    def _argv(self) -> list[str]:
        return postgres_server.server_argv(port=self.port, data_dir=self.data_dir, durable=self.durable)

    def _user(self) -> str | None:
        return postgres_server.os_user()

    def is_ready(self) -> bool:
        return postgres_server.is_ready(self.port)
