"""Small instances and small budgets shared by the solver tests."""

from __future__ import annotations

import dataclasses

from relu_landscape import model
from relu_landscape.instances import InstanceId, make_batch, stream_key
from relu_landscape.params import SOLVER_PARAMS

# (activation, K): every model variant of docs/science.md §1 at two widths
VARIANTS = [("sign", 1), ("sign", 3), ("relu", 2), ("relu", 4)]
# budget fields, whichever a solver's parameter class has: small, so "unsolved" is fast
BUDGET = {"max_steps": 200, "sweeps": 30, "max_epochs": 20}
# BP's sweep integrates a channel per (pattern, unit), costliest of all at ReLU K = 4;
# the easy contract instances converge by sweep 5 (measured), so 40 sweeps suffice
SOLVER_BUDGET = {"bp": {"max_steps": 40}}


def small_params(name: str, **extra):
    """The solver's defaults with a small budget (and any overrides)."""
    cls = SOLVER_PARAMS[name][0]
    names = {f.name for f in dataclasses.fields(cls)}
    budget = {k: v for k, v in BUDGET.items() if k in names}
    return cls(**{**budget, **SOLVER_BUDGET.get(name, {}), **extra})


def instances(activation: str, weights: str, K: int, alphas, seeds, n: int = 11):
    """InstanceIds at N = K n (n odd, so sign units with binary weights never tie)."""
    return [
        InstanceId(3, "binary", activation, weights, K, K * n, a, s)
        for s in seeds
        for a in alphas
    ]


def batch_of(ids, name: str):
    """(TorchBatch on CPU, per-instance solver keys) for ``ids``."""
    return model.to_torch(make_batch(ids)), [stream_key(i, name) for i in ids]
