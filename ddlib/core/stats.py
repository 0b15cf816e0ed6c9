"""Summaries over repeated runs: mean, sample standard deviation and a 95 % t-interval.

A headline cell is run with several distillation seeds, each judged by several evaluation models.
The unit of repetition is the *seed*: a seed's value is the mean over its evaluation models, and
the interval is Student's t over the seeds (the evaluation models of one seed are not independent
draws of the whole pipeline). Differences between two cells use Welch's interval. A verdict
("amplified", "improved", ...) is stated only when the interval of the difference excludes the
margin; otherwise the cell reads "within noise".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

CONFIDENCE = 0.95
WITHIN_NOISE = "within noise"


@dataclass(frozen=True)
class Summary:
    """``n`` values summarised: mean, sample std (n − 1; NaN for n = 1) and the two-sided interval."""

    mean: float
    std: float
    n: int
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def excludes(self, value: float) -> bool:
        return bool(self.low > value or self.high < value)

    def text(self, digits: int = 1) -> str:
        """``mean ± half-width (n)``, e.g. ``84.0 ± 2.1 (n=3)``; no interval for n = 1."""
        if self.n < 2 or not math.isfinite(self.half_width):
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f} (n={self.n})"


def _t(df: float, confidence: float) -> float:
    return float(_st.t.ppf(0.5 + confidence / 2, df))


def summarise(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample std and Student's t-interval of the mean of ``values`` (NaNs dropped)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return Summary(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if len(x) < 2:
        return Summary(mean, math.nan, 1, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = _t(len(x) - 1, confidence) * std / math.sqrt(len(x))
    return Summary(mean, std, len(x), mean - half, mean + half)


def difference(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """mean(a) − mean(b) with Welch's t-interval (unequal variances); ``std`` is the difference's
    standard error. With fewer than 2 values on a side there is no interval (NaN bounds)."""
    sa, sb = summarise(a, confidence), summarise(b, confidence)
    mean = sa.mean - sb.mean
    if sa.n < 2 or sb.n < 2:
        return Summary(mean, math.nan, min(sa.n, sb.n), math.nan, math.nan)
    va, vb = sa.std ** 2 / sa.n, sb.std ** 2 / sb.n
    se = math.sqrt(va + vb)
    if se == 0:
        return Summary(mean, 0.0, sa.n + sb.n, mean, mean)
    df = (va + vb) ** 2 / (va ** 2 / (sa.n - 1) + vb ** 2 / (sb.n - 1))
    half = _t(df, confidence) * se
    return Summary(mean, se, sa.n + sb.n, mean - half, mean + half)


def verdict(diff: Summary, positive: str, negative: str, margin: float = 0.0) -> str:
    """``positive`` when the whole interval lies above ``margin``, ``negative`` when below
    ``-margin``, else "within noise" (also when there is no interval)."""
    if not (math.isfinite(diff.low) and math.isfinite(diff.high)):
        return WITHIN_NOISE
    if diff.low > margin:
        return positive
    if diff.high < -margin:
        return negative
    return WITHIN_NOISE
