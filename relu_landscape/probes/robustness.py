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

from relu_landscape.model import TorchBatch
from relu_landscape.params import RobustnessParams
from relu_landscape.probes.base import (
    ProbeResult,
    draw_mean,
    grid_rows,
    normals,
    wrong_fraction,
)
from relu_landscape.solvers.base import random_block

# Draws handled per matrix product: bounds memory to B * _CHUNK * P * N floats.
_CHUNK = 8
# Block numbers of setting g are g * _BLOCKS + chunk (draws <= 10_000 in params).
_BLOCKS = 10_000 // _CHUNK + 1


def noisy_patterns(batch: TorchBatch, keys: list[int], block: int, draws: int,
                   p: float) -> Tensor:
    """``draws`` noisy copies of the patterns, float32 [B, S, P, N].

    The noise is drawn pattern-major, [P, S, N], so that pattern mu's noise sits at the
    same place of its instance's stream whatever P the batch is padded to: an instance
    gets the same numbers alone and beside instances of larger alpha.
    """
    B, P, N = batch.xi.shape
    x = batch.xi.to(torch.float32)[:, None]
    if batch.xi.is_floating_point():
        return x + p * normals(keys, block, (P, draws, N), x.device).transpose(1, 2)
    flip = random_block(keys, block, (P, draws, N), x.device).transpose(1, 2) < p
    return torch.where(flip, -x, x)


def correct_fraction(batch: TorchBatch, solution: Tensor, activation: str,
                     keys: list[int], block: int, draws: int, p: float) -> Tensor:
    """Fraction of training patterns correct under noise of level p, [B, S]."""
    B, K, n = solution.shape
    parts = []
    for c, start in enumerate(range(0, draws, _CHUNK)):
        x = noisy_patterns(batch, keys, block * _BLOCKS + c, min(_CHUNK, draws - start), p)
        h = torch.einsum("bspki,bki->bspk", x.unflatten(-1, (K, n)), solution)
        parts.append(1 - wrong_fraction(h, batch, activation))
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
    noise = "gaussian" if batch.xi.is_floating_point() else "flip"
    return grid_rows({"noise": np.full(grid.shape, noise), "p": grid, "robustness": mean,
                      "robustness_stderr": stderr, "draws": np.full(grid.shape, params.draws)})
