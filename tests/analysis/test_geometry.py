"""Probe curves averaged over solutions and picked at the same alpha / alpha_c."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from relu_landscape import store
from relu_landscape.analysis import geometry
from tests.analysis.synthetic import (
    energy_probe_rows,
    flags,
    write_fake_theory,
    write_runs,
)
from tests.analysis.test_report import _write_probe


def test_probe_curve_and_at_load(tmp_path):
    write_runs(tmp_path, "sign", "binary", 1, 20, {0.2: flags(4), 0.4: flags(4)})
    write_fake_theory(tmp_path, {"sign": [1], "relu": [2]})
    _write_probe(tmp_path, energy_probe_rows())
    curve = geometry.CURVES["local_energy"]
    probe = store.scan_table(tmp_path, "local_energy")
    assert geometry.missing_columns(probe.collect_schema(), curve) == []
    rows = geometry.probe_curve(probe, store.scan_runs(tmp_path), curve)
    assert rows.height == 4 and rows["solutions"].to_list() == [2, 2, 2, 2]
    first = rows.row(0, named=True)  # alpha 0.2, perturbation 0.1: values 0.0, 0.1
    assert first["value"] == pytest.approx(0.05)
    assert first["stderr"] == pytest.approx(np.std([0.0, 0.1], ddof=1) / np.sqrt(2))
    theory = pl.read_parquet(tmp_path / "theory" / "theory.parquet")
    picked = geometry.at_load(rows, theory, target=0.6)  # alpha_c = 0.6: loads 1/3, 2/3
    assert picked["alpha"].unique().to_list() == [0.4]
    assert picked["load"][0] == pytest.approx(0.4 / 0.6)
    assert geometry.at_load(rows, theory, target=0.3)["alpha"].unique().to_list() == [
        0.2
    ]


def test_entropy_bound():
    d = np.array([0.0, 0.5, 0.1])
    expect = [0.0, np.log(2), -0.1 * np.log(0.1) - 0.9 * np.log(0.9)]
    assert geometry.entropy_bound(d) == pytest.approx(expect)


def _cells(spec: dict) -> pl.DataFrame:
    """A probe-curve-like table: one row per (group, alpha) of ``spec``."""
    rows = [
        {
            "activation": a,
            "weights": w,
            "K": K,
            "N": N,
            "solver": "x",
            "kappa": 0.0,
            "alpha": alpha,
            "d": 0.1,
            "value": 0.0,
            "stderr": 0.0,
            "solutions": 1,
        }
        for (a, w, K, N), alphas in spec.items()
        for alpha in alphas
    ]
    return pl.DataFrame(rows)


def test_equal_alpha_picks_one_alpha_common_to_every_group_per_weight_type():
    curves = _cells(
        {
            ("sign", "binary", 1, 21): [0.2, 0.4, 0.6],
            ("relu", "binary", 2, 20): [0.2, 0.4],
            ("relu", "binary", 4, 40): [0.2, 0.4, 0.8],
            ("sign", "continuous", 1, 21): [1.0, 2.0],
            ("relu", "continuous", 2, 20): [1.0, 3.0],
            ("sign", "other", 1, 21): [0.1],  # no alpha common to both groups: dropped
            ("relu", "other", 2, 20): [0.3],
        }
    )
    picked = geometry.at_alpha(curves)
    by_weights = dict(
        picked.group_by("weights").agg(pl.col("alpha").unique()).iter_rows()
    )
    assert {w: sorted(a) for w, a in by_weights.items()} == {
        "binary": [0.4],
        "continuous": [1.0],
    }
    assert picked.height == 5  # every group of both weight types, one row each
    near = geometry.at_alpha(curves, alpha=0.25)
    assert sorted(near["alpha"].to_list()) == [0.2, 0.2, 0.2, 1.0, 1.0]


def test_compare_modes_say_which_they_use(tmp_path):
    write_fake_theory(tmp_path, {"sign": [1], "relu": [2]})
    theory = pl.read_parquet(tmp_path / "theory" / "theory.parquet")
    curves = _cells(
        {("sign", "binary", 1, 21): [0.2, 0.4], ("relu", "binary", 2, 20): [0.2, 0.4]}
    )
    rows, caption = geometry.compare(curves, theory, "alpha")
    assert caption.startswith("equal alpha") and rows["alpha"].unique().to_list() == [
        0.4
    ]
    # fake alpha_c = 0.5 + K/10: loads 0.4/0.6 and 0.4/0.7
    assert sorted(rows["load"].to_list()) == pytest.approx([0.4 / 0.7, 0.4 / 0.6])
    rows, caption = geometry.compare(curves, theory, "load", load=0.3)
    assert caption.startswith("equal load") and rows["alpha"].to_list() == [0.2, 0.2]
    with pytest.raises(ValueError):
        geometry.compare(curves, theory, "K")


def test_entropy_limits_are_the_binomial_formulas():
    N, D, draws = (
        np.array([20, 20, 101]),
        np.array([1, 3, 8]),
        np.array([100, 100, 20000]),
    )
    ceiling, floor = geometry.entropy_limits(N, D, draws)
    expect = [
        math.log(math.comb(int(n), int(k))) / n for n, k in zip(N, D, strict=True)
    ]
    assert ceiling == pytest.approx(expect, rel=1e-12)
    assert floor == pytest.approx(
        [
            math.log(math.comb(int(n), int(k)) / m) / n
            for n, k, m in zip(N, D, draws, strict=True)
        ],
        rel=1e-12,
    )


def test_local_entropy_theory_in_processes_equals_in_process_and_is_cached(
    tmp_path, monkeypatch
):
    """Curves computed in two spawned processes equal those computed here and direct
    calls of the theory; ReLU K = 2 and 4 share one K = inf curve (no finite-K ReLU
    curve in the report, geometry.FINITE_K_THEORY) at the union of their distances; a
    second call reads every curve back from OUT/local_entropy_theory. Dense-region
    curves only (seconds each)."""
    from relu_landscape import theory

    monkeypatch.setattr(geometry, "THEORY_CURVES", ("dense",))
    cells = {("sign", 1): [0.05, 0.1], ("relu", 2): [0.05, 0.1], ("relu", 4): [0.025, 0.1]}
    picked = pl.DataFrame(
        [{"weights": "binary", "activation": a, "K": K, "alpha": 0.4, "d": d}
         for (a, K), ds in cells.items() for d in ds]
    )
    computed = []
    rows_of = geometry._theory_rows

    def counted(*args):
        computed.append(args)
        return rows_of(*args)

    monkeypatch.setattr(geometry, "_theory_rows", counted)
    here, notes = geometry.local_entropy_theory(tmp_path / "a", picked, workers=1)
    assert sorted((a, K, tuple(ds)) for _, a, K, _, ds in computed) == [
        ("relu", None, (0.025, 0.05, 0.1)), ("sign", 1, (0.05, 0.1))
    ]
    pooled, _ = geometry.local_entropy_theory(tmp_path / "b", picked, workers=2)
    assert notes == [] and here.equals(pooled)
    for (act, K), ds in cells.items():
        rows = here.filter((pl.col("activation") == act) & (pl.col("K") == K))
        tK = 1 if act == "sign" else None
        assert rows["theory_K"].to_list() == [tK, tK]
        direct = theory.dense_local_entropy_curve(act, tK or math.inf, 0.4, ds)
        # equal up to the saddle tolerance: a shared curve walks through more points
        assert rows["local_entropy"].to_list() == pytest.approx(
            [r["local_entropy"] for r in direct], abs=1e-8
        )

    def no_compute(*args):
        raise AssertionError("cached rows were computed again")

    monkeypatch.setattr(geometry, "_theory_rows", no_compute)
    again, _ = geometry.local_entropy_theory(tmp_path / "b", picked, workers=2)
    assert again.equals(pooled)
