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


def test_relu_surrogate_gradient_is_the_softplus_derivative():
    """The ReLU surrogate differentiates softplus by its own backward (sigmoid):
    values and gradients against float64 autograd of softplus(slope h / sqrt(n)) /
    slope, on fields beyond softplus' linear threshold (|slope lambda| up to ~60);
    float32 rounding apart (a few operations of ~6e-8 relative each)."""
    g = torch.Generator().manual_seed(0)
    n, slope = 50, 7.0
    h = (torch.randn(3, 1, 40, 2, generator=g) * 20).requires_grad_(True)
    y = torch.where(torch.rand(3, 40, generator=g) < 0.5, -1.0, 1.0)
    sur = descent.surrogate_stability(h, y, "relu", n, slope)
    sur.sum().backward()
    h64 = h.detach().double().requires_grad_(True)
    gl = torch.nn.functional.softplus(slope * h64 / math.sqrt(n)) / slope
    ref = y.double()[:, None] * (gl[..., 0] - gl[..., 1]) / math.sqrt(2)
    ref.sum().backward()
    assert torch.allclose(sur.double(), ref, rtol=1e-6, atol=1e-7)
    assert torch.allclose(h.grad.double(), h64.grad, rtol=1e-6, atol=1e-9)
    assert h64.grad.abs().max() > 0.05  # the gradient is not vacuous



def test_hand_written_adam_is_torchs_adam_bit_for_bit_and_keeps_rows():
    """descent._Adam against torch.optim.Adam on the same gradients; after rows are
    dropped mid-run (as compaction does) the kept rows continue exactly as they would
    have in the full tensor (Adam is elementwise)."""
    from relu_landscape.solvers.descent import _Adam

    g = torch.Generator().manual_seed(0)
    v0 = torch.randn(6, 1, 2, 5, generator=g)
    grads = torch.randn(12, 6, 1, 2, 5, generator=g)
    ref = v0.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.01)
    mine = _Adam(v0.clone().requires_grad_(True), 0.01)
    rows = torch.arange(6)
    for t in range(12):
        if t == 7:
            rows = torch.tensor([0, 2, 5])
            mine = mine.rows(rows)
        ref.grad = grads[t]
        opt.step()
        mine.v.grad = grads[t][rows]
        mine.step()
        assert mine.v.grad is None
        assert torch.equal(mine.v.detach(), ref.detach()[rows]), t
    assert not torch.equal(mine.v.detach(), v0[rows])
