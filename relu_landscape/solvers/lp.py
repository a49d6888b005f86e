"""Exact solvers of the perceptron (K = 1, continuous weights): sign units at kappa >= 0
(Delta = +-1, so every kappa in [0, 1) is the kappa = 0 problem and kappa >= 1 stores
nothing) and linear units, Delta = lambda, at kappa >= 0 (Gardner's margin).

kappa = 0: an instance is solvable iff some w has sigma^mu xi^mu . w > 0 for every
pattern. That set is a cone, so strict feasibility is equivalent to the feasibility of
sigma xi . w >= t for some t > 0 inside any bounded box; we solve

    maximise t  subject to  sigma^mu xi^mu . w >= t  (every mu),  |w_i| <= 1,  t <= 1

with scipy's HiGHS (one LP per instance; the LP is the expensive part, not the loop).
The box keeps the problem bounded and the cap on t keeps it well scaled; the optimum t
is positive exactly when the instance is separable (Cover, Gardner: alpha_c = 2).

kappa > 0, linear units: pattern mu is stored iff sigma u . xi > kappa on the unit
sphere u = w / sqrt(N) (``model.margin_threshold``, s_g = 1), so the instance is
solvable iff its largest Euclidean margin max_u min_mu sigma u . xi exceeds kappa: a
hard-margin SVM without bias, whose least-norm form min |v| s.t. sigma xi . v >= 1
(margin 1 / |v|) is solved exactly by non-negative least squares (``gardner_margin``).

kappa < 0 is refused (``params.SOLVER_MIN_KAPPA``): the strict constraints no longer
exclude w = 0, so the sphere |w|^2 = N is an active, non-convex constraint and no LP or
least-distance program decides it.

Every optimal w is scaled onto the sphere |w|^2 = N and, like every solver's output,
judged by ``model``: an optimum at the level of the solver's tolerances gives weights
the model may still count as wrong, which is the honest answer at that precision.
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


def gardner_margin(xi: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """(u [N], m): the unit vector u of the largest margin m = max_u min_mu sigma_mu
    u . xi_mu, which is the stability Delta of the linear unit with w = sqrt(N) u
    (Delta = w . xi / sqrt(N)). m = 0 and u = 0: not separable.

    Least-distance programming (Lawson & Hanson, Solving Least Squares Problems, ch. 23):
    min |v| s.t. G v >= 1, G = sigma xi, through the NNLS problem min |E a - f|, a >= 0,
    E = [G^T; 1^T], f = e_{N+1}. Its residual r = E a - f is 0 iff the constraints are
    infeasible; otherwise v = -r[:N] / r[N] and m = 1 / |v|. m is recomputed from the
    patterns, so it is a true margin of u even if the NNLS stopped short of its optimum.
    xi: [P, N] float64; y: [P].
    """
    P, N = xi.shape
    E = np.vstack([(y[:, None] * xi).T, np.ones((1, P))])
    f = np.zeros(N + 1)
    f[-1] = 1.0
    # BVLS (an exact active-set method), not scipy.optimize.nnls: since scipy 1.12 that
    # returns non-optimal points on rank-deficient E, e.g. margin -0.35 for the true
    # 1 on 4 patterns at N = 3 (tests/solvers/test_lp.py)
    a = scipy.optimize.lsq_linear(E, f, bounds=(0.0, np.inf), method="bvls", tol=1e-12).x
    r = E @ a - f
    # |r|^2 = -r[N] (the optimum's complementarity), 0 when infeasible up to rounding
    if not -r[-1] > 1e-14:
        return np.zeros(N), 0.0
    v = -r[:N] / r[-1]
    u = v / np.linalg.norm(v)
    return u, float(np.min((y[:, None] * xi) @ u))


def solve(
    batch: TorchBatch,
    activation: str,
    params: LPParams,
    keys: list[int],
    *,
    progress=None,
) -> SolveResult:
    """One LP (or NNLS) per instance; steps = 1 (one solve). keys are unused: it is
    exact."""
    started = time.perf_counter()
    B, K, n = batch.w0.shape
    if not solver_trains("lp", activation, K, batch.kappa):
        raise ValueError(f"lp solves only {variants_text('lp')}; got {activation} K = {K}, "
                         f"kappa = {batch.kappa}")
    # sign units: Delta = +-1, so a margin kappa in (0, 1) asks for the kappa = 0 problem
    euclid = activation == "linear" and batch.kappa > 0
    xi = batch.xi_unique.cpu().numpy()
    source = batch.source.cpu().numpy()
    y = batch.y.cpu().numpy().astype(np.float64)
    mask = batch.mask.cpu().numpy()
    w = batch.w0.clone()
    for b in range(B):
        x = xi[source[b], mask[b]].astype(np.float64)
        sol, t = (gardner_margin if euclid else max_margin)(x, y[b, mask[b]])
        if t > 0:  # t <= 0 leaves w = 0 or worse: keep the (unsolved) start
            w[b, 0] = torch.from_numpy(sol).to(w)
        if progress is not None:
            progress((b + 1) / B)
    steps = torch.ones(B, dtype=torch.int64, device=w.device)
    return finish(batch, activation, model.project_sphere(w), steps, started)
