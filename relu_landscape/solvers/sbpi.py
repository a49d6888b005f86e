"""SBPI for binary weights, extended to the committee by the least-action rule
(docs/science.md §3).

Baldassi, Braunstein, Brunel & Zecchina, PNAS 104, 11079 (2007): every synapse keeps
an odd integer hidden state h (|h| <= max_state) and W = sign(h). Patterns are shown
one at a time, in a fresh random order each epoch (all B instances step together).
For pattern mu with label sigma, unit l "helps" when its preactivation moves in the
direction tau_l = sigma c_l; which units are updated is the least-action choice:

- sign units: if the majority is wrong, the m wrong units with the smallest
  |lambda_l| (m = how many more correct units the majority needs); if it holds by
  exactly one unit, the right units with unit stability sigma lambda_l <= theta are
  "barely right";
- ReLU units: with D = -sigma sum_l c_l relu(lambda_l) the deficit, a unit's cost is
  what its move alone needs to fix the pattern (D + relu(-lambda_l) for a unit to
  raise, D for an active unit to lower past D, infinite otherwise). A wrong pattern
  moves every unit of finite cost: moving only the cheapest one cycles on small
  instances (K = 4, n = 11, alpha = 0.2: 3 of 6 solved in 40 epochs, against 6 of 6).
  A pattern with margin in (0, theta] marks the cheapest unit barely right.

A wrong pattern moves every synapse of the chosen units by 2 tau_l xi_i; a barely
right one, with probability p_s, moves only the synapses that already agree
(tau_l xi_i W_i = +1), deepening them without changing W. Lambdas are in the
unnormalised units h = W.xi of ``model.dot`` (integers), and so is theta.

A margin kappa (``TorchBatch.kappa``) raises the bar: sign units need
``model.sign_votes`` right units instead of a majority, ReLU units a margin above
``model.margin_threshold`` instead of above 0. Sign and ReLU units only
(``params.SOLVER_VARIANTS``).
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import SBPIParams
from relu_landscape.solvers.base import (
    SolveResult,
    check_due,
    compaction,
    finish,
    random_block,
)


def _least_action_sign(t: Tensor, theta: float,
                       votes: int | None = None) -> tuple[Tensor, Tensor]:
    """Units to fix and barely right ones [B, K] from unit stabilities t; votes: right
    units a stored pattern needs (default a majority)."""
    K = t.shape[-1]
    deficit = ((K + 1) // 2 if votes is None else votes) - (t > 0).sum(-1, keepdim=True)
    # stable sorts: units with equal |lambda| (integers, so ties are common) are
    # ranked by index on every device
    key = torch.where(t > 0, math.inf, -t)
    rank = key.argsort(dim=-1, stable=True).argsort(dim=-1, stable=True)
    fix = (t <= 0) & (rank < deficit)
    barely = (deficit == 0) & (t > 0) & (t <= theta)
    return fix, barely


def _least_action_relu(lam: Tensor, tau: Tensor, theta: float,
                       threshold: float = 0.0) -> tuple[Tensor, Tensor]:
    """Units to fix (finite cost) and the cheapest unit if barely right, [B, K];
    threshold: the margin in units of lam (``model.margin_threshold``)."""
    margin = (tau * torch.relu(lam)).sum(-1, keepdim=True) - threshold
    D = torch.relu(-margin)
    raise_cost = D + torch.relu(-tau * lam)
    lower_cost = torch.where(lam > D, D, math.inf)
    cost = torch.where(tau > 0, raise_cost, lower_cost)
    best = torch.nn.functional.one_hot(cost.argmin(-1), lam.shape[-1]).bool()
    return (cost < math.inf) & (margin <= 0), best & (margin > 0) & (margin <= theta)


def present(
    hs: Tensor,
    w: Tensor,
    x: Tensor,
    sigma: Tensor,
    coin: Tensor,
    live: Tensor,
    activation: str,
    params: SBPIParams,
    bound: int,
    kappa: float = 0.0,
) -> None:
    """Show one pattern per instance and update hs, w in place.

    hs, w: [B, K, n] float (odd integer states, signs); x: pattern [B, K, n];
    sigma: label [B]; coin: bool [B] (reinforcement drawn); live: bool [B]; kappa:
    the model's margin.
    """
    K, n = w.shape[1], w.shape[2]
    c = model.readout(activation, K, device=w.device, dtype=w.dtype)
    lam = (w * x).sum(-1)
    tau = sigma[:, None] * c
    if activation == "sign":
        fix, barely = _least_action_sign(tau * lam, params.theta, model.sign_votes(K, kappa))
    else:
        fix, barely = _least_action_relu(lam, tau, params.theta,
                                         model.margin_threshold(activation, kappa, n, K))
    push = tau[..., None] * x
    # the synapses that move, as 0/1 floats: on CPU, bool ops broadcast over
    # [B, K, n] cost ~5x a float op. fix and barely exclude each other, and a
    # synapse agrees where push w = +1 (both +-1; a zero padding row never moves)
    fixing = (fix & live[:, None]).to(w.dtype)[..., None]
    deepening = (barely & (coin & live)[:, None]).to(w.dtype)[..., None]
    agree = (push * w).add_(1.0).mul_(0.5)
    hs.add_(push * torch.addcmul(fixing, deepening, agree), alpha=2.0)
    hs.clamp_(-bound, bound)
    w.copy_(torch.sign(hs))  # hs is odd, never 0


def solve(
    batch: TorchBatch,
    activation: str,
    params: SBPIParams,
    keys: list[int],
    *,
    progress=None,
) -> SolveResult:
    """Run epochs until an epoch ends with zero errors or ``max_epochs`` have passed.

    steps: epochs until solved (or the budget).
    """
    started = time.perf_counter()
    B, K, n = batch.w0.shape
    dev = batch.w0.device
    bound = params.max_state if params.max_state % 2 else params.max_state - 1
    w = batch.w0.clone()
    hs = w.clone()
    sigma_all = batch.y.to(torch.float32)
    solved = batch.errors(w, activation) == 0
    steps = torch.full((B,), params.max_epochs, dtype=torch.int64, device=dev)
    steps = torch.where(solved, 0, steps)
    P = batch.mask.shape[1]
    # the results of all B instances; the state holds the rows ``index`` of ``batch``
    # (``part``) only once finished instances are dropped (``base.compaction``)
    index = torch.arange(B, device=dev)
    out_w, out_steps, part = w.clone(), steps.clone(), batch
    for epoch in range(params.max_epochs):
        # unsolved instances only move (``live``), so epochs after a late check
        # change nothing
        done, keep = (compaction(solved) if epoch > 0 and check_due(epoch - 1, P)
                      else (False, None))
        if done:
            break
        if keep is not None:
            gone = index[solved]
            out_w[gone], out_steps[gone] = w[solved], steps[solved]
            index, part = index[keep], part.rows(keep)
            keys = [keys[i] for i in keep.tolist()]
            w, hs, sigma_all, solved, steps = (
                a[keep] for a in (w, hs, sigma_all, solved, steps))
        u = random_block(keys, epoch, (P, 2), dev)
        # stable: the padding's equal keys keep their order on every device
        order = torch.where(part.mask, u[..., 0], 2.0).argsort(dim=-1, stable=True)
        rows = torch.arange(len(keys), device=dev)
        for t in range(order.shape[1]):
            mu = order[:, t]
            live = part.mask[rows, mu] & ~solved
            x = part.xi_unique[part.source, mu].to(torch.float32).reshape(-1, K, n)
            present(
                hs,
                w,
                x,
                sigma_all[rows, mu],
                u[:, t, 1] < params.p_s,
                live,
                activation,
                params,
                bound,
                batch.kappa,
            )
        newly = (part.errors(w, activation) == 0) & ~solved
        steps = torch.where(newly, epoch + 1, steps)
        solved |= newly
        if progress is not None:
            progress((epoch + 1) / params.max_epochs)
    out_w[index], out_steps[index] = w, steps
    return finish(batch, activation, out_w, out_steps, started)
