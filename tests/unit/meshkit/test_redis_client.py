"""The kit's Redis factory: the mode picks the client, TLS settings reach the connections, and settings
that cannot work are refused when the client is made (at start), not at the first request."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from meshkit.config.stores import RedisSettings
from meshkit.redis_client import TIMEOUT_SECONDS, connect, is_cluster

CA, CERT, KEY = Path("/pki/ca.crt"), Path("/pki/client.crt"), Path("/pki/client.key")


async def test_one_server_by_default_with_the_usual_timeouts() -> None:
    redis = connect(RedisSettings(redis_url="redis://127.0.0.1:6390/2"))
    assert isinstance(redis, Redis)
    assert not is_cluster(redis)
    kwargs = redis.connection_pool.connection_kwargs
    assert (kwargs["port"], kwargs["db"]) == (6390, 2)
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == TIMEOUT_SECONDS
    await redis.aclose()


async def test_rediss_carries_the_ca_and_the_client_certificate() -> None:
    settings = RedisSettings(
        redis_url="rediss://127.0.0.1:6390/0",
        redis_tls_ca_file=CA,
        redis_tls_cert_file=CERT,
        redis_tls_key_file=KEY,
    )
    redis = connect(settings)
    assert isinstance(redis, Redis)
    kwargs = redis.connection_pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == (
        str(CA),
        str(CERT),
        str(KEY),
    )
    assert kwargs["ssl_cert_reqs"] == "required"
    await redis.aclose()


async def test_cluster_and_sentinel_modes() -> None:
    cluster = connect(RedisSettings(redis_url="redis://127.0.0.1:7000/0", redis_mode="cluster"))
    assert isinstance(cluster, RedisCluster)
    assert is_cluster(cluster)
    await cluster.aclose()
    sentinel = connect(RedisSettings(redis_mode="sentinel", redis_sentinels="127.0.0.1:26379, [::1]:26380"))
    assert isinstance(sentinel, Redis)
    assert not is_cluster(sentinel)
    await sentinel.aclose()


@pytest.mark.parametrize(
    "settings",
    [
        RedisSettings(redis_url="redis://127.0.0.1:6379/0", redis_tls_ca_file=CA),  # TLS files, no TLS
        RedisSettings(redis_url="rediss://127.0.0.1:6379/0", redis_tls_cert_file=CERT),  # a cert, no key
        RedisSettings(redis_mode="sentinel"),  # no sentinel named
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(settings: RedisSettings) -> None:
    with pytest.raises(ValueError, match="PORTICO_REDIS_"):
        connect(settings)
