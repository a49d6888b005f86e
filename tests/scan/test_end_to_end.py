"""A tiny scan end to end on a real local Ray, read back with polars."""

from __future__ import annotations

import polars as pl
import pytest

from relu_landscape import store
from relu_landscape.cli import main
from relu_landscape.config import load_config
from relu_landscape.scan import plan, run_scan
from tests.conftest import tiny_spec_toml

COMPARED = [
    "run_id",
    "activation",
    "weights",
    "K",
    "N",
    "P",
    "alpha",
    "s",
    "solver",
    "solved",
    "errors",
    "min_stability",
    "steps",
]


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_spec_toml())
    return path


@pytest.mark.ray
def test_tiny_scan_on_local_ray(ray_local, spec_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["scan", str(spec_path), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "P(solved) by alpha" in printed and "instances/s" in printed
    spec = load_config(spec_path)
    runs = store.read_runs(out)
    # 3 (activation, K) x 2 weights x 2 alphas x 3 seeds
    assert runs.height == len(plan.instances(spec)) == 36
    assert runs["run_id"].n_unique() == 36
    # alpha = 0.1, 0.2 are far below every variant's capacity: all solved, zero errors
    assert runs["solved"].all() and (runs["errors"] == 0).all()
    assert (runs["min_stability"] > 0).all()
    assert (runs["P"] == (runs["alpha"] * runs["N"]).round().cast(pl.Int64)).all()
    meta = store.read_provenance(next((out / "runs").rglob("*.parquet")))
    assert meta["config_hash"] == spec.config_hash
    # every shard file is named by its id and sits in its own partition
    for shard in plan.plan_shards(spec, spec.execution.shard_size):
        path = store.shard_path(
            out, "runs", shard.activation, shard.weights, shard.K, shard.shard_id
        )
        assert store.shard_complete(path, shard.shard_id, shard.size)


@pytest.mark.ray
def test_local_ray_workers_run_at_the_drivers_priority(ray_local):
    """Ray's default nices workers by 15; the local backend's shards must not yield
    the CPU to whatever else the user runs."""
    import os

    @ray_local.remote
    def niceness() -> int:
        return os.nice(0)

    assert ray_local.get(niceness.remote()) == os.nice(0)


@pytest.mark.ray
def test_local_and_ray_backends_agree_value_for_value(ray_local, spec_path, tmp_path):
    frames = []
    for backend in ("ray", "local"):
        spec = load_config(spec_path, overrides={"execution": {"backend": backend}})
        run_scan(spec, tmp_path / backend, progress=False)
        frames.append(
            store.read_runs(tmp_path / backend).select(COMPARED).sort("run_id")
        )
    assert frames[0].equals(frames[1])


def test_rerun_skips_complete_shards_and_refuses_other_specs(
    spec_path, tmp_path, capsys
):
    spec = load_config(spec_path, overrides={"execution": {"backend": "local"}})
    out = tmp_path / "out"
    first = run_scan(spec, out, progress=False)
    assert (
        first.run == first.shards and not first.failed and first.nodes == {"local": 12}
    )
    # rerunning the same command resumes: nothing pending, no backend started
    assert main(["scan", str(spec_path), "--out", str(out), "--quiet"]) == 0
    assert "0 run, 12 skipped" in capsys.readouterr().out
    assert store.read_runs(out).height == 36
    # another shard size would plan other shards (duplicates): refused, one line
    assert main(["scan", str(spec_path), "--out", str(out), "--shard-size", "5"]) == 2
    assert "execution.shard_size: " in capsys.readouterr().err
    other = tmp_path / "other.toml"
    other.write_text(tiny_spec_toml(seeds="2"))
    assert main(["scan", str(other), "--out", str(out)]) == 2
    assert "holds results of another spec" in capsys.readouterr().err
