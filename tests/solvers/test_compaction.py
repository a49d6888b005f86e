"""Finished instances leave the batch (``base.compaction``): the solvers drop solved
rows from their working state at the checks, and no instance's result changes.

Annealing and SBPI hold integers exactly. In the float solvers the kept instances'
numbers stay bit for bit because the per-step products read each
instance as its own row (forward, ``model.dot_shared``) or column (weight gradient,
``base.back_shared``) of one matmul per pattern matrix, and those numbers do not
depend on how many rows or columns there are (measured with MKL; the one exception
found is the perceptron at n <= 13, K = 1, whose ~1e-9 differences are why the
perceptron case here has n = 25).
"""

from __future__ import annotations

import pytest
import torch

from relu_landscape import model
from relu_landscape.solvers import SOLVERS, base
from tests.solvers.conftest import batch_of, instances, small_params

# (solver, activation, weights, K, n): every compacting loop (descent with one and with
# R replicas, continuous and straight-through weights; BP with both channels;
# annealing; SBPI)
CASES = [("gd", "sign", "continuous", 1, 25),
         ("replicated_gd", "relu", "continuous", 4, 11),
         ("clipped_sgd", "sign", "binary", 3, 11), ("bp", "sign", "binary", 3, 11),
         ("bp", "relu", "binary", 2, 11), ("anneal", "sign", "binary", 3, 11),
         ("sbpi", "relu", "binary", 2, 11)]
# budget, and its first half in the solver's step unit (anneal: proposals, N = K n)
BUDGET = {"gd": {"max_steps": 100}, "replicated_gd": {"max_steps": 100},
          "clipped_sgd": {"max_steps": 100}, "bp": {"max_steps": 100},
          "anneal": {"sweeps": 8}, "sbpi": {"max_epochs": 20}}


def _half_budget(name: str, N: int) -> int:
    budget = next(iter(BUDGET[name].values()))
    return budget // 2 * (N if name == "anneal" else 1)


@pytest.mark.parametrize("name,activation,weights,K,n", CASES,
                         ids=[f"{c[0]}-{c[1]}-K{c[3]}" for c in CASES])
def test_compaction_changes_no_result(name, activation, weights, K, n, monkeypatch):
    torch.set_num_threads(1)
    # three alphas per seed: rows solve at different steps, matrices empty one by one
    ids = instances(activation, weights, K, (0.1, 0.3, 3.0), seeds=(0, 1), n=n)
    batch, keys = batch_of(ids, name)
    params = small_params(name, **BUDGET[name])
    monkeypatch.setattr(base, "SYNC_EVERY", 4)
    runs = {}
    for compact in (True, False):
        monkeypatch.setattr(base, "COMPACT", compact)
        runs[compact] = SOLVERS[name](batch, activation, params, keys)
    on, off = runs[True], runs[False]
    # compaction ran: a quarter of the rows solved in the first half of the budget
    # (checks come every 4 steps, or every sweep or epoch), and some rows remained
    early = off.solved & (off.steps < _half_budget(name, K * n))
    assert int(early.sum()) >= len(ids) / 4
    assert (~off.solved).any()
    for field in ("weights", "solved", "errors", "steps"):
        assert torch.equal(getattr(on, field), getattr(off, field)), field


def test_shared_rows_keeps_each_instance_its_matrix_and_numbers():
    """The kept rows' layout: the matrices they use, distinct slots per matrix, block
    height >= 2 when it was; their products equal the full layout's and the per-instance
    ``model.dot``; ``back_shared`` is the weight gradient of ``dot_shared``."""
    torch.set_num_threads(1)
    ids = instances("relu", "continuous", 2, (0.2, 0.5, 1.0), seeds=(0, 1, 2), n=25)
    batch, _ = batch_of(ids, "gd")
    xu = model.unit_major(batch.xi_unique, 2)
    w = torch.randn(batch.w0.shape, generator=torch.Generator().manual_seed(0))
    full = model.dot_shared(w, xu, batch.source, batch.slot)
    g = torch.randn(full.shape, generator=torch.Generator().manual_seed(1))
    back = base.back_shared(g, xu, batch.source, batch.slot)
    # rows 1, 2 of seed 0 and row 7 of seed 2: seed 1's matrix goes
    keep = torch.tensor([1, 2, 7])
    xk, src, slot = base.shared_rows(xu, batch.source, batch.slot, keep)
    assert xk.shape[0] == 2 and torch.equal(xk[src], xu[batch.source[keep]])
    assert len({(int(a), int(b)) for a, b in zip(src, slot, strict=True)}) == len(keep)
    assert int(slot.max()) == 1
    assert torch.equal(model.dot_shared(w[keep], xk, src, slot), full[keep])
    assert torch.equal(base.back_shared(g[keep], xk, src, slot), back[keep])
    # one row per matrix left: the block keeps two rows (a one-row product rounds
    # differently)
    pick = torch.tensor([0, 4])
    _, src1, slot1 = base.shared_rows(xu, batch.source, batch.slot, pick)
    assert int(slot1.max()) == 1 and torch.equal(src1, torch.tensor([0, 1]))
    # independent numbers: the per-instance product and autograd's gradient
    torch.testing.assert_close(full, model.dot(w, batch.xi), rtol=1e-5, atol=1e-4)
    wg = w.clone().requires_grad_(True)
    (model.dot_shared(wg, xu, batch.source, batch.slot) * g).sum().backward()
    torch.testing.assert_close(back, wg.grad, rtol=1e-5, atol=1e-4)


def test_benchmark_shard_runs_both_ways_with_the_same_results():
    """``bench.compaction_speedup`` at a CI size: its own check (a BenchmarkError if
    the two runs differ) passes, the early half solves, and the flag is restored."""
    from relu_landscape import bench

    torch.set_num_threads(1)
    row = bench.compaction_speedup("cpu", B=16, N=250, steps=36)
    assert row["solved"] == 8 and row["solved_by_step"] < 2 * base.SYNC_EVERY
    assert base.COMPACT is True and row["ratio"] > 0
