"""Dense-region large deviation at finite y, binary weights (docs/local_entropy.md §7).

Z(y) = sum_{W~} N(W~, d)^y (y real replicas around a binary centre W~, not
required to be a solution); RS in the blocks of y, with th = Q~h = 0 (nothing
energetic depends on the centre, docs/local_entropy.md §3). Per y,

    Phi_y = [-y ph p - q1h q1 y (y - 1)/2 + q0h q0 y^2/2 - y q1h/2
             + E_z ln sum_X E_eta (2 cosh h)^y
             + alpha E_z ln E_eta Phi(u / sigma)^y] / y,
    h = sqrt(q0h) z + sqrt(q1h - q0h) eta + ph X,
    u = sqrt(Q0) z + sqrt(Q1 - Q0) eta, sigma = sqrt(1 - Q1), Q = kappa(q).

Saddle (<.> the eta, X average tilted by the integrand, g = ln Phi(u / sigma)):
p = E<X tanh h>, q1 = E<tanh^2 h>, q0 = E<tanh h>^2,
q1h = alpha kappa'(q1) E<g'^2>, q0h = alpha kappa'(q0) E<g'>^2.
As y -> infinity, Phi_y -> phi + Sigma / y (theory/dense.py). At finite K > 1 the
energetic term is dense_finite_k.FiniteYTerm: plain overlaps, eta in R^K,
g'^2 -> |grad ln Z|^2 (docs/local_entropy.md §8).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from relu_landscape.theory import dense
from relu_landscape.theory.energetic import kappa, kappa_prime
from relu_landscape.theory.franz_parisi import (
    exact,
    frozen,
    inverse_mills,
    kernel_name,
    row_keys,
)

_STEP = 0.1  # eta grid step: the tilted integrands have widths >= ~0.5 at the loads
# and y used (trapezoid error ~ exp(-2 pi^2 (width / step)^2), negligible)
_SPAN = 10.0  # half-width of the energetic eta window (the tilted width is <= 1)


@functools.cache
def _half_line_fine() -> tuple[np.ndarray, np.ndarray]:
    """Nodes z >= 0 and weights of E_z f(|z|): Gauss-Legendre on [0, 0.5] and
    [0.5, 12]. The centre's two values X = +-1 compete where |z| <~ 1/y, a layer
    that the dense nodes near 0 resolve (48 nodes there)."""
    parts = []
    for lo, hi, n in ((0.0, 0.5, 48), (0.5, 12.0, 64)):
        v, wv = np.polynomial.legendre.leggauss(n)
        z = lo + (hi - lo) * (v + 1.0) / 2.0
        parts.append((z, wv * (hi - lo) / 2.0 * 2.0 * np.exp(-0.5 * z * z)))
    z = np.concatenate([q[0] for q in parts])
    w = np.concatenate([q[1] for q in parts]) / math.sqrt(2.0 * math.pi)
    return frozen(z, w)


def _entropic(y: float, q0h: float, spread: float, ph: float) -> tuple[float, ...]:
    """(E_z ln sum_X E_eta (2cosh h)^y, p, q1, q0, dp/dph) on an eta grid.

    z >= 0 only (the integrand is even under z, X, eta -> -z, -X, -eta). The
    maximiser eta* = y spread tanh(h) lies in [-y spread, y spread]; the grid
    covers it with a margin of 12 (more than 10 widths of the tilted measure)."""
    z, w = _half_line_fine()
    half = y * spread + 12.0
    eta = np.arange(-half, half + _STEP / 2, _STEP)
    log_w = -0.5 * eta**2 + math.log(_STEP / math.sqrt(2 * math.pi))
    x = np.array([1.0, -1.0])
    h = (
        math.sqrt(q0h) * z[:, None, None]
        + spread * eta[None, None, :]
        + ph * x[None, :, None]
    )
    log_f = y * np.logaddexp(h, -h) + log_w
    total = special.logsumexp(log_f, axis=(1, 2))
    weight = np.exp(log_f - total[:, None, None])
    t = np.tanh(h)
    xt = x[None, :, None] * t
    mean_xt = np.sum(weight * xt, axis=(1, 2))
    mean_t = np.sum(weight * t, axis=(1, 2))
    var_xt = np.sum(weight * xt * xt, axis=(1, 2)) - mean_xt**2
    slope = np.sum(weight * (1.0 - t * t), axis=(1, 2)) + y * var_xt
    return (
        float(w @ total),
        float(w @ mean_xt),
        float(w @ np.sum(weight * t * t, axis=(1, 2))),
        float(w @ mean_t**2),
        float(w @ slope),
    )


def _energetic(kernel: str, y: float, q1: float, q0: float) -> tuple[float, ...]:
    """(E_z ln E_eta Phi(u/sigma)^y, E<g'^2>, E<g'>^2) on an eta window.

    ln Phi is concave, so the tilted eta measure is unimodal with width <= 1; the
    window is centred on its maximiser (dense._maximiser with Omega = y A)."""
    z, w = dense._hermite()
    big_q1, big_q0 = float(kappa(kernel, q1)), float(kappa(kernel, q0))
    spread = math.sqrt(max(big_q1 - big_q0, 1e-300))
    sigma = math.sqrt(1.0 - big_q1)
    centre = math.sqrt(big_q0) * z
    a = dense._maximiser(centre, sigma, y * spread * spread)
    eta_star = (sigma * a - centre) / spread
    offsets = np.arange(-_SPAN, _SPAN + _STEP / 2, _STEP)
    eta = eta_star[:, None] + offsets[None, :]
    u = centre[:, None] + spread * eta
    log_f = (
        y * special.log_ndtr(u / sigma)
        - 0.5 * eta**2
        + math.log(_STEP / math.sqrt(2 * math.pi))
    )
    total = special.logsumexp(log_f, axis=1)
    weight = np.exp(log_f - total[:, None])
    g1 = inverse_mills(u / sigma) / sigma
    mean_g1 = np.sum(weight * g1, axis=1)
    return (
        float(w @ total),
        float(w @ np.sum(weight * g1 * g1, axis=1)),
        float(w @ mean_g1**2),
    )


FiniteYTerm = Callable[[float, float, float], tuple[float, float, float]]
"""(y, q1, q0) -> (E_z ln E_eta Z^y, a1, a0) with q1h = alpha a1, q0h = alpha a0:
``kernel_term`` (K = 1, K = inf) or dense_finite_k.FiniteYTerm (finite K)."""


def kernel_term(kernel: str) -> FiniteYTerm:
    """The perceptron term at kernel-mapped overlaps: a1 = kappa'(q1) E<g'^2>,
    a0 = kappa'(q0) E<g'>^2."""

    def term(y: float, q1: float, q0: float) -> tuple[float, float, float]:
        value, g2, g1sq = _energetic(kernel, y, q1, q0)
        return (
            value,
            float(kappa_prime(kernel, q1)) * g2,
            float(kappa_prime(kernel, q0)) * g1sq,
        )

    return term


def _as_term(kernel: str | FiniteYTerm) -> FiniteYTerm:
    return kernel_term(kernel) if isinstance(kernel, str) else kernel


def free_entropy(
    kernel: str | FiniteYTerm,
    y: float,
    alpha: float,
    p: float,
    q1: float,
    q0: float,
    ph: float,
    q1h: float,
    q0h: float,
) -> float:
    """Phi_y = ln Z(y) / (N y) at the given order parameters."""
    s_e = _entropic(y, q0h, math.sqrt(q1h - q0h), ph)[0]
    e_g = _as_term(kernel)(y, q1, q0)[0]
    conj = (
        -y * ph * p
        - q1h * q1 * y * (y - 1) / 2
        + q0h * q0 * y * y / 2
        - y * q1h / 2
    )
    return (conj + s_e + alpha * e_g) / y


@dataclass(frozen=True)
class FiniteYSaddle:
    """One finite-y saddle point: order parameters and Phi_y (nan if not converged)."""

    y: float
    p: float
    q1: float
    q0: float
    ph: float
    q1h: float
    q0h: float
    local_entropy: float
    converged: bool


def _entropic_omega(y: float, q1h: float, q0h: float, ph: float) -> tuple[float, ...]:
    """``_entropic`` in the form of ``dense.solve_q1_omega`` (a ``dense.Entropic``):
    (value, p, q1, omega = y (q1 - q0), dp/dph) at the conjugates (q1h, q0h)."""
    value, p, q1, q0, slope = _entropic(y, q0h, math.sqrt(q1h - q0h), ph)
    return value, p, q1, y * (q1 - q0), slope


def solve_saddle(
    kernel: str | FiniteYTerm,
    y: float,
    alpha: float,
    p: float,
    start: tuple[float, float],
    *,
    damping: float = 0.5,
    tol: float | None = None,
) -> FiniteYSaddle:
    """Saddle at overlap p by ``dense.solve_q1_omega``, omega = y (q1 - q0).

    ``start`` is (q1, omega), e.g. the y -> infinity saddle's. ``tol`` defaults to
    the term's ``tol`` attribute (finite K: dense_finite_k.FiniteYTerm.tol), else
    1e-9."""
    term = _as_term(kernel)
    tol = getattr(term, "tol", 1e-9) if tol is None else tol

    def conjugates(q1: float, omega: float) -> tuple[float, float] | None:
        q0 = q1 - omega / y
        if not 0.0 < q0 < q1 < 1.0:
            return None
        _, a1, a0 = term(y, q1, q0)
        q1h, q0h = alpha * a1, alpha * a0
        return (q1h, q0h) if 0.0 < q0h < q1h else None

    q1, omega, conj, _ = dense.solve_q1_omega(
        conjugates, functools.partial(_entropic_omega, y), p, start, damping=damping, tol=tol
    )
    q0 = q1 - omega / y
    if conj is None:
        nan = math.nan
        return FiniteYSaddle(y, p, q1, q0, nan, nan, nan, nan, False)
    value = free_entropy(term, y, alpha, p, q1, q0, *conj)
    return FiniteYSaddle(y, p, q1, q0, *conj, value, True)


def solve_from_limit(
    term: str | FiniteYTerm,
    y: float,
    alpha: float,
    p: float,
    start: tuple[float, float],
    *,
    damping: float = 0.5,
) -> FiniteYSaddle:
    """Saddle at y from the y -> infinity saddle's (q1, omega) ``start``: directly,
    else by continuation in y through 4y, 2y, y, each from the previous saddle
    (small y can be too far from the limit for the direct start: sign K = 3,
    alpha = 0.5, d = 0.05 at y = 5)."""
    direct = solve_saddle(term, y, alpha, p, start, damping=damping)
    if direct.converged:
        return direct
    for step in (4.0 * y, 2.0 * y, y):
        sd = solve_saddle(term, step, alpha, p, start, damping=damping)
        if not sd.converged:
            return direct  # the path broke: y stays unconverged
        start = (sd.q1, step * (sd.q1 - sd.q0))
    return sd


def curve_rows(
    activation: str,
    K: float,
    alpha: float,
    ds: list[float],
    y: float,
    *,
    damping: float,
    precision: str = "default",
) -> list[dict]:
    """Finite-y dense rows in the order of ``ds`` (arguments already checked).

    Each point starts from the y -> infinity saddle at the same d
    (``solve_from_limit``; dense.curve_rows, or dense_finite_k.curve_rows at finite
    K > 1, on the same QMC points ``precision``: common random numbers for
    Phi_y - phi); where that one did not converge, neither is this one tried.
    "stderr": 0 for quadrature (K = 1, K = inf); at finite K
    alpha std(E_r) / (y sqrt(R)) (Phi_y is stationary)."""

    def stderr(sd: FiniteYSaddle) -> float:  # quadrature: no statistical error
        return 0.0

    if exact(activation, K):
        term: FiniteYTerm = kernel_term(kernel_name(activation, K))
        bases = dense.curve_rows(activation, K, alpha, ds, damping=damping)
    else:
        from relu_landscape.theory import dense_finite_k

        points = dense_finite_k.points(int(K), precision)
        term = dense_finite_k.FiniteYTerm(activation, points)
        bases = dense_finite_k.curve_rows(
            activation, int(K), alpha, ds, damping=damping, precision=precision
        )

        def stderr(sd: FiniteYSaddle) -> float:
            g = term.batches(y, sd.q1, sd.q0)
            return alpha * float(g.std(ddof=1)) / (y * math.sqrt(len(g)))

    rows = []
    nan = math.nan
    for base in bases:
        sd = None
        if base["converged"]:
            start = (base["q1"], base["omega"])
            sd = solve_from_limit(term, y, alpha, base["p"], start, damping=damping)
        ok = sd is not None and sd.converged
        rows.append(
            {
                **row_keys("dense", activation, K, alpha, base["d"]),
                "y": float(y),
                "local_entropy": sd.local_entropy if ok else nan,
                "stderr": stderr(sd) if ok else nan,
                "converged": ok,
                "external_entropy": nan,  # defined here only as y -> infinity
                "external_stderr": nan,
                "p": base["p"],
                **(
                    {
                        "q1": sd.q1,
                        "q0": sd.q0,
                        "ph": sd.ph,
                        "q1h": sd.q1h,
                        "q0h": sd.q0h,
                        "omega": y * (sd.q1 - sd.q0),
                        "delta": y * (sd.q1h - sd.q0h),
                    }
                    if ok
                    else dict.fromkeys(
                        ("q1", "q0", "ph", "q1h", "q0h", "omega", "delta"), nan
                    )
                ),
                "d_zero_external": base["d_zero_external"],
            }
        )
    return rows
