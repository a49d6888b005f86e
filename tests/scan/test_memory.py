"""Memory-bounded shards: the shard size follows the memory budget, a CUDA
out-of-memory error halves the shard without changing a row, and the chunked kernels
give the numbers of the unchunked ones."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
import torch

from relu_landscape import model, rng
from relu_landscape.config import validate
from relu_landscape.instances import InstanceId, make_batch, stream_key
from relu_landscape.params import PROBE_PARAMS
from relu_landscape.probes import PROBES
from relu_landscape.scan import local, plan, run_scan, runner
from relu_landscape.solvers.base import random_block
from tests.conftest import tiny_spec_toml


def _spec(grid: dict | None = None, **execution):
    raw = tomllib.loads(tiny_spec_toml("local"))
    raw["grid"].update(grid or {})
    raw["execution"] = {"backend": "local", **execution}
    spec, issues = validate(raw)
    assert spec is not None, issues
    return spec


def test_shard_size_follows_the_budget():
    spec = _spec()
    per = plan.largest_instance_bytes(spec)
    # the grid's largest shape: relu K = 2, n = 11 (N = 22), P = round(0.2 * 33) = 7 at
    # sign K = 3 (N = 33); patterns alone are 6 P N bytes each (int8, copy, float32)
    assert per >= 6 * 7 * 33
    assert plan.shard_size_for(spec, "cuda", 10 * per + per // 2) == 10
    assert plan.shard_size_for(spec, "cuda", per - 1) == 1  # never 0
    assert plan.shard_size_for(spec, "cuda", 10_000 * per) == 1024  # the device's cap
    assert plan.shard_size_for(spec, "cpu", 10_000 * per) == 64
    assert plan.shard_size_for(spec, "cpu", None) == 64  # budget unknown: the default
    assert plan.shard_size_for(_spec(shard_size=5), "cuda", per) == 5  # explicit wins


def test_bytes_per_instance_grows_with_the_shape():
    spec = _spec()
    solver = spec.solver_for("binary")
    small = plan.bytes_per_instance(2, 1000, 500, "binary", solver)
    big = plan.bytes_per_instance(2, 1000, 1000, "binary", solver)
    assert 6 * 1000 * 1000 <= big and 0 < small < big
    walks = plan.ProbeSpec("walks", PROBE_PARAMS["walks"]())  # per-walker state
    assert plan.bytes_per_instance(2, 1000, 1000, "binary", solver, (walks,)) > big
    chunked = plan.ProbeSpec("local_entropy", PROBE_PARAMS["local_entropy"]())
    assert plan.bytes_per_instance(2, 1000, 1000, "binary", solver, (chunked,)) == big


def test_scan_records_the_budget_and_plans_with_it(tmp_path, monkeypatch):
    spec = _spec({"K": {"sign": [1]}, "weights": ["binary"], "seeds": 2})
    per = plan.largest_instance_bytes(spec)
    monkeypatch.setattr(local.runner, "memory_budget", lambda kind, fraction: 3 * per)
    report = run_scan(spec, tmp_path, progress=False)
    assert not report.failed
    meta = json.loads((tmp_path / "scan.json").read_text())
    assert meta["shard_size"] == 3
    assert meta["memory"] == {"budget_bytes": 3 * per, "fraction": 0.5,
                              "bytes_per_instance": per}
    # resume keeps the recorded plan whatever the budget is now
    monkeypatch.setattr(local.runner, "memory_budget", lambda kind, fraction: 100 * per)
    again = run_scan(spec, tmp_path, progress=False)
    assert again.run == 0 and json.loads((tmp_path / "scan.json").read_text()) == meta


def _shard(size: int):
    spec = _spec()
    shards = [s for s in plan.plan_shards(spec, size) if s.weights == "binary"]
    return max(shards, key=lambda s: s.size)


def test_out_of_memory_halves_the_shard_and_keeps_every_row():
    torch.set_num_threads(1)
    shard = _shard(6)
    assert shard.size == 6
    sizes = []

    def tight(part, device):  # a device that holds at most 2 instances at once
        sizes.append(part.size)
        if part.size > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return runner.run_shard(part, device)

    split = runner.run_split(shard, "cpu", tight)
    whole = runner.run_shard(shard, "cpu")
    assert sizes == [6, 3, 1, 2, 3, 1, 2]
    assert split.keys() == whole.keys()
    for name, table in whole.items():
        timing = [c for c in ("wall_s", "batch_size") if c in table.column_names]
        assert split[name].drop(timing).equals(table.drop(timing)), name
    assert split["runs"].column("batch_size").to_pylist() == [1, 2, 2, 1, 2, 2]

    def never(part, device):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        runner.run_split(_shard(2), "cpu", never)


def test_random_rows_are_slices_of_the_block():
    """numpy's path (CPU) and the torch Philox used on GPUs, entered mid-stream."""
    keys = [3, 2**100 + 7]
    full = random_block(keys, 4, (9, 3, 5), "cpu")
    for rows in (slice(0, 9), slice(1, 4), slice(8, 9)):
        assert torch.equal(random_block(keys, 4, (9, 3, 5), "cpu", rows), full[:, rows])
        start = rows.start * 15  # uniforms before the row: not a multiple of 4
        part = rng.block_uniforms(keys, 4, (rows.stop - rows.start, 3, 5), "cpu", start)
        assert torch.equal(part, full[:, rows])


def test_chunked_kernels_equal_unchunked(monkeypatch):
    """With a budget of one row per chunk, errors, flip caches and the chunked probes
    give the numbers of one pass over the whole batch."""
    ids = [InstanceId(3, "binary", "relu", "binary", 2, 12, a, s)
           for a in (0.2, 0.5) for s in range(2)]
    shared = model.to_torch(make_batch(ids))  # the alphas of a seed share one matrix
    batch = model.TorchBatch(shared.xi, shared.y, shared.mask, shared.w0)
    sol = batch.w0  # any +-1 weights: the kernels need no solution
    small = {"robustness": {"draws": 4, "points": 2},
             "local_energy": {"draws": 4, "points": 2},
             "local_entropy": {"draws": 6, "D_max": 2}}

    def run(b):
        return {name: PROBES[name].run(
            b, sol, activation="relu", weights="binary",
            params=PROBE_PARAMS[name](**kw),
            keys=[stream_key(i, f"probe/{name}") for i in ids]).columns
            for name, kw in small.items()}

    whole = run(batch)
    errors = model.errors(sol, batch.xi, batch.y, "relu", batch.mask)
    monkeypatch.setattr(model, "WORK_BYTES", 1)
    assert len(shared.xi_unique) < len(ids)
    assert torch.equal(shared.errors(sol, "relu"), errors)
    cache = model.flip_cache(sol, shared.xi_unique, shared.y, "relu", shared.mask,
                             shared.source)
    assert torch.equal(cache.wrong, errors)
    chunked = run(shared)
    for name, columns in whole.items():
        for col, values in columns.items():
            np.testing.assert_array_equal(values, chunked[name][col], f"{name} {col}")


@pytest.mark.slow
def test_estimate_bounds_the_measured_peak():
    """bench's measured memory per instance at N = P = 1000 lies between the int8
    pattern matrix an instance must hold and the planner's estimate (about 70 s: a few
    subprocesses at N = P = 1000)."""
    from relu_landscape import bench

    result = bench.peak_memory("cpu")
    assert 1000 * 1000 <= result["peak_bytes_per_instance"]
    assert result["peak_bytes_per_instance"] <= result["estimate_bytes_per_instance"]


def test_peak_memory_is_measured_under_a_large_parent():
    """The CPU peak is a fresh subprocess's own rise. A parent holding more than the
    shard work (here 600 MB, as the full bench does after its Tune and theory parts)
    must not hide it: getrusage's maxrss starts the child at the parent's size, and
    the full bench read 0 for every phase."""
    from relu_landscape import bench

    held = bytearray(b"\x01") * (600 * 2**20)  # resident, not lazily zeroed
    rise = bench._peak_bytes(4, 1000, "cpu", "solve")
    assert len(held) and rise > 4 * 1000 * 1000  # at least the four int8 pattern matrices
