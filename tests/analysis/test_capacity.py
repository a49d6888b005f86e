"""The capacity analysis on a synthetic runs table: Wilson intervals, alpha_50, trend."""

from __future__ import annotations

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
