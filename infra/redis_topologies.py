"""Redis beyond one plain server, for tests: a Redis Cluster, a master with a replica under Sentinel,
and a TLS-only server — all Debian's ``redis-server`` as our own processes on loopback, nothing persisted.

    with LocalRedisCluster(ports=free_ports(6), data_dir=tmp / "cluster") as cluster:
        cluster.url        # any node: the client discovers the others
    with LocalRedisSentinel(ports=free_ports(3), data_dir=tmp / "sentinel") as sentinel:
        sentinel.sentinels, sentinel.master_name
    with LocalRedisTLS(port=free_port(), data_dir=..., ca=..., cert=..., key=..., client=(crt, key)) as tls:
        tls.url            # rediss://127.0.0.1:<port>/0

Each starts its processes together, then waits for the whole topology to be usable (a cluster whose every
slot is served, a sentinel that names the master and sees its replica in sync, a TLS handshake that
answers PING).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra import redis_server
from infra.local import LocalRedis, ServerGroup
from infra.procs import wait_until

__all__ = ["LocalRedisCluster", "LocalRedisSentinel", "LocalRedisTLS", "RedisTls"]


@dataclass(frozen=True)
class RedisTls:
    """TLS only (no plaintext port) from PEM files; with ``client``, mutual TLS: a client certificate is
    required, and the topology's own checks (readiness, redis-cli) present that one."""

    ca: Path
    cert: Path
    key: Path
    client: tuple[Path, Path] | None = None

    def server_args(self, port: int) -> list[str]:
        return [
            "--port", "0",
            "--tls-port", str(port),
            "--tls-ca-cert-file", str(self.ca),
            "--tls-cert-file", str(self.cert),
            "--tls-key-file", str(self.key),
            "--tls-auth-clients", "no" if self.client is None else "yes",
            *self.outgoing_args(),
        ]  # fmt: skip

    def outgoing_args(self) -> list[str]:
        """A replica's, a sentinel's or a cluster peer's own connections present the client certificate
        (the server's is for server authentication only)."""
        if self.client is None:
            return []
        return ["--tls-client-cert-file", str(self.client[0]), "--tls-client-key-file", str(self.client[1])]

    def cli_args(self) -> list[str]:
        mine = [] if self.client is None else ["--cert", str(self.client[0]), "--key", str(self.client[1])]
        return ["--tls", "--cacert", str(self.ca), *mine]

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if self.client is not None:
            context.load_cert_chain(*map(str, self.client))
        return context


class _Node(LocalRedis):
    """redis-server with extra command-line options (cluster, replica, sentinel), over TLS with ``tls``."""

    def __init__(
        self,
        *,
        port: int,
        data_dir: Path,
        extra: Sequence[str] = (),
        name: str = "redis",
        tls: RedisTls | None = None,
    ) -> None:
        self.name = name
        super().__init__(port=port, data_dir=data_dir)
        self.extra = list(extra)
        self.tls = tls

    @property
    def url(self) -> str:
        return super().url if self.tls is None else f"rediss://127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        base = super()._argv()
        if self.tls is not None:
            at = base.index("--port")
            base = base[:at] + base[at + 2 :] + self.tls.server_args(self.port)  # no plaintext port
        return [*base, *self.extra]

    def is_ready(self) -> bool:
        return super().is_ready() if self.tls is None else _tls_ping(self.port, self.tls)


def _tls_ping(port: int, tls: RedisTls) -> bool:
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=1) as raw,
            tls.context().wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _cli(tls: RedisTls | None) -> list[str]:
    return [redis_server.redis_cli_bin(), *(tls.cli_args() if tls is not None else [])]


def _command(port: int, *args: str, tls: RedisTls | None = None) -> str:
    """One command through redis-cli; its output ("" when the server does not answer)."""
    done = subprocess.run(
        [*_cli(tls), "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return done.stdout if done.returncode == 0 else ""


class _Group(ServerGroup[_Node]):
    """Several nodes started together and stopped together; ``wait_ready`` says when the whole is usable."""

    nodes: list[_Node]


class LocalRedisCluster(_Group):
    """``len(ports) // 2`` masters (no replicas): each takes a client port and a cluster-bus port."""

    def __init__(self, *, ports: Sequence[int], data_dir: Path, tls: RedisTls | None = None) -> None:
        if len(ports) < 6 or len(ports) % 2:
            raise ValueError("a cluster needs 3 masters or more: two ports each (client, bus)")
        half = len(ports) // 2
        self.ports, bus = list(ports[:half]), list(ports[half:])
        self.tls = tls
        tls_bus = [] if tls is None else ["--tls-cluster", "yes"]  # the cluster bus over TLS too
        self.nodes = [
            _Node(
                port=port,
                data_dir=data_dir / str(port),
                name=f"redis-cluster-{port}",
                extra=[
                    "--cluster-enabled", "yes",
                    "--cluster-port", str(bus_port),
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "2000",
                    *tls_bus,
                ],
                tls=tls,
            )
            for port, bus_port in zip(self.ports, bus, strict=True)
        ]  # fmt: skip

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def wait_ready(self, timeout: float = 60) -> None:
        super().wait_ready(timeout)
        created = subprocess.run(
            [
                *_cli(self.tls),
                "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas", "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        # Every node must agree that every slot is served before a client may rely on any of them.
        wait_until(
            lambda: all(
                "cluster_state:ok" in _command(port, "CLUSTER", "INFO", tls=self.tls) for port in self.ports
            ),
            timeout=timeout,
            what="redis cluster",
        )


class _Sentinel(_Node):
    """``redis-server <conf> --sentinel``: the sentinel rewrites its file, so each run writes its own."""

    monitor: tuple[str, int] = ("mymaster", 6379)

    def __init__(self, *, port: int, data_dir: Path, tls: RedisTls | None = None) -> None:
        super().__init__(port=port, data_dir=data_dir, name="redis-sentinel", tls=tls)

    def _argv(self) -> list[str]:
        name, master_port = self.monitor
        conf = self.data_dir / "sentinel.conf"
        listen = f"port {self.port}\n"
        if self.tls is not None:  # the same options as a server's, and TLS to the master and replica
            args = self.tls.server_args(self.port)
            listen = "".join(
                f"{k.removeprefix('--')} {v}\n" for k, v in zip(args[::2], args[1::2], strict=True)
            )
            listen += "tls-replication yes\n"
        conf.write_text(
            f"{listen}bind 127.0.0.1\ndir {self.data_dir}\n"
            f"sentinel monitor {name} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {name} 2000\n"
            f"sentinel failover-timeout {name} 10000\n"
        )
        return [redis_server.redis_server_bin(), str(conf), "--sentinel"]


class LocalRedisSentinel(_Group):
    """A master, a replica of it and one sentinel watching them (``ports``: master, replica, sentinel)."""

    master_name = "mymaster"

    def __init__(self, *, ports: Sequence[int], data_dir: Path, tls: RedisTls | None = None) -> None:
        self.master_port, self.replica_port, self.sentinel_port = ports
        self.data_dir = data_dir
        self.tls = tls
        replica = ["--replicaof", "127.0.0.1", str(self.master_port)]
        if tls is not None:
            replica += ["--tls-replication", "yes"]
        self.nodes = [
            # Without a delay before the full sync the replica holds the data as soon as it is ready.
            _Node(
                port=self.master_port,
                data_dir=data_dir / "master",
                name="redis-master",
                extra=["--repl-diskless-sync-delay", "0"],
                tls=tls,
            ),
            _Node(
                port=self.replica_port,
                data_dir=data_dir / "replica",
                name="redis-replica",
                extra=replica,
                tls=tls,
            ),
        ]
        self.sentinel = _Sentinel(port=self.sentinel_port, data_dir=data_dir / "sentinel", tls=tls)
        self.sentinel.monitor = (self.master_name, self.master_port)

    @property
    def sentinels(self) -> str:
        """``PORTICO_REDIS_SENTINELS``."""
        return f"127.0.0.1:{self.sentinel_port}"

    def start(self) -> None:
        super().start()
        self.sentinel.start()

    def _sees_both(self) -> bool:
        master = _command(
            self.sentinel_port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name, tls=self.tls
        )
        replicas = _command(self.sentinel_port, "SENTINEL", "REPLICAS", self.master_name, tls=self.tls)
        synced = "master_link_status:up" in _command(self.replica_port, "INFO", "replication", tls=self.tls)
        return str(self.master_port) in master and str(self.replica_port) in replicas and synced

    def wait_ready(self, timeout: float = 60) -> None:
        super().wait_ready(timeout)
        self.sentinel.wait_ready(timeout)
        wait_until(self._sees_both, timeout=timeout, what="redis sentinel")

    def stop(self, timeout: float = 20) -> None:
        self.sentinel.stop(timeout)
        super().stop(timeout)


class LocalRedisTLS(_Node):
    """A TLS-only redis-server (no plaintext port); with ``client``, mutual TLS: a client certificate is
    required, and readiness presents that one."""

    def __init__(
        self,
        *,
        port: int,
        data_dir: Path,
        ca: Path,
        cert: Path,
        key: Path,
        client: tuple[Path, Path] | None = None,
    ) -> None:
        tls = RedisTls(ca=ca, cert=cert, key=key, client=client)
        super().__init__(port=port, data_dir=data_dir, name="redis-tls", tls=tls)
