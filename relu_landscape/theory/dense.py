"""Local entropy of the densest regions, binary weights, y -> inf (docs/science.md §5).

Large-deviation measure Z = sum_{W~} N(W~, d)^y over binary centres W~, where
N(W~, d) counts the solutions at normalised distance d (overlap p = 1 - 2d) from
W~; the centre is not itself required to be a solution (docs/local_entropy.md §3).
With y -> infinity the centres condense on the densest region and the RS free
entropy per y, extremised over (q1, omega, ph, q0h, delta), is

    phi = -ph p - (delta q1 + q0h omega)/2 - q0h (1 - q1)/2
          + E_z F_S(sqrt(q0h) |z|) + alpha E_z F_E(z),
    F_S(zeta) = max_u [ln 2cosh u - (u - zeta - ph)^2 / (2 delta)],
    F_E(z)    = max_s [ln H(-(sqrt(Q1) z + s) / sqrt(1 - Q1)) - s^2 / (2 Omega)],

with Q1 = kappa(q1), Omega = kappa'(q1) omega (q1 - q0 = omega / y,
q1h - q0h = delta / y). phi is the local entropy of the densest regions.
Saddle point: with m = tanh(u*) = tanh(zeta + ph + delta m) (largest root),
p = E m, q1 = E m^2, omega = E[|z| m] / sqrt(q0h) - (1 - q1);
q0h = 2 alpha dE F_E/d omega, delta = q0h + 2 alpha dE F_E/d q1.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from relu_landscape.theory.energetic import kappa, kappa_prime
from relu_landscape.theory.franz_parisi import (
    frozen,
    inverse_mills,
    kernel_name,
    row_keys,
    solve_with_ph,
)
from relu_landscape.theory.gauss import hermite_1d

_NZ = 64  # nodes of each outer average (smooth integrands; 128 nodes agree to ~1e-7)
_Z_MAX = 12.0  # half-line cut for E_z f(|z|): the weight beyond is below e^-72
_NEWTON = 80


@dataclass(frozen=True)
class DenseSaddle:
    """One dense-region saddle point (y -> infinity): order parameters and value."""

    p: float
    q1: float
    omega: float
    ph: float
    q0h: float
    delta: float
    local_entropy: float
    converged: bool
    iterations: int  # update evaluations spent by the solver


def kappa_second(kernel: str, q: float) -> float:
    """d^2 kappa / dq^2 of the kernels of docs/science.md §4 (linear: 0)."""
    if kernel == "sign":
        return 2.0 / math.pi * q / (1.0 - q * q) ** 1.5
    if kernel == "relu":
        return 1.0 / ((math.pi - 1.0) * math.sqrt(1.0 - q * q))
    return 0.0


@functools.cache
def _half_line() -> tuple[np.ndarray, np.ndarray]:
    """Nodes z >= 0 and weights of E_z f(|z|) (Gauss-Legendre on [0, _Z_MAX]).

    Cached: the saddle solvers call it thousands of times per curve."""
    v, w = np.polynomial.legendre.leggauss(_NZ)
    z = _Z_MAX * (v + 1.0) / 2.0
    w = w * _Z_MAX / 2.0 * 2.0 * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return frozen(z, w)


def _largest_root(h: np.ndarray, delta: float) -> np.ndarray:
    """Largest m with m = tanh(h + delta m), h >= 0: Newton from m = 1.

    f(m) = m - tanh(h + delta m) is convex for h + delta m > 0, so the iterates
    decrease monotonically to the largest root.
    """
    m = np.ones_like(h)
    for _ in range(_NEWTON):
        th = np.tanh(h + delta * m)
        slope = np.maximum(1.0 - delta * (1.0 - th * th), 1e-15)
        new = np.minimum(m - (m - th) / slope, 1.0)
        if np.max(np.abs(new - m)) < 1e-15:
            return new
        m = new
    return m


def entropic(q0h: float, delta: float, ph: float) -> tuple[float, ...]:
    """(E F_S, p, q1, omega, dp/dph) at the conjugates (q0h > 0, delta >= 0, ph >= 0).

    dm/dph = (1 - m^2) / (1 - delta (1 - m^2)) by implicit differentiation.
    """
    z, w = _half_line()
    root = math.sqrt(q0h)
    h = root * z + ph
    m = _largest_root(h, delta)
    u = h + delta * m
    value = np.logaddexp(u, -u) - 0.5 * delta * m * m
    q1 = float(w @ (m * m))
    omega = float(w @ (z * m)) / root - (1.0 - q1)
    slope = (1.0 - m * m) / np.maximum(1.0 - delta * (1.0 - m * m), 1e-15)
    return float(w @ value), float(w @ m), q1, omega, float(w @ slope)


def _maximiser(h: np.ndarray, sigma: float, big_omega: float) -> np.ndarray:
    """a = (h + s*)/sigma with s* = Omega r(a)/sigma (Newton, monotone from h/sigma)."""
    a = h / sigma
    for _ in range(_NEWTON):
        r = inverse_mills(a)
        gap = sigma * a - h - big_omega / sigma * r
        step = gap / (sigma + big_omega / sigma * r * (a + r))
        a = a - step
        if np.max(np.abs(step)) < 1e-14:
            break
    return a


@functools.cache
def _hermite() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights of E_z (cached, as ``_half_line``)."""
    return frozen(*hermite_1d(_NZ))


@dataclass(frozen=True)
class _Laplace:
    """The Laplace point of the energetic term on the Hermite nodes z (weights w):
    Q1 = kappa(q1), Omega = kappa'(q1) omega, sigma = sqrt(1 - Q1), h = sqrt(Q1) z,
    the maximiser a = (h + s)/sigma and shift s, and r = phi(a) / Phi(a)."""

    z: np.ndarray
    w: np.ndarray
    big_q1: float
    big_omega: float
    sigma: float
    a: np.ndarray
    s: np.ndarray
    r: np.ndarray

    @staticmethod
    def at(kernel: str, q1: float, omega: float) -> _Laplace:
        z, w = _hermite()
        big_q1 = float(kappa(kernel, q1))
        big_omega = float(kappa_prime(kernel, q1)) * omega
        sigma = math.sqrt(1.0 - big_q1)
        h = math.sqrt(big_q1) * z
        a = _maximiser(h, sigma, big_omega)
        s, r = sigma * a - h, inverse_mills(a)
        return _Laplace(z, w, big_q1, big_omega, sigma, a, s, r)


def energetic(kernel: str, q1: float, omega: float) -> tuple[float, float, float]:
    """(E F_E, d/dq1, d/domega) at fixed omega resp. q1 (envelope theorem).

    The maximiser s* solves s = Omega r(a) / sigma, a = (h + s) / sigma,
    sigma = sqrt(1 - Q1), r = phi / Phi; in a this is a concave increasing
    equation, so Newton from a = h / sigma converges monotonically.
    """
    lp = _Laplace.at(kernel, q1, omega)
    z, w, big_q1, big_omega, sigma = lp.z, lp.w, lp.big_q1, lp.big_omega, lp.sigma
    a, s, r = lp.a, lp.s, lp.r
    value = special.log_ndtr(a) - s * s / (2.0 * big_omega)
    d_omega_big = s * s / (2.0 * big_omega**2)
    d_q1_big = r * (z / (2.0 * math.sqrt(big_q1) * sigma) + a / (2.0 * sigma**2))
    slope = float(kappa_prime(kernel, q1))
    d_q1 = slope * d_q1_big + kappa_second(kernel, q1) * omega * d_omega_big
    return float(w @ value), float(w @ d_q1), float(w @ (slope * d_omega_big))


DenseTerm = Callable[[float, float], tuple[float, float, float]]
"""(E_z F_E, d/dq1, d/domega) at (q1, omega), plain overlaps."""


def kernel_term(kernel: str) -> DenseTerm:
    """The perceptron term at kernel-mapped overlaps (K = 1 or K = inf)."""
    return lambda q1, omega: energetic(kernel, q1, omega)


def _as_term(kernel: str | DenseTerm) -> DenseTerm:
    return kernel_term(kernel) if isinstance(kernel, str) else kernel


def free_entropy(
    kernel: str | DenseTerm,
    alpha: float,
    p: float,
    q1: float,
    omega: float,
    ph,
    q0h,
    delta,
) -> float:
    """phi (the densest-region local entropy) at the given order parameters."""
    value_s = entropic(q0h, delta, ph)[0]
    value_e = _as_term(kernel)(q1, omega)[0]
    return (
        -ph * p
        - 0.5 * (delta * q1 + q0h * omega)
        - 0.5 * q0h * (1.0 - q1)
        + value_s
        + alpha * value_e
    )


def entropic_external(q0h: float, delta: float, ph: float, q1: float) -> float:
    """1/y coefficient of the entropic and conjugate terms of ln Z(y) / y.

    -delta (1 - q1)/2 (conjugates) - E_z ln(1 - delta (1 - m^2)) / 2 (Gaussian
    fluctuations of the Laplace integral over eta), docs/local_entropy.md §5.
    """
    z, w = _half_line()
    m = _largest_root(math.sqrt(q0h) * z + ph, delta)
    curvature = np.maximum(1.0 - delta * (1.0 - m * m), 1e-300)
    return -0.5 * delta * (1.0 - q1) - 0.5 * float(w @ np.log(curvature))


def energetic_external(kernel: str, q1: float, omega: float) -> float:
    """1/y coefficient of the energetic term (K = 1, K = inf), per pattern.

    E_z[-ln(1 - Omega L''(h + s*)) / 2 - z s* / (2 sqrt(Q1))
        - kappa''(q1) omega^2 s*^2 / (4 Omega^2)],  L = ln Phi(. / sigma):
    the Gaussian fluctuations of the Laplace integral, the shift of
    sqrt(Q0) z = sqrt(Q1 - Omega / y) z, and the curvature of the kernel
    (y (Q1 - Q0) = Omega - kappa''(q1) omega^2 / (2y); 0 for the perceptron),
    docs/local_entropy.md §5.
    """
    lp = _Laplace.at(kernel, q1, omega)
    second = -lp.r * (lp.a + lp.r) / lp.sigma**2
    fluct = -0.5 * np.log(1.0 - lp.big_omega * second)
    shift = -lp.z * lp.s / (2.0 * math.sqrt(lp.big_q1))
    curvature = -kappa_second(kernel, q1) * omega**2 * lp.s**2 / (4.0 * lp.big_omega**2)
    return float(lp.w @ (fluct + shift + curvature))


Entropic = Callable[..., tuple[float, ...]]
"""(*conjugates, ph) -> (E F_S, p, q1, omega, dp/dph): the entropic term of a dense
saddle at fixed conjugates (``entropic``; dense_finite_y at finite y)."""


def solve_q1_omega(
    conjugates: Callable[[float, float], tuple[float, ...] | None],
    entropic_at: Entropic,
    p: float,
    start: tuple[float, float],
    *,
    damping: float,
    tol: float,
) -> tuple[float, float, tuple[float, ...] | None, int]:
    """Dense saddle at overlap p by ``solve_with_ph`` on (q1, ln omega).

    ``conjugates(q1, omega)``: the energetic conjugates, None where infeasible; ph >= 0
    (None: d beyond the range where the distance constraint binds) and
    ``entropic_at(*conjugates, ph)`` gives the next (q1, omega). omega grows like
    1 / sqrt(q0h) as d -> 0, hence the log.
    Returns (q1, omega, (ph, *conjugates) or None when not converged, evaluations).
    """

    def decode(x: np.ndarray) -> tuple[float, float]:
        return float(x[0]), math.exp(min(float(x[1]), 50.0))

    x, conj, calls = solve_with_ph(
        lambda x: conjugates(*decode(x)),
        entropic_at,
        lambda out: np.array([out[2], math.log(max(out[3], 1e-300))]),
        p,
        (start[0], math.log(start[1])),
        ph_min=0.0,
        ph_guess=1.0,
        damping=damping,
        tol=tol,
    )
    return *decode(x), conj, calls


def solve_saddle(
    kernel: str | DenseTerm,
    alpha: float,
    p: float,
    start: tuple[float, float],
    *,
    damping: float = 0.5,
    tol: float | None = None,
) -> DenseSaddle:
    """Saddle point at overlap p by ``solve_q1_omega``; ``start`` is (q1, omega).

    ``tol`` defaults to the term's ``tol`` attribute (finite K:
    dense_finite_k.DenseTerm.tol), else 1e-9. Not converged (local_entropy nan)
    when the conjugates leave the feasible region (q0h <= 0, delta < 0, or no
    ph >= 0) or the solver stalls.
    """

    term = _as_term(kernel)
    tol = getattr(term, "tol", 1e-9) if tol is None else tol

    def conjugates(q1: float, omega: float) -> tuple[float, float] | None:
        if not 0.0 < q1 < 1.0:
            return None
        _, d_q1, d_omega = term(q1, omega)
        q0h = 2.0 * alpha * d_omega
        delta = q0h + 2.0 * alpha * d_q1
        return (q0h, delta) if q0h > 0 and delta >= 0 else None

    q1, omega, conj, calls = solve_q1_omega(
        conjugates, entropic, p, start, damping=damping, tol=tol
    )
    if conj is None:
        nan = math.nan
        return DenseSaddle(p, q1, omega, nan, nan, nan, nan, False, calls)
    value = free_entropy(term, alpha, p, q1, omega, *conj)
    return DenseSaddle(p, q1, omega, *conj, value, True, calls)


def external_entropy(kernel: str, alpha: float, sd: DenseSaddle) -> float:
    """Complexity Sigma = lim_{y -> inf} [ln Z(y) - y d ln Z(y)/dy] / N at a saddle:
    the 1/y coefficient of ln Z(y) / (N y) at the y -> infinity order parameters
    (envelope theorem), docs/local_entropy.md §5."""
    entropic_part = entropic_external(sd.q0h, sd.delta, sd.ph, sd.q1)
    return entropic_part + alpha * energetic_external(kernel, sd.q1, sd.omega)


@functools.cache
def binding_end(activation: str, K: float, alpha: float) -> float:
    """d_max = (1 - E_z |tanh(sqrt(qh) z)|) / 2: the end of the binding range.

    As ph -> 0 the dense saddle tends to the RS equilibrium of theory I (q1 -> q,
    omega -> 0, phi -> s(alpha)) and the best centre is the clipped centre of mass
    sign(tanh(sqrt(qh) z)) of the solution space, at overlap E|tanh| with each
    solution; the external entropy vanishes there (docs/local_entropy.md §5).
    Cached; finite K > 1 uses theory I's "fast" precision (a reported landmark,
    not an input of the saddle).
    """
    from relu_landscape.theory import rs_overlap
    from relu_landscape.theory.franz_parisi import exact
    from relu_landscape.theory.rs import conjugate_overlap

    precision = "default" if exact(activation, K) else "fast"
    q = rs_overlap(activation, "binary", K, alpha, precision=precision).value
    qh = conjugate_overlap(q)
    z, w = _half_line()
    return 0.5 * (1.0 - float(w @ np.tanh(math.sqrt(qh) * z)))


def external_zero(rows: list[dict], d_max: float) -> float:
    """The d where the external entropy reaches zero along converged ``rows``.

    Sigma < 0 along the binding branch, rising to 0 at d_max (observed for every
    supported variant, tests): then d_max. Should a row have Sigma > 0, the first
    sign change in d, by linear interpolation between the bracketing rows.
    """
    good = sorted(
        (r["d"], r["external_entropy"]) for r in rows if r["converged"]
    )
    for (d0, s0), (d1, s1) in zip(good, good[1:], strict=False):
        if s0 < 0 <= s1 or s1 < 0 <= s0:
            return d0 + (d1 - d0) * s0 / (s0 - s1)
    return d_max


def continuation(
    kernel: str | DenseTerm,
    alpha: float,
    ds: list[float],
    *,
    damping: float,
    max_step: float,
) -> dict[float, DenseSaddle]:
    """Saddles at every d of ``ds`` by ``solve_saddle``, continued in p.

    Walks from the largest d downwards in steps of at most ``max_step`` in p, each
    saddle starting from the previous one; the first point (and any point after a
    failure) starts from q1 = p^2, omega = 1.
    """
    p_first = 1.0 - 2.0 * max(ds)
    steps = math.ceil((1.0 - 2.0 * min(ds) - p_first) / max_step)
    path = sorted(
        {*(p_first + k * max_step for k in range(steps)), *(1.0 - 2.0 * d for d in ds)}
    )
    targets = {1.0 - 2.0 * d: d for d in ds}
    saddles: dict[float, DenseSaddle] = {}
    start = None
    for p in path:
        sd = solve_saddle(kernel, alpha, p, start or (p * p, 1.0), damping=damping)
        start = (sd.q1, sd.omega) if sd.converged else None
        if p in targets:
            saddles[targets[p]] = sd
    return saddles


def curve_rows(
    activation: str,
    K: float,
    alpha: float,
    ds: list[float],
    *,
    damping: float,
    max_step: float = 0.02,
) -> list[dict]:
    """Dense-region rows in the order of ``ds`` (arguments already checked).

    Saddles by ``continuation``. Every row carries the curve's ``d_zero_external``
    (external_zero): rows below it have Sigma < 0, so RS counts fewer than one such
    region and overestimates the dense regions there.
    """
    kernel = kernel_name(activation, K)
    saddles = continuation(kernel, alpha, ds, damping=damping, max_step=max_step)
    rows = []
    for d in ds:
        sd = saddles[d]
        external = (
            external_entropy(kernel, alpha, sd) if sd.converged else math.nan
        )
        rows.append(
            {
                **row_keys("dense", activation, K, alpha, d),
                "local_entropy": float(sd.local_entropy),
                "stderr": 0.0 if sd.converged else math.nan,
                "converged": sd.converged,
                "external_entropy": external,
                "external_stderr": 0.0 if sd.converged else math.nan,
                **{
                    k: float(getattr(sd, k))
                    for k in ("p", "q1", "omega", "ph", "q0h", "delta")
                },
            }
        )
    d_zero = external_zero(rows, binding_end(activation, K, alpha))
    return [{**row, "d_zero_external": d_zero} for row in rows]
