"""What every solver returns, and the checks shared by all of them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from relu_landscape.instances import derive_key, uniform_block
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
    errs = batch.errors(weights, activation)
    return SolveResult(weights, errs == 0, errs, steps, time.perf_counter() - started)


SYNC_EVERY = 32
"""Elementary steps (descent steps, BP sweeps, annealing proposals, SBPI pattern
presentations) between two checks whether every instance has solved. The check is the
only host synchronisation of a solver's loop: a GPU runs ahead between checks. A
solved instance is frozen on the device at the step it solved (its weights and step
count kept with ``torch.where``), so the steps run after it, up to the next check,
change no result. At the checks the solvers also drop finished instances from their
working state (``compaction``)."""


def check_due(t: int, every: int) -> bool:
    """Whether loop iteration t (0-based) of a loop whose iterations are ``every``
    elementary steps each should check for all-solved: every ``SYNC_EVERY`` elementary
    steps, and at once when an iteration is that long already."""
    period = max(1, SYNC_EVERY // max(every, 1))
    return t % period == period - 1


COMPACT = True
"""Whether the solvers (descent, BP, annealing, SBPI) drop finished instances from
their working state at the checks (``compaction``), so a batch's cost per step follows
its unsolved instances. Results are the same either way, bit for bit
(``tests/solvers/test_compaction.py``; for the float solvers as far as the BLAS keeps an
instance's numbers independent of the batch's size: ``back_shared``); ``bench`` turns
it off to time the difference."""

COMPACT_BELOW = 0.75
"""Compact only when at most this fraction of the current rows is still unsolved: each
compaction copies the state and the used pattern matrices, so it must pay for itself."""


def compaction(solved: Tensor) -> tuple[bool, Tensor | None]:
    """At a check (``check_due``): (every row solved, rows to keep or None).

    solved: bool [b] of the current rows. The rows to keep are the unsolved ones, given
    when ``COMPACT`` and at most ``COMPACT_BELOW`` of the rows remain. One host sync.
    """
    keep = (~solved).nonzero()[:, 0]
    if keep.numel() == 0:
        return True, None
    if COMPACT and keep.numel() <= COMPACT_BELOW * solved.numel():
        return False, keep
    return False, None


def shared_rows(xu: Tensor, source: Tensor, slot: Tensor,
                keep: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The shared pattern layout (``model.dot_shared``) of rows ``keep`` alone.

    xu: unit-major patterns [S, K, n, P]; source, slot: int64 [b]. Only the matrices
    the kept rows use are kept (in order; a copy only when some go, which holds both
    for a moment), and slots are renumbered densely per matrix, so the per-step
    products shrink with the rows. The block height A = max slot + 1
    stays >= 2 when it was: a one-row product takes another BLAS path (gemv) whose
    rounding differs (measured with MKL), while the row's numbers at A >= 2 do not
    depend on A (``tests/solvers/test_compaction.py``).
    """
    used, src = torch.unique(source[keep], return_inverse=True)
    order = torch.argsort(src, stable=True)
    first = torch.searchsorted(src[order], src[order])  # first row of each matrix
    new_slot = torch.empty_like(src)
    new_slot[order] = torch.arange(len(src), device=src.device) - first
    if int(slot.max()) >= 1 and int(new_slot.max()) == 0:
        new_slot[0] = 1
    return (xu if len(used) == xu.shape[0] else xu[used]), src, new_slot


def back_shared(g: Tensor, xu: Tensor, source: Tensor, slot: Tensor) -> Tensor:
    """sum_mu xi_mu,li g_mu,l [B, K, n] on the shared layout: the transpose of
    ``model.dot_shared`` (its weight gradient for output gradient g).

    g: [B, P, K]; xu: unit-major patterns [S, K, n, P]. Instances are the columns of
    one product per (matrix, unit), whose numbers per column do not depend on how many
    columns there are (measured with MKL: 1 to 16 columns, K = 1 to 4, n = 11 to 500;
    the exception found is K = 1 at n <= 13, ~1e-9 apart); autograd's transpose has
    them as rows, whose rounding does, so a batch that shrinks (``shared_rows``) would
    change the gradients of the instances it keeps.
    """
    B, P, K = g.shape
    S = xu.shape[0]
    A = int(slot.max()) + 1
    # written straight into the layout the matmul reads (a permuted view of [S, A, P, K]
    # blocks cost a copy per step: 6 of 34 ms CPU at B = 64, N = 1000)
    blocks = g.new_zeros(S, K, P, A)
    blocks.permute(0, 3, 2, 1)[source, slot] = g
    out = xu @ blocks  # [S, K, n, A]
    return out[source, :, :, slot]


def _philox_at(key: int, block: int) -> np.random.Generator:
    """numpy's Philox stream of ``key`` entered at Philox block ``block`` (4 words,
    4 uniforms each): its counter starts there instead of at 0."""
    return np.random.Generator(np.random.Philox(key=key, counter=block))


def random_block(keys: list[int], block: int, shape: tuple[int, ...],
                 device: torch.device, rows: slice | None = None) -> Tensor:
    """Per-instance uniforms [B, *shape] (float64) for block ``block`` of the run.

    The same bits on every device (``instances.uniform_block``). Off the CPU they are
    made on the device by ``rng.block_uniforms``, so only the B keys cross from the
    host; on the CPU numpy's native Philox is used, ~40x faster than torch's limb
    emulation there. ``rows``: only rows ``rows`` of the block's first axis, the same
    numbers as slicing the whole block (Philox is counter-based: the stream is entered
    at that row's counter), to draw a large block in bounded memory.
    """
    if rows is None:
        if torch.device(device).type == "cpu":
            return torch.from_numpy(uniform_block(keys, block, shape))
        return block_uniforms(keys, block, shape, device)
    start, stop, _ = rows.indices(shape[0])
    part = (stop - start, *shape[1:])
    offset = start * math.prod(shape[1:])
    if torch.device(device).type != "cpu":
        return block_uniforms(keys, block, part, device, offset)
    skip, count = offset % 4, math.prod(part)
    u = [_philox_at(derive_key("block", k, block), offset // 4).random(skip + count)
         for k in keys]
    return torch.from_numpy(np.stack([a[skip:] for a in u]).reshape(len(keys), *part))
