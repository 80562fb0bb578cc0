"""Kafka SIGKILLed in the middle of 300 sign-ups through the real auth and users backends, then restarted:
every sign-up is served (the events wait in the users outbox), and after the restart every registered user
has its ``user.created`` event on the topic, once by event id (a copy only ever repeats the same id)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from harness.auth import start_auth_stack, stop_auth_stack
from harness.infra import InfraEnv
from harness.kafka_faults import report, sigkill, user_created_events
from harness.sign_ups import SignUps
from infra.local import LocalKafka, free_port

pytestmark = [pytest.mark.infra, pytest.mark.timeout(420)]

SIGN_UPS = 300
KILL_AT = 100  # sign-ups done when Kafka is killed
RESTART_AT = 200  # ... and when it is started again
WORKERS = 4  # concurrent sign-ups: load a busy 2-core machine can carry
USERS_TOPIC = "portico.users.v1"
PASSWORD = "tangerine-Orbit-73"  # noqa: S105 (a test password)


async def test_kafka_sigkill_during_sign_ups_loses_no_event(
    infra: InfraEnv, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    kafka = LocalKafka(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka")
    await asyncio.to_thread(kafka.start)
    await asyncio.to_thread(kafka.wait_ready, 90)
    own = InfraEnv(kafka.bootstrap, infra.redis_url, infra.database_url)
    stack = await asyncio.to_thread(start_auth_stack, own, tmp_path, {"PORTICO_LOG_LEVEL": "INFO"})
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    sign_ups = SignUps(stack, tenant, PASSWORD)

    try:
        with sign_ups.running(count=SIGN_UPS, workers=WORKERS) as signing_up:
            await sign_ups.reached(KILL_AT, 120)
            killed_at = time.monotonic()
            assert kafka.pid is not None
            await asyncio.to_thread(sigkill, kafka._proc)  # type: ignore[arg-type]
            await sign_ups.reached(RESTART_AT, 180)
            during_outage = sign_ups.done() - KILL_AT
            await asyncio.to_thread(kafka.start)  # same ports, same data directory
            await asyncio.to_thread(kafka.wait_ready, 90)
            back_at = time.monotonic()
            # Recovery: from Kafka answering again until every sign-up made so far has its event.
            backlog = sign_ups.ids()
            drained = asyncio.create_task(
                user_created_events(kafka.bootstrap, USERS_TOPIC, backlog, timeout=120)
            )
            await asyncio.wait_for(signing_up, 180)
            _, recovery_s = await drained
        registered = sign_ups.ids()
        events, _ = await user_created_events(kafka.bootstrap, USERS_TOPIC, registered, timeout=120)
    finally:
        await asyncio.to_thread(stop_auth_stack, stack)
        await asyncio.to_thread(kafka.stop)

    mine = {user: ids for user, ids in events.items() if user in registered}
    copies = sum(len(ids) for ids in mine.values())
    lost = len(registered - mine.keys())
    report(
        record_property,
        "kafka_kill",
        sign_ups=SIGN_UPS,
        ok=len(registered),
        failed=len(sign_ups.failures),
        during_outage=during_outage,
        outage_s=round(back_at - killed_at, 2),
        events_seen=copies,
        duplicates=copies - len(mine),
        lost=lost,
        recovery_s=round(recovery_s, 2),
    )
    assert sign_ups.failures == []  # the outbox keeps sign-ups independent of Kafka
    assert lost == 0
    assert all(len(set(ids)) == 1 for ids in mine.values())  # a repeat only ever with the same event id
