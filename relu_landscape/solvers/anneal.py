"""Simulated annealing with single-weight Metropolis flips, binary weights (science.md §3).

Energy = number of misclassified patterns (ties count). Every chain proposes one flip
per step, chosen uniformly among its N weights; the change in energy comes from the
model's incremental flip cache (O(P) work per proposal, no forward pass). The inverse
temperature is constant within a sweep of N proposals and grows geometrically from
``beta_start`` to ``beta_end``. A chain freezes once it has zero errors.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import AnnealParams
from relu_landscape.solvers.base import SolveResult, finish, random_block


def solve(batch: TorchBatch, activation: str, params: AnnealParams, keys: list[int], *,
          progress=None) -> SolveResult:
    """Anneal every chain until zero errors or ``sweeps`` sweeps of N proposals."""
    started = time.perf_counter()
    B, K, n = batch.w0.shape
    N = K * n
    dev = batch.w0.device
    cache = model.flip_cache(batch.w0, batch.xi, batch.y, activation, batch.mask)
    solved = cache.wrong == 0
    steps = torch.zeros(B, dtype=torch.int64, device=dev)
    betas = np.geomspace(params.beta_start, params.beta_end, params.sweeps)
    for sweep, beta in enumerate(betas):
        if bool(solved.all()):
            break
        u = random_block(keys, sweep, (N, 2), dev)
        flat = (u[..., 0] * N).long().clamp(max=N - 1)
        unit, index = flat // n, flat % n
        log_u = torch.log(u[..., 1])
        for t in range(N):
            prop = model.flip_delta(cache, unit[:, t], index[:, t])
            d_energy = (prop.wrong - cache.wrong).to(log_u.dtype)
            accept = (log_u[:, t] < -beta * d_energy) & ~solved
            model.apply_flip(cache, prop, accept)
            steps += (~solved).long()
            solved |= cache.wrong == 0
        if progress is not None:
            progress((sweep + 1) / params.sweeps)
    return finish(batch, activation, cache.w, steps, started)
