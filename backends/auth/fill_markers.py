"""Whether Redis holds every live revocation mark, asked of each Redis server that holds marks.

After auth has copied every mark to a server it sets a marker there whose value is that server's run id
(a new one each time a redis-server process starts). A server that restarted without persistence has no
marker; a replica promoted by a Sentinel failover carries its old master's marker, with the old master's
run id, and may lack the last marks that master took before it died. Either way the marker is stale and
every mark is written again. On a Redis Cluster each primary has a marker of its own, under a key hashed
to that primary's slots, so one node restarted empty is noticed while the others still hold theirs.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ResponseError

from meshkit.auth.revocation import FILLED_KEY
from meshkit.redis_client import RedisClient, is_cluster

__all__ = ["Marker", "stale_markers"]

NO_RUN_ID = "1"  # where INFO is disabled (some managed services): only a missing marker is noticed


@dataclass(frozen=True)
class Marker:
    """A server's marker key, and the value it holds once that server has every mark."""

    key: str
    run_id: str


async def stale_markers(redis: RedisClient) -> list[Marker]:
    """The markers of the servers that may lack marks, each with the value to set after the re-fill.
    Raises RedisError while Redis is away."""
    markers = await _current(redis)
    stale = []
    for marker in markers:  # one server each: a few, and on a cluster each key lives on its own node
        held = await redis.get(marker.key)
        if (held.decode() if isinstance(held, bytes) else held) != marker.run_id:
            stale.append(marker)
    return stale


async def _current(redis: RedisClient) -> list[Marker]:
    if not is_cluster(redis):
        return [Marker(FILLED_KEY, await _run_id(redis))]
    assert isinstance(redis, RedisCluster)
    await redis.initialize()  # the slot map: a no-op once known
    return [Marker(key, await _run_id(redis, node)) for key, node in _key_per_primary(redis).items()]


def _key_per_primary(redis: RedisCluster) -> dict[str, ClusterNode]:
    """A marker key for every primary that serves slots, hashed to one of them (found by trying tags in
    turn: a few per node, as each node owns a large share of the 16384 slots)."""
    primaries = {nodes[0].name for nodes in redis.nodes_manager.slots_cache.values() if nodes}
    found: dict[str, ClusterNode] = {}
    for n in range(16384):
        if len(found) == len(primaries):
            break
        key = f"{FILLED_KEY}:{{{n}}}"
        node = redis.get_node_from_key(key)
        if node is not None and node.name in primaries - {known.name for known in found.values()}:
            found[key] = node
    return found


async def _run_id(redis: RedisClient, node: ClusterNode | None = None) -> str:
    try:
        if node is None:
            info = await redis.info("server")
        else:
            assert isinstance(redis, RedisCluster)
            info = await redis.info("server", target_nodes=node)
    except ResponseError:  # INFO renamed or refused
        return NO_RUN_ID
    return str(info.get("run_id") or NO_RUN_ID)
