"""Break-up load alpha_U of the dense regions, binary weights (local_entropy.md §6).

Along the dense-region curve (y -> infinity, theory/dense.py) the local entropy phi(d)
has dphi/dd = 2 ph (envelope theorem: phi depends on p = 1 - 2d only through
-ph p). Below alpha_U, ph > 0 for every d: phi grows monotonically from 0 (d -> 0,
where phi -> B(d)) to the end of the binding range. As alpha grows, ph(d) develops
an interior minimum; alpha_U is the smallest load at which that minimum reaches 0
(the growth stops at d_at_onset). Above alpha_U the curve continued from large d
ends where ph -> 0 and RS has no binding saddle in a window of d: the dense region
has broken up.

Numerics: the curve is continued from ``D_HI`` down to ``D_LO`` in steps of ``STEP``
in d (warm starts); its minimum ph is refined by the parabola through the grid
minimum and its neighbours. A load is "broken" when the continuation ends before
``D_LO`` or the refined minimum is <= 0. alpha_U is bisected between a load that is
not broken and one that is, to ``ALPHA_TOL``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory import dense, dense_finite_k, validate
from relu_landscape.theory.franz_parisi import check_arguments, exact, kernel_name

D_HI = 0.1  # start of the continuation (inside the binding range up to ~alpha_c)
D_LO = 0.01  # end of the scan: below it phi ~ B(d) and ph grows like ln(1/d)/2
STEP = 0.0025  # grid step in d
MIN_STEP = 1e-4  # smallest continuation step before a branch is declared ended
ALPHA_TOL = 2e-3  # bisection tolerance in alpha
# Finite K > 1 (QMC term, ~30x dearer per point): d window, grid step and tolerance.
# The minimum of ph sits at d ~ 0.05 near alpha_U for sign units (K = 3: 0.051,
# K = 5: 0.048) and ph grows fast below it, so the window stops at 0.03; a minimum
# on the window's edge leaves alpha_U unresolved (converged False).
FINITE_K_WINDOW = {"d_lo": 0.03, "step": 0.005, "tol": 4e-3}
# ReLU K = 2: the minimum sits at d ~ 0.02 near alpha_U (0.020 at 0.909 alpha_c),
# below the sign window, so the window runs to D_LO.
RELU_FINITE_K_WINDOW = {**FINITE_K_WINDOW, "d_lo": D_LO}


@dataclass(frozen=True)
class Profile:
    """ph(d) along the dense curve at one load, continued from D_HI downwards."""

    alpha: float
    d: np.ndarray  # the points solved (decreasing: the grid and any halved steps)
    ph: np.ndarray  # ph there
    local_entropy: np.ndarray  # phi there
    complete: bool  # the continuation reached D_LO
    ph_min: float  # refined minimum of ph over the reached points
    d_min: float  # where it is reached
    # finite K: E_z F_E per QMC batch at each solved point [len(d), R] (None: quadrature)
    batches: np.ndarray | None = field(default=None, repr=False)

    @property
    def broken(self) -> bool:
        return not self.complete or self.ph_min <= 0.0

    @property
    def interior(self) -> bool:
        """The minimum of ph lies strictly inside the solved points."""
        return len(self.ph) > 2 and 0 < int(np.argmin(self.ph)) < len(self.ph) - 1


def _refined_min(d: np.ndarray, ph: np.ndarray) -> tuple[float, float]:
    """Minimum of the parabola through the grid minimum and its two neighbours."""
    k = int(np.argmin(ph))
    if k == 0 or k == len(ph) - 1:
        return float(ph[k]), float(d[k])
    x, y = d[k - 1 : k + 2], ph[k - 1 : k + 2]
    a, b, c = np.polyfit(x, y, 2)
    if a <= 0:
        return float(ph[k]), float(d[k])
    at = -b / (2.0 * a)
    return float(c - b * b / (4.0 * a)), float(at)


def profile(
    kernel: str | dense.DenseTerm,
    alpha: float,
    *,
    d_hi: float = D_HI,
    d_lo: float = D_LO,
    step: float = STEP,
) -> Profile:
    """ph(d) and phi(d) on the grid d_hi, d_hi - step, ... >= d_lo (continuation).

    Each point starts from the linear extrapolation of the previous two; a point
    that does not converge is retried with the step halved, down to
    ``MIN_STEP``: only then does the branch end there. A first point that does not
    converge gives an empty, incomplete profile.
    """
    grid = [float(d) for d in np.arange(d_hi, d_lo - 1e-12, -step)]
    ds: list[float] = []
    phs: list[float] = []
    les: list[float] = []
    per_batch: list[np.ndarray] = []
    path: list[tuple[float, float, float]] = []  # (d, q1, log omega), every solve

    def solve(d: float) -> dense.DenseSaddle:
        p = 1.0 - 2.0 * d
        if not path:
            return dense.solve_saddle(kernel, alpha, p, (p * p, 1.0))
        d1, q1, lw1 = path[-1]
        q1_new, lw_new = q1, lw1
        if len(path) > 1:
            d0, q0, lw0 = path[-2]
            slope = (d - d1) / (d1 - d0)
            q1_new = min(max(q1 + slope * (q1 - q0), 1e-6), 1.0 - 1e-9)
            lw_new = lw1 + slope * (lw1 - lw0)
        return dense.solve_saddle(kernel, alpha, p, (q1_new, math.exp(lw_new)))

    def accept(d: float, sd: dense.DenseSaddle) -> None:
        path.append((d, sd.q1, math.log(sd.omega)))
        ds.append(d)
        phs.append(sd.ph)
        les.append(sd.local_entropy)
        if hasattr(kernel, "batches"):  # the saddle's last evaluation: a cache hit
            per_batch.append(kernel.batches(sd.q1, sd.omega))

    complete = True
    for d in grid:
        sd = solve(d)
        if not sd.converged and path:
            # halve the step from the last solved point until d is reached or
            # the step falls below MIN_STEP (the branch ends)
            h = (path[-1][0] - d) / 2.0
            while not sd.converged and h >= MIN_STEP:
                here = path[-1][0] - h
                mid = solve(here)
                if mid.converged:
                    accept(here, mid)
                    h = min(h, path[-1][0] - d)
                    sd = solve(d) if path[-1][0] - d > 1e-12 else mid
                else:
                    h /= 2.0
        if not sd.converged:
            complete = False
            break
        if not path or path[-1][0] != d:
            accept(d, sd)
    d_arr, ph_arr = np.array(ds), np.array(phs)
    ph_min, d_min = _refined_min(d_arr, ph_arr) if ds else (math.nan, math.nan)
    batches = np.array(per_batch) if per_batch else None
    return Profile(alpha, d_arr, ph_arr, np.array(les), complete, ph_min, d_min, batches)


def ph_min_stderr(prof: Profile) -> float | None:
    """QMC standard error of a profile's minimum of ph (finite K; None otherwise).

    Linear response: on batch r alone the saddle's phi moves by alpha (G_r - G) at
    fixed order parameters (phi is stationary in them), and the envelope theorem
    holds batch by batch, so ph moves by d/dd [alpha (G_r - G)] / 2 along the curve
    (central differences through the grid minimum and its neighbours) and the
    minimum of ph by its move at d_min. stderr = std_r / sqrt(R).
    """
    if prof.batches is None or not prof.interior or prof.batches.shape[1] < 2:
        return None
    k = int(np.argmin(prof.ph))
    dev = prof.alpha * (prof.batches - prof.batches.mean(axis=1, keepdims=True))
    rows = slice(k - 1, k + 2)
    moves = 0.5 * np.gradient(dev[rows], prof.d[rows], axis=0)[1]
    return float(moves.std(ddof=1) / math.sqrt(len(moves)))


@dataclass(frozen=True)
class BreakUp:
    """alpha_U and where along d the growth stops; None fields when not bracketed."""

    alpha_u: float | None
    d_at_onset: float | None
    converged: bool
    below: Profile | None  # the last load found not broken
    above: Profile | None  # the first load found broken
    profiles: tuple[Profile, ...] = ()  # every load solved, in order

    @property
    def stderr(self) -> float | None:
        """Standard error of alpha_u: the bisection's resolution (half the final
        bracket, uniform: / sqrt(3)) and, at finite K, the QMC error of the last
        unbroken minimum of ph over the slope of min ph in alpha (a line through
        every complete profile with an interior minimum), in quadrature."""
        if self.alpha_u is None:
            return None
        resolution = 0.5 * (self.above.alpha - self.below.alpha) / math.sqrt(3.0)
        if self.below.batches is None:
            return resolution
        qmc = ph_min_stderr(self.below)
        fit = [p for p in self.profiles if p.complete and p.interior]
        if qmc is None or len({p.alpha for p in fit}) < 2:
            return None
        slope = np.polyfit([p.alpha for p in fit], [p.ph_min for p in fit], 1)[0]
        if slope >= 0:
            return None
        return math.hypot(resolution, qmc / slope)


def alpha_u(
    activation: str,
    K: float,
    bracket: tuple[float, float],
    *,
    tol: float = ALPHA_TOL,
    step: float = STEP,
    d_lo: float = D_LO,
    precision: str = "fast",
) -> BreakUp:
    """Bisect the break-up load inside ``bracket`` (arguments already checked).

    K = 1 and K = inf: quadrature; finite K > 1: the finite-K term of
    ``dense_finite_k`` on one QMC set (``precision``), shared by every load so
    that ph(d) is a smooth function of alpha (common random numbers).
    Not converged (None) when the lower end is already broken or the upper end is
    not (alpha_U is then not inside the bracket), or when the last unbroken
    profile's minimum is on the edge of the d window (``Profile.interior``).
    """
    kernel: str | dense.DenseTerm = kernel_name(activation, K)
    if not exact(activation, K):
        kernel = dense_finite_k.DenseTerm(
            activation, dense_finite_k.points(int(K), precision)
        )
    lo, hi = bracket
    below = profile(kernel, lo, step=step, d_lo=d_lo)
    above = profile(kernel, hi, step=step, d_lo=d_lo)
    solved = [below, above]
    if below.broken or not above.broken:
        return BreakUp(None, None, False, below, above, tuple(solved))
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        prof = profile(kernel, mid, step=step, d_lo=d_lo)
        solved.append(prof)
        if prof.broken:
            hi, above = mid, prof
        else:
            lo, below = mid, prof
    if not below.interior:
        return BreakUp(None, None, False, below, above, tuple(solved))
    # the onset sits where the not-broken side's minimum is about to reach zero
    return BreakUp(0.5 * (lo + hi), below.d_min, True, below, above, tuple(solved))


BRACKET = (0.72, 0.96)  # alpha_U is bisected inside these fractions of the RS alpha_c


def alpha_u_rows(
    activation: str,
    weights: str,
    Ks: list[float],
    *,
    precision: str = "fast",
    bracket: tuple[float, float] | None = None,
) -> list[dict]:
    """Rows {activation, weights, K, alpha_u, d_at_onset, stderr, converged}, one per K.

    Sign units at odd K or K = inf, ReLU units at even K or K = inf; anything else
    raises InvalidConfigError. ``stderr`` is ``BreakUp.stderr``: the bisection's
    resolution (quadrature at K = 1 and K = inf, d_at_onset to about STEP) and, at
    finite K > 1 (QMC points by ``precision``; d window, step and tolerance
    ``FINITE_K_WINDOW``, ReLU ``RELU_FINITE_K_WINDOW``), the QMC error propagated
    by linear response (``ph_min_stderr``; docs/local_entropy.md §8).
    ``bracket``: the loads (lo, hi) to bisect between for every K (default BRACKET
    times the RS capacity; a narrow one saves profiles at finite K, ~10 minutes
    each at sign K = 5). Where alpha_U is not inside the bracket, alpha_u and
    d_at_onset are None and converged is False.
    """
    from relu_landscape.theory import rs_capacity

    for K in Ks:
        check_arguments(activation, weights, K, 0.5, [0.1])
    validate.check(precision=precision)
    if bracket is not None and not 0 < bracket[0] < bracket[1]:
        raise InvalidConfigError(f"bracket={bracket!r}: give two loads 0 < lo < hi")
    window = FINITE_K_WINDOW if activation == "sign" else RELU_FINITE_K_WINDOW
    rows = []
    for K in Ks:
        if bracket is None:
            alpha_c = rs_capacity(activation, "binary", K).value
            loads = (BRACKET[0] * alpha_c, BRACKET[1] * alpha_c)
        else:
            loads = bracket
        found = alpha_u(
            activation,
            K,
            loads,
            precision=precision,
            **({} if exact(activation, K) else window),
        )
        rows.append(
            {
                "activation": activation,
                "weights": weights,
                "K": "inf" if K == math.inf else int(K),
                "alpha_u": found.alpha_u,
                "d_at_onset": found.d_at_onset,
                "stderr": found.stderr,
                "converged": found.converged,
            }
        )
    return rows
