"""Franz-Parisi local entropy around a typical solution, binary weights
(docs/science.md §5).

A reference W~ is drawn uniformly among the solutions (RS overlap q0, conjugate qh0
from ``rs.py``); W is a solution at normalised Hamming distance d, overlap p = 1 - 2d.
RS free entropy, extremised over (t, q1, ph, th, q1h) (derivation:
docs/local_entropy.md §2):

    Phi = -ph p + th t + (q1h/2)(q1 - 1)
          + E_z (1 + m~) E_y ln 2cosh(xi) + alpha G_FP(Q0, P, T, Q1),
    m~ = tanh(sqrt(qh0) z),  xi = th z / sqrt(qh0) + sqrt(q1h - th^2/qh0) y + ph - th,

with (Q0, P, T, Q1) = kappa(q0, p, t, q1) (the identity for the perceptron K = 1).
At finite K > 1, G_FP is a K-dimensional average over per-unit fields (plain
overlaps), computed by randomised QMC on one point set (:class:`FiniteKTerm`,
docs/local_entropy.md §4); the saddle-point equations keep their form.
Saddle point: p = E(1+m~) tanh xi (fixes ph), t = E(1+m~) m~ tanh xi,
q1 = E(1+m~) tanh^2 xi; th = -alpha kappa'(t) dG/dT, q1h = -2 alpha kappa'(q1) dG/dQ1.
Solved by damped fixed-point iteration, continued in d from the equilibrium point
d0 = (1 - q0)/2 where Phi = s(alpha).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory import committee_fields, validate
from relu_landscape.theory.energetic import kappa, kappa_prime, relu_cells
from relu_landscape.theory.estimate import Estimate, root_with_batches
from relu_landscape.theory.gauss import hermite_1d as _hermite_nodes
from relu_landscape.theory.gauss import qmc_points
from relu_landscape.theory.rs import (
    along_root,
    binary_entropic,
    conjugate_overlap,
    typical_overlap,
)

# Quadrature sizes: Gauss-Hermite nodes for z and y, Gauss-Legendre nodes for the
# truncated variable x | z (values agree with twice the nodes to ~1e-8).
_NZ, _NY, _NU = 72, 48, 48
_PH_MAX = 60.0  # tanh(60) = 1 to double precision: no finite ph beyond


@dataclass(frozen=True)
class Saddle:
    """One Franz-Parisi saddle point: overlaps, conjugates, value and status."""

    p: float
    t: float
    q1: float
    ph: float
    th: float
    q1h: float
    local_entropy: float
    converged: bool
    iterations: int  # update evaluations spent by the solver


@functools.cache
def hermite_1d(n: int) -> tuple[np.ndarray, np.ndarray]:
    """gauss.hermite_1d, cached (read-only): the saddle solvers need it thousands of
    times."""
    return frozen(*_hermite_nodes(n))


@functools.cache
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1], cached (read-only)."""
    return frozen(*np.polynomial.legendre.leggauss(n))


def frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays made read-only (they are shared by a cache)."""
    for a in arrays:
        a.flags.writeable = False
    return arrays


def kernel_name(activation: str, K: float) -> str:
    """Kernel of the output overlaps: "linear" for the perceptron, else activation."""
    return "linear" if K == 1 else activation


def entropic(qh0: float, ph: float, th: float, q1h: float) -> tuple[float, ...]:
    """(E(1+m~) E_y ln 2cosh xi, p, t, q1, dp/dph) on a tensor Gauss-Hermite grid."""
    z, wz = hermite_1d(_NZ)
    y, wy = hermite_1d(_NY)
    root = math.sqrt(qh0)
    spread = math.sqrt(max(q1h - th * th / qh0, 0.0))
    m_ref = np.tanh(root * z)[:, None]
    xi = th * z[:, None] / root + spread * y[None, :] + ph - th
    weight = (1.0 + m_ref) * wz[:, None] * wy[None, :]
    m = np.tanh(xi)
    log_cosh = np.logaddexp(xi, -xi)
    return (
        float(np.sum(weight * log_cosh)),
        float(np.sum(weight * m)),
        float(np.sum(weight * m_ref * m)),
        float(np.sum(weight * m * m)),
        float(np.sum(weight * (1.0 - m * m))),
    )


def inverse_mills(a: np.ndarray) -> np.ndarray:
    """r(a) = phi(a) / Phi(a), stable for a -> -inf."""
    return np.exp(-0.5 * a * a - 0.5 * math.log(2 * math.pi) - special.log_ndtr(a))


def truncated_nodes(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights ``[len(c), _NU]`` of E[f(x) | x > c] for x ~ N(0, 1).

    Gauss-Legendre on [max(c, -9), max(c, 0) + 9] with the truncated density as
    weight (the mass outside is below e^-40); first two moments exact to ~1e-10.
    """
    v, wv = _legendre(_NU)
    lo = np.maximum(c, -9.0)[:, None]
    width = np.maximum(c, 0.0)[:, None] + 9.0 - lo
    x = lo + width * (v + 1.0) / 2.0
    w = wv * width / 2.0 * np.exp(-0.5 * x * x)
    return x, w / w.sum(axis=1, keepdims=True)


def energetic(Q0: float, P: float, T: float, Q1: float) -> tuple[float, float, float]:
    """(G_FP, dG/dT, dG/dQ1) at fixed (Q0, P), docs/science.md §5.

    G = E_z E_{x | u1 > 0} E_y g(h), g(h) = ln Phi(h / sqrt(1 - Q1)),
    h = T z / sqrt(Q0) + A x + B y, A = (P - T)/sqrt(1 - Q0),
    B^2 = Q1 - T^2/Q0 - A^2; x | z is the unit Gaussian conditioned on
    sqrt(Q0) z + sqrt(1 - Q0) x > 0, sampled by its inverse CDF on Gauss-Legendre
    nodes. dG/dT uses Stein's lemma on y; dG/dQ1 = -E[g'(h)^2] / 2 (heat equation).
    """
    z, wz = hermite_1d(_NZ)
    y, wy = hermite_1d(_NY)
    x, wx = truncated_nodes(-math.sqrt(Q0 / (1.0 - Q0)) * z)  # [z, u]: x > c(z)
    A = (P - T) / math.sqrt(1.0 - Q0)
    B = math.sqrt(max(Q1 - T * T / Q0 - A * A, 0.0))
    sigma = math.sqrt(1.0 - Q1)
    h = (T * z / math.sqrt(Q0))[:, None, None] + A * x[..., None] + B * y
    a = h / sigma
    r = inverse_mills(a)
    g = special.log_ndtr(a)
    g1 = r / sigma
    g2 = -r * (a + r) / sigma**2
    w = wz[:, None, None] * wx[..., None] * wy[None, None, :]
    lever = (z / math.sqrt(Q0))[:, None, None] - x[..., None] / math.sqrt(1.0 - Q0)
    dG_dT = np.sum(w * g1 * lever) + (A / math.sqrt(1.0 - Q0) - T / Q0) * np.sum(w * g2)
    return float(np.sum(w * g)), float(dG_dT), float(-0.5 * np.sum(w * g1 * g1))


def increasing_root(
    fn: Callable[[float], tuple[float, float]], lo: float, hi: float, guess: float
) -> float | None:
    """Root of an increasing fn on [lo, hi] (fn returns value and slope), or None.

    Newton from ``guess``, safeguarded by bisection of the shrinking bracket.
    """
    if fn(lo)[0] > 0 or fn(hi)[0] < 0:
        return None
    x = min(max(guess, lo), hi)
    for _ in range(200):
        value, slope = fn(x)
        lo, hi = (lo, x) if value > 0 else (x, hi)
        new = x - value / slope if slope > 0 else math.nan
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - x) < 1e-13 or hi - lo < 1e-13:
            return new
        x = new
    return x


def solve_fixed_point(
    update: Callable[[np.ndarray], np.ndarray | None],
    start: tuple[float, ...],
    *,
    damping: float,
    warmup: int = 15,
    tol: float = 1e-9,
) -> tuple[np.ndarray, bool, int]:
    """Solve x = update(x): ``warmup`` damped steps, then MINPACK hybrid Newton.

    ``damping`` is the weight of the old iterate in the damped steps. ``update``
    returns None where x is infeasible (no saddle there). Returns (x, converged,
    evaluations); converged means a feasible x with |update(x) - x| < tol.
    """
    x = np.asarray(start, dtype=float)
    calls = 0
    for _ in range(warmup):
        new, calls = update(x), calls + 1
        if new is None:
            return x, False, calls
        if np.max(np.abs(new - x)) < tol:
            return new, True, calls
        x = damping * x + (1.0 - damping) * new

    def residual(v: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        new = update(v)
        return np.full_like(v, 1e3) if new is None else new - v

    sol = optimize.root(residual, x, method="hybr", options={"xtol": 1e-12})
    final = update(sol.x)
    ok = final is not None and bool(np.max(np.abs(final - sol.x)) < tol)
    return sol.x, ok, calls + 1


def solve_with_ph(
    conjugates: Callable[[np.ndarray], tuple[float, ...] | None],
    entropic_at: Callable[..., tuple[float, ...]],
    next_x: Callable[[tuple[float, ...]], np.ndarray],
    p: float,
    start: tuple[float, ...],
    *,
    ph_min: float,
    ph_guess: float,
    damping: float,
    tol: float,
) -> tuple[np.ndarray, tuple[float, ...] | None, int]:
    """Saddle at overlap p by ``solve_fixed_point`` on x, with ph solved in each update.

    ``conjugates(x)``: the energetic conjugates, None where infeasible; then ph in
    [ph_min, _PH_MAX] solves p(ph) = p (warm-started from the last ph, first from
    ``ph_guess``; None if out of range), and x -> ``next_x(entropic_at(*conjugates,
    ph))``. ``entropic_at`` returns (value, p, ..., dp/dph), the last at index 4.
    Returns (x, (ph, *conjugates) or None when not converged, evaluations).
    """
    last_ph = [ph_guess]

    def with_ph(x: np.ndarray) -> tuple[float, ...] | None:
        conj = conjugates(x)
        if conj is None:
            return None

        def gap(ph: float) -> tuple[float, float]:
            out = entropic_at(*conj, ph)
            return out[1] - p, out[4]

        ph = increasing_root(gap, ph_min, _PH_MAX, last_ph[0])
        if ph is None:
            return None
        last_ph[0] = ph
        return ph, *conj

    def update(x: np.ndarray) -> np.ndarray | None:
        conj = with_ph(x)
        return None if conj is None else next_x(entropic_at(*conj[1:], conj[0]))

    x, ok, calls = solve_fixed_point(update, start, damping=damping, tol=tol)
    return x, with_ph(x) if ok else None, calls


Term = Callable[[float, float, float], tuple[float, float, float]]
"""G_FP(p, t, q1) at fixed q0 with dG/dt and dG/dq1, in plain overlaps."""


def kernel_term(kernel: str, q0: float) -> Term:
    """The perceptron term at the kernel-mapped overlaps (K = 1 or K = inf)."""
    big_q0 = float(kappa(kernel, q0))

    def term(p: float, t: float, q1: float) -> tuple[float, float, float]:
        value, d_t, d_q1 = energetic(
            big_q0, *(float(kappa(kernel, v)) for v in (p, t, q1))
        )
        return (
            value,
            float(kappa_prime(kernel, t)) * d_t,
            float(kappa_prime(kernel, q1)) * d_q1,
        )

    return term


def _as_term(kernel: str | Term, q0: float) -> Term:
    return kernel_term(kernel, q0) if isinstance(kernel, str) else kernel


def solve_saddle(
    kernel: str | Term,
    alpha: float,
    q0: float,
    p: float,
    start: tuple[float, float],
    *,
    damping: float = 0.5,
    tol: float = 1e-9,
) -> Saddle:
    """Saddle point at fixed (q0, p) by ``solve_with_ph`` on (t, q1).

    ``kernel``: a kernel name (K = 1, K = inf) or a finite-K :class:`Term`, whose
    ``slack`` (relative to qh0) tolerates q1h < th^2 / qh0 by QMC noise near d0,
    where the exact spread q1h - th^2/qh0 vanishes (the spread is then clamped at 0).
    Not converged (``converged`` False, local_entropy nan) when the update leaves
    the feasible region (q1h < th^2 / qh0, or no ph) or the solver stalls.
    """
    term = _as_term(kernel, q0)
    qh0 = conjugate_overlap(q0)

    def conjugates(x: np.ndarray) -> tuple[float, float] | None:
        t, q1 = float(x[0]), float(x[1])
        if not (-1.0 < t < 1.0 and 0.0 <= q1 < 1.0):
            return None
        _, d_t, d_q1 = term(p, t, q1)
        th = -alpha * d_t
        q1h = -2.0 * alpha * d_q1
        if q1h < th * th / qh0 - max(1e-12, getattr(term, "slack", 0.0) * qh0):
            return None
        return th, q1h

    def entropic_at(th: float, q1h: float, ph: float) -> tuple[float, ...]:
        return entropic(qh0, ph, th, q1h)

    # ph < 0 beyond d0 (p < q0), where the constraint pushes W away from W~
    x, conj, calls = solve_with_ph(
        conjugates,
        entropic_at,
        lambda out: np.array(out[2:4]),
        p,
        start,
        ph_min=-_PH_MAX,
        ph_guess=qh0,
        damping=damping,
        tol=tol,
    )
    if conj is None:
        return Saddle(p, *x, math.nan, math.nan, math.nan, math.nan, False, calls)
    value = free_entropy(term, alpha, q0, p, *x, *conj)
    return Saddle(p, *x, *conj, value, True, calls)


def free_entropy(
    kernel: str | Term,
    alpha: float,
    q0: float,
    p: float,
    t: float,
    q1: float,
    ph: float,
    th: float,
    q1h: float,
) -> float:
    """Phi_FP at the given order parameters (the local entropy at a saddle point)."""
    qh0 = conjugate_overlap(q0)
    log_cosh = entropic(qh0, ph, th, q1h)[0]
    return (
        -ph * p
        + th * t
        + 0.5 * q1h * (q1 - 1.0)
        + log_cosh
        + alpha * _as_term(kernel, q0)(p, t, q1)[0]
    )


@dataclass(frozen=True)
class FieldPoints:
    """Randomised QMC points of the finite-K terms: R batches of m points.

    z, y ``[R * m, K]`` standard Gaussian; u ``[R * m, 2K]`` uniforms (the draws of
    the conditioned reference noise). One scrambled Sobol' set in 4K dimensions per
    batch (``gauss.qmc_points``), so the R batch means are i.i.d.
    """

    z: np.ndarray
    u: np.ndarray
    y: np.ndarray
    batches: int

    @classmethod
    def sobol(cls, K: int, log2_n: int, batches: int, seed: int = 0) -> FieldPoints:
        pts = qmc_points(4 * K, log2_n, batches, seed=seed)
        flat = pts.z.reshape(-1, 4 * K)
        return cls(
            flat[:, :K], special.ndtr(flat[:, K : 3 * K]), flat[:, 3 * K :], batches
        )

    def means(self, values: np.ndarray) -> np.ndarray:
        """Batch means ``[R]`` of per-point ``values [R * m]``."""
        return values.reshape(self.batches, -1).mean(axis=1)


def _inner(
    activation: str, h: np.ndarray, q: float, tie: str, cells: int
) -> tuple[np.ndarray, ...]:
    """ln Z(h; sqrt(1 - q)) with gradient and Hessian diagonal in h."""
    return committee_fields.inner(
        activation, h, math.sqrt(1.0 - q), tie=tie, cells=relu_cells(cells, q)
    )


def equilibrium_batches(
    activation: str,
    alpha: float,
    points: FieldPoints,
    *,
    tie: str = "error",
    cells: int = 64,
) -> tuple[float, np.ndarray, Estimate] | None:
    """RS binary equilibrium on the z of ``points``: (q0, q0 per batch [R], s).

    None when no root lies below q = 0.95 (e.g. alpha beyond the RS capacity).

    Solves conjugate_overlap(q) = alpha E_z |grad ln Z(sqrt(q) z; sqrt(1-q))|^2
    (qh = -2 alpha G_E'(q) by the heat equation, docs/local_entropy.md §4), the
    same equation as ``rs.py`` on this module's points, so that the Franz-Parisi
    curve meets s(alpha) at d0 on the same points.
    """

    def grad_sq(q: float) -> np.ndarray:
        _, g, _ = _inner(activation, math.sqrt(q) * points.z, q, tie, cells)
        return points.means(np.sum(g * g, axis=1))

    def residual(q: float) -> np.ndarray:
        return conjugate_overlap(q) - alpha * grad_sq(q)

    # first sign change on a coarse grid, scanned upwards and no further (the ReLU
    # lattice gradient is unreliable as q -> 1, where the inner probability falls
    # below the lattice's resolution and its gradient overflows)
    grid = np.concatenate([[1e-4], np.arange(0.05, 0.96, 0.05)])
    signs = (np.sign(residual(float(q)).mean()) for q in grid)
    pairs = itertools.pairwise(enumerate(signs))
    change = next((i for (i, a), (_, b) in pairs if a < 0 < b), None)
    if change is None:
        return None
    q0, q_batches = root_with_batches(
        residual, float(grid[change]), float(grid[change + 1]), xtol=1e-12
    )

    def entropy(q: float) -> np.ndarray:
        log_z = _inner(activation, math.sqrt(q) * points.z, q, tie, cells)[0]
        return binary_entropic(q) + alpha * points.means(log_z)

    return q0, q_batches, along_root(entropy, q0, q_batches)


class FiniteKTerm:
    """G_FP at finite K on fixed points (common random numbers), per batch.

    G = E_z E_{x | u correct} E_y ln Z(h; sqrt(1 - q1)), per unit
    u_l = sqrt(q0) z_l + sqrt(1 - q0) x_l, h_l = t z_l / sqrt(q0) + A x_l + B y_l,
    A = (p - t)/sqrt(1 - q0), B^2 = q1 - t^2/q0 - A^2 (docs/local_entropy.md §4).
    The reference noise x | z is drawn once (it depends on q0 only). Derivatives:
    dG/dq1 = -E|grad ln Z|^2 / 2 (heat equation), dG/dt = E[grad ln Z .
    (z/sqrt(q0) - x/sqrt(1-q0))] + (A/sqrt(1-q0) - t/q0) E[Laplacian ln Z] (Stein's
    lemma on y). ``term(p, t, q1)`` -> pooled (G, dG/dt, dG/dq1);
    ``term.batches(p, t, q1)`` -> G per batch ``[R]``.
    """

    def __init__(
        self,
        activation: str,
        q0: float,
        points: FieldPoints,
        *,
        tie: str = "error",
        cells: int = 64,
    ):
        self.activation, self.q0, self.points = activation, q0, points
        self.tie, self.cells = tie, cells
        self.x = committee_fields.reference(
            activation, points.z, points.u, q0, tie=tie, cells=2 * cells
        )
        self._cache: dict[tuple[float, float, float], tuple[np.ndarray, ...]] = {}

    slack = 1e-2  # QMC noise of th vs q1h near d0, relative to qh0

    def evaluate(self, p: float, t: float, q1: float) -> tuple[np.ndarray, ...]:
        """(G, dG/dt, dG/dq1) per batch, each ``[R]``."""
        key = (p, t, q1)
        if key not in self._cache:
            q0, pts = self.q0, self.points
            A = (p - t) / math.sqrt(1.0 - q0)
            B = math.sqrt(max(q1 - t * t / q0 - A * A, 0.0))
            h = t * pts.z / math.sqrt(q0) + A * self.x + B * pts.y
            log_z, g, hess = _inner(self.activation, h, q1, self.tie, self.cells)
            lever = pts.z / math.sqrt(q0) - self.x / math.sqrt(1.0 - q0)
            d_t = np.sum(g * lever, axis=1) + (
                A / math.sqrt(1.0 - q0) - t / q0
            ) * np.sum(hess, axis=1)
            self._cache = {
                key: (
                    pts.means(log_z),
                    pts.means(d_t),
                    pts.means(-0.5 * np.sum(g * g, axis=1)),
                )
            }
        return self._cache[key]

    def batches(self, p: float, t: float, q1: float) -> np.ndarray:
        return self.evaluate(p, t, q1)[0]

    def __call__(self, p: float, t: float, q1: float) -> tuple[float, float, float]:
        return tuple(float(v.mean()) for v in self.evaluate(p, t, q1))


def equilibrium(activation: str, K: float, alpha: float) -> tuple[float, float]:
    """(q0, s(alpha)) of theory I's RS binary solution (quadrature, exact)."""
    q, s = typical_overlap(activation, "binary", K, alpha, "error", "default")
    return q.value, s.value


def independent_start(q0: float, p: float) -> tuple[float, float]:
    """(t, q1) of the alpha = 0 saddle: t = q0 p, q1 = p^2."""
    return q0 * p, p * p


def continuation(
    kernel: str | Term,
    alpha: float,
    q0: float,
    ds: list[float],
    *,
    damping: float = 0.5,
    max_step: float = 0.02,
) -> dict[float, Saddle]:
    """Saddles at every d of ``ds``, continued in p from the equilibrium p = q0.

    Walks from d0 = (1 - q0)/2 towards the smallest and the largest requested d in
    steps of at most ``max_step`` in p; each saddle starts from the previous one.
    After a failure the walk restarts from the alpha = 0 start at the next point.
    """
    out: dict[float, Saddle] = {}
    d0 = (1.0 - q0) / 2.0
    for side in ([d for d in ds if d <= d0], [d for d in ds if d > d0]):
        if not side:
            continue
        far = min(side) if side[0] <= d0 else max(side)
        p_far = 1.0 - 2.0 * far
        steps = max(1, math.ceil(abs(p_far - q0) / max_step))
        path = sorted(
            {
                *(q0 + (p_far - q0) * k / steps for k in range(1, steps + 1)),
                *(1.0 - 2.0 * d for d in side),
            },
            key=lambda p: abs(p - q0),
        )
        start, targets = (q0, q0), {1.0 - 2.0 * d: d for d in side}
        for p in path:
            saddle = solve_saddle(kernel, alpha, q0, p, start, damping=damping)
            start = (
                (saddle.t, saddle.q1) if saddle.converged else independent_start(q0, p)
            )
            if p in targets:
                out[targets[p]] = saddle
    return out


def check_arguments(activation: str, weights: str, K: float, alpha, ds) -> None:
    """Raise InvalidConfigError listing every argument outside the supported cases.

    Supported: binary weights; sign units at odd K (K = 1 is the perceptron) or
    K = inf, ReLU units at even K or K = inf; alpha > 0 finite; every d with
    0 < d < 1/2.
    """
    issues: list[str] = []
    try:
        validate.check(activation=activation, weights=weights, alpha=alpha, K=K)
    except InvalidConfigError as error:
        issues += error.issues
    if weights in validate.WEIGHTS and weights != "binary":
        issues.append(
            f"weights={weights!r} is not available for local entropy; use 'binary'"
        )
    issues += [
        f"d={d!r} is not allowed; every d must be a number with 0 < d < 0.5"
        for d in ds
        if not (isinstance(d, (int, float)) and 0.0 < d < 0.5)
    ]
    if not ds:
        issues.append("d is empty; give at least one distance 0 < d < 0.5")
    if issues:
        raise InvalidConfigError(issues)


def exact(activation: str, K: float) -> bool:
    """True where the theory is quadrature (the perceptron and K = inf)."""
    return K == math.inf or (activation == "sign" and K == 1)


# (log2 points per batch, batches) of the finite-K QMC sets by precision
FINITE_K_POINTS = {"fast": (7, 8), "default": (9, 8), "high": (11, 16)}
_Q0_STEP = 5e-3  # q0 step of the finite difference dPhi/dq0 behind the stderr


def finite_k_setup(
    activation: str,
    K: int,
    alpha: float,
    precision: str,
    *,
    tie: str = "error",
    cells: int = 64,
) -> tuple[float, np.ndarray, Estimate, FiniteKTerm] | None:
    """(q0, q0 per batch, s(alpha), G_FP term) on one QMC set at finite K, or None
    without an RS equilibrium."""
    log2_n, batches = FINITE_K_POINTS[precision]
    points = FieldPoints.sobol(K, log2_n, batches, seed=K)
    found = equilibrium_batches(activation, alpha, points, tie=tie, cells=cells)
    if found is None:
        return None
    q0, q_batches, s = found
    term = FiniteKTerm(activation, q0, points, tie=tie, cells=cells)
    return q0, q_batches, s, term


def saddle_stderr(
    term: FiniteKTerm, alpha: float, q_batches: np.ndarray, sd: Saddle
) -> float:
    """Standard error of a finite-K Franz-Parisi value.

    Phi is stationary in (t, q1, ph, th, q1h), so to first order a batch shifts it
    by alpha (G_r - G) at fixed order parameters plus dPhi/dq0 (q0_r - q0) through
    the batch's equilibrium overlap; dPhi/dq0 by a central difference (x | z redrawn
    at q0 +- _Q0_STEP with the same uniforms). The two parts are added in quadrature.
    """
    R = q_batches.size
    g = term.batches(sd.p, sd.t, sd.q1)
    se_g = alpha * float(g.std(ddof=1)) / math.sqrt(R)
    values = []
    for q0 in (term.q0 - _Q0_STEP, term.q0 + _Q0_STEP):
        shifted = FiniteKTerm(
            term.activation, q0, term.points, tie=term.tie, cells=term.cells
        )
        values.append(
            free_entropy(shifted, alpha, q0, sd.p, sd.t, sd.q1, sd.ph, sd.th, sd.q1h)
        )
    slope = (values[1] - values[0]) / (2.0 * _Q0_STEP)
    se_q = abs(slope) * float(q_batches.std(ddof=1)) / math.sqrt(R)
    return math.hypot(se_g, se_q)


def row_keys(kind: str, activation: str, K: float, alpha: float, d: float) -> dict:
    """The key columns shared by every local-entropy row (kind: "franz_parisi" or
    "dense")."""
    return {
        "kind": kind,
        "activation": activation,
        "weights": "binary",
        "K": "inf" if K == math.inf else int(K),
        "alpha": float(alpha),
        "d": float(d),
    }


def curve_rows(
    activation: str,
    K: float,
    alpha: float,
    ds: list[float],
    *,
    damping: float,
    precision: str = "default",
) -> list[dict]:
    """Franz-Parisi rows in the order of ``ds`` (arguments already checked).

    K = 1 and K = inf: quadrature (stderr 0). Finite K > 1: randomised QMC
    (``FINITE_K_POINTS[precision]``) with the stderr of ``saddle_stderr``.
    """
    if exact(activation, K):
        q0, _ = equilibrium(activation, K, alpha)
        term: str | FiniteKTerm = kernel_name(activation, K)
    else:
        found = finite_k_setup(activation, int(K), alpha, precision)
        if found is None:  # no RS equilibrium: every row unconverged
            nan = math.nan
            return [
                {
                    **row_keys("franz_parisi", activation, K, alpha, d),
                    "local_entropy": nan,
                    "stderr": nan,
                    "converged": False,
                    **dict.fromkeys(("q0", "p", "t", "q1", "ph", "th", "q1h"), nan),
                }
                for d in ds
            ]
        q0, q_batches, _, term = found
    # finite K: each update costs a QMC pass, so the walk takes coarser steps
    step = 0.02 if isinstance(term, str) else 0.05
    saddles = continuation(
        term, alpha, q0, sorted(set(ds)), damping=damping, max_step=step
    )
    rows = []
    for d in ds:
        sd = saddles[d]
        stderr = 0.0
        if sd.converged and not isinstance(term, str):
            stderr = saddle_stderr(term, alpha, q_batches, sd)
        ok = sd.converged and math.isfinite(stderr)
        rows.append(
            {
                **row_keys("franz_parisi", activation, K, alpha, d),
                "local_entropy": float(sd.local_entropy) if ok else math.nan,
                "stderr": stderr if ok else math.nan,
                "converged": ok,
                "q0": q0,
                **{
                    k: float(getattr(sd, k))
                    for k in ("p", "t", "q1", "ph", "th", "q1h")
                },
            }
        )
    return rows
