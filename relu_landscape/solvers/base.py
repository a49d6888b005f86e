"""What every solver returns, and the checks shared by all of them."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from relu_landscape import model
from relu_landscape.instances import uniform_block
from relu_landscape.model import TorchBatch
from relu_landscape.rng import block_uniforms


@dataclass(frozen=True)
class SolveResult:
    """weights [B, K, n] (the solution where solved, else the last state);
    solved bool [B]; errors int64 [B] (training errors of ``weights``, recomputed by
    ``model.errors``, not taken from the solver's bookkeeping); steps int64 [B]
    (iterations until solved, or the budget); wall_s: seconds for the whole batch."""

    weights: Tensor
    solved: Tensor
    errors: Tensor
    steps: Tensor
    wall_s: float


def finish(batch: TorchBatch, activation: str, weights: Tensor, steps: Tensor,
           started: float) -> SolveResult:
    """Check ``weights`` with the model and package the result."""
    errs = model.errors(weights, batch.xi, batch.y, activation, batch.mask)
    return SolveResult(weights, errs == 0, errs, steps, time.perf_counter() - started)


def random_block(keys: list[int], block: int, shape: tuple[int, ...],
                 device: torch.device) -> Tensor:
    """Per-instance uniforms [B, *shape] (float64) for block ``block`` of the run.

    The same bits on every device (``instances.uniform_block``). Off the CPU they are
    made on the device by ``rng.block_uniforms``, so only the B keys cross from the
    host; on the CPU numpy's native Philox is used, ~40x faster than torch's limb
    emulation there.
    """
    if torch.device(device).type == "cpu":
        return torch.from_numpy(uniform_block(keys, block, shape))
    return block_uniforms(keys, block, shape, device)
