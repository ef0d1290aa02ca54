"""Paired differences between seeds and their verdicts: the statistics segkd.compare reports, in a home
of their own so that lab scripts and analyses can use them without importing a command.

Seeds are paired because the seed fixes the initialisation, the training order and every
augmentation (segkd.data.sampling): a paired difference removes most of the seed noise that an
unpaired mean hides. The 95% interval of the mean paired difference uses Student's t with n - 1
degrees of freedom; a recipe is "better" or "worse" only when that interval excludes 0.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

BETTER, WORSE, SAME = "better", "worse", "not distinguishable"


def t_interval(diffs: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Two-sided Student-t confidence interval of the mean; NaNs when fewer than two values."""
    n = len(diffs)
    if n < 2:
        return math.nan, math.nan
    from scipy.stats import t

    mean = statistics.fmean(diffs)
    half = t.ppf(0.5 + level / 2, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return mean - half, mean + half


def verdict(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return SAME
    if low > 0:
        return BETTER
    if high < 0:
        return WORSE
    return SAME
