"""Solvers check for "all solved" only every ``SYNC_EVERY`` steps (their one host sync);
an instance solved in between is frozen on the device, so how often the check runs
changes no result. Checking after every step also drops finished instances from the
solvers' batches (``base.compaction``) as soon as a quarter has solved, which
never happens without checks: this compares compacted runs with full ones too."""

from __future__ import annotations

import pytest
import torch

from relu_landscape.solvers import SOLVERS, base
from tests.solvers.conftest import batch_of, instances, small_params

# (solver, activation, weights, K): each loop kind (descent steps, BP sweeps,
# annealing proposals, SBPI epochs) on a batch whose instances solve at different steps
CASES = [("gd", "relu", "continuous", 2), ("clipped_sgd", "sign", "binary", 3),
         ("bp", "relu", "binary", 2), ("anneal", "sign", "binary", 3),
         ("sbpi", "relu", "binary", 2)]
# budgets: a few checks' worth of steps, enough for the alpha = 0.1 instances
BUDGET = {"gd": {"max_steps": 80}, "clipped_sgd": {"max_steps": 80},
          "bp": {"max_steps": 80}, "anneal": {"sweeps": 6}, "sbpi": {"max_epochs": 20}}


@pytest.mark.parametrize("name,activation,weights,K", CASES,
                         ids=[f"{c[0]}-{c[1]}-K{c[3]}" for c in CASES])
def test_check_interval_changes_no_result(name, activation, weights, K, monkeypatch):
    torch.set_num_threads(1)
    ids = instances(activation, weights, K, (0.1, 0.3), seeds=(0, 1))
    batch, keys = batch_of(ids, name)
    params = small_params(name, **BUDGET[name])
    runs = []
    for every in (1, 10**9):  # check after every step; never (run the whole budget)
        monkeypatch.setattr(base, "SYNC_EVERY", every)
        runs.append(SOLVERS[name](batch, activation, params, keys))
    often, never = runs
    assert often.solved.any() and torch.equal(often.solved, never.solved)
    assert torch.equal(often.steps, never.steps)
    assert torch.equal(often.weights, never.weights)
    assert torch.equal(often.errors, never.errors)


def test_check_due_spacing(monkeypatch):
    monkeypatch.setattr(base, "SYNC_EVERY", 32)
    assert [t for t in range(100) if base.check_due(t, 1)] == [31, 63, 95]
    assert [t for t in range(5) if base.check_due(t, 1000)] == [0, 1, 2, 3, 4]
    assert [t for t in range(10) if base.check_due(t, 10)] == [2, 5, 8]
