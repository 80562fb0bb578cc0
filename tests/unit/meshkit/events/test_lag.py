"""The consumer-lag gauge: the arithmetic, and the monitor's export, errors and shutdown on a fake Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from backends.auth.config import AuthSettings
from backends.posts.config import PostsSettings
from meshkit.events.lag import ConsumerLagMonitor, compute_lag

T = "portico.users.v1"
P0, P1, P2 = TopicPartition(T, 0), TopicPartition(T, 1), TopicPartition(T, 2)


class FakeOffsets:
    """Offsets of one topic, set by the test; ``fail`` makes every call raise like an unreachable Kafka."""

    def __init__(self) -> None:
        self.parts: list[TopicPartition] = [P0, P1]
        self.commits: dict[str, dict[TopicPartition, int]] = {}
        self.first: dict[TopicPartition, int] = {}
        self.end: dict[TopicPartition, int] = {}
        self.fail = False
        self.closed = 0
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("kafka is away")

    async def partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        self._call()
        return [tp for tp in self.parts if tp.topic in topics]

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        self._call()
        return dict(self.commits.get(group, {}))

    async def first_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self._call()
        return {tp: self.first.get(tp, 0) for tp in partitions}

    async def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self._call()
        return {tp: self.end[tp] for tp in partitions if tp in self.end}

    async def close(self) -> None:
        self.closed += 1


def lag(registry: CollectorRegistry, group: str, partition: int) -> float | None:
    return registry.get_sample_value(
        "portico_kafka_consumer_lag", {"group": group, "topic": T, "partition": str(partition)}
    )


def errors(registry: CollectorRegistry, group: str) -> float | None:
    return registry.get_sample_value("portico_kafka_consumer_lag_errors_total", {"group": group})


async def eventually(check: Callable[[], bool], seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_lag_is_end_minus_committed_counted_from_the_first_record_kept() -> None:
    end = {P0: 10, P1: 10, P2: 10}
    first = {P0: 0, P1: 4, P2: 0}
    committed = {P0: 7, P1: 2}  # P1's commit is below what retention kept; P2 has none
    assert compute_lag([P0, P1, P2], committed, first, end) == {P0: 3, P1: 6, P2: 10}


def test_lag_is_zero_when_caught_up_and_never_negative() -> None:
    assert compute_lag([P0, P1], {P0: 10, P1: 12}, {}, {P0: 10, P1: 10}) == {P0: 0, P1: 0}


def test_a_partition_without_an_end_offset_is_left_out() -> None:
    assert compute_lag([P0, P1], {}, {}, {P0: 5}) == {P0: 5}


def test_an_uncommitted_marker_counts_from_the_first_record() -> None:
    assert compute_lag([P0], {P0: -1}, {P0: 3}, {P0: 8}) == {P0: 5}


async def test_refresh_exports_one_series_per_partition() -> None:
    registry, kafka = CollectorRegistry(), FakeOffsets()
    kafka.end = {P0: 5, P1: 3}
    kafka.commits["g"] = {P0: 5, P1: 1}
    monitor = ConsumerLagMonitor(kafka, "g", [T], registry=registry)
    assert await monitor.refresh()
    assert (lag(registry, "g", 0), lag(registry, "g", 1)) == (0, 2)
    assert errors(registry, "g") == 0
    kafka.commits["g"][P1] = 3
    assert await monitor.refresh()
    assert lag(registry, "g", 1) == 0


async def test_a_topic_not_created_yet_exports_nothing() -> None:
    registry, kafka = CollectorRegistry(), FakeOffsets()
    kafka.parts = []
    monitor = ConsumerLagMonitor(kafka, "g", [T], registry=registry)
    assert await monitor.refresh()
    assert lag(registry, "g", 0) is None
    assert kafka.calls == 1  # no offsets asked for no partitions


async def test_a_vanished_partition_loses_its_series() -> None:
    registry, kafka = CollectorRegistry(), FakeOffsets()
    kafka.end = {P0: 4, P1: 4}
    monitor = ConsumerLagMonitor(kafka, "g", [T], registry=registry)
    await monitor.refresh()
    assert lag(registry, "g", 1) == 4
    kafka.parts = [P0]
    await monitor.refresh()
    assert lag(registry, "g", 0) == 4
    assert lag(registry, "g", 1) is None


async def test_kafka_away_keeps_the_last_values_counts_and_reconnects() -> None:
    registry, kafka = CollectorRegistry(), FakeOffsets()
    kafka.end = {P0: 9, P1: 9}
    monitor = ConsumerLagMonitor(kafka, "g", [T], registry=registry)
    await monitor.refresh()
    kafka.fail = True
    assert not await monitor.refresh()
    assert not await monitor.refresh()
    assert errors(registry, "g") == 2
    assert lag(registry, "g", 0) == 9
    assert kafka.closed == 2  # the clients are rebuilt on the next round
    kafka.fail = False
    kafka.commits["g"] = {P0: 9, P1: 9}
    assert await monitor.refresh()
    assert lag(registry, "g", 0) == 0


async def test_a_slow_kafka_times_out_as_an_error() -> None:
    class Hanging(FakeOffsets):
        async def committed(self, group: str) -> dict[TopicPartition, int]:
            await asyncio.Event().wait()
            return {}

    registry, kafka = CollectorRegistry(), Hanging()
    kafka.end = {P0: 1, P1: 1}
    monitor = ConsumerLagMonitor(kafka, "g", [T], registry=registry, timeout=0.05)
    assert not await monitor.refresh()
    assert errors(registry, "g") == 1


async def test_run_refreshes_every_interval_and_closes_when_cancelled() -> None:
    registry, kafka = CollectorRegistry(), FakeOffsets()
    kafka.end = {P0: 2, P1: 2}
    monitor = ConsumerLagMonitor(kafka, "g", [T], registry=registry, interval=0.01)
    task = asyncio.create_task(monitor.run())
    await eventually(lambda: kafka.calls >= 4 * 3)  # three rounds of four calls
    kafka.commits["g"] = {P0: 1, P1: 2}
    await eventually(lambda: lag(registry, "g", 0) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert kafka.closed == 1


async def test_groups_share_a_registry_with_their_own_series() -> None:
    registry, kafka = CollectorRegistry(), FakeOffsets()
    kafka.end = {P0: 6, P1: 6}
    kafka.commits = {"a": {P0: 6, P1: 6}, "b": {P0: 1, P1: 1}}
    for group in ("a", "b"):
        await ConsumerLagMonitor(kafka, group, [T], registry=registry).refresh()
    assert (lag(registry, "a", 0), lag(registry, "b", 0)) == (0, 5)


def test_the_interval_is_one_setting_for_every_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AuthSettings().consumer_lag_interval == 10.0
    monkeypatch.setenv("PORTICO_CONSUMER_LAG_INTERVAL", "2.5")
    assert PostsSettings().consumer_lag_interval == 2.5
    monkeypatch.setenv("PORTICO_CONSUMER_LAG_INTERVAL", "0")
    with pytest.raises(ValidationError):
        AuthSettings()
