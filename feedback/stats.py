"""Rates and their uncertainty, for what the pages report about feedback (no ORM here).

A rate from a few exposures is mostly noise: 1 Love out of 2 views is "50 %", and so is 500
out of 1,000. The Wilson score interval says how far the true rate may be from the observed
one; unlike the textbook normal interval it stays inside [0, 1] and is still sensible for 0 or
n successes and for small n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal quantile of 0.975: a two-sided 95 % interval


@dataclass(frozen=True, slots=True)
class Rate:
    """`successes` out of `trials`, with its 95 % Wilson interval (None when trials is 0)."""

    successes: int
    trials: int
    low: float | None
    high: float | None

    @property
    def value(self) -> float | None:
        return self.successes / self.trials if self.trials else None


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion: (low, high), within [0, 1]."""
    if trials <= 0:
        raise ValueError("trials must be positive")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and {trials}, got {successes}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = (z / (1 + z2 / trials)) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # Rounding can leave a bound a hair on the wrong side of p (at 0 or n successes) or of
    # [0, 1]; the interval always holds the observed rate.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def rate(successes: int, trials: int) -> Rate:
    """The rate with its interval; no interval for no trials. More successes than trials (a
    count of events per exposure can exceed it) get the interval of the clamped count."""
    if trials <= 0:
        return Rate(successes, trials, None, None)
    low, high = wilson_interval(min(successes, trials), trials)
    return Rate(successes, trials, low, high)
