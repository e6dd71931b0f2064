"""Wilson intervals of rates."""

from __future__ import annotations

import pytest

from feedback.stats import rate, wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [
        # Reference values of the Wilson score interval at 95 %.
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (1, 2, 0.0945, 0.9055),
        (81, 263, 0.2553, 0.3662),
        (500, 1000, 0.4691, 0.5309),
    ],
)
def test_wilson_interval_matches_reference_values(
    successes: int, trials: int, low: float, high: float
) -> None:
    found = wilson_interval(successes, trials)
    assert found == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize("trials", [1, 3, 10, 1000])
def test_interval_holds_the_observed_rate_and_stays_in_0_1(trials: int) -> None:
    for successes in range(trials + 1):
        low, high = wilson_interval(successes, trials)
        assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_more_trials_narrow_the_interval() -> None:
    small = wilson_interval(3, 10)
    large = wilson_interval(300, 1000)
    assert large[1] - large[0] < small[1] - small[0]


@pytest.mark.parametrize(("successes", "trials"), [(1, 0), (-1, 5), (6, 5)])
def test_impossible_counts_are_refused(successes: int, trials: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        wilson_interval(successes, trials)


def test_rate_without_trials_has_no_value_or_interval() -> None:
    r = rate(0, 0)
    assert (r.value, r.low, r.high) == (None, None, None)


def test_rate_of_more_events_than_exposures_keeps_the_count() -> None:
    r = rate(7, 5)
    assert (r.successes, r.trials, r.value) == (7, 5, 1.4)
    assert (r.low, r.high) == wilson_interval(5, 5)
