"""TLS to Redis with clients made by the kit's factory, against real TLS-only redis-servers from a
throw-away CA: the CA verifies the server; with mutual TLS, a client without a certificate is refused.
The same over mutual TLS on a Redis Cluster (its bus over TLS too) and through Sentinel (sentinel,
master and replica all TLS-only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import RedisError

from harness.certs import Pem, make_pki
from infra.procs import free_port, free_ports
from infra.redis_topologies import LocalRedisCluster, LocalRedisSentinel, LocalRedisTLS, RedisTls
from meshkit.config.stores import RedisSettings
from meshkit.redis_client import connect

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pem, Pem, Pem]:
    return make_pki(tmp_path_factory.mktemp("redis-pki"))


@pytest.fixture(scope="module")
def mutual(pki: tuple[Pem, Pem, Pem], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisTLS]:
    """A server that requires a client certificate signed by the CA."""
    ca, server, client = pki
    data = tmp_path_factory.mktemp("redis-mtls")
    port = free_port()
    with LocalRedisTLS(
        port=port,
        data_dir=data,
        ca=ca.cert,
        cert=server.cert,
        key=server.key,
        client=(client.cert, client.key),
    ) as tls:
        yield tls


async def _ping(settings: RedisSettings) -> bool:
    redis = connect(settings)
    try:
        return bool(await redis.ping())
    finally:
        await redis.aclose()


async def test_a_client_with_the_ca_speaks_to_a_tls_server(pki: tuple[Pem, Pem, Pem], tmp_path: Path) -> None:
    ca, server, _ = pki
    with LocalRedisTLS(
        port=free_port(), data_dir=tmp_path, ca=ca.cert, cert=server.cert, key=server.key
    ) as tls:
        assert await _ping(RedisSettings(redis_url=tls.url, redis_tls_ca_file=ca.cert))
        with pytest.raises(RedisError):  # the system's CAs do not know the throw-away CA
            await _ping(RedisSettings(redis_url=tls.url))


async def test_mutual_tls_needs_the_client_certificate(
    pki: tuple[Pem, Pem, Pem], mutual: LocalRedisTLS
) -> None:
    ca, _, client = pki
    with_cert = RedisSettings(
        redis_url=mutual.url,
        redis_tls_ca_file=ca.cert,
        redis_tls_cert_file=client.cert,
        redis_tls_key_file=client.key,
    )
    assert await _ping(with_cert)
    # Under TLS 1.3 the client finishes its side of the handshake before the server checks for a
    # certificate, so the refusal reaches the client either as the server's alert or, when the server has
    # already closed the socket, as a reset or EOF. Each is the server saying no; a client-side complaint
    # (say, "certificate verify failed") would not match and would mean a broken set-up.
    refused = r"certificate required|reset by peer|Connection closed|EOF"
    with pytest.raises(RedisError, match=refused):
        await _ping(RedisSettings(redis_url=mutual.url, redis_tls_ca_file=ca.cert))


async def test_a_plaintext_client_is_not_served(mutual: LocalRedisTLS) -> None:
    with pytest.raises(RedisError):
        await _ping(RedisSettings(redis_url=mutual.url.replace("rediss://", "redis://")))


def _mutual_tls(pki: tuple[Pem, Pem, Pem]) -> RedisTls:
    ca, server, client = pki
    return RedisTls(ca=ca.cert, cert=server.cert, key=server.key, client=(client.cert, client.key))


def _with_certificate(pki: tuple[Pem, Pem, Pem], **settings: str) -> RedisSettings:
    ca, _, client = pki
    return RedisSettings(
        redis_tls_ca_file=ca.cert, redis_tls_cert_file=client.cert, redis_tls_key_file=client.key, **settings
    )


async def _keys_on_every_node(settings: RedisSettings) -> list[bytes | None]:
    """Writes and reads keys of several slots (on a cluster: every node) with one client."""
    redis = connect(settings)
    try:
        keys = [f"portico:test:{{{n}}}" for n in range(12)]
        for key in keys:
            await redis.set(key, key, ex=60)
        return [await redis.get(key) for key in keys]
    finally:
        await redis.aclose()


async def test_a_cluster_over_mutual_tls(pki: tuple[Pem, Pem, Pem], tmp_path: Path) -> None:
    with LocalRedisCluster(ports=free_ports(6), data_dir=tmp_path, tls=_mutual_tls(pki)) as cluster:
        assert cluster.url.startswith("rediss://")
        settings = _with_certificate(pki, redis_url=cluster.url, redis_mode="cluster")
        values = await _keys_on_every_node(settings)
        assert values == [f"portico:test:{{{n}}}".encode() for n in range(12)]
        ca, _, _ = pki
        without = RedisSettings(redis_url=cluster.url, redis_mode="cluster", redis_tls_ca_file=ca.cert)
        with pytest.raises(RedisError):
            await _ping(without)


async def test_sentinel_over_mutual_tls(pki: tuple[Pem, Pem, Pem], tmp_path: Path) -> None:
    with LocalRedisSentinel(ports=free_ports(3), data_dir=tmp_path, tls=_mutual_tls(pki)) as pair:
        settings = _with_certificate(
            pki,
            redis_url="rediss://unused:6379/0",  # the scheme says TLS, to the sentinels and the master
            redis_mode="sentinel",
            redis_sentinels=pair.sentinels,
            redis_sentinel_master=pair.master_name,
        )
        assert await _keys_on_every_node(settings) == [f"portico:test:{{{n}}}".encode() for n in range(12)]
        without = settings.model_copy(update={"redis_tls_cert_file": None, "redis_tls_key_file": None})
        with pytest.raises(RedisError):
            await _ping(without)
