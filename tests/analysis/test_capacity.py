"""The capacity analysis on a synthetic runs table: Wilson intervals, alpha_50, trend."""

from __future__ import annotations

import pytest

from relu_landscape import store
from relu_landscape.analysis import capacity
from tests.analysis.synthetic import flags, write_runs


@pytest.fixture
def root(tmp_path):
    # Symmetric crossings: P(solved) = 1, 1/2, 0 around alpha = 0.4 (N = 20) and 0.5 (N = 40).
    write_runs(
        tmp_path, "sign", "binary", 1, 20, {0.2: flags(4), 0.4: flags(2), 0.6: flags(0)}
    )
    write_runs(
        tmp_path, "sign", "binary", 1, 40, {0.3: flags(4), 0.5: flags(2), 0.7: flags(0)}
    )
    # No point strictly between 0 and 1: the threshold is bracketed by the grid.
    write_runs(
        tmp_path, "relu", "binary", 2, 20, {0.2: flags(4), 0.4: flags(4), 0.6: flags(0)}
    )
    return tmp_path


def test_solved_fraction_has_hand_computed_wilson_intervals(root):
    cells = capacity.solved_fraction(store.scan_runs(root))
    assert cells.height == 9
    half = cells.filter(
        (cells["N"] == 20) & (cells["alpha"] == 0.4) & (cells["activation"] == "sign")
    ).row(0, named=True)
    assert (half["instances"], half["solved"], half["p_solved"]) == (4, 2, 0.5)
    # Wilson 95% for 2/4: centre 1/2, half-width 1.96 sqrt(1/16 + 1.96^2/64) / (1 + 1.96^2/4)
    assert half["p_low"] == pytest.approx(0.1500, abs=1e-4)
    assert half["p_high"] == pytest.approx(0.8500, abs=1e-4)
    full = cells.filter(
        (cells["N"] == 20) & (cells["alpha"] == 0.2) & (cells["activation"] == "sign")
    ).row(0, named=True)
    assert full["p_low"] == pytest.approx(0.5101, abs=1e-4) and full["p_high"] == 1.0


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


def test_finite_size_trend_extrapolates_in_one_over_N(root):
    thr = capacity.thresholds(capacity.solved_fraction(store.scan_runs(root)))
    trend = capacity.finite_size_trend(thr)
    assert trend.height == 1  # relu has a single N
    row = trend.row(0, named=True)
    # alpha_50 = a + b/N through (1/20, 0.4) and (1/40, 0.5): b = -4, a = 0.6
    assert row["sizes"] == 2
    assert row["slope"] == pytest.approx(-4.0, abs=1e-6)
    assert row["alpha_50_inf"] == pytest.approx(0.6, abs=1e-6)
    assert row["stderr"] > 0
