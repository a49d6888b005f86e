"""`relu-landscape report`: every number checked against Parquet files; notes, PNGs."""

from __future__ import annotations

import math
import re
import statistics

import matplotlib.image
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relu_landscape import stats, store
from relu_landscape.analysis import capacity, figures, geometry
from relu_landscape.analysis.report import write_report
from relu_landscape.cli import main
from relu_landscape.errors import InvalidConfigError
from tests.analysis.synthetic import (
    LOCAL_ENTROPY_DRAWS,
    LOCAL_ENTROPY_RUNS,
    energy_probe_rows,
    fake_local_entropy_theory,
    flags,
    sampled_local_entropy,
    write_fake_local_entropy_theory,
    write_fake_theory,
    write_local_entropy,
    write_runs,
)

HIVE = {"activation": pl.String, "weights": pl.String, "K": pl.Int64}


def _results(root):
    write_runs(
        root,
        "sign",
        "binary",
        1,
        20,
        {0.2: flags(4), 0.4: flags(3), 0.6: flags(1), 0.8: flags(0)},
    )
    write_runs(
        root,
        "relu",
        "continuous",
        2,
        20,
        {0.2: flags(4), 0.4: flags(4), 0.6: flags(0), 0.8: flags(0)},
        "gd",
    )
    write_fake_theory(root, {"sign": [1], "relu": [2]})


def _write_probe(root, rows: dict):
    """A local_energy probe file for the sign K=1 runs (written by hand as a probe)."""
    path = (
        root
        / "local_energy"
        / "activation=sign"
        / "weights=binary"
        / "K=1"
        / "x.parquet"
    )
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table(rows), path)


def _tables(md: str) -> list[list[dict]]:
    """Every markdown table of ``md`` as a list of row dicts."""
    out, block = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip("|").split("|")])
        elif block:
            out.append([dict(zip(block[0], r, strict=True)) for r in block[2:]])
            block = []
    return out


def _num(text: str) -> float:
    return float("nan") if text == "n/a" else float(text)


def test_every_number_in_report_matches_the_parquet_files(tmp_path):
    _results(tmp_path)
    result = write_report(tmp_path)
    md = result.path.read_text()
    runs = pl.read_parquet(
        tmp_path / "runs" / "**" / "*.parquet", hive_partitioning=True, hive_schema=HIVE
    )
    theory = pl.read_parquet(tmp_path / "theory" / "theory.parquet")
    counts = runs.group_by("activation", "weights", "K", "N", "solver", "alpha").agg(
        pl.len().alias("n"), pl.col("solved").sum().alias("k")
    )
    head = re.search(r"instances: (\d+); alpha grid points: (\d+)", md)
    assert int(head[1]) == runs.height and int(head[2]) == runs["alpha"].n_unique()
    key_rows, wide_rows, solved_rows = _tables(md)
    assert len(key_rows) == 2 and len(solved_rows) == 2
    for row in key_rows:
        g = counts.filter(
            (pl.col("activation") == row["activation"]) & (pl.col("K") == int(row["K"]))
        ).sort("alpha")
        t = stats.alpha_50(g["alpha"].to_numpy(), g["k"].to_numpy(), g["n"].to_numpy())
        assert int(row["instances"]) == g["n"].sum()
        for col, val in (("alpha_50", t.alpha_50), ("low", t.low), ("high", t.high)):
            assert _num(row[col]) == pytest.approx(val, abs=6e-4), col
        assert row["method"] == t.method
        th = theory.filter(
            (pl.col("activation") == row["activation"])
            & (pl.col("weights") == row["weights"])
            & (pl.col("K") == int(row["K"]))
            & (pl.col("level") == "RS")
        )
        assert _num(row["alpha_c"]) == pytest.approx(th["alpha_c"][0], abs=6e-4)
        assert _num(row["stderr"]) == pytest.approx(th["stderr"][0], abs=6e-4)
        assert _num(row["load"]) == pytest.approx(
            t.alpha_50 / th["alpha_c"][0], abs=6e-4
        )
    wide = theory.filter(pl.col("K").is_null())
    assert len(wide_rows) == wide.height
    for row in wide_rows:
        th = wide.filter(
            (pl.col("activation") == row["activation"])
            & (pl.col("weights") == row["weights"])
            & (pl.col("level") == row["level"])
        )
        assert _num(row["alpha_c"]) == pytest.approx(th["alpha_c"][0], abs=6e-4)
    for row in solved_rows:
        for col, cell in row.items():
            if not col.startswith("alpha="):
                continue
            p, k, n = re.fullmatch(r"(\S+) \((\d+)/(\d+)\)", cell).groups()
            g = counts.filter(
                (pl.col("activation") == row["activation"])
                & (pl.col("alpha") == float(col[6:]))
            )
            assert (int(k), int(n)) == (g["k"][0], g["n"][0])
            assert float(p) == pytest.approx(g["k"][0] / g["n"][0], abs=6e-4)


def test_missing_tables_are_skipped_with_notes_and_figures_are_valid_pngs(tmp_path):
    _results(tmp_path)
    # a probe table without the columns the local-energy figure needs
    _write_probe(
        tmp_path, {"run_id": ["sign-binary-1-20-anneal-0.2-0"], "other": [1.0]}
    )
    result = write_report(tmp_path, tmp_path / "rep")
    md = result.path.read_text()
    assert result.path == tmp_path / "rep" / "report.md"
    for name in ("robustness", "local_entropy", "walks", "enumerate"):
        assert f"no '{name}' table" in md
    lacking = "['solver', 'kappa', 's', 'D', 'd', 'local_energy']"
    assert f"table 'local_energy' lacks columns {lacking}" in md
    assert "finite_size: no group has a finite alpha_50 interval at three sizes" in md
    assert {p.name for p in result.figures} == {"capacity_vs_K.png", "p_solved.png"}
    for png in result.figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in md
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] > 200 and pixels[..., :3].std() > 0.05  # not blank


def test_finite_size_figure_and_fit_with_three_sizes(tmp_path):
    """Three sizes of one variant: finite_size.png is drawn and the report's fit row is
    ``capacity.extrapolate`` of the three alpha_50 (the synthetic thresholds 0.4, 0.5,
    0.6 at N = 20, 40, 80 come from symmetric curves, so they are exact)."""
    for N, centre in ((20, 0.4), (40, 0.5), (80, 0.6)):
        write_runs(tmp_path, "sign", "binary", 1, N, {
            round(centre + d, 2): flags(k, 16)
            for d, k in zip((-0.2, -0.1, 0.0, 0.1, 0.2), (16, 12, 8, 4, 0), strict=True)
        })
    write_fake_theory(tmp_path, {"sign": [1]})
    result = write_report(tmp_path)
    md = result.path.read_text()
    assert "finite_size.png" in {p.name for p in result.figures}
    assert "](finite_size.png)" in md and "trend skipped" not in md
    fit = capacity.extrapolate([20, 40, 80], [0.4, 0.5, 0.6], [0.39, 0.49, 0.59],
                               [0.41, 0.51, 0.61])
    (row,) = [r for t in _tables(md) for r in t if "alpha_50_inf" in r]
    assert _num(row["alpha_50_inf"]) == pytest.approx(fit.alpha_inf, abs=6e-4)
    assert _num(row["slope"]) == pytest.approx(fit.slope, abs=6e-4)
    assert _num(row["power"]) == 0.5
    pixels = matplotlib.image.imread(tmp_path / "report" / "finite_size.png")
    assert pixels[..., :3].std() > 0.05


def test_probe_figure_compares_at_the_same_load(tmp_path):
    _results(tmp_path)
    # fake theory alpha_c(sign, K=1) = 0.6: the two alphas sit at loads 1/3 and 2/3
    _write_probe(tmp_path, energy_probe_rows())
    result = write_report(
        tmp_path, compare="load", load=0.6
    )  # loads 1/3, 2/3: alpha 0.4
    png = tmp_path / "report" / "local_energy.png"
    assert png in result.figures
    assert matplotlib.image.imread(png)[..., :3].std() > 0.05
    md = result.path.read_text()
    assert "local_energy: no" not in md and "](local_energy.png)" in md
    assert "ReLU and sign compared at equal load alpha/alpha_c ~ 0.6" in md
    (cells,) = [t for t in _tables(md) if t and "solutions" in t[0]]
    assert [(c["alpha"], c["solutions"]) for c in cells] == [("0.400", "2")]
    assert _num(cells[0]["load"]) == pytest.approx(0.4 / 0.6, abs=6e-4)


def test_cli_report_and_bad_dir(tmp_path, capsys):
    _results(tmp_path)
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.md").is_file()
    assert "skipped: walks" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relu-landscape: error: DIR: no runs table")
    assert err.count("\n") == 1


def _local_entropy_results(root):
    write_local_entropy(root)
    write_fake_theory(root, {"sign": [1], "relu": [2]})
    write_fake_local_entropy_theory(root)  # cached: the report computes no theory


def test_local_entropy_table_beside_theory_and_finite_N_limits(tmp_path):
    _local_entropy_results(tmp_path)
    result = write_report(tmp_path)  # default: equal alpha
    md = result.path.read_text()
    assert "Sampled local entropy at equal alpha" in md
    assert tmp_path / "report" / "local_entropy.png" in result.figures
    table = next(t for t in _tables(md) if t and "ceiling" in t[0])
    # equal alpha: the largest alpha both groups have, 0.4; three D each
    assert {(r["activation"], r["alpha"]) for r in table} == {
        ("sign", "0.400"),
        ("relu", "0.400"),
    }
    assert len(table) == 6
    for r in table:
        act, K, D, alpha = r["activation"], int(r["K"]), int(r["D"]), float(r["alpha"])
        solved = sum(LOCAL_ENTROPY_RUNS[(act, K)][alpha])
        vals = [sampled_local_entropy(act, alpha, s, D) for s in range(solved)]
        assert int(r["solutions"]) == solved and int(r["draws"]) == LOCAL_ENTROPY_DRAWS
        assert _num(r["d"]) == pytest.approx(D / 20, abs=6e-4)
        assert _num(r["sampled"]) == pytest.approx(sum(vals) / solved, abs=6e-4)
        se = statistics.stdev(vals) / math.sqrt(solved) if solved > 1 else 0.0
        assert _num(r["stderr"]) == pytest.approx(se, abs=6e-4)
        shell = math.comb(20, D)
        assert _num(r["ceiling"]) == pytest.approx(math.log(shell) / 20, abs=6e-4)
        assert _num(r["floor"]) == pytest.approx(
            math.log(shell / LOCAL_ENTROPY_DRAWS) / 20, abs=6e-4
        )
        for kind in ("franz_parisi", "dense"):
            assert r[f"{kind}_K"] in (str(K), "inf")
            tK = None if r[f"{kind}_K"] == "inf" else int(r[f"{kind}_K"])
            expect = fake_local_entropy_theory(kind, tK, alpha, D / 20)
            assert _num(r[kind]) == pytest.approx(expect, abs=6e-4), kind
    # the perceptron has both theories; ReLU dense regions only at K = inf
    assert {
        (r["franz_parisi_K"], r["dense_K"]) for r in table if r["activation"] == "sign"
    } == {("1", "1")}
    assert {r["dense_K"] for r in table if r["activation"] == "relu"} == {"inf"}
    by_load = ["report", str(tmp_path), "--out", str(tmp_path / "by_load")]
    assert main([*by_load, "--compare", "load", "--load", "0.3"]) == 0
    md = (tmp_path / "by_load" / "report.md").read_text()
    assert "Sampled local entropy at equal load alpha/alpha_c ~ 0.3" in md
    with pytest.raises(InvalidConfigError):
        write_report(tmp_path, tmp_path / "bad", compare="K")


def test_local_entropy_figure_draws_ceiling_floor_and_labelled_theory(tmp_path):
    _local_entropy_results(tmp_path)
    curve = geometry.CURVES["local_entropy"]
    rows = geometry.probe_curve(
        store.scan_table(tmp_path, "local_entropy"), store.scan_runs(tmp_path), curve
    )
    picked = geometry.at_alpha(rows)
    th, notes = geometry.local_entropy_theory(tmp_path, picked)
    assert notes == [] and th.height == 12  # 2 activations x 2 kinds x 3 d
    fig = figures.plot_local_entropy(picked, th, "equal alpha")
    lines = {
        (ax.get_title().split(",")[0], line.get_label()): line
        for ax in fig.axes
        for line in ax.get_lines()
    }
    for act in ("sign", "relu"):
        ceil = lines[(f"{act} units", "ceiling (1/N) ln C(N, D), N=20")]
        floor = lines[
            (f"{act} units", f"sampling floor: ceiling - ln({LOCAL_ENTROPY_DRAWS})/N")
        ]
        assert list(ceil.get_xdata()) == pytest.approx([0.05, 0.1, 0.15])
        assert list(ceil.get_ydata()) == pytest.approx(
            [math.log(math.comb(20, D)) / 20 for D in (1, 2, 3)]
        )
        assert list(floor.get_ydata()) == pytest.approx(
            [
                (math.log(math.comb(20, D)) - math.log(LOCAL_ENTROPY_DRAWS)) / 20
                for D in (1, 2, 3)
            ]
        )
        theory_lines = [
            (label, line)
            for (title, label), line in lines.items()
            if title == f"{act} units" and "theory" in label
        ]
        assert len(theory_lines) == 2
        for label, line in theory_lines:
            kind = "dense" if label.startswith("dense") else "franz_parisi"
            tK = (
                None
                if "K = inf theory" in label
                else int(label.split("K = ")[1].split()[0])
            )
            assert list(line.get_ydata()) == pytest.approx(
                [fake_local_entropy_theory(kind, tK, 0.4, D / 20) for D in (1, 2, 3)]
            )
    sign_title = next(
        ax.get_title() for ax in fig.axes if ax.get_title().startswith("sign")
    )
    assert "alpha=0.4" in sign_title and "equal alpha" in sign_title
    assert (tmp_path / "local_entropy_theory").is_dir()
    figures.save(fig, tmp_path / "le.png")


def test_exact_solvable_curve_and_failure_rate_in_the_report(tmp_path):
    """Binary runs decided exactly: the report's table and the dashed curve give
    P(solvable) and missed / solvable as recomputed here from the flags."""
    solved = {0.2: flags(4), 0.4: flags(2), 0.6: flags(0)}
    solvable = {0.2: flags(4), 0.4: flags(3), 0.6: [True, False, False, False]}
    write_runs(tmp_path, "sign", "binary", 1, 20, solved, solvable=solvable)
    write_fake_theory(tmp_path, {"sign": [1]})
    md = write_report(tmp_path).path.read_text()
    exact = md.split("Exact finite-N capacity curve")[1]
    rows = _tables(exact)[0]
    assert [float(r["alpha"]) for r in rows] == [0.2, 0.4, 0.6]
    for r in rows:
        a = float(r["alpha"])
        k, s = sum(solved[a]), sum(solvable[a])
        assert (int(r["solved"]), int(r["solvable"])) == (k, s)
        assert _num(r["p_solvable"]) == pytest.approx(s / 4, abs=6e-4)
        missed = sum(v and not o for v, o in zip(solvable[a], solved[a], strict=True))
        assert int(r["missed"]) == missed
        assert _num(r["failure_rate"]) == pytest.approx(missed / s, abs=6e-4)
    fig = figures.plot_solved_fraction(
        capacity.solved_fraction(store.scan_runs(tmp_path)),
        pl.read_parquet(tmp_path / "theory" / "theory.parquet"),
    )
    exact_lines = [
        ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label().startswith("exact")
    ]
    assert [ln.get_label() for ln in exact_lines] == ["exact P(solvable), K=1, N=20"]
    assert exact_lines[0].get_xdata().tolist() == [0.2, 0.4, 0.6]
    assert exact_lines[0].get_ydata().tolist() == [1.0, 0.75, 0.25]
