"""Local energy: training error fraction around a solution under weight perturbations.

docs/science.md §2. Continuous weights: W_li -> W_li (1 + s z_li), z ~ N(0, 1), then every
unit is renormalised to |W_l|^2 = n; binary weights: D = round(d N) distinct weights
flipped. E_loc is the mean error fraction (ties are errors) over ``draws`` draws, with
its standard error. Distances: d is the normalised Hamming distance (binary) or
(1 - q) / 2 with q = W . W' / N the mean overlap of the perturbed weights with the
solution (continuous); overlap = 1 - 2 d in both cases.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import LocalEnergyParams
from relu_landscape.probes.base import (
    ProbeResult,
    draw_chunks,
    draw_mean,
    flip_draws,
    grid_rows,
    normals,
    weight_draw_errors,
)


def multiplicative_draws(solution: Tensor, keys: list[int], block: int, draws: int,
                         s: float) -> Tensor:
    """S draws of W (1 + s z), renormalised per unit; [B, K, n] -> [B, S, K, n]."""
    B, K, n = solution.shape
    z = normals(keys, block, (draws, K, n), solution.device)
    return model.project_sphere(solution[:, None] * (1 + s * z))


def probe(batch: TorchBatch, solution: Tensor, *, activation: str, weights: str,
          params: LocalEnergyParams, keys: list[int]) -> ProbeResult:
    """Rows (instance, setting): s (continuous) or D (binary), d, overlap,
    local_energy, local_energy_stderr, draws."""
    B, K, n = solution.shape
    N, S = K * n, params.draws
    grid = np.linspace(0.0, params.s_max if weights == "continuous" else params.d_max,
                       params.points)
    energy, overlap = [], []
    for g, x in enumerate(grid):
        e, q = [], []
        for r in draw_chunks(batch, S):  # each instance's draws come from its own key
            sol = solution[r]
            if weights == "continuous":
                w = multiplicative_draws(sol, keys[r], g, S, float(x))
            else:
                w = flip_draws(sol, keys[r], g, S, round(x * N))
            e.append(weight_draw_errors(batch.rows(r), w, activation))
            q.append((w * sol[:, None]).sum((-2, -1)) / N)
        energy.append(torch.cat(e))
        overlap.append(torch.cat(q))
    mean, stderr = draw_mean(torch.stack(energy, 1))
    # float32 renormalisation can put q a few ulp above 1 at s = 0
    q = np.clip(draw_mean(torch.stack(overlap, 1))[0], -1.0, 1.0)
    if weights == "continuous":
        setting = {"s": grid, "D": np.full(grid.shape, np.nan)}
    else:
        setting = {"s": np.full(grid.shape, np.nan), "D": np.round(grid * N)}
    return grid_rows({**setting, "d": (1 - q) / 2, "overlap": q, "local_energy": mean,
                      "local_energy_stderr": stderr, "draws": np.full(grid.shape, S)})
