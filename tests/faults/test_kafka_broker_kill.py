"""One broker of a 3-broker KRaft cluster SIGKILLed in the middle of sign-ups through the real auth and users
backends, and left dead: the user topic has 3 replicas and min ISR 2, so the other two keep taking acks=all
writes; every registered user has its ``user.created`` event on the topic, once by event id (a copy only
ever repeats the same id: at least once, deduplicated by event id as the contract says)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from harness.auth import start_auth_stack, stop_auth_stack
from harness.infra import InfraEnv
from harness.kafka_faults import TopicLayout, report, topic_layout, user_created_events
from harness.sign_ups import SignUps
from infra.local import LocalKafkaCluster
from infra.procs import peer_port_range

pytestmark = [pytest.mark.infra, pytest.mark.timeout(420)]

BROKERS = 3
SIGN_UPS = 240
KILL_AT = 80  # sign-ups done when the broker leading partition 0 of the user topic is killed
WORKERS = 4  # concurrent sign-ups: load a busy 2-core machine can carry
USERS_TOPIC = "portico.users.v1"
PASSWORD = "Three-Brokers-19"  # noqa: S105 (a test password)


async def survivors_lead(bootstrap: str, dead: int, *, timeout: float) -> TopicLayout:
    """The user topic's layout once the controller has fenced the dead broker (its session timeout) and
    moved the leadership of its partitions to the others."""
    async with asyncio.timeout(timeout):
        while True:
            layout = await topic_layout(bootstrap, USERS_TOPIC)
            if dead not in layout.leaders.values():
                return layout
            await asyncio.sleep(0.5)


async def test_a_broker_sigkilled_during_sign_ups_loses_no_event(
    infra: InfraEnv, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    base = peer_port_range(2 * BROKERS)  # node i: client base + 2i, controller base + 2i + 1
    cluster = LocalKafkaCluster(
        brokers=BROKERS, port=base, controller_port=base + 1, data_dir=tmp_path / "kafka"
    )
    await asyncio.to_thread(cluster.start)
    try:
        await asyncio.to_thread(cluster.wait_ready, 120)
        own = InfraEnv(cluster.bootstrap, infra.redis_url, infra.database_url)
        stack = await asyncio.to_thread(start_auth_stack, own, tmp_path, {"PORTICO_LOG_LEVEL": "INFO"})
    except BaseException:
        await asyncio.to_thread(cluster.stop)
        raise
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    sign_ups = SignUps(stack, tenant, PASSWORD)

    try:
        with sign_ups.running(count=SIGN_UPS, workers=WORKERS) as signing_up:
            await sign_ups.reached(KILL_AT, 120)
            layout = await topic_layout(cluster.bootstrap, USERS_TOPIC)  # created by the first relayed event
            victim = cluster.nodes[layout.leaders[0] - 1]
            await asyncio.to_thread(victim.kill)
            killed_at, done_at_kill = time.monotonic(), sign_ups.done()
            await asyncio.wait_for(signing_up, 240)
        after = await survivors_lead(cluster.bootstrap, victim.layout.node_id, timeout=60)
        registered = sign_ups.ids()
        events, read_s = await user_created_events(cluster.bootstrap, USERS_TOPIC, registered, timeout=120)
        all_events_s = time.monotonic() - killed_at
    finally:
        await asyncio.to_thread(stop_auth_stack, stack)
        await asyncio.to_thread(cluster.stop)

    mine = {user: ids for user, ids in events.items() if user in registered}
    copies = sum(len(ids) for ids in mine.values())
    lost = len(registered - mine.keys())
    report(
        record_property,
        "kafka_broker_kill",
        brokers=BROKERS,
        killed_node=victim.layout.node_id,
        sign_ups=SIGN_UPS,
        ok=len(registered),
        failed=len(sign_ups.failures),
        after_kill=SIGN_UPS - done_at_kill,
        events_seen=copies,
        duplicates=copies - len(mine),
        lost=lost,
        kill_to_all_events_s=round(all_events_s, 2),
        read_s=round(read_s, 2),
    )
    assert all(replicas == [1, 2, 3] for replicas in layout.replicas.values()), layout
    assert layout.min_insync_replicas == 2
    assert all(len(isr) >= after.min_insync_replicas for isr in after.in_sync.values()), after
    assert sign_ups.failures == []
    assert lost == 0
    assert all(len(set(ids)) == 1 for ids in mine.values())  # a repeat only ever with the same event id
