"""Gradient descent (Adam) for continuous weights on the per-unit spheres (science.md §3).

The weights are parametrised as W_l = sqrt(n) V_l / |V_l|, so every iterate lies on
its sphere and the loss cannot shrink by rescaling a unit. Errors are always judged
with the true activation; training uses a smooth surrogate whose slope is annealed
upwards: tanh(slope*lambda) + 0.1 lambda for sign units (which have no gradient) and
softplus(slope*lambda)/slope for ReLU units (whose exact gradient vanishes on patterns
where every unit is inactive, a tie the loss must still be able to fix). Full-batch, deterministic: ``keys`` are not used.
"""

from __future__ import annotations

import math
import time

import torch

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import GDParams
from relu_landscape.solvers.base import SolveResult, finish


# A linear leak keeps a gradient on hidden units that are confidently wrong, where
# tanh has saturated; errors are still judged with the true sign.
_LEAK = 0.1


def _surrogate_stability(h, y, activation, n, K, slope):
    lam = h / math.sqrt(n)
    if activation == "sign":
        g = torch.tanh(slope * lam) + _LEAK * lam
    else:
        g = torch.nn.functional.softplus(slope * lam) / slope
    c = model.readout(activation, K, device=h.device, dtype=h.dtype)
    return y * (g @ c) / math.sqrt(K)


def _loss(stab, params: GDParams):
    if params.loss == "hinge":
        return torch.relu(params.margin - stab)
    return torch.nn.functional.softplus(-params.beta * stab) / params.beta


def solve(batch: TorchBatch, activation: str, params: GDParams, keys: list[int], *,
          progress=None) -> SolveResult:
    """Train every instance until it has zero errors or ``max_steps`` have passed."""
    started = time.perf_counter()
    B, K, n = batch.w0.shape
    x = batch.xi.to(torch.float32)
    y = batch.y.to(torch.float32)
    mask = batch.mask.to(torch.float32)
    counts = mask.sum(-1).clamp(min=1)
    v = batch.w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([v], lr=params.lr)
    best = batch.w0.clone()
    solved = torch.zeros(B, dtype=torch.bool, device=x.device)
    steps = torch.full((B,), params.max_steps, dtype=torch.int64, device=x.device)
    growth = math.log(params.slope_end) / max(params.max_steps - 1, 1)
    for t in range(params.max_steps):
        w = model.project_sphere(v)
        h = model.dot(w, x)
        with torch.no_grad():
            wrong = ((y * model.output_sum(h, activation) <= 0) & batch.mask).sum(-1)
            newly = (wrong == 0) & ~solved
            best = torch.where(newly[:, None, None], w.detach(), best)
            steps = torch.where(newly, t, steps)
            solved |= newly
        if bool(solved.all()):
            break
        stab = _surrogate_stability(h, y, activation, n, K, math.exp(growth * t))
        per_instance = (_loss(stab, params) * mask).sum(-1) / counts
        opt.zero_grad(set_to_none=True)
        (per_instance * (~solved)).sum().backward()
        opt.step()
        if progress is not None and t % 100 == 0:
            progress(t / params.max_steps)
    with torch.no_grad():
        final = torch.where(solved[:, None, None], best, model.project_sphere(v))
    return finish(batch, activation, final, steps, started)
