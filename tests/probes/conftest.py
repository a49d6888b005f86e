"""Solved instances for the probe tests, made with the real solvers and cached."""

from __future__ import annotations

from functools import cache

import torch

from relu_landscape import model
from relu_landscape.instances import InstanceId, make_batch, stream_key
from relu_landscape.params import AnnealParams, GDParams
from relu_landscape.solvers import SOLVERS


def tiny_batch(activation: str, K: int, n: int, alpha: float, seeds: int):
    """(batch, ids) of binary-weight instances small enough to enumerate."""
    ids = [InstanceId(3, "binary", activation, "binary", K, K * n, alpha, s)
           for s in range(seeds)]
    return model.to_torch(make_batch(ids)), ids


@cache
def solved(activation: str, K: int, n: int, weights: str, alpha: float | tuple[float, ...],
           seeds: int = 3, inputs: str = "binary"):
    """(batch, solutions, ids) of the solved instances among ``seeds`` seeds at every
    alpha given (one batch, padded to the largest P)."""
    torch.set_num_threads(1)
    alphas = alpha if isinstance(alpha, tuple) else (alpha,)
    ids = [InstanceId(3, inputs, activation, weights, K, K * n, a, s)
           for a in alphas for s in range(seeds)]
    batch = model.to_torch(make_batch(ids))
    name, params = ("anneal", AnnealParams()) if weights == "binary" else ("gd", GDParams())
    res = SOLVERS[name](batch, activation, params, [stream_key(i, name) for i in ids])
    pick = torch.nonzero(res.solved).flatten()
    assert len(pick) > 0, "the solver found no solution; make the instance easier"
    sub = model.TorchBatch(batch.xi[pick], batch.y[pick], batch.mask[pick], batch.w0[pick])
    return sub, res.weights[pick], [ids[b] for b in pick.tolist()]


def keys_for(ids, name: str) -> list[int]:
    return [stream_key(i, f"probe/{name}") for i in ids]
