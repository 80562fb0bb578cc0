"""One real Redis Cluster (3 masters) and one Sentinel pair (master, replica, sentinel) for this folder's
tests, started once, and a client of either made by the kit's factory
(:func:`meshkit.redis_client.connect`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from infra.procs import free_ports
from infra.redis_topologies import LocalRedisCluster, LocalRedisSentinel
from meshkit.config.stores import RedisSettings
from meshkit.redis_client import RedisClient, connect


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    with LocalRedisCluster(ports=free_ports(6), data_dir=tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisSentinel]:
    with LocalRedisSentinel(ports=free_ports(3), data_dir=tmp_path_factory.mktemp("redis-sentinel")) as pair:
        yield pair


def topology_settings(request: pytest.FixtureRequest, mode: str) -> RedisSettings:
    if mode == "cluster":
        cluster: LocalRedisCluster = request.getfixturevalue("redis_cluster")
        return RedisSettings(redis_url=cluster.url, redis_mode="cluster")
    pair: LocalRedisSentinel = request.getfixturevalue("redis_sentinel")
    # The URL's host is not used in sentinel mode: the sentinels name the master.
    return RedisSettings(
        redis_url="redis://unused:6379/0",
        redis_mode="sentinel",
        redis_sentinels=pair.sentinels,
        redis_sentinel_master=pair.master_name,
    )


@pytest.fixture(params=["cluster", "sentinel"])
async def redis(request: pytest.FixtureRequest) -> AsyncIterator[RedisClient]:
    """A client of the cluster, then of the sentinel's master: each test runs against both."""
    client = connect(topology_settings(request, request.param))
    yield client
    await client.aclose()
