"""The one backoff rule: doubling, capped, spread by jitter, never negative."""

from __future__ import annotations

import random

import pytest

from smsgate.retry import backoff_delay


def test_backoff_doubles_from_the_base_until_the_cap() -> None:
    delays = [backoff_delay(n, base=30, cap=300, jitter=0) for n in range(6)]
    assert delays == [30, 60, 120, 240, 300, 300]


def test_jitter_spreads_a_delay_within_its_fraction_and_differs_between_callers() -> None:
    rng = random.Random(7)
    seen = [backoff_delay(2, base=10, cap=1000, jitter=0.2, rng=rng) for _ in range(200)]
    assert all(32 <= d <= 48 for d in seen)
    assert len({round(d, 6) for d in seen}) > 100


def test_a_capped_delay_still_spreads() -> None:
    rng = random.Random(1)
    seen = {round(backoff_delay(50, base=1, cap=60, jitter=0.1, rng=rng), 6) for _ in range(20)}
    assert all(54 <= d <= 66 for d in seen) and len(seen) > 1


def test_huge_attempt_counts_do_not_overflow() -> None:
    assert backoff_delay(10_000, base=1, cap=5, jitter=0) == 5


def test_negative_attempts_count_as_none() -> None:
    assert backoff_delay(-3, base=2, cap=10, jitter=0) == 2


@pytest.mark.parametrize(
    "kwargs", [{"base": -1, "cap": 1}, {"base": 1, "cap": -1}, {"base": 1, "cap": 1, "jitter": 1.5}]
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        backoff_delay(1, **kwargs)
