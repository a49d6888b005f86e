"""Linear programming, exact for the perceptron (sign unit, K = 1, continuous weights;
the same classifier as a linear unit at K = 1), at margin kappa = 0.

An instance is solvable iff some w has sigma^mu xi^mu . w > 0 for every pattern. That
set is a cone, so strict feasibility is equivalent to the feasibility of
sigma xi . w >= t for some t > 0 inside any bounded box; we solve

    maximise t  subject to  sigma^mu xi^mu . w >= t  (every mu),  |w_i| <= 1,  t <= 1

with scipy's HiGHS (one LP per instance; the LP is the expensive part, not the loop).
The box keeps the problem bounded and the cap on t keeps it well scaled; the optimum t
is positive exactly when the instance is separable (Cover, Gardner: alpha_c = 2). The
optimal w is scaled onto the sphere |w|^2 = N and, like every solver's output, judged by
``model``: an optimum t at the level of the solver's tolerances gives weights the model
may still count as wrong, which is the honest answer at that precision.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.optimize
import torch

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import LPParams, solver_trains, variants_text
from relu_landscape.solvers.base import SolveResult, finish


def max_margin(xi: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """(w [N], t) of the LP above for one instance; t <= 0: not separable.

    xi: [P, N] patterns (float64); y: [P] labels +-1.
    """
    P, N = xi.shape
    cost = np.zeros(N + 1)
    cost[-1] = -1.0  # linprog minimises: -t
    # t - sigma xi . w <= 0
    a_ub = np.hstack([-(y[:, None] * xi), np.ones((P, 1))])
    bounds = [(-1.0, 1.0)] * N + [(None, 1.0)]
    res = scipy.optimize.linprog(
        cost, A_ub=a_ub, b_ub=np.zeros(P), bounds=bounds, method="highs"
    )
    if res.status != 0:  # cannot happen for this bounded, feasible LP; be explicit
        raise RuntimeError(f"HiGHS failed on a bounded feasible LP: {res.message}")
    return res.x[:N], float(res.x[N])


def solve(
    batch: TorchBatch,
    activation: str,
    params: LPParams,
    keys: list[int],
    *,
    progress=None,
) -> SolveResult:
    """One LP per instance; steps = 1 (one LP solve). keys are unused: it is exact."""
    started = time.perf_counter()
    B, K, n = batch.w0.shape
    if not solver_trains("lp", activation, K, batch.kappa):
        raise ValueError(f"lp solves only {variants_text('lp')}; got {activation} K = {K}, "
                         f"kappa = {batch.kappa}")
    xi = batch.xi_unique.cpu().numpy()
    source = batch.source.cpu().numpy()
    y = batch.y.cpu().numpy().astype(np.float64)
    mask = batch.mask.cpu().numpy()
    w = batch.w0.clone()
    for b in range(B):
        x = xi[source[b], mask[b]].astype(np.float64)
        sol, t = max_margin(x, y[b, mask[b]])
        if t > 0:  # t <= 0 leaves w = 0 or worse: keep the (unsolved) start
            w[b, 0] = torch.from_numpy(sol).to(w)
        if progress is not None:
            progress((b + 1) / B)
    steps = torch.ones(B, dtype=torch.int64, device=w.device)
    return finish(batch, activation, model.project_sphere(w), steps, started)
