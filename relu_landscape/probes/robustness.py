"""Robustness to input perturbations: fraction of training patterns still correct.

docs/science.md §2. +-1 inputs: every input bit of every pattern flipped independently with
probability p; Gaussian inputs: N(0, p^2) noise added to every entry. The solution is
fixed; ``robustness`` is the mean over ``draws`` noise draws of the fraction of the P
training patterns classified correctly (a tie is an error), with its standard error.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import RobustnessParams
from relu_landscape.probes.base import (
    ProbeResult,
    draw_mean,
    grid_rows,
    normals,
)
from relu_landscape.solvers.base import random_block

# Draws handled per matrix product (with instances and patterns chunked so that a
# product's noisy patterns and uniforms stay within model.WORK_BYTES).
_CHUNK = 8
# Block numbers of setting g are g * _BLOCKS + chunk (draws <= 10_000 in params).
_BLOCKS = 10_000 // _CHUNK + 1


def noisy_fields(batch: TorchBatch, solution: Tensor, keys: list[int], block: int,
                 draws: int, p: float, patterns: slice = slice(None)) -> Tensor:
    """Unnormalised fields h [B, S, P', K] of ``draws`` noisy copies of the patterns
    ``patterns`` under the weights ``solution`` [B, K, n].

    The noise is drawn pattern-major, [P, S, N], so that pattern mu's noise sits at the
    same place of its instance's stream whatever P the batch is padded to: an instance
    gets the same numbers alone and beside instances of larger alpha, and a slice of
    patterns reads its rows of the stream alone (``random_block``'s ``rows``).
    +-1 inputs: input i is flipped where u < p, so h = sum_i s_i (x_i w_i) with the
    signs s = copysign(1, u - p), summed in the noise's own layout: a batched matmul
    needs a permuted copy of the noisy patterns, which was 3.5 of 5.4 s of CPU per
    setting at B = 64, N = 1000, 4 draws, and ``where`` another 0.9 s.
    """
    P, N = batch.y.shape[1], batch.xi_unique.shape[2]
    K, n = solution.shape[1:]
    x = batch.xi_unique[batch.source, patterns].to(torch.float32)
    if batch.xi_unique.is_floating_point():
        z = normals(keys, block, (P, draws, N), x.device, patterns)
        noisy = x[:, None] + p * z.transpose(1, 2)
        return torch.einsum("bspki,bki->bspk", noisy.unflatten(-1, (K, n)), solution)
    u = random_block(keys, block, (P, draws, N), x.device, patterns).sub_(p)
    one = torch.ones((), dtype=torch.float32, device=x.device)
    signs = torch.copysign(one, u.to(torch.float32))  # +1 where u = p: kept, as u < p fails
    del u
    xw = (x.unflatten(-1, (K, n)) * solution[:, None])[:, :, None]  # [B, P', 1, K, n]
    return (signs.unflatten(-1, (K, n)) * xw).sum(-1).transpose(1, 2)


def correct_fraction(batch: TorchBatch, solution: Tensor, activation: str,
                     keys: list[int], block: int, draws: int, p: float) -> Tensor:
    """Fraction of training patterns correct under noise of level p, [B, S].

    Computed in chunks of instances and of patterns (``model.chunk_rows``): the
    uniforms, noisy patterns and fields of one chunk at a time, the error counts
    summed over the pattern chunks.
    """
    B, K, n = solution.shape
    P = batch.y.shape[1]
    threshold = model.margin_threshold(activation, batch.kappa, n, K)
    parts = []
    for c, start in enumerate(range(0, draws, _CHUNK)):
        S = min(_CHUNK, draws - start)
        # per (instance, pattern): uniforms (float64), their float32 copy, the signs
        # and their products (or the Gaussian noise and noisy copy), and the pattern's
        # gathered row and its product with the weights
        pattern_bytes = S * K * n * (8 + 4 + 4 + 4) + 9 * K * n
        wrong = torch.zeros(B, S, dtype=torch.int64, device=solution.device)
        for r in model.chunk_rows(B, P * pattern_bytes):
            sub, rows = batch.rows(r), keys[r]
            for q in model.chunk_rows(P, pattern_bytes * len(rows)):
                h = noisy_fields(sub, solution[r], rows, block * _BLOCKS + c, S, p, q)
                out = model.output_sum(h, activation, n)
                bad = model.is_wrong(sub.y[:, None, q].to(out.dtype) * out, threshold)
                wrong[r] += (bad & sub.mask[:, None, q]).sum(-1)
        parts.append(1 - wrong / batch.mask.sum(-1, keepdim=True))
    return torch.cat(parts, 1)


def probe(batch: TorchBatch, solution: Tensor, *, activation: str, weights: str,
          params: RobustnessParams, keys: list[int]) -> ProbeResult:
    """Rows (instance, p): noise ("flip" or "gaussian"), p, robustness,
    robustness_stderr, draws."""
    grid = np.linspace(0.0, params.p_max, params.points)
    frac = torch.stack([correct_fraction(batch, solution, activation, keys, g,
                                         params.draws, float(p))
                        for g, p in enumerate(grid)], 1)
    mean, stderr = draw_mean(frac)
    noise = "gaussian" if batch.xi_unique.is_floating_point() else "flip"
    return grid_rows({"noise": np.full(grid.shape, noise), "p": grid, "robustness": mean,
                      "robustness_stderr": stderr, "draws": np.full(grid.shape, params.draws)})
