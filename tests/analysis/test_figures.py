"""The figures stay readable on multi-size, multi-solver scans: the cut to the largest N,
the solver order, one series per (K, solver), and the plotted numbers."""

from __future__ import annotations

import polars as pl
import pytest

from relu_landscape import store
from relu_landscape.analysis import capacity, figures, geometry
from tests.analysis.synthetic import flags, write_fake_theory, write_runs

# (K, N) -> solved count out of 4 at alpha 0.2, 0.4, 0.6; two solvers, N = n K for
# n = 10, 20
SOLVED = {
    (1, 10): (4, 3, 1),
    (1, 20): (4, 2, 0),
    (3, 30): (4, 4, 2),
    (3, 60): (4, 3, 1),
}
SOLVERS = {"sbpi": 0, "replicated_clipped_sgd": 1}  # solver -> extra solved at 0.6


def _scan(root):
    for (K, N), counts in SOLVED.items():
        for solver, extra in SOLVERS.items():
            solved = {
                a: flags(min(4, c + (extra if a == 0.6 else 0)))
                for a, c in zip((0.2, 0.4, 0.6), counts, strict=True)
            }
            write_runs(root, "sign", "binary", K, N, solved, solver=solver)
    write_fake_theory(root, {"sign": [1, 3]})


def test_solver_order_puts_plain_solvers_first():
    assert figures.solver_order(["replicated_gd", "gd", "anneal", "gd"]) == [
        "anneal", "gd", "replicated_gd"
    ]


def test_largest_N_keeps_each_cells_largest_size(tmp_path):
    _scan(tmp_path)
    cells = capacity.solved_fraction(store.scan_runs(tmp_path))
    kept = figures.largest_N(cells)
    biggest = {}
    for K, N in SOLVED:
        biggest[K] = max(biggest.get(K, 0), N)
    assert sorted(set(kept.select("K", "N").iter_rows())) == sorted(biggest.items())
    assert kept.height == len(biggest) * len(SOLVERS) * 3  # every alpha kept


def test_p_solved_draws_one_series_per_K_and_solver_at_the_largest_N(tmp_path):
    _scan(tmp_path)
    cells = capacity.solved_fraction(store.scan_runs(tmp_path))
    theory = pl.read_parquet(tmp_path / "theory" / "theory.parquet")
    fig = figures.plot_solved_fraction(cells, theory)
    ax = fig.axes[0]  # sign units, binary weights
    assert ax.get_title() == "sign units, binary weights (largest N per K)"
    series = {c.get_label(): c for c in ax.containers}
    assert set(series) == {
        f"K={K}, N={N}, {s}" for K, N in ((1, 20), (3, 60)) for s in SOLVERS
    }
    for (K, N), counts in SOLVED.items():
        if N not in (20, 60):
            continue
        for solver, extra in SOLVERS.items():
            line = series[f"K={K}, N={N}, {solver}"].lines[0]
            assert line.get_xdata().tolist() == [0.2, 0.4, 0.6]
            expect = [counts[0] / 4, counts[1] / 4, min(4, counts[2] + extra) / 4]
            assert line.get_ydata().tolist() == pytest.approx(expect)
            # the dense-seeking solver is dashed, the plain one solid
            assert line.get_linestyle() == ("--" if solver == "replicated_clipped_sgd" else "-")
    # legend: a colour per K (with its N), a style per solver: not a line per series
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["K=1, N=20", "K=3, N=60", "sbpi", "replicated_clipped_sgd"]
    # the RS capacity of each K as a vertical line at fake alpha_c = 0.5 + K/10
    verticals = sorted(
        ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == ":"
    )
    assert verticals == pytest.approx([0.6, 0.8])
    figures.save(fig, tmp_path / "p.png")


def test_finite_size_panel_per_activation_and_weights():
    # alpha_50 on a line in N^-1/2 per (K, solver), three sizes each, +-0.05 intervals
    rows = [
        {"activation": "sign", "weights": "binary", "K": K, "N": n * K, "solver": s,
         "kappa": 0.0, "alpha_50": a, "low": a - 0.05, "high": a + 0.05}
        for K in (1, 3)
        for s, shift in zip(SOLVERS, (0.0, 0.1), strict=True)
        for n in (10, 20, 40)
        for a in [0.5 + 0.1 * K + shift - 0.8 * (n * K) ** -0.5]
    ]
    thr = pl.DataFrame(rows)
    trend = capacity.finite_size_trend(thr, power=0.5)
    assert trend.height == 4  # 2 K x 2 solvers
    fig = figures.plot_finite_size(thr, trend)
    ax = fig.axes[0]
    assert ax.get_title() == "sign units, binary weights: finite-size trend"
    by_label = {c.get_label(): c for c in ax.containers}
    for fit in trend.iter_rows(named=True):
        label = f"K={fit['K']}, {fit['solver']}"
        planted = 0.5 + 0.1 * fit["K"] + (0.1 if fit["solver"] != "sbpi" else 0.0)
        assert fit["alpha_50_inf"] == pytest.approx(planted)  # the points lie on a line
        inf = next(c for k, c in by_label.items() if k.startswith(f"{label}: N = inf"))
        assert inf.lines[0].get_xdata().tolist() == [0]
        assert inf.lines[0].get_ydata().tolist() == pytest.approx([fit["alpha_50_inf"]])
        points = by_label[f"{label}: alpha_50"].lines[0]
        sizes = thr.filter(
            (pl.col("K") == fit["K"]) & (pl.col("solver") == fit["solver"])
            & pl.col("alpha_50").is_finite()
        ).sort("N")
        assert points.get_xdata().tolist() == pytest.approx(
            (sizes["N"].cast(float) ** -fit["power"]).to_list()
        )
        assert points.get_ydata().tolist() == pytest.approx(sizes["alpha_50"].to_list())
    assert len(ax.get_legend().get_texts()) == trend.height
    for other in fig.axes[1:]:  # no relu or continuous rows: said, not left blank
        assert [t.get_text() for t in other.texts] == [
            "fewer than 3 sizes with a finite alpha_50"
        ]


def test_probe_curves_show_the_plain_solver_at_the_largest_N():
    keys = [(K, N, s) for K, N in SOLVED for s in SOLVERS]
    rows = pl.DataFrame(
        {
            "activation": ["sign"] * 2 * len(keys),
            "weights": ["binary"] * 2 * len(keys),
            "K": [K for K, _, _ in keys for _ in range(2)],
            "N": [N for _, N, _ in keys for _ in range(2)],
            "solver": [s for _, _, s in keys for _ in range(2)],
            "kappa": [0.0] * 2 * len(keys),
            "alpha": [0.4] * 2 * len(keys),
            "p": [0.1, 0.2] * len(keys),
            "value": [0.9 - 0.01 * N - 0.1 * i for _, N, _ in keys for i in range(2)],
            "stderr": [0.01] * 2 * len(keys),
        }
    )
    fig = figures.plot_probe_curves(rows, geometry.CURVES["robustness"], "equal alpha")
    ax = fig.axes[0]
    assert ax.get_title() == "binary weights, sbpi\nequal alpha"
    series = {c.get_label(): c.lines[0] for c in ax.containers}
    assert set(series) == {"sign K=1, N=20, alpha=0.4", "sign K=3, N=60, alpha=0.4"}
    assert series["sign K=3, N=60, alpha=0.4"].get_ydata().tolist() == pytest.approx(
        [0.9 - 0.6, 0.9 - 0.6 - 0.1]
    )
