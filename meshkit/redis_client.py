"""The one place a Redis client of the mesh is made: one server, a Redis Cluster or the master Sentinel
names, over TCP or TLS (``rediss://``, with a CA bundle and, for mutual TLS, a client certificate).

Every process (the gateway and each backend) calls :func:`connect` with its settings, so a deployment
changes Redis by settings alone. The timeouts are the same in every mode: a Redis that does not answer
within :data:`TIMEOUT_SECONDS` is an error, which each user turns into its fail-safe answer.

On a cluster, the keys one Lua script or one ``MGET`` uses together share a hash tag (``{…}``, see
:mod:`meshkit.redis_keys`); where they cannot, the caller splits by slot: :func:`mget_of` does for reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException

from meshkit.config.stores import RedisSettings

__all__ = ["TIMEOUT_SECONDS", "RedisClient", "connect", "is_cluster", "mget_of"]

RedisClient: TypeAlias = Redis | RedisCluster
Value = bytes | str | None

TIMEOUT_SECONDS = 2.0  # connect and each reply


def _tls(settings: RedisSettings, url: str) -> dict[str, Any]:
    """The TLS arguments for ``url``; refuses TLS files with a plaintext URL (they would be ignored)."""
    files = (settings.redis_tls_ca_file, settings.redis_tls_cert_file, settings.redis_tls_key_file)
    if not url.startswith("rediss://"):
        if any(files):
            raise ValueError("PORTICO_REDIS_TLS_* files are set but PORTICO_REDIS_URL is not rediss://")
        return {}
    if (settings.redis_tls_cert_file is None) != (settings.redis_tls_key_file is None):
        raise ValueError("PORTICO_REDIS_TLS_CERT_FILE and PORTICO_REDIS_TLS_KEY_FILE go together")
    ca, cert, key = (str(path) if path else None for path in files)
    return {"ssl_ca_certs": ca, "ssl_certfile": cert, "ssl_keyfile": key, "ssl_cert_reqs": "required"}


class _Cluster(RedisCluster):
    """A cluster client whose failures are :class:`~redis.exceptions.RedisError` s, as one server's are.

    redis-py raises :class:`RedisClusterException` (not a ``RedisError``) when no node can be reached;
    every user of Redis turns a ``RedisError`` into its fail-safe answer, so it must see one here too."""

    async def initialize(self, *args: Any, **kwargs: Any) -> RedisCluster:
        try:
            return await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise RedisConnectionError(f"Redis Cluster: {exc}") from exc

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except RedisClusterException as exc:
            raise RedisConnectionError(f"Redis Cluster: {exc}") from exc


def connect(settings: RedisSettings) -> RedisClient:
    """A client as the settings say (it connects lazily: no I/O here)."""
    url = settings.redis_url
    common: dict[str, Any] = {"socket_timeout": TIMEOUT_SECONDS, "socket_connect_timeout": TIMEOUT_SECONDS}
    tls = _tls(settings, url)
    if settings.redis_mode == "cluster":
        return _Cluster.from_url(url, **common, **tls)
    if settings.redis_mode == "sentinel":
        return _sentinel_master(settings, url, common, tls)
    return Redis.from_url(url, **common, **tls)


class _SentinelMaster(Redis):
    """The master's client; closing it closes the connections to the sentinels too."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for sentinel in self.sentinel_manager.sentinels if self.sentinel_manager else ():
            await sentinel.aclose()


def _sentinel_master(settings: RedisSettings, url: str, common: dict[str, Any], tls: dict[str, Any]) -> Redis:
    """The master as the sentinels name it now, re-asked on every new connection (so after a failover)."""
    sentinels = [_host_port(item) for item in settings.redis_sentinels.split(",") if item.strip()]
    if not sentinels:
        raise ValueError("PORTICO_REDIS_MODE=sentinel needs PORTICO_REDIS_SENTINELS (host:port,...)")
    parsed = parse_url(url)  # scheme, credentials and database of the master; its host is not used
    master: dict[str, Any] = {k: parsed[k] for k in ("username", "password", "db") if k in parsed}
    ssl = {"ssl": True, **tls} if tls else {}
    # The sentinels speak TLS when the master does (one certificate authority for the deployment).
    manager = Sentinel(sentinels, sentinel_kwargs={**common, **ssl}, **common, **ssl)  # type: ignore[no-untyped-call]
    client: _SentinelMaster = manager.master_for(
        settings.redis_sentinel_master, redis_class=_SentinelMaster, **master
    )
    client.sentinel_manager = manager
    return client


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.strip().rpartition(":")
    return host.strip("[]"), int(port)


# isinstance against RedisCluster goes through ABCMeta (about 1 µs): the answer is kept per class, as
# the revocation check of every call asks.
_cluster_classes: dict[type, bool] = {}


def is_cluster(redis: RedisClient) -> bool:
    kind = type(redis)
    found = _cluster_classes.get(kind)
    if found is None:
        found = _cluster_classes[kind] = issubclass(kind, RedisCluster)
    return found


def mget_of(redis: RedisClient) -> Callable[..., Awaitable[list[Value]]]:
    """``MGET``: called with the keys, it answers their values in order — one command on one server; on
    a cluster one per slot, sent together (a read of independent keys needs no atomicity). Made once per
    client: on one server it is the client's own method, so the hot path pays nothing for clusters."""
    if not is_cluster(redis):
        return cast(Redis, redis).mget
    cluster = cast(RedisCluster, redis)

    async def by_slot(*keys: str) -> list[Value]:
        return await cluster.mget_nonatomic(keys)

    return by_slot
