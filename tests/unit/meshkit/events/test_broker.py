"""Starting the Kafka broker in the background: retried until Kafka answers, the back-off capped."""

from __future__ import annotations

import pytest

from meshkit.events import broker as broker_module
from meshkit.events.security import PLAINTEXT, KafkaSecurity


class FakeBroker:
    def __init__(self) -> None:
        self.started = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        pass


async def test_retries_until_kafka_answers_with_the_back_off_capped_at_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([False] * 8 + [True])
    sleeps: list[float] = []

    async def kafka_answers(
        bootstrap: str, timeout: float = 3.0, *, security: KafkaSecurity = PLAINTEXT
    ) -> bool:
        return next(answers)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    monkeypatch.setattr(broker_module, "kafka_answers", kafka_answers)
    monkeypatch.setattr(broker_module.asyncio, "sleep", sleep)
    fake = FakeBroker()
    await broker_module.start_with_retry(fake, "127.0.0.1:9")  # type: ignore[arg-type]
    assert fake.started == 1
    assert len(sleeps) == 8
    assert sleeps[0] == 0.25
    assert sleeps == sorted(sleeps)
    assert max(sleeps) == 1.0  # Kafka coming up is noticed within a second, however long it took
