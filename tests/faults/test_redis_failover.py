"""Redis servers lost for real under the revocation marks, with clients made by the kit's factory and auth's
re-fill (:class:`backends.auth.revocations.RedisRefill`) on its own SQLite table:

- Sentinel: the master SIGKILLed right after a logout its replica never received. Meanwhile a revocation
  check without a loaded in-process set fails closed (``RevocationUnknown``, the gateway's 503), never
  "not revoked"; the client follows the sentinel to the promoted replica; auth sees that the promoted
  server carries its old master's fill marker and writes every mark again, the lost one included.
- Cluster: one primary SIGKILLed and restarted with empty memory (no persistence) while the other primaries
  keep their markers; auth notices that node alone lacks its marker and re-fills it.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from backends.auth import models
from backends.auth.revocations import Mark, RedisRefill, RevocationStore, write_marks
from harness.events import eventually
from harness.kafka_faults import report
from harness.stores.auth import migrate
from infra.procs import free_ports
from infra.redis_topologies import LocalRedisCluster, LocalRedisSentinel
from meshkit.auth.revocation import RevocationChecker, RevocationUnknown, revoked_jti_key
from meshkit.auth.tokens import Principal
from meshkit.config.stores import RedisSettings
from meshkit.db.database import Database
from meshkit.events.outbox import Outbox
from meshkit.redis_client import RedisClient, connect

pytestmark = [pytest.mark.infra, pytest.mark.timeout(300)]

FAILOVER_TIMEOUT = 60.0  # the sentinel declares the master down after 2 s, then promotes


@pytest.fixture
async def auth_db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    await migrate(url)
    database = Database(url)
    yield database
    await database.dispose()


def _token(tenant: str) -> Principal:
    now = time.time()
    return Principal(
        str(uuid.uuid4()), tenant, "", frozenset({"user"}), uuid.uuid4().hex, now, now + 600, "t", ""
    )


async def _log_out(db: Database, token: Principal) -> Mark:
    """A logout as auth commits it: the revocation in the table (the source of truth)."""
    async with db.write() as session:
        return await RevocationStore(Outbox(models.outbox), 600).revoke_token(
            session, token.tenant_id, token.jti, token.expires_at
        )


async def _marked(redis: RedisClient, token: Principal) -> bool:
    return bool(await redis.exists(revoked_jti_key(token.tenant_id, token.jti)))


async def _replicated(redis: RedisClient) -> bool:
    """Whether the replica has acknowledged every write so far (WAIT's timeout within the client's 2 s)."""
    return int(await redis.execute_command("WAIT", 1, 1000)) == 1


async def test_a_sentinel_failover_fails_closed_then_the_promoted_replica_is_refilled(
    tmp_path: Path, auth_db: Database, record_property: pytest.RecordProperty
) -> None:
    with LocalRedisSentinel(ports=free_ports(3), data_dir=tmp_path / "sentinel") as pair:
        redis = connect(
            RedisSettings(
                redis_url="redis://unused:6379/0",  # sentinel mode: the sentinels name the master
                redis_mode="sentinel",
                redis_sentinels=pair.sentinels,
                redis_sentinel_master=pair.master_name,
            )
        )
        master, replica = pair.nodes
        errors = Counter("revocation_errors", "", registry=CollectorRegistry())
        checker = RevocationChecker(redis, fail_open=False, errors=errors)  # its set is not loaded
        refill = RedisRefill(auth_db, redis, CollectorRegistry())
        try:
            kept, lost = _token("acme"), _token("acme")
            await write_marks(redis, [await _log_out(auth_db, kept)])
            assert await refill.refill_if_needed()  # the first fill sets the master's marker
            await eventually(lambda: _replicated(redis), timeout=30, what="the replica to hold every write")

            answers: list[bool | None] = []  # None: "cannot know" (the gateway's 503)

            async def check() -> None:
                try:
                    answers.append(await checker.is_revoked(kept))
                except RevocationUnknown:
                    answers.append(None)

            # The replica hangs and the master drops it; a logout reaches the master alone; the master
            # dies. Until the replica thaws there is no master at all.
            replica.send_signal(signal.SIGSTOP)
            try:
                await redis.execute_command("CLIENT", "KILL", "TYPE", "replica")
                await write_marks(redis, [await _log_out(auth_db, lost)])
                master.kill()
                killed_at = time.monotonic()
                await check()
            finally:
                replica.send_signal(signal.SIGCONT)
            assert answers == [None]

            async with asyncio.timeout(FAILOVER_TIMEOUT):
                while answers[-1] is not True:
                    await asyncio.sleep(0.2)
                    await check()
            failover_s = time.monotonic() - killed_at
            assert False not in answers  # never "not revoked" for a revoked token
            promoted = await redis.info("server")
            assert promoted["tcp_port"] == replica.port

            assert not await _marked(redis, lost)  # the promoted replica never received it ...
            refill_started = time.monotonic()
            assert await refill.refill_if_needed()  # ... and holds its old master's marker: re-filled
            refill_s = time.monotonic() - refill_started
            assert await _marked(redis, lost)
            assert await checker.is_revoked(lost)
            assert not await refill.refill_if_needed()
        finally:
            await redis.aclose()
    report(
        record_property,
        "redis_sentinel_failover",
        checks=len(answers),
        unknown=answers.count(None),
        revoked=answers.count(True),
        let_in=answers.count(False),
        failover_s=round(failover_s, 2),
        lost_marks_refilled=1,
        refill_s=round(refill_s, 3),
    )


async def test_a_cluster_node_restarted_empty_is_refilled_alone(
    tmp_path: Path, auth_db: Database, record_property: pytest.RecordProperty
) -> None:
    with LocalRedisCluster(ports=free_ports(6), data_dir=tmp_path / "cluster") as cluster:
        redis = connect(RedisSettings(redis_url=cluster.url, redis_mode="cluster"))
        try:
            tokens = [_token(f"tenant{n}") for n in range(24)]  # tenants' marks spread over the 3 nodes
            for token in tokens:
                await _log_out(auth_db, token)
            refill = RedisRefill(auth_db, redis, CollectorRegistry())
            assert await refill.refill_if_needed()  # a marker on every primary
            assert all([await _marked(redis, token) for token in tokens])
            assert not await refill.refill_if_needed()

            assert isinstance(redis, RedisCluster)

            def port_of(token: Principal) -> int:
                node = redis.get_node_from_key(revoked_jti_key(token.tenant_id, token.jti))
                assert node is not None
                return int(node.port)

            victim = next(node for node in cluster.nodes if node.port == port_of(tokens[0]))
            on_victim = {t.jti for t in tokens if port_of(t) == victim.port}
            assert 0 < len(on_victim) < len(tokens)

            victim.kill()
            victim.start()  # same node id and slots (its nodes.conf), empty memory
            victim.wait_ready()

            async def served() -> bool:
                try:
                    return not await _marked(redis, tokens[0])  # answered, and the mark is gone
                except RedisError:
                    return False  # the cluster has not taken the node back yet

            back_s = await eventually(
                served, timeout=FAILOVER_TIMEOUT, interval=0.2, what="the node back in the cluster"
            )
            missing = [t for t in tokens if not await _marked(redis, t)]
            assert {t.jti for t in missing} == on_victim  # that node's marks, and only those
            refill_started = time.monotonic()
            assert await refill.refill_if_needed()
            refill_s = time.monotonic() - refill_started
            assert all([await _marked(redis, token) for token in tokens])
            assert not await refill.refill_if_needed()
        finally:
            await redis.aclose()
    report(
        record_property,
        "redis_cluster_node_restart",
        marks=len(tokens),
        lost_with_the_node=len(missing),
        node_back_s=round(back_s, 2),
        refill_s=round(refill_s, 3),
    )
