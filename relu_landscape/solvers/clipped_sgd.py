"""Clipped / straight-through descent for binary weights (docs/science.md §3).

Continuous hidden weights h in [-1, 1] (clipped after every step); the forward pass
uses W = sign(h) (sign(0) taken as +1) exactly, and the gradient passes straight
through to h where |h| < 1. The loop, the losses and the surrogates are ``descent``'s.
"""

from __future__ import annotations

import torch
from torch import Tensor

from relu_landscape.model import TorchBatch
from relu_landscape.params import ClippedSGDParams
from relu_landscape.solvers.base import SolveResult
from relu_landscape.solvers.descent import Coupling, Parametrisation, descend


def binarise(h: Tensor) -> Tensor:
    """W = sign(h) with sign(0) = +1, float +-1."""
    return torch.where(h >= 0, 1.0, -1.0).to(h.dtype)


def straight_through(h: Tensor) -> Tensor:
    """Forward: exactly sign(h); backward: identity (h is kept inside [-1, 1])."""
    return h - h.detach() + binarise(h).detach()


def _clip(h: Tensor) -> None:
    h.clamp_(-1.0, 1.0)


def clipped(init_scale: float) -> Parametrisation:
    """The straight-through parametrisation; hidden h start at init_scale * W0.

    Replicas start with h = clip(init_scale * (W0 + z)) for their own noise z.
    """

    def init(w0: Tensor, z: Tensor | None) -> Tensor:
        v = w0[:, None].clone()
        return init_scale * (v if z is None else (v + z).clamp(-1, 1))

    return Parametrisation(
        init=init,
        train=straight_through,
        coupled=lambda h: h,
        exact=binarise,
        after_step=_clip,
    )


def solve(
    batch: TorchBatch,
    activation: str,
    params: ClippedSGDParams,
    keys: list[int],
    *,
    progress=None,
) -> SolveResult:
    """Train every instance until its signs have zero errors or ``max_steps`` passed."""
    return descend(
        batch,
        activation,
        params,
        keys,
        clipped(params.init_scale),
        Coupling(),
        progress=progress,
    )
