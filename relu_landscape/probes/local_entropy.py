"""Local entropy by sampling (binary weights): how many D-flip neighbours are solutions.

docs/science.md §2 and §5. For D = 1 .. D_max, ``draws`` uniformly random sets of D weights
are flipped; ``solution_frac`` = hits / draws estimates the fraction of the C(N, D)
vectors at Hamming distance D that are solutions, with binomial standard error
sqrt(f (1 - f) / draws). The local entropy estimate is
(1/N) ln(solution_frac * C(N, D)) with delta-method error stderr_f / (N f). It is
resolvable only where at least one neighbour was a solution (``resolved``); elsewhere
local_entropy is null and ``solution_frac_upper`` (95% Wilson upper bound, given on
every row) bounds the fraction. d = D / N, overlap = 1 - 2 d.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from relu_landscape.model import TorchBatch
from relu_landscape.params import LocalEntropyParams
from relu_landscape.probes.base import (
    ProbeResult,
    draw_chunks,
    flip_draws,
    grid_rows,
    weight_draw_errors,
)
from relu_landscape.stats import wilson_interval

# Draws per batched product (instances chunked by ``draw_chunks`` on top).
_CHUNK = 512


def neighbour_hits(batch: TorchBatch, solution: Tensor, activation: str, keys: list[int],
                   D: int, draws: int) -> Tensor:
    """Number of the ``draws`` random D-flip neighbours that are solutions, int64 [B]."""
    hits = torch.zeros(solution.shape[0], dtype=torch.int64, device=solution.device)
    for c, start in enumerate(range(0, draws, _CHUNK)):
        block = D * (draws // _CHUNK + 1) + c
        S = min(_CHUNK, draws - start)
        for r in draw_chunks(batch, S):  # each instance's draws come from its own key
            w = flip_draws(solution[r], keys[r], block, S, D)
            hits[r] += (weight_draw_errors(batch.rows(r), w, activation) == 0).sum(-1)
    return hits


def probe(batch: TorchBatch, solution: Tensor, *, activation: str, weights: str,
          params: LocalEntropyParams, keys: list[int]) -> ProbeResult:
    """Rows (instance, D): D, d, overlap, draws, hits, solution_frac,
    solution_frac_stderr, solution_frac_upper, resolved, local_entropy,
    local_entropy_stderr."""
    N = solution.shape[1] * solution.shape[2]
    Ds = np.arange(1, min(params.D_max, N) + 1)
    hits = torch.stack([neighbour_hits(batch, solution, activation, keys, int(D),
                                       params.draws) for D in Ds], 1).cpu().numpy()
    frac = hits / params.draws
    stderr = np.sqrt(frac * (1 - frac) / params.draws)
    log_shell = np.array([math.log(math.comb(N, int(D))) for D in Ds])
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = np.where(hits > 0, (np.log(frac) + log_shell) / N, np.nan)
        entropy_se = np.where(hits > 0, stderr / (N * frac), np.nan)
    d = Ds / N
    return grid_rows({
        "D": Ds, "d": d, "overlap": 1 - 2 * d, "draws": np.full(Ds.shape, params.draws),
        "hits": hits, "solution_frac": frac, "solution_frac_stderr": stderr,
        "solution_frac_upper": wilson_interval(hits, params.draws)[1],
        "resolved": hits > 0, "local_entropy": entropy, "local_entropy_stderr": entropy_se,
    })
