"""`relu-landscape report`: every number checked against the Parquet files, notes, PNGs."""

from __future__ import annotations

import re

import matplotlib.image
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relu_landscape import stats
from relu_landscape.analysis.report import write_report
from relu_landscape.cli import main
from tests.analysis.synthetic import energy_probe_rows, flags, write_fake_theory, write_runs

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
    """A local_energy probe file for the sign K=1 runs (written by hand, like a probe)."""
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
    assert "table 'local_energy' lacks columns ['s', 'D', 'd', 'local_energy']" in md
    assert "finite_size: every group has one N" in md
    assert {p.name for p in result.figures} == {"capacity_vs_K.png", "p_solved.png"}
    for png in result.figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in md
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] > 200 and pixels[..., :3].std() > 0.05  # not blank


def test_probe_figure_compares_at_the_same_load(tmp_path):
    _results(tmp_path)
    # fake theory alpha_c(sign, K=1) = 0.6: the two alphas sit at loads 1/3 and 2/3
    _write_probe(tmp_path, energy_probe_rows())
    result = write_report(tmp_path)
    png = tmp_path / "report" / "local_energy.png"
    assert png in result.figures
    assert matplotlib.image.imread(png)[..., :3].std() > 0.05
    md = result.path.read_text()
    assert "local_energy: no" not in md and "](local_energy.png)" in md


def test_cli_report_and_bad_dir(tmp_path, capsys):
    _results(tmp_path)
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.md").is_file()
    assert "skipped: walks" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relu-landscape: error: DIR: no runs table")
    assert err.count("\n") == 1
