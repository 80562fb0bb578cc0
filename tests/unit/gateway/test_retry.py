"""The retry loop for idempotent reads: what is retried, how often, and within which deadline."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from gateway.retry import RetryPolicy, with_retries


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "x", "")


class Upstream:
    """Fails with ``code`` for the first ``failures`` attempts, then answers; records the timeouts."""

    def __init__(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self.failures = failures
        self.code = code
        self.timeouts: list[float] = []

    async def __call__(self, timeout: float) -> str:
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.failures:
            raise rpc_error(self.code)
        return "ok"


async def test_unavailable_is_retried_until_success() -> None:
    upstream, retries = Upstream(2), []
    result = await with_retries(
        upstream, deadline=5, policy=RetryPolicy(3, 0.001), on_retry=lambda: retries.append(1)
    )
    assert result == "ok"
    assert len(upstream.timeouts) == 3
    assert len(retries) == 2
    # Every attempt gets what is left of the one deadline, never a fresh one.
    assert upstream.timeouts == sorted(upstream.timeouts, reverse=True)
    assert upstream.timeouts[0] <= 5


async def test_attempts_are_capped() -> None:
    upstream = Upstream(10)
    with pytest.raises(grpc.aio.AioRpcError):
        await with_retries(upstream, deadline=5, policy=RetryPolicy(3, 0.001))
    assert len(upstream.timeouts) == 3


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL, grpc.StatusCode.NOT_FOUND]
)
async def test_other_codes_are_not_retried(code: grpc.StatusCode) -> None:
    upstream = Upstream(1, code)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await with_retries(upstream, deadline=5, policy=RetryPolicy(3, 0.001))
    assert failed.value.code() == code
    assert len(upstream.timeouts) == 1


async def test_no_retry_when_the_deadline_would_be_passed() -> None:
    upstream = Upstream(1000)
    with pytest.raises(grpc.aio.AioRpcError):
        await with_retries(upstream, deadline=0.2, policy=RetryPolicy(1000, 0.1, max_delay=0.1))
    # The loop's own decisions, read from what each attempt was given (wall time would measure the
    # machine's load, not the loop): every attempt shares the one deadline, none starts that could only
    # time out, and the deadline (not the attempt budget) ended it.
    assert upstream.timeouts == sorted(upstream.timeouts, reverse=True)
    assert upstream.timeouts[0] <= 0.2
    assert min(upstream.timeouts) >= 0.05
    assert len(upstream.timeouts) < 1000


async def test_one_attempt_means_no_retry() -> None:
    upstream = Upstream(1)
    with pytest.raises(grpc.aio.AioRpcError):
        await with_retries(upstream, deadline=5, policy=RetryPolicy(1, 0.001))
    assert len(upstream.timeouts) == 1


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(5, 0.05, max_delay=0.3)
    rng = random.Random(7)  # noqa: S311 - reproducible jitter, not cryptography
    for retry, cap in ((1, 0.05), (2, 0.1), (3, 0.2), (4, 0.3), (9, 0.3)):
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # spread over the whole range: full jitter


async def test_a_pause_that_overruns_on_a_busy_loop_starts_no_attempt_that_could_only_time_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_sleep = asyncio.sleep

    async def late(delay: float) -> None:  # a loop so busy that every pause lasts 0.27 s longer
        await real_sleep(delay + 0.27)

    monkeypatch.setattr("gateway.retry.asyncio.sleep", late)
    upstream = Upstream(1000)
    with pytest.raises(grpc.aio.AioRpcError):
        await with_retries(upstream, deadline=0.3, policy=RetryPolicy(1000, 0.01, max_delay=0.01))
    assert upstream.timeouts == [0.3]  # the one attempt that had time; none after the late pause
