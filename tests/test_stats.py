"""Estimators against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from relu_landscape import stats


def test_wilson_hand_computed():
    # k = 8 of n = 10, z = 1.96: centre = (0.8 + 0.19208)/1.38416,
    # half = 1.96*sqrt(0.016+0.009604)/1.38416
    lo, hi = stats.wilson_interval(8, 10, z=1.96)
    centre = (0.8 + 1.96**2 / 20) / (1 + 1.96**2 / 10)
    half = 1.96 * math.sqrt(0.8 * 0.2 / 10 + 1.96**2 / 400) / (1 + 1.96**2 / 10)
    assert lo == pytest.approx(centre - half, abs=1e-12)
    assert hi == pytest.approx(centre + half, abs=1e-12)
    lo0, hi0 = stats.wilson_interval(0, 5)
    assert lo0 == 0 and 0 < hi0 < 1


def test_alpha_50_recovers_logistic_truth():
    # expected counts of a logistic with alpha_50 = 0.7 and slope -20: the MLE on exact
    # expectations returns the truth.
    x = np.linspace(0.4, 1.0, 7)
    n = np.full(7, 1000.0)
    k = n / (1 + np.exp(20 * (x - 0.7)))
    t = stats.alpha_50(x, k, n)
    assert t.method == "logistic"
    assert t.alpha_50 == pytest.approx(0.7, abs=1e-8)
    assert t.low < 0.7 < t.high and t.high - t.low < 0.02


def test_alpha_50_single_intermediate_point_falls_back_to_bracket():
    # one point strictly between 0 and 1: the logistic interval would span the grid
    t = stats.alpha_50([0.25, 0.5, 0.75, 1.0], [12, 12, 1, 0], [12, 12, 12, 12])
    assert t.method == "bracket" and (t.low, t.high) == (0.5, 0.75)


def test_alpha_50_bracket_and_out_of_grid():
    t = stats.alpha_50([0.2, 0.4, 0.6], [10, 10, 0], [10, 10, 10])
    assert (t.method, t.low, t.high, t.alpha_50) == ("bracket", 0.4, 0.6, pytest.approx(0.5))
    never = stats.alpha_50([0.2, 0.4], [0, 0], [5, 5])
    assert math.isnan(never.alpha_50) and never.high == 0.2
    always = stats.alpha_50([0.2, 0.4], [5, 5], [5, 5])
    assert math.isnan(always.alpha_50) and always.low == 0.4


def test_mean_stderr():
    m, se = stats.mean_stderr(np.array([1.0, 2.0, 3.0, 4.0]))
    assert m == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)


def test_alpha_50_quasi_separated_data_has_no_logistic_fit():
    # 4/4, 2/4, 0/4: every success at alpha <= 0.4 <= every failure, so the likelihood
    # rises without bound as the slope -> -inf. An unchecked Newton fit stopped at slope
    # ~ -147 and reported "logistic" with the interval [0.387, 0.413].
    x, k, n = [0.2, 0.4, 0.6], [4, 2, 0], [4, 4, 4]
    t = stats.alpha_50(x, k, n)
    assert (t.method, t.low, t.high) == ("bracket", 0.4, 0.6)
    assert stats.separated(x, k, n)
    # one more success above the middle: overlapping outcomes, a finite maximum
    assert not stats.separated([0.2, 0.4, 0.6], [4, 2, 1], [4, 4, 4])
    assert not stats.separated([0.2, 0.4, 0.6], [3, 2, 0], [4, 4, 4])


def test_alpha_50_unconverged_fit_falls_back_to_a_named_bracket(monkeypatch):
    x = np.linspace(0.4, 1.0, 7)
    n = np.full(7, 1000.0)
    k = n / (1 + np.exp(20 * (x - 0.7)))
    assert stats._logistic_fit(x, k, n)[2]
    # two Newton steps from beta = 0 are far from the optimum (slope -20)
    starved = stats._logistic_fit
    assert not starved(x, k, n, iters=2)[2]
    monkeypatch.setattr(stats, "_logistic_fit", lambda *a: starved(*a, iters=2))
    t = stats.alpha_50(x, k, n)
    assert (t.method, t.low, t.high) == ("bracket-unconverged", 0.7, 0.8)
