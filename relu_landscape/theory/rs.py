"""Replica-symmetric (RS) capacity, typical overlap, binary entropy.

docs/science.md §4.

Continuous weights: phi(q) = (1/2)[ln(1-q) + q/(1-q)] + alpha G_E(q); the typical
overlap solves q / (2 (1-q)^2) + alpha G_E'(q) = 0 and the capacity is the alpha
where q reaches 1, alpha_c = 1 / E_z[d(z)^2] (distance.py). Binary weights:
s(alpha) = extremum over (q, qh) of -qh (1-q)/2 + E_z ln 2cosh(sqrt(qh) z)
+ alpha G_E(q), with q = E_z tanh^2(sqrt(qh) z) and qh = -2 alpha G_E'(q); the
capacity is where s = 0, found along the saddle-point curve parametrised by q
(alpha(q) = -qh(q) / (2 G_E'(q))).

Finite-K roots use two stages: a Chebyshev model of G_E on a coarse interval at a
quarter of the points locates the root, a 7-node model on a narrow window at full
points refines it; stderrs come from one linearised root per QMC batch.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import numpy as np
from scipy import integrate, optimize

from relu_landscape import activations
from relu_landscape.theory import projection
from relu_landscape.theory.distance import (
    relu_distance_sq,
    sign_mean_distance_sq,
)
from relu_landscape.theory.energetic import (
    EnergeticModel,
    energetic_batches,
    exact_kernel,
    kappa_prime,
    kernel_energetic,
    sign_needed,
)
from relu_landscape.theory.estimate import Estimate, from_batches, root_with_batches
from relu_landscape.theory.gauss import (
    PRECISIONS,
    GaussPoints,
    hermite_points,
    qmc_points,
)
from relu_landscape.theory.kernels import gardner_capacity

Residual = Callable[[float, np.ndarray, np.ndarray], np.ndarray]
# The generic projection's QMC points: at most 2**(precision's log2_n + this) a batch.
_GENERIC_EXTRA = 4
# Coarse intervals searched in turn for a sign change of the residual.
_STAGE1 = ((0.0, 0.8, 14), (0.75, 0.95, 10), (0.93, 0.995, 10))


def gauss_points(activation: str, K: int, precision: str, log2_n: int) -> GaussPoints:
    """Points for the outer E_z of G_E: quadrature for sign K <= 3 and ReLU K = 2,
    scrambled Sobol' otherwise with 2**log2_n points per batch (at least 2**5)."""
    prec = PRECISIONS[precision]
    if activation == "sign" and K == 1:
        return hermite_points(1, 4 * prec.hermite)
    if (activation == "sign" and K == 3) or (activation == "relu" and K == 2):
        return hermite_points(K, prec.hermite)
    return qmc_points(K, max(5, log2_n), prec.batches, seed=K)


def distance_sq(activation: str, z: np.ndarray, tie: str, theta: float) -> np.ndarray:
    """d(z)^2 to the closure of {F > theta} at finite K: ReLU's exact projection
    (distance.py), the generic one for every smooth g (projection.py)."""
    if activation == "relu":
        return relu_distance_sq(z, tie, theta)
    return projection.distance_sq(activation, z, theta)


def continuous_capacity(
    activation: str, K: float, tie: str, precision: str, margin: float = 0.0
) -> Estimate:
    """RS capacity of continuous weights, alpha_c = 1 / E_z[d(z)^2].

    Exact route (K = inf, and K = 1 for linear and sign, the perceptron;
    ``exact_kernel``): alpha_c = kappa'(1) alpha_G(margin), alpha_G Gardner's
    (docs/theory_activations.md §3): ReLU 2 pi / (pi - 1) at margin 0, sign inf.
    sign at finite K: exact 1-D quadrature for the vote the margin asks (inf when
    every output is stored, 0 when none is). ReLU K = 2 at margin 0: angular
    quadrature (the region is a cone). Otherwise randomised QMC over z of d(z)^2
    (``distance_sq``; linear too, whose finite-K value is the perceptron's, a check
    of the generic projection), with points added until stderr / value <= the
    precision's target (``converged`` False when the point cap is reached first).
    """
    route = exact_kernel(activation, K, margin, tie)
    if route is not None and (K == math.inf or K == 1):
        kernel, kernel_margin = route
        return Estimate(
            float(kappa_prime(kernel, 1.0)) * gardner_capacity(kernel_margin)
        )
    if activation == "sign":
        need = sign_needed(int(K), margin, tie)
        if need < 1 or need > K:
            return Estimate(math.inf if need < 1 else 0.0)
        return Estimate(1.0 / sign_mean_distance_sq(int(K), need))
    theta = margin * activations.get(activation).field_std * math.sqrt(K)
    if activation == "relu" and K == 2 and theta == 0:
        # a cone: d^2 = r^2 d(angle)^2

        def on_circle(theta: float) -> float:
            z = np.array([[math.cos(theta), math.sin(theta)]])
            return float(relu_distance_sq(z, tie)[0])

        kinks = [k * math.pi / 8 for k in range(1, 16)]
        mean, _ = integrate.quad(
            on_circle,
            0.0,
            2 * math.pi,
            points=kinks,
            limit=400,
            epsabs=1e-13,
            epsrel=1e-11,
        )
        return Estimate(
            math.pi / mean
        )  # E[d^2] = (1/pi) * integral of d^2 on the circle
    prec = PRECISIONS[precision]
    # ReLU's projection is cheap (K/2 + 1 patterns); the generic one solves ~K
    # branch configurations by bisection, so it starts lower and stops earlier.
    if activation == "relu":
        log2_n, cap = prec.log2_n + 4, prec.max_log2_n + 2
    else:
        log2_n, cap = prec.log2_n + 1, prec.log2_n + _GENERIC_EXTRA
    while True:
        pts = qmc_points(int(K), log2_n, prec.batches, seed=int(K))
        mean = from_batches(pts.batch_means(distance_sq(activation, pts.z, tie, theta)))
        alpha = 1.0 / mean.value
        stderr = alpha * mean.stderr / mean.value  # delta method
        precise = stderr <= prec.rel_target * alpha
        if precise or log2_n >= cap:
            # the point budget can run out first: say so, not just a bare number
            return Estimate(alpha, stderr, converged=precise)
        need = (stderr / (0.8 * prec.rel_target * alpha)) ** 2
        log2_n = min(cap, log2_n + max(1, math.ceil(math.log2(need))))


_QUAD = {"epsabs": 1e-13, "epsrel": 1e-11, "limit": 200}
_GAUSS = 1.0 / math.sqrt(2.0 * math.pi)


def _log_2cosh(qh: float) -> float:
    """E_z ln 2cosh(sqrt(qh) z) by adaptive quadrature."""
    root = math.sqrt(max(qh, 0.0))

    def f(z: float) -> float:
        return float(np.logaddexp(root * z, -root * z)) * _GAUSS * math.exp(-z * z / 2)

    return 2.0 * integrate.quad(f, 0.0, 40.0, **_QUAD)[0]


def _tanh_sq(qh: float) -> float:
    """E_z tanh^2(sqrt(qh) z) = 1 - E_z sech^2, the bump integrated only where it
    is not negligible."""
    root = math.sqrt(max(qh, 0.0))

    def f(z: float) -> float:
        return _GAUSS * math.exp(-z * z / 2) / math.cosh(min(root * z, 350.0)) ** 2

    # sech^2(root z) < e^-80 beyond z = 40 / root: integrate only where it lives.
    reach = min(40.0, 40.0 / root) if root > 0 else 40.0
    return 1.0 - 2.0 * integrate.quad(f, 0.0, reach, **_QUAD)[0]


@functools.lru_cache(maxsize=4096)
def conjugate_overlap(q: float) -> float:
    """qh with E_z tanh^2(sqrt(qh) z) = q (binary weights), 0 <= q < 1 (cached)."""
    if q <= 0.0:
        return 0.0
    hi = max(1.0, 4.0 / (1.0 - q) ** 2)
    return optimize.brentq(lambda qh: _tanh_sq(qh) - q, 0.0, hi, xtol=1e-13, rtol=1e-12)


@functools.lru_cache(maxsize=4096)
def binary_entropic(q: float) -> float:
    """The entropic part of the binary weights' RS entropy at overlap q,
    -qh (1 - q) / 2 + E_z ln 2cosh(sqrt(qh) z) with qh = ``conjugate_overlap(q)``
    (cached: the saddle searches of every K revisit the same q grid)."""
    qh = conjugate_overlap(q)
    return -qh * (1.0 - q) / 2.0 + _log_2cosh(qh)


def _binary_saddle(
    q: float, energetic: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Along the binary saddle curve at overlap q: (alpha(q) [R], s(q) [R])."""
    value, slope = energetic
    qh = conjugate_overlap(q)
    alpha = -qh / (2.0 * slope)
    return alpha, binary_entropic(q) + alpha * value


def _locate(
    residual: Residual, model: EnergeticModel, lo: float, hi: float
) -> float | None:
    """Pooled root of ``residual`` on [lo, hi] (first sign change), or None."""

    def pooled(q: float) -> float:
        return float(np.mean(residual(q, *model(q))))

    grid = np.linspace(lo, hi, 25)
    signs = np.sign([pooled(q) for q in grid])
    change = np.nonzero(signs[:-1] * signs[1:] <= 0)[0]
    if change.size == 0:
        return None
    i = int(change[0])
    return optimize.brentq(pooled, grid[i], grid[i + 1], xtol=1e-12)


def solve_overlap(
    activation: str,
    K: float,
    tie: str,
    precision: str,
    residual: Residual,
    final: Callable[[float, np.ndarray, EnergeticModel], tuple[Estimate, ...]],
    margin: float = 0.0,
) -> tuple[Estimate, ...] | None:
    """Solve residual(q, G_E, G_E') = 0 for the overlap q* and return ``final(...)``.

    ``final(q*, q_r [R], model)`` turns the root and its per-batch roots into the
    reported estimates; QMC points are added (x4 at a time) until each has
    stderr <= rel_target * |value|, or up to the precision's cap, where the estimates
    are returned with ``converged=False``. Returns None when no root lies in [0, 0.995]
    (e.g. alpha beyond the range where the RS solution exists).
    """
    prec = PRECISIONS[precision]
    if exact_kernel(activation, K, margin, tie) is not None:
        model = EnergeticModel(activation, K, tie, 0.0, 1.0, margin=margin)
        root = _locate(residual, model, 1e-9, 0.9999)
        return None if root is None else final(root, np.array([root]), model)
    log2_n = prec.log2_n
    root = None
    for lo, hi, nodes in _STAGE1:
        coarse = gauss_points(activation, int(K), precision, log2_n - 2)
        model = EnergeticModel(
            activation, K, tie, lo, hi, nodes, coarse, prec.lattice // 2, margin
        )
        root = _locate(residual, model, lo, hi)
        if root is not None:
            break
    if root is None:
        return None
    width = min(0.08, 0.15 * (1.0 - root))
    while True:
        points = gauss_points(activation, int(K), precision, log2_n)
        lo, hi = max(0.0, root - width), min(1.0 - 1e-9, root + width)
        model = EnergeticModel(
            activation, K, tie, lo, hi, 7, points, prec.lattice, margin
        )
        try:
            q_star, q_batches = root_with_batches(
                lambda q, model=model: residual(q, *model(q)), lo, hi
            )
        except ValueError:  # no sign change on the window: widen it
            if width > 0.3:
                return None
            width *= 2.0
            continue
        result = final(q_star, q_batches, model)
        precise = points.exact or all(
            e.stderr <= prec.rel_target * abs(e.value) for e in result
        )
        if precise or log2_n >= prec.max_log2_n:
            # the point cap can come first: the estimates then carry converged=False
            return tuple(
                dataclasses.replace(e, converged=e.converged and precise)
                for e in result
            )
        root, log2_n = q_star, min(prec.max_log2_n, log2_n + 2)


def along_root(
    fn: Callable[[float], np.ndarray], q_star: float, q_batches: np.ndarray
) -> Estimate:
    """Estimate of fn at the root: per batch fn_r(q*) + (d mean fn / dq)(q_r - q*)."""
    at_root = np.asarray(fn(q_star), dtype=float)
    if q_batches.size < 2:
        return Estimate(float(at_root.mean()), 0.0)
    step = 1e-5
    slope = (np.mean(fn(q_star + step)) - np.mean(fn(q_star - step))) / (2 * step)
    return from_batches(at_root + slope * (q_batches - q_star))


def binary_capacity(
    activation: str, K: float, tie: str, precision: str, margin: float = 0.0
) -> Estimate:
    """RS capacity of binary weights: the alpha where the RS entropy s reaches 0.

    Any registered g at any K (finite K: G_E by energetic.py's exact vote or lattice).
    sign at finite K: inf when the margin stores every output, 0 when it stores none.
    Even g (quadratic): at most the annealed q = 0 value -ln 2 / G_E(0).
    """
    if activation == "sign" and K != math.inf:
        need = sign_needed(int(K), margin, tie)
        if need < 1 or need > K:
            return Estimate(math.inf if need < 1 else 0.0)

    def entropy(q: float, value: np.ndarray, slope: np.ndarray) -> np.ndarray:
        return _binary_saddle(q, (value, slope))[1]

    def final(
        q_star: float, q_batches: np.ndarray, model: EnergeticModel
    ) -> tuple[Estimate]:
        return (
            along_root(lambda q: _binary_saddle(q, model(q))[0], q_star, q_batches),
        )

    found = solve_overlap(activation, K, tie, precision, entropy, final, margin)
    route = exact_kernel(activation, K, margin, tie)
    if abs(float(kappa_prime(activation if route is None else route[0], 0.0))) > 1e-12:
        if found is not None:
            return found[0]
        # no zero of s in q <= 0.995: a failure of the search, not a capacity
        return Estimate(math.nan, math.nan, converged=False)
    # an even kernel (quadratic): kappa'(0) = 0 (at finite K the symmetry w_l -> -w_l
    # of each unit) makes q = qh = 0 a saddle at every alpha, with s = ln 2 + alpha
    # G_E(0), zero at the annealed bound -ln 2 / G_E(0), an upper bound on any binary
    # capacity. The q > 0 branch counts where it reaches s = 0 below it; otherwise
    # (no such branch, or an unconverged root or one outside (0, bound]: near q = 0
    # the QMC slope G_E' ~ 0 puts spurious roots at huge |alpha|) the capacity is the
    # q = 0 value
    # (docs/theory_activations.md §4)
    if route is not None:
        at_zero = kernel_energetic(route[0], 0.0, margin=route[1])
    else:
        origin = GaussPoints(np.zeros((1, 1, int(K))), np.ones(1), exact=True)
        at_zero = float(
            energetic_batches(
                activation, int(K), 0.0, tie=tie, points=origin,
                cells=PRECISIONS[precision].lattice, margin=margin,
            )[0]
        )
    annealed = -math.log(2.0) / at_zero
    if found is not None and found[0].converged and 0 < found[0].value <= annealed:
        return found[0]
    return Estimate(annealed)


def typical_overlap(
    activation: str,
    weights: str,
    K: float,
    alpha: float,
    tie: str,
    precision: str,
    margin: float = 0.0,
) -> tuple[Estimate, Estimate | None]:
    """(q(alpha), s(alpha) or None for continuous weights); nan when no RS root."""
    if weights == "continuous":

        def residual(q: float, value: np.ndarray, slope: np.ndarray) -> np.ndarray:
            return q / 2.0 + alpha * (1.0 - q) ** 2 * slope
    else:

        def residual(q: float, value: np.ndarray, slope: np.ndarray) -> np.ndarray:
            return conjugate_overlap(q) + 2.0 * alpha * slope

    def final(
        q_star: float, q_batches: np.ndarray, model: EnergeticModel
    ) -> tuple[Estimate, ...]:
        overlap = from_batches(q_batches) if q_batches.size > 1 else Estimate(q_star)
        if weights == "continuous":
            return (overlap,)

        def entropy(q: float) -> np.ndarray:
            return binary_entropic(q) + alpha * model(q)[0]

        return overlap, along_root(entropy, q_star, q_batches)

    found = solve_overlap(activation, K, tie, precision, residual, final, margin)
    if found is None:
        nan = Estimate(math.nan, math.nan)
        return nan, (None if weights == "continuous" else nan)
    return found[0], (found[1] if len(found) > 1 else None)
