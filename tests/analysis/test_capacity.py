"""Capacity analysis on synthetic runs: Wilson intervals, alpha_50, finite-size fit."""

from __future__ import annotations

import numpy as np
import pytest

from relu_landscape import store
from relu_landscape.analysis import capacity
from tests.analysis.synthetic import flags, write_runs


def _symmetric(centre: float) -> dict[float, list[bool]]:
    return {
        round(centre + step, 2): flags(solved, 16)
        for step, solved in zip(
            (-0.2, -0.1, 0.0, 0.1, 0.2), (16, 12, 8, 4, 0), strict=True
        )
    }


@pytest.fixture
def root(tmp_path):
    # Symmetric, overlapping crossings (failures below and successes above the
    # middle, so the logistic likelihood has a maximum): P(solved) = 1, 3/4, 1/2, 1/4,
    # 0 of 16 instances around alpha = 0.4 (N = 20) and 0.5 (N = 40).
    write_runs(tmp_path, "sign", "binary", 1, 20, _symmetric(0.4))
    write_runs(tmp_path, "sign", "binary", 1, 40, _symmetric(0.5))
    # Separated (every success below every failure): the threshold is bracketed.
    write_runs(
        tmp_path, "relu", "binary", 2, 20, {0.2: flags(4), 0.4: flags(4), 0.6: flags(0)}
    )
    return tmp_path


def test_solved_fraction_has_hand_computed_wilson_intervals(root):
    cells = capacity.solved_fraction(store.scan_runs(root))
    assert cells.height == 13
    half = cells.filter(
        (cells["N"] == 20) & (cells["alpha"] == 0.4) & (cells["activation"] == "sign")
    ).row(0, named=True)
    assert (half["instances"], half["solved"], half["p_solved"]) == (16, 8, 0.5)
    # Wilson 95% for 8/16: centre 1/2, half-width z sqrt(1/64 + z^2/1024) / (1 + z^2/16)
    assert half["p_low"] == pytest.approx(0.2800, abs=1e-4)
    assert half["p_high"] == pytest.approx(0.7200, abs=1e-4)
    full = cells.filter(
        (cells["N"] == 20) & (cells["alpha"] == 0.2) & (cells["activation"] == "sign")
    ).row(0, named=True)
    # 16/16: low = n / (n + z^2) = 16 / (16 + 1.96^2)
    assert full["p_low"] == pytest.approx(0.8064, abs=1e-4) and full["p_high"] == 1.0


def test_thresholds_logistic_and_bracket(root):
    thr = capacity.thresholds(capacity.solved_fraction(store.scan_runs(root)))
    rows = {(r["activation"], r["N"]): r for r in thr.iter_rows(named=True)}
    # symmetric data: the logistic fit crosses 1/2 at the middle point
    assert rows["sign", 20]["alpha_50"] == pytest.approx(0.4, abs=1e-9)
    assert rows["sign", 20]["method"] == "logistic"
    assert rows["sign", 20]["low"] < 0.4 < rows["sign", 20]["high"]
    assert rows["sign", 40]["alpha_50"] == pytest.approx(0.5, abs=1e-9)
    bracket = rows["relu", 20]
    assert (bracket["method"], bracket["low"], bracket["high"]) == ("bracket", 0.4, 0.6)
    assert bracket["alpha_50"] == pytest.approx(0.5) and bracket["instances"] == 12


def test_extrapolate_recovers_an_exact_law():
    """Points exactly on alpha_50 = 0.78 - 0.9 N^-1/2 (any errors): the fit returns the
    law, chi2 = 0. Fitted in 1/N instead, the same points leave chi2 = 54 on 2 degrees
    of freedom with intervals of +-0.001, but only 0.5 with +-0.01 (about what 32
    instances per alpha give): at N <= 2000 such intervals cannot tell them apart."""
    N = np.array([250, 500, 1000, 2000])
    a = 0.78 - 0.9 * N**-0.5
    half = np.full(4, 0.01)
    fit = capacity.extrapolate(N, a, a - half, a + half)
    assert (fit.alpha_inf, fit.slope, fit.power) == pytest.approx((0.78, -0.9, 0.5))
    assert fit.chi2 == pytest.approx(0, abs=1e-12) and fit.dof == 2
    # two points, se = 0.01/1.96 each: stderr of the intercept by hand
    x = np.array([250.0, 1000.0]) ** -0.5
    two = capacity.extrapolate(N[[0, 2]], a[[0, 2]], a[[0, 2]] - 0.01, a[[0, 2]] + 0.01)
    se = 0.01 / capacity.Z95
    assert two.stderr == pytest.approx(se * np.hypot(x[0], x[1]) / (x[0] - x[1]))
    assert capacity.extrapolate(N, a, a - half, a + half, power=1.0).chi2 < 1
    tight = capacity.extrapolate(N, a, a - half / 10, a + half / 10, power=1.0)
    assert tight.chi2 > 40 and tight.alpha_inf < 0.77


def test_extrapolate_intervals_cover_the_true_value():
    """Synthetic alpha_50 from a known law with Gaussian errors of the stated size
    (interval half-width 1.96 se, se from 0.004 at N = 250 to 0.002 at N = 2000, as
    measured): over 2000 draws the mean alpha_inf is within 4 standard errors of the
    truth, and the 95% interval alpha_inf +- 1.96 stderr covers it in 93% to 99% of
    draws (binomial sd 0.5%; the chi2 inflation can only widen it)."""
    rng = np.random.default_rng(1)
    N = np.array([250, 500, 1000, 2000])
    truth, slope = 0.77, -0.5
    se = np.array([0.004, 0.003, 0.0025, 0.002])
    fits = [
        capacity.extrapolate(N, a, a - capacity.Z95 * se, a + capacity.Z95 * se)
        for a in truth + slope * N**-0.5 + se * rng.standard_normal((2000, 4))
    ]
    est = np.array([f.alpha_inf for f in fits])
    err = np.array([f.stderr for f in fits])
    assert abs(est.mean() - truth) < 4 * est.std() / np.sqrt(len(est))
    covered = np.mean(np.abs(est - truth) <= capacity.Z95 * err)
    assert 0.93 <= covered <= 0.99


def test_finite_size_trend_fits_groups_with_three_sizes(tmp_path):
    """Symmetric success curves centred on alpha_50 = 0.7 - N^-1/2 (0.5, 0.6, 0.65 at
    N = 25, 100, 400): the trend is that law; a group with two sizes has no row."""
    for N, centre in ((25, 0.5), (100, 0.6), (400, 0.65)):
        write_runs(tmp_path, "sign", "binary", 1, N, _symmetric(centre))
    for N in (25, 100):
        write_runs(tmp_path, "relu", "binary", 2, N, _symmetric(0.5))
    thr = capacity.thresholds(capacity.solved_fraction(store.scan_runs(tmp_path)))
    trend = capacity.finite_size_trend(thr)
    assert trend.height == 1
    row = trend.row(0, named=True)
    assert (row["activation"], row["sizes"], row["dof"]) == ("sign", 3, 1)
    assert row["alpha_50_inf"] == pytest.approx(0.7, abs=1e-6)
    assert row["slope"] == pytest.approx(-1.0, abs=1e-5)
    assert row["chi2"] == pytest.approx(0, abs=1e-8) and row["stderr"] > 0
    assert capacity.finite_size_trend(thr, min_sizes=2).height == 2


def test_solvable_gives_the_exact_curve_and_the_solver_failure_rate(tmp_path):
    """8 instances at alpha 0.4 of which 5 have a solution and the solver found 2:
    P(solvable) = 5/8 with its Wilson interval, 3 missed, failure rate 3/5. A cell with
    undecided instances (null) has no exact curve."""
    import math

    from tests.analysis.synthetic import PROV, runs_rows

    def shard(N, solved, solvable, name):
        rows = runs_rows(N, {0.4: solved}, shard=name, solvable={0.4: solvable})
        store.write_shard(tmp_path, "runs", rows, activation="sign", weights="binary",
                          K=1, shard_id=name, provenance=PROV, device="cpu")

    shard(20, [True, True] + [False] * 6, [True] * 5 + [False] * 3, "a")
    shard(40, [True, False], [True, None], "b")
    cells = capacity.solved_fraction(store.scan_runs(tmp_path)).sort("N")
    exact, partial = cells.row(0, named=True), cells.row(1, named=True)
    assert (exact["decided"], exact["solvable"], exact["missed"]) == (8, 5, 3)
    assert exact["p_solvable"] == 5 / 8 and exact["failure_rate"] == 3 / 5
    z, p, n = 1.959963984540054, 5 / 8, 8
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert exact["p_solvable_low"] == pytest.approx(centre - half, rel=1e-12)
    assert exact["p_solvable_high"] == pytest.approx(centre + half, rel=1e-12)
    assert partial["decided"] == 1
    assert partial["p_solvable"] is None and partial["failure_rate"] is None
    thr = capacity.thresholds(cells, outcome="solvable")
    assert thr["N"].to_list() == [20]  # the partly decided group has no exact threshold
