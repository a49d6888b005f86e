"""What every probe returns, and the perturbation kernels the probes share (docs/science.md §2).

Shapes: B instances, S perturbation draws (or walkers), P patterns, K units, n inputs
per unit, N = K n, G settings of a probe's grid. Randomness comes only from the
per-instance stream keys (``solvers.base.random_block``), one block per (setting,
chunk), so a probe's numbers do not depend on batch size or order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.solvers.base import random_block
from relu_landscape.stats import mean_stderr


@dataclass(frozen=True)
class ProbeResult:
    """Rows of one probe's table for one batch of solved instances.

    instance: int64 [R], the batch index each row belongs to; columns: name -> numpy
    array [R] (nan in a float column means "not resolvable" and is stored as null).
    """

    instance: np.ndarray
    columns: dict[str, np.ndarray]


@dataclass(frozen=True)
class Probe:
    """A registered probe and the weight types it applies to.

    ``run(batch, solution, *, activation, weights, params, keys) -> ProbeResult`` where
    solution: [B, K, n] float (a solution of every instance of ``batch``) and keys: one
    stream key per instance (``instances.stream_key(inst, "probe/<name>")``).
    """

    run: Callable[..., ProbeResult]
    weights: tuple[str, ...]


def grid_rows(per_instance: dict[str, Tensor | np.ndarray]) -> ProbeResult:
    """One row per (instance, setting) from columns shaped [B, G] or [G] (settings)."""
    arrays = {k: np.asarray(v.cpu() if isinstance(v, Tensor) else v)
              for k, v in per_instance.items()}
    B, G = next(a.shape for a in arrays.values() if a.ndim == 2)
    columns = {k: np.broadcast_to(a, (B, G)).reshape(-1) for k, a in arrays.items()}
    return ProbeResult(np.repeat(np.arange(B), G), columns)


def draw_mean(x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the last axis (the draws) of x [..., S]."""
    return mean_stderr(x.double().cpu().numpy(), axis=-1)


def wrong_fraction(h: Tensor, batch: TorchBatch, activation: str) -> Tensor:
    """Training error fraction [B, S] from unnormalised preactivations h [B, S, P, K].

    A tie (Delta = 0) is an error, and so is sigma Delta <= kappa s_g at the batch's
    margin; padding patterns (mask False) are ignored.
    """
    out = model.output_sum(h, activation, batch.n)
    threshold = model.margin_threshold(activation, batch.kappa, batch.n, batch.K)
    wrong = (model.is_wrong(batch.y[:, None].to(out.dtype) * out, threshold)
             & batch.mask[:, None])
    return wrong.sum(-1) / batch.mask.sum(-1, keepdim=True)


def weight_draw_errors(batch: TorchBatch, w: Tensor, activation: str) -> Tensor:
    """Error fraction [B, S] of perturbed weights w [B, S, K, n] on the training set.

    One batched matrix product per chunk of instances (``model.chunk_rows``: the
    float patterns and fields of a chunk at a time, no copy of the patterns per draw);
    exact on +-1 weights and inputs (integers in float32).
    """
    B, S, K, n = w.shape
    P = batch.y.shape[1]
    row_bytes = (batch.xi_unique.element_size() + 4) * P * K * n + 8 * S * P * K
    parts = []
    for r in model.chunk_rows(B, row_bytes):
        sub = batch.rows(r)
        x = sub.xi.to(w.dtype).unflatten(-1, (K, n))
        parts.append(wrong_fraction(torch.einsum("bpki,bski->bspk", x, w[r]), sub,
                                    activation))
    return torch.cat(parts)


def draw_chunks(batch: TorchBatch, draws: int) -> list[slice]:
    """Chunks of instances (``model.chunk_rows``) whose ``draws`` weight draws fit in
    ``model.WORK_BYTES``: per draw and weight the uniforms (float64), two argsort
    ranks (int64) and the weights, and per draw the fields [P, K]."""
    B, K, n = batch.w0.shape
    return model.chunk_rows(B, draws * (32 * K * n + 8 * batch.y.shape[1] * K))


def normals(keys: list[int], block: int, shape: tuple[int, ...], device,
            rows: slice | None = None) -> Tensor:
    """Standard normals [B, *shape] (float32) from block ``block`` of each key's stream
    (``rows``: only those rows of the first axis, as ``random_block``)."""
    u = random_block(keys, block, shape, device, rows).clamp(1e-300, 1 - 1e-16)
    return torch.special.ndtri(u).to(torch.float32)


def flip_draws(solution: Tensor, keys: list[int], block: int, draws: int, D: int) -> Tensor:
    """S = ``draws`` copies of ``solution`` [B, K, n] with D distinct weights flipped each.

    The flipped set is uniform among the C(N, D) subsets (ranks of N uniforms < D).
    Returns [B, S, K, n].
    """
    B, K, n = solution.shape
    u = random_block(keys, block, (draws, K * n), solution.device)
    flip = u.argsort(-1).argsort(-1) < D
    return solution[:, None] * (1 - 2 * flip.to(solution.dtype)).view(B, draws, K, n)
