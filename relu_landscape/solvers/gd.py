"""Gradient descent / SGD for continuous weights on the per-unit spheres (§3).

The weights are parametrised as W_l = sqrt(n) V_l / |V_l|, so every iterate lies on its
sphere and the loss cannot shrink by rescaling a unit. The loop, the losses and the
annealed-slope surrogates are ``descent``'s. Full-batch runs are deterministic; with
``batch_fraction`` < 1 the pattern subsets come from ``keys``.
"""

from __future__ import annotations

from torch import Tensor

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import GDParams
from relu_landscape.solvers.base import SolveResult
from relu_landscape.solvers.descent import Coupling, Parametrisation, descend


def _init(w0: Tensor, z: Tensor | None) -> Tensor:
    """Replicas start on the spheres around W0, perturbed by 0.5 z per weight."""
    v = w0[:, None].clone()
    return v if z is None else model.project_sphere(v + 0.5 * z)


SPHERE = Parametrisation(
    init=_init,
    train=model.project_sphere,
    coupled=model.project_sphere,
    exact=model.project_sphere,
)


def solve(
    batch: TorchBatch,
    activation: str,
    params: GDParams,
    keys: list[int],
    *,
    progress=None,
) -> SolveResult:
    """Train every instance until it has zero errors or ``max_steps`` have passed."""
    return descend(
        batch, activation, params, keys, SPHERE, Coupling(), progress=progress
    )
