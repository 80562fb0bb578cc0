"""The soak's plateau verdict: the floors of the two halves, robust to spikes and to a sawtooth."""

from __future__ import annotations

import os

import pytest

from bench.rss import MIB, plateau, rss_bytes


def test_flat_with_allocator_steps_and_a_spike_is_a_plateau() -> None:
    samples = [(float(t), int((90 + (t % 3) * 0.3) * MIB)) for t in range(60)]
    samples[30] = (30.0, 140 * MIB)  # one sample during a burst
    verdict = plateau(samples)
    assert verdict.flat, verdict.describe()


def test_a_sawtooth_over_a_flat_floor_is_a_plateau() -> None:
    # Garbage piles up for 38 samples and is collected: the floor stays where it was.
    samples = [(float(t), int((92 + (t % 38) * 0.15) * MIB)) for t in range(90)]
    verdict = plateau(samples)
    assert verdict.flat, verdict.describe()
    assert verdict.growth_mib == pytest.approx(0.0, abs=0.01)


def test_a_sawtooth_whose_floor_rises_is_not_a_plateau() -> None:
    samples = [(float(t), int((92 + t * 0.06 + (t % 38) * 0.15) * MIB)) for t in range(90)]
    verdict = plateau(samples)
    assert not verdict.flat, verdict.describe()


def test_steady_growth_is_not_a_plateau() -> None:
    samples = [(float(t), int((90 + t * 0.1) * MIB)) for t in range(60)]  # +6 MiB over the run
    verdict = plateau(samples)
    assert not verdict.flat
    assert verdict.growth_mib == pytest.approx(3.0, abs=0.2)
    assert verdict.slope_mib_per_hour == pytest.approx(360.0, rel=0.01)


def test_too_few_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 6"):
        plateau([(0.0, MIB)] * 5)


def test_rss_of_this_process() -> None:
    assert rss_bytes(os.getpid()) > MIB
