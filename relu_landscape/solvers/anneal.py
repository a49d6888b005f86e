"""Simulated annealing with single-weight Metropolis flips, binary weights (§3).

Energy: the number of misclassified patterns (ties count), or the summed violation of
the margins (``model.violation``), which still sees progress on patterns that stay
wrong. Every chain proposes one flip per step, chosen uniformly among its N weights;
the proposal's effect comes from the model's incremental flip cache (O(P K) work per
proposal, never a forward pass). The inverse temperature is constant within a sweep
of N proposals and grows geometrically from ``beta_start`` to ``beta_end``. A chain
freezes once it has zero errors.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from torch import Tensor

from relu_landscape import activations, model
from relu_landscape.model import FlipCache, FlipProposal, TorchBatch
from relu_landscape.params import AnnealParams
from relu_landscape.solvers.base import (
    SolveResult,
    check_due,
    compaction,
    finish,
    random_block,
)


def energy(cache: FlipCache, params: AnnealParams, n: int, kappa: float = 0.0) -> Tensor:
    """The annealed energy [B] of the cache's current weights (full, from cache.h), at
    the model's margin kappa (the cache's errors count it already)."""
    if params.energy == "errors":
        return cache.wrong.to(torch.float64)
    return model.violation(
        cache.h, cache.y, cache.mask, cache.activation, n, params.margin, kappa
    ).to(torch.float64)


def proposed_energy(
    cache: FlipCache, prop: FlipProposal, params: AnnealParams, n: int, kappa: float = 0.0
) -> Tensor:
    """The energy [B] after the proposed flips; pure."""
    if params.energy == "errors":
        return prop.wrong.to(torch.float64)
    if activations.get(cache.activation).degree == 1:
        # relu, linear: +-1 weights and patterns make every output sum an integer, so
        # the proposal's incremental sums equal a fresh output_sum of its h, bit for bit
        return model.output_violation(
            prop.out, cache.y, cache.mask, cache.activation, n, cache.w.shape[1],
            params.margin, kappa).to(torch.float64)
    h = model.proposed_preact(cache, prop)
    return model.violation(
        h, cache.y, cache.mask, cache.activation, n, params.margin, kappa
    ).to(torch.float64)


def sweep(
    cache: FlipCache,
    e: Tensor,
    solved: Tensor,
    steps: Tensor,
    beta: float,
    u: Tensor,
    params: AnnealParams,
    kappa: float = 0.0,
) -> Tensor:
    """N Metropolis proposals per chain; mutates cache, solved, steps; returns energy.

    u: uniforms [B, N, 2] (which weight, acceptance); kappa: the model's margin.
    """
    B, K, n = cache.w.shape
    N = K * n
    flat = (u[..., 0] * N).long().clamp(max=N - 1)
    unit, index = flat // n, flat % n
    log_u = torch.log(u[..., 1])
    for t in range(N):
        prop = model.flip_delta(cache, unit[:, t], index[:, t])
        e_new = proposed_energy(cache, prop, params, n, kappa)
        accept = (log_u[:, t] < -beta * (e_new - e)) & ~solved
        model.apply_flip(cache, prop, accept)
        e = torch.where(accept, e_new, e)
        steps += (~solved).long()
        solved |= cache.wrong == 0
    return e


def solve(
    batch: TorchBatch,
    activation: str,
    params: AnnealParams,
    keys: list[int],
    *,
    progress=None,
) -> SolveResult:
    """Anneal every chain until zero errors or ``sweeps`` sweeps of N proposals."""
    started = time.perf_counter()
    B, K, n = batch.w0.shape
    dev = batch.w0.device
    cache = model.flip_cache(batch.w0, batch.xi_unique, batch.y, activation, batch.mask,
                             batch.source, batch.kappa)
    e = energy(cache, params, n, batch.kappa)
    solved = cache.wrong == 0
    steps = torch.zeros(B, dtype=torch.int64, device=dev)
    # the results of all B chains; the state above holds the rows ``index`` only once
    # finished chains are dropped (``base.compaction``)
    index = torch.arange(B, device=dev)
    out_w, out_steps = batch.w0.clone(), steps.clone()
    betas = np.geomspace(params.beta_start, params.beta_end, params.sweeps)
    for k, beta in enumerate(betas):
        # frozen chains (``sweep``) make the sweeps after a late check change nothing
        done, keep = (compaction(solved) if k > 0 and check_due(k - 1, K * n)
                      else (False, None))
        if done:
            break
        if keep is not None:
            gone = index[solved]
            out_w[gone], out_steps[gone] = cache.w[solved], steps[solved]
            index, keys = index[keep], [keys[i] for i in keep.tolist()]
            cache = _cache_rows(cache, keep)
            e, solved, steps = e[keep], solved[keep], steps[keep]
        u = random_block(keys, k, (K * n, 2), dev)
        e = sweep(cache, e, solved, steps, float(beta), u, params, batch.kappa)
        if progress is not None:
            progress((k + 1) / params.sweeps)
    out_w[index], out_steps[index] = cache.w, steps
    return finish(batch, activation, out_w, out_steps, started)


def _cache_rows(cache: FlipCache, keep: Tensor) -> FlipCache:
    """The chains ``keep`` of a flip cache (the shared transposed patterns stay)."""
    return dataclasses.replace(
        cache, w=cache.w[keep], source=cache.source[keep], y=cache.y[keep],
        mask=cache.mask[keep], h=cache.h[keep], out=cache.out[keep],
        wrong=cache.wrong[keep])
