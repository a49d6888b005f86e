"""Descent: the annealed margin does not cap what gd reaches."""

from __future__ import annotations

import math

import torch

from relu_landscape import model
from relu_landscape.instances import InstanceId, make_batch, stream_key
from relu_landscape.params import GDParams, LPParams
from relu_landscape.solvers import descent, gd, lp


def test_margin_does_not_cap_gd_on_a_cover_feasible_instance():
    """N = 100, alpha = 1.9: beyond the Gardner capacity at kappa = 0.1 (1.71), below
    Cover's 2. The LP certifies both instances separable; a fixed margin 0.1 (the old
    default) leaves errors (measured: 0 of 12 such instances solved in 3000 steps,
    while the LP and the annealed margin both solve 9 of 12)."""
    torch.set_num_threads(1)
    ids = [
        InstanceId(0, "binary", "sign", "continuous", 1, 100, 1.9, s) for s in (4, 9)
    ]
    batch = model.to_torch(make_batch(ids))
    keys = [stream_key(i, "gd") for i in ids]
    assert lp.solve(batch, "sign", LPParams(), keys).solved.all()
    new = gd.solve(batch, "sign", GDParams(max_steps=1000), keys)
    assert new.solved.all(), new.errors
    old = gd.solve(batch, "sign", GDParams(max_steps=1000, margin_end=0.1), keys)
    assert not old.solved.any()


def test_margin_anneals_to_margin_end_and_relu_keeps_its_floor():
    p = GDParams(margin=0.1, margin_end=1e-3, max_steps=101)
    assert descent.margin_at(p, 0, "sign", 1) == 0.1
    assert math.isclose(descent.margin_at(p, 50, "sign", 3), 0.01)
    assert math.isclose(descent.margin_at(p, 100, "sign", 1), 1e-3)
    assert descent.margin_at(p, 100, "relu", 4) == descent.relu_floor(p, 4) > 1e-3


def test_relu_surrogate_above_the_floor_implies_a_true_solution():
    """The floor is the surrogate's largest overstatement of sigma*Delta: wherever the
    surrogate stability reaches it, the true one is >= 0 (checked on random fields,
    including ties with every unit inactive)."""
    g = torch.Generator().manual_seed(0)
    p = GDParams()
    for K in (2, 4, 6):
        n = 50
        h = torch.randn(20000, 1, 1, K, generator=g) * 3
        h[:5000] = -h[:5000].abs()  # every unit inactive: a tie, true Delta = 0
        y = torch.where(torch.rand(20000, 1, generator=g) < 0.5, -1.0, 1.0)
        sur = descent.surrogate_stability(h, y, "relu", n, p.slope_end)[:, 0, 0]
        true = y[:, 0] * model.output_sum(h[:, 0, 0], "relu") / math.sqrt(n * K)
        over = sur - true
        assert over.max() <= descent.relu_floor(p, K) + 1e-6
        assert (true[sur > descent.relu_floor(p, K)] > 0).all()
