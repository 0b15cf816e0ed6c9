"""Mean, sample std, t-intervals and verdicts over seeds (ddlib.core.stats)."""

import math

import numpy as np
import pytest
from scipy import stats as st

from ddlib.core.stats import WITHIN_NOISE, difference, summarise, verdict


def test_summary_uses_sample_std_and_t_interval():
    s = summarise([87.0, 81.1, 84.0])
    assert s.n == 3
    assert s.std == pytest.approx(np.std([87.0, 81.1, 84.0], ddof=1))
    half = st.t.ppf(0.975, 2) * s.std / math.sqrt(3)
    assert (s.low, s.high) == pytest.approx((s.mean - half, s.mean + half))
    assert "±" in s.text()


def test_single_value_has_no_interval_and_no_verdict():
    s = summarise([50.0])
    assert s.n == 1 and math.isnan(s.std) and math.isnan(s.low)
    assert verdict(difference([50.0], [10.0]), "up", "down") == WITHIN_NOISE


def test_nan_values_are_dropped():
    assert summarise([1.0, float("nan"), 3.0]).n == 2


def test_welch_difference_matches_scipy():
    a, b = [80.0, 84.0, 82.5], [23.0, 25.0, 21.0]
    d = difference(a, b)
    res = st.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high))
    assert verdict(d, "improved", "worse") == "improved"
    assert verdict(difference(b, a), "improved", "worse") == "worse"


def test_overlapping_cells_are_within_noise_and_margin_counts():
    d = difference([50.0, 55.0, 45.0], [49.0, 51.0, 50.5])
    assert verdict(d, "up", "down") == WITHIN_NOISE
    clear = difference([60.0, 61.0, 60.5], [50.0, 50.5, 49.5])
    assert verdict(clear, "up", "down", margin=5.0) == "up"
    assert verdict(clear, "up", "down", margin=20.0) == WITHIN_NOISE
