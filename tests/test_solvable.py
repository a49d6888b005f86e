"""runs.solvable: the exact answer to "has this instance a solution?" at small N.

It is what turns P(solved) into a statement about the solver: an instance that the
solver misses but that has a solution is a solver failure, not the network's limit.
"""

from __future__ import annotations

import torch

from relu_landscape import model
from relu_landscape.config import SolverSpec
from relu_landscape.instances import InstanceId, make_batch
from relu_landscape.params import GDParams, SBPIParams
from relu_landscape.probes import enumerate as enumeration
from relu_landscape.scan.plan import Shard
from relu_landscape.scan.runner import SOLVABLE_MAX_N, run_shard


def _shard(activation, K, N, weights, alpha, seeds, solver):
    ids = tuple(InstanceId(5, "binary", activation, weights, K, N, a, s)
                for a in (alpha if isinstance(alpha, tuple) else (alpha,))
                for s in range(seeds))
    return Shard(shard_id="t", activation=activation, weights=weights, K=K, N=N,
                 solver=solver, probes=(), ids=ids)


def test_solvable_is_exact_and_catches_what_the_solver_misses():
    """Sign K = 3 at N = 15 near the solver's threshold: every instance's flag equals an
    independent enumeration of all of it (solved ones included), solved implies
    solvable, and the short-budget solver misses some solvable instances."""
    torch.set_num_threads(1)
    shard = _shard("sign", 3, 15, "binary", (0.6, 0.9), 8,
                   SolverSpec("sbpi", SBPIParams(max_epochs=3)))
    runs = run_shard(shard, "cpu")["runs"].to_pydict()
    batch = model.to_torch(make_batch(list(shard.ids)))
    exact = enumeration.solvable(batch, "sign").tolist()
    assert runs["solvable"] == exact
    assert all(v for v, s in zip(runs["solvable"], runs["solved"], strict=True) if s)
    missed = [v and not s for v, s in zip(runs["solvable"], runs["solved"], strict=True)]
    assert any(missed), "the test needs a solvable instance that the solver missed"


def test_solvable_is_null_where_it_cannot_be_decided():
    big = _shard("sign", 1, SOLVABLE_MAX_N + 1, "binary", 0.2, 2,
                 SolverSpec("sbpi", SBPIParams(max_epochs=5)))
    assert run_shard(big, "cpu")["runs"].column("solvable").null_count == 2
    cont = _shard("sign", 1, 12, "continuous", 0.5, 2, SolverSpec("gd", GDParams(max_steps=5)))
    assert run_shard(cont, "cpu")["runs"].column("solvable").null_count == 2
