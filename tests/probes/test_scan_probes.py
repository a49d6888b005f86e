"""A tiny scan with [probes] writes one table per probe, joinable to runs on run_id."""

from __future__ import annotations

import polars as pl
import pytest

from relu_landscape import store
from relu_landscape.config import load_config
from relu_landscape.scan import run_scan
from tests.conftest import tiny_spec_toml

PROBES = {"local_energy": "draws = 8\npoints = 3", "robustness": "draws = 4\npoints = 2",
          "local_entropy": "draws = 100\nD_max = 2", "walks": "steps = 20\ncheckpoints = 2",
          "enumerate": ""}
# rows per solved instance: settings of each probe (enumerate: D = 0..N)
ROWS = {"local_energy": pl.lit(3), "robustness": pl.lit(2), "local_entropy": pl.lit(2),
        "walks": pl.lit(2), "enumerate": pl.col("N") + 1}
BINARY_ONLY = {"local_entropy", "enumerate"}


def scan(tmp_path, backend):
    path = tmp_path / "spec.toml"
    path.write_text(tiny_spec_toml(
        backend, K="{ sign = [3], relu = [2] }", n="[5]", alpha="[0.2, 0.4]", seeds="2",
        tables={"solver.binary": 'name = "anneal"\nsweeps = 200',
                **{f"probes.{name}": body for name, body in PROBES.items()}},
    ))
    out = tmp_path / backend
    report = run_scan(load_config(path), out, progress=False)
    assert not report.failed
    return out


def check_tables(out):
    runs = store.read_runs(out)
    solved = runs.filter(pl.col("solved"))
    assert solved.height > 0 and set(store.tables(out)) >= {"runs", *ROWS}
    for name, per_instance in ROWS.items():
        table = store.scan_table(out, name).collect()
        joined = table.join(runs, on="run_id", how="left", suffix="_run")
        # every probe row belongs to a solved run, with matching keys
        assert joined["solved"].all()
        for key in ("N", "alpha", "solver", "activation", "weights", "K"):
            assert (joined[key] == joined[f"{key}_run"]).all(), key
        expected = solved if name not in BINARY_ONLY else solved.filter(
            pl.col("weights") == "binary")
        counts = table.group_by("run_id").len()
        assert counts.height == expected.height
        want = expected.select("run_id", per_instance.cast(pl.UInt32).alias("want"))
        assert counts.join(want, on="run_id").filter(pl.col("len") != pl.col("want")).is_empty()
    energy = store.scan_table(out, "local_energy").collect()
    binary = energy.filter(pl.col("weights") == "binary")
    assert binary["s"].is_null().all() and binary["D"].is_not_null().all()
    assert energy.filter(pl.col("weights") == "continuous")["D"].is_null().all()


def test_local_scan_writes_probe_tables(tmp_path):
    check_tables(scan(tmp_path, "local"))


@pytest.mark.ray
def test_ray_scan_writes_the_same_probe_tables(ray_local, tmp_path):
    out = scan(tmp_path, "ray")
    check_tables(out)
    local = scan(tmp_path, "local")
    for name in ROWS:
        a, b = (store.scan_table(o, name).collect().sort(pl.all()) for o in (out, local))
        assert a.equals(b), name
