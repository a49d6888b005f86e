"""Non-finite numbers are never a stored pattern, a solution or a Parquet value.

A NaN stability fails every comparison, so a test written ``stab <= 0`` lets it pass as
correct: an all-NaN network once had 0 errors and was stored as solved. Each layer that
judges or stores a result is checked here with NaN and infinite weights.
"""

from __future__ import annotations

import math

import polars as pl
import pytest
import torch

from relu_landscape import model, store
from relu_landscape.instances import InstanceId, make_batch, stream_key
from relu_landscape.params import GDParams, LocalEnergyParams
from relu_landscape.probes import PROBES
from relu_landscape.scan.runner import run_shard
from relu_landscape.solvers import SOLVERS

VARIANTS = [("sign", 1), ("sign", 3), ("relu", 2), ("relu", 4)]


def _batch(activation: str, K: int, alpha: float = 0.5, seeds: int = 4):
    ids = [InstanceId(7, "binary", activation, "continuous", K, 12 * K, alpha, s)
           for s in range(seeds)]
    return model.to_torch(make_batch(ids)), ids


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("activation,K", VARIANTS)
def test_model_counts_every_pattern_of_a_nonfinite_network_wrong(activation, K, bad):
    batch, _ = _batch(activation, K)
    w = torch.full_like(batch.w0, bad)
    P = batch.mask.sum(-1)
    assert model.errors(w, batch.xi, batch.y, activation, batch.mask).tolist() == P.tolist()
    # one NaN weight in one unit is enough to spoil every pattern that unit sees
    w = batch.w0.clone()
    w[:, 0, 0] = math.nan
    assert (model.errors(w, batch.xi, batch.y, activation, batch.mask) == P).all()


def test_is_wrong_truth_table():
    stab = torch.tensor([1.0, 1e-30, 0.0, -0.0, -1.0, math.nan, math.inf, -math.inf])
    assert model.is_wrong(stab).tolist() == [False, False, True, True, True, True, True,
                                             True]


def test_flip_cache_counts_nan_wrong():
    batch, _ = _batch("relu", 2)
    w = torch.full_like(batch.w0, math.nan)
    cache = model.flip_cache(w, batch.xi, batch.y, "relu", batch.mask)
    assert cache.wrong.tolist() == batch.mask.sum(-1).tolist()


@pytest.mark.parametrize("activation,K", [("sign", 1), ("relu", 2)])
def test_gd_from_zero_weights_solves_nothing(activation, K):
    """Zero initial weights project to NaN on the sphere; that must not count as solved
    (it once reported 4/4 solved at step 0, one of them at alpha = 3)."""
    batch, ids = _batch(activation, K, alpha=3.0)
    batch.w0.zero_()
    res = SOLVERS["gd"](batch, activation, GDParams(max_steps=5),
                        [stream_key(i, "gd") for i in ids])
    assert not res.solved.any()
    assert (res.errors == batch.mask.sum(-1)).all()


def test_nan_never_reaches_parquet(tmp_path, monkeypatch):
    """A shard whose solver returned NaN weights: unsolved, all patterns wrong, and its
    min_stability stored as null, not as a NaN value."""
    from relu_landscape.config import ProbeSpec, SolverSpec
    from relu_landscape.scan.plan import Shard

    ids = tuple(InstanceId(7, "binary", "relu", "continuous", 2, 24, 0.5, s)
                for s in range(3))
    shard = Shard(ids=ids, activation="relu", weights="continuous", K=2, N=24,
                  solver=SolverSpec("gd", GDParams(max_steps=3)),
                  probes=(ProbeSpec("local_energy", LocalEnergyParams(draws=4, points=2)),),
                  shard_id="nan0")
    original = SOLVERS["gd"]

    def nan_solver(batch, activation, params, keys, **kw):
        res = original(batch, activation, params, keys, **kw)
        w = torch.full_like(res.weights, math.nan)
        return type(res)(w, res.solved & False, res.errors, res.steps, res.wall_s)

    # fault injection: a solver that diverged to NaN but claims nothing
    monkeypatch.setitem(SOLVERS, "gd", nan_solver)
    tables = run_shard(shard, "cpu")
    assert set(tables) == {"runs"}  # no solution, so no probe rows
    path = store.write_shard(tmp_path, "runs", tables["runs"], activation="relu",
                             weights="continuous", K=2, shard_id="nan0",
                             provenance=store.Provenance(config_hash="x"), device="cpu")
    runs = pl.read_parquet(path)
    assert runs["min_stability"].null_count() == 3
    assert runs["min_stability"].is_nan().sum() == 0
    assert not runs["solved"].any()


def test_store_refuses_nan_in_a_required_column(tmp_path):
    import pyarrow as pa

    defaults = {pa.string(): "x", pa.int64(): 1, pa.float64(): 0.5, pa.bool_(): True}
    row = {f.name: [defaults[f.type]] for f in store.RUNS_SCHEMA}
    row["error_frac"] = [math.nan]  # required: NaN there is a bug, not a missing value
    with pytest.raises(ValueError, match="error_frac"):
        store.write_file(tmp_path / "t.parquet", "runs", pa.table(row))
    assert not (tmp_path / "t.parquet").exists()


def test_probes_see_nan_as_errors():
    batch, _ = _batch("sign", 3)
    sol = torch.full_like(batch.w0, math.nan)
    res = PROBES["local_energy"].run(batch, sol, activation="sign", weights="continuous",
                                     params=LocalEnergyParams(draws=4, points=2),
                                     keys=[1, 2, 3, 4])
    assert (res.columns["local_energy"] == 1.0).all()
