"""Capacity against kappa and activation: kappas never pool, the margins table and
figures recomputed from the flags and the theory, the report's margins section."""

from __future__ import annotations

import math

import polars as pl
import pytest
from scipy import integrate
from scipy import stats as sps

from relu_landscape import stats, store
from relu_landscape.analysis import capacity, figures, margins
from relu_landscape.analysis.report import write_report
from relu_landscape.theory import rs_capacity
from tests.analysis.synthetic import fake_alpha_c, flags, write_fake_theory, write_runs
from tests.analysis.test_report import _num, _tables

# (activation, weights, K, N, solver, kappa) -> solved flags per alpha (16 instances)
RUNS = {
    ("sign", "binary", 1, 20, "anneal", 0.0): {0.2: 16, 0.4: 12, 0.6: 4, 0.8: 0},
    ("sign", "binary", 1, 20, "anneal", 0.5): {0.2: 14, 0.4: 5, 0.6: 1, 0.8: 0},
    ("tanh", "continuous", 1, 20, "gd", 0.0): {1.0: 16, 1.5: 13, 2.0: 7, 2.5: 1},
    ("tanh", "continuous", 1, 20, "gd", 0.5): {0.5: 16, 1.0: 9, 1.5: 2, 2.0: 0},
    ("linear", "continuous", 1, 20, "gd", 0.5): {0.5: 15, 1.0: 6, 1.5: 0},
}


def _write(root, runs=RUNS) -> None:
    for (act, wts, K, N, solver, kappa), solved in runs.items():
        write_runs(root, act, wts, K, N, {a: flags(k, 16) for a, k in solved.items()},
                   solver, kappa=kappa)


def _expected(key) -> stats.Threshold:
    """alpha_50 of one group straight from its flags."""
    alphas = sorted(RUNS[key])
    return stats.alpha_50(alphas, [RUNS[key][a] for a in alphas], [16] * len(alphas))


def test_two_kappas_in_one_table_are_not_mixed(tmp_path):
    """alpha_50 per kappa of the mixed table equals the one-kappa computation, and
    pooling the two kappas (the grouping without kappa) would give another value."""
    sign = [k for k in RUNS if k[0] == "sign"]
    _write(tmp_path / "both", {k: RUNS[k] for k in sign})
    mixed = capacity.thresholds(capacity.solved_fraction(store.scan_runs(tmp_path / "both")))
    assert sorted(mixed["kappa"].to_list()) == [0.0, 0.5]
    for key in sign:
        _write(tmp_path / str(key[-1]), {key: RUNS[key]})
        alone = capacity.thresholds(
            capacity.solved_fraction(store.scan_runs(tmp_path / str(key[-1]))))
        row = mixed.filter(pl.col("kappa") == key[-1])
        assert row.drop("kappa").equals(alone.drop("kappa"))
        t = _expected(key)
        assert row["alpha_50"][0] == pytest.approx(t.alpha_50, rel=1e-12)
        assert row["instances"][0] == 16 * len(RUNS[key])
    pooled = stats.alpha_50(
        [0.2, 0.4, 0.6, 0.8], [30, 17, 5, 0], [32, 32, 32, 32]).alpha_50
    assert all(abs(pooled - a) > 0.01 for a in mixed["alpha_50"])


def _thr(root) -> pl.DataFrame:
    return capacity.thresholds(capacity.solved_fraction(store.scan_runs(root)))


def test_margin_table_recomputed_from_flags_and_theory(tmp_path):
    _write(tmp_path)
    thr = _thr(tmp_path)
    assert margins.applies(thr)
    assert not margins.applies(thr.filter((pl.col("kappa") == 0)
                                          & (pl.col("activation") == "sign")))
    variants = margins.theory_variants(thr)
    assert len(variants) == 10 and len(set(variants)) == 10  # 5 groups, finite and inf
    theory = pl.DataFrame(
        [{"activation": a, "weights": w, "K": K, "kappa": kappa, "level": lvl,
          "tie": "error", "alpha_c": fake_alpha_c(K, kappa), "stderr": 0.01,
          "converged": True}
         for a, w, K, lvl, kappa in variants if a != "linear" or K is None],
        schema_overrides={"K": pl.Int64})
    table = margins.margin_table(thr, theory)
    assert table.height == len(RUNS)
    for row in table.iter_rows(named=True):
        key = tuple(row[c] for c in capacity.GROUP)
        t = _expected(key)
        assert (row["alpha_50"], row["low"], row["high"], row["method"]) == pytest.approx(
            (t.alpha_50, t.low, t.high, t.method), nan_ok=True)
        K, kappa = row["K"], row["kappa"]
        assert row["alpha_c_inf"] == pytest.approx(fake_alpha_c(None, kappa))
        if row["activation"] == "linear":  # no finite-K row planted: null, not another's
            assert row["alpha_c"] is None and row["load"] is None
        else:
            assert row["alpha_c"] == pytest.approx(fake_alpha_c(K, kappa))
            assert row["load"] == pytest.approx(t.alpha_50 / fake_alpha_c(K, kappa))
    fig = figures.plot_capacity_vs_kappa(table)
    series = {c.get_label(): c.lines[0] for ax in fig.axes for c in ax.containers}
    series |= {ln.get_label(): ln for ax in fig.axes for ln in ax.get_lines()}
    line = series["tanh: alpha_50 (K=1, N=20, gd)"]
    assert list(line.get_xdata()) == [0.0, 0.5]
    assert list(line.get_ydata()) == pytest.approx(
        [_expected(("tanh", "continuous", 1, 20, "gd", k)).alpha_50 for k in (0.0, 0.5)])
    assert list(series["tanh: RS theory, finite K = 1"].get_ydata()) == pytest.approx(
        [fake_alpha_c(1, 0.0), fake_alpha_c(1, 0.5)])
    assert list(series["sign: RS theory, K = inf"].get_ydata()) == pytest.approx(
        [fake_alpha_c(None, 0.0), fake_alpha_c(None, 0.5)])
    assert "linear: RS theory, finite K = 1" not in series
    figures.save(fig, tmp_path / "k.png")
    fig = figures.plot_capacity_by_activation(table)
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_title())
    assert titles == ["binary weights, kappa = 0", "binary weights, kappa = 0.5",
                      "continuous weights, kappa = 0", "continuous weights, kappa = 0.5"]
    figures.save(fig, tmp_path / "a.png")


def gardner(kappa: float) -> float:
    """Gardner's perceptron capacity 1 / int_{-kappa}^inf Dt (t + kappa)^2 (1988)."""
    value, _ = integrate.quad(lambda t: sps.norm.pdf(t) * (t + kappa) ** 2, -kappa,
                              math.inf)
    return 1 / value


def test_theory_in_the_table_is_relu_landscape_theory(tmp_path):
    """Linear units, continuous weights: the margin perceptron at K = 1 and K = inf
    (Gardner's closed form, 0.9612 at kappa = 0.5); tanh at K = inf; tanh with binary
    weights at K = 3 by the generic lattice ("fast": 0.8643 +- 0.0026, ~15 s)."""
    _write(tmp_path, {
        ("linear", "continuous", 1, 20, "gd", 0.0): {1.5: 16, 2.0: 8, 2.5: 0},
        ("linear", "continuous", 1, 20, "gd", 0.5): {0.5: 16, 1.0: 8, 1.5: 0},
        ("tanh", "binary", 3, 21, "anneal", 0.0): {0.2: 16, 0.4: 0},
    })
    thr = _thr(tmp_path)
    theory, notes = margins.margin_theory(tmp_path, thr, precision="fast")
    assert notes == []
    table = margins.margin_table(thr, theory)
    rows = {(r["activation"], r["kappa"]): r for r in table.iter_rows(named=True)}
    for kappa in (0.0, 0.5):
        row = rows["linear", kappa]
        assert row["alpha_c"] == pytest.approx(gardner(kappa), rel=1e-9)
        assert row["alpha_c_inf"] == pytest.approx(gardner(kappa), rel=1e-9)
        assert row["alpha_c"] == rs_capacity("linear", "continuous", 1, kappa=kappa,
                                             precision="fast").value
    assert gardner(0.5) == pytest.approx(0.9612, abs=1e-4)
    tanh = rows["tanh", 0.0]
    assert tanh["alpha_c"] == pytest.approx(0.8643, abs=4 * 0.0026)
    assert tanh["alpha_c_inf"] == rs_capacity("tanh", "binary", math.inf,
                                              precision="fast").value
    cached = store.scan_table(tmp_path, "theory").collect()
    assert cached.height == 6 and set(cached["precision"]) == {"fast"}


def test_report_writes_the_margins_section(tmp_path):
    """Every number of the margins table recomputed; the paper's key numbers are those
    of the kappa = 0 runs alone; the note says what each part shows."""
    _write(tmp_path)
    extra = margins.theory_variants(_thr(tmp_path))
    write_fake_theory(tmp_path, {"sign": [1]}, extra)  # cached: no theory computed
    result = write_report(tmp_path)
    md = result.path.read_text()
    names = {p.name for p in result.figures}
    assert {"capacity_vs_kappa.png", "capacity_by_activation.png"} <= names
    assert "](capacity_vs_kappa.png)" in md and "](capacity_by_activation.png)" in md
    assert "not implemented" not in md
    assert "kappa: the scan has margins [0.0, 0.5]; capacity_vs_K" in md
    table = _tables(md.split("## margins")[1])[0]
    assert len(table) == len(RUNS)
    for row in table:
        key = (row["activation"], row["weights"], int(row["K"]), int(row["N"]),
               row["solver"], float(row["kappa"]))
        t = _expected(key)
        for col, val in (("alpha_50", t.alpha_50), ("low", t.low), ("high", t.high)):
            assert _num(row[col]) == pytest.approx(val, abs=6e-4, nan_ok=True), col
        assert _num(row["alpha_c"]) == pytest.approx(fake_alpha_c(key[2], key[5]),
                                                     abs=6e-4)
        assert _num(row["alpha_c_inf"]) == pytest.approx(fake_alpha_c(None, key[5]),
                                                         abs=6e-4)
    # the paper's key numbers: the kappa = 0 groups alone, from their own flags
    keys = _tables(md)[0]
    assert {(r["activation"], r["kappa"]) for r in keys} == {("sign", "0.000"),
                                                          ("tanh", "0.000")}
    for row in keys:
        key = (row["activation"], row["weights"], 1, 20, row["solver"], 0.0)
        assert _num(row["alpha_50"]) == pytest.approx(_expected(key).alpha_50, abs=6e-4)
