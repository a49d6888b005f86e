"""Random walks inside the solution space (docs/science.md §2).

From a solution, ``walkers`` independent walkers per instance propose ``steps`` moves
each and accept a move only if every training pattern stays correct (ties are errors),
so a walker never leaves the solution set. Binary weights: a uniformly chosen single
flip, judged with the model's flip cache (``model.flip_delta`` / ``apply_flip``, the
kernel simulated annealing uses). Continuous weights: every unit moves to
sqrt(n) (W_l + step z_l) / |W_l + step z_l|, z ~ N(0, 1), judged by a forward pass.
How far the walkers spread (d from the start, overlap = 1 - 2 d) against the number of
accepted moves shows whether the solution is isolated or inside a wide region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import WalksParams
from relu_landscape.probes.base import (
    ProbeResult,
    draw_mean,
    grid_rows,
    normals,
    weight_draw_errors,
)
from relu_landscape.solvers.base import random_block


@dataclass(frozen=True)
class WalkTrace:
    """Walker states at the checkpoints. steps: int [C] proposals made so far;
    moves: int64 [C, B, S] accepted moves; positions: [C, B, S, K, n] the weights."""

    steps: np.ndarray
    moves: Tensor
    positions: Tensor


def _checkpoints(params: WalksParams) -> np.ndarray:
    points = np.linspace(0, params.steps, params.checkpoints + 1).round().astype(int)
    return np.unique(points[1:])


def _binary_walk(batch: TorchBatch, solution: Tensor, activation: str, S: int,
                 keys: list[int], marks: np.ndarray):
    B, K, n = solution.shape
    rep = lambda t: t.repeat_interleave(S, 0)  # noqa: E731 - row b*S + s is walker s of b
    cache = model.flip_cache(rep(solution), batch.xi_unique, rep(batch.y), activation,
                             rep(batch.mask), rep(batch.source), batch.kappa)
    moves = torch.zeros(B * S, dtype=torch.int64, device=solution.device)
    done = 0
    for c, mark in enumerate(marks):
        u = random_block(keys, c, (mark - done, S), solution.device)
        flat = (u * K * n).long().clamp(max=K * n - 1).transpose(0, 1).reshape(mark - done, -1)
        for t in range(mark - done):
            prop = model.flip_delta(cache, flat[t] // n, flat[t] % n)
            accept = prop.wrong == 0
            model.apply_flip(cache, prop, accept)
            moves += accept
        done = mark
        yield moves.view(B, S).clone(), cache.w.view(B, S, K, n).clone()


def _continuous_walk(batch: TorchBatch, solution: Tensor, activation: str, S: int,
                     keys: list[int], marks: np.ndarray, step: float):
    B, K, n = solution.shape
    w = solution[:, None].expand(B, S, K, n).clone()
    moves = torch.zeros(B, S, dtype=torch.int64, device=solution.device)
    done = 0
    for c, mark in enumerate(marks):
        z = normals(keys, c, (mark - done, S, K, n), solution.device)
        for t in range(mark - done):
            trial = model.project_sphere(w + step * z[:, t])
            accept = weight_draw_errors(batch, trial, activation) == 0
            w = torch.where(accept[..., None, None], trial, w)
            moves += accept
        done = mark
        yield moves.clone(), w.clone()


def walk(batch: TorchBatch, solution: Tensor, *, activation: str, weights: str,
         params: WalksParams, keys: list[int]) -> WalkTrace:
    """Run ``params.walkers`` walkers per instance from ``solution`` [B, K, n]."""
    marks = _checkpoints(params)
    if weights == "binary":
        states = _binary_walk(batch, solution, activation, params.walkers, keys, marks)
    else:
        states = _continuous_walk(batch, solution, activation, params.walkers, keys, marks,
                                  params.step)
    moves, positions = zip(*states, strict=True)
    return WalkTrace(marks, torch.stack(moves), torch.stack(positions))


def probe(batch: TorchBatch, solution: Tensor, *, activation: str, weights: str,
          params: WalksParams, keys: list[int]) -> ProbeResult:
    """Rows (instance, checkpoint): steps, moves (mean accepted moves per walker),
    acceptance (moves / steps), d, d_stderr (over walkers), overlap, walkers."""
    trace = walk(batch, solution, activation=activation, weights=weights, params=params,
                 keys=keys)
    N = solution.shape[1] * solution.shape[2]
    q = (trace.positions * solution[None, :, None]).sum((-2, -1)) / N  # [C, B, S]
    d, d_se = draw_mean(((1 - q) / 2).permute(1, 0, 2))
    moves = draw_mean(trace.moves.permute(1, 0, 2))[0]
    return grid_rows({"steps": trace.steps, "moves": moves, "acceptance": moves / trace.steps,
                      "d": d, "d_stderr": d_se, "overlap": 1 - 2 * d,
                      "walkers": np.full(trace.steps.shape, trace.moves.shape[-1])})
