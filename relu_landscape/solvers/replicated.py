"""Replicated solvers that favour dense regions (docs/science.md §3): R coupled replicas
of a descent solver, by composition.

``replicated(make_param)`` turns a base parametrisation (gd's sphere, clipped_sgd's
straight-through signs) into a solver on R replicas pulled towards their centre with
a growing gamma (robust ensemble / replicated SGD, Baldassi et al., PNAS 113, E7655
(2016)); the centre is the reported solution.
"""

from __future__ import annotations

from collections.abc import Callable

from relu_landscape.model import TorchBatch
from relu_landscape.params import ReplicaParams
from relu_landscape.solvers import clipped_sgd, gd
from relu_landscape.solvers.base import SolveResult
from relu_landscape.solvers.descent import Coupling, Parametrisation, descend


def replicated(make_param: Callable[[ReplicaParams], Parametrisation]):
    """A solver running ``descend`` on ``params.replicas`` coupled replicas."""

    def solve(
        batch: TorchBatch, activation: str, params, keys: list[int], *, progress=None
    ) -> SolveResult:
        coupling = Coupling(params.replicas, params.gamma_start, params.gamma_end)
        return descend(
            batch,
            activation,
            params,
            keys,
            make_param(params),
            coupling,
            progress=progress,
        )

    return solve


solve_gd = replicated(lambda params: gd.SPHERE)
solve_clipped_sgd = replicated(lambda params: clipped_sgd.clipped(params.init_scale))
