"""Estimators with their errors (numpy only): means, Wilson intervals, alpha_50.

Every estimate that reaches a table or a figure comes from here, so its error bar is
computed in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def mean_stderr(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean and its standard error (ddof = 1; 0 where there is one sample)."""
    x = np.asarray(x, dtype=float)
    m = x.mean(axis=axis)
    k = x.shape[axis]
    se = x.std(axis=axis, ddof=1) / math.sqrt(k) if k > 1 else np.zeros_like(m)
    return m, se


def wilson_interval(successes, trials, z: float = 1.959963984540054):
    """Wilson score interval for a binomial proportion (default 95%).

    Vectorised over arrays of successes and trials; returns (low, high). Trials must
    be positive.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if np.any(n <= 0):
        raise ValueError("wilson_interval needs trials > 0")
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


@dataclass(frozen=True)
class Threshold:
    """alpha_50 (where P(solved) = 1/2) with a confidence interval [low, high].

    ``method``: "logistic" (converged maximum-likelihood fit of
    P(solved) = 1/(1+exp(-(a+b alpha))), delta-method interval) or a grid bracket (the
    interval is the pair of grid points between which the empirical fraction crosses
    1/2): "bracket" when no fit exists (the data are separated: every success at a
    smaller alpha than every failure, so the likelihood has no maximum) or its interval
    is wider than the bracket, "bracket-unconverged" when the fit was attempted and
    did not converge. ``low``/``high`` are nan when the crossing is outside the grid.
    """

    alpha_50: float
    low: float
    high: float
    method: str


def _logistic_fit(x, k, n, iters: int = 100):
    """Newton (IRLS) maximum likelihood of the logistic model; (beta, cov, converged).

    converged: the Newton step fell below 1e-10 (relative to |beta|) within ``iters``
    iterations with finite estimates and an invertible information matrix.
    """
    beta = np.array([0.0, 0.0])
    X = np.stack([np.ones_like(x), x], axis=1)
    converged = False
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ beta)))
        W = n * p * (1 - p)
        grad = X.T @ (k - n * p)
        info = X.T @ (X * W[:, None])
        step = np.linalg.solve(info + 1e-12 * np.eye(2), grad)
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            break
        if np.abs(step).max() < 1e-10 * (1 + np.abs(beta).max()):
            converged = True
            break
    p = 1 / (1 + np.exp(-(X @ beta)))
    info = X.T @ (X * (n * p * (1 - p))[:, None])
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return beta, np.full((2, 2), np.nan), False
    return beta, cov, converged and bool(np.all(np.isfinite(cov)))


def separated(x, k, n) -> bool:
    """Whether the outcomes are (quasi-)completely separated in alpha.

    The logistic likelihood then has no maximum (|slope| -> inf): every success is at
    an alpha <= every failure's, or every failure at an alpha <= every success's
    (a single alpha holding both still separates). Needs both outcomes present.
    """
    x, k, n = (np.asarray(v, dtype=float) for v in (x, k, n))
    succ, fail = x[k > 0], x[k < n]
    return bool(succ.max() <= fail.min() or fail.max() <= succ.min())


def alpha_50(alpha, solved, trials, z: float = 1.959963984540054) -> Threshold:
    """Algorithmic threshold: alpha where half the instances are solved.

    alpha: grid points; solved, trials: counts per point. A logistic fit in alpha is
    used when the data are not separated (``separated``: the likelihood then has a
    finite maximum), the fit converges, and its interval is narrower than the grid
    bracket of the crossing; otherwise the crossing is bracketed by the grid
    (``Threshold.method`` says which and why).
    """
    x = np.asarray(alpha, dtype=float)
    k = np.asarray(solved, dtype=float)
    n = np.asarray(trials, dtype=float)
    order = np.argsort(x)
    x, k, n = x[order], k[order], n[order]
    frac = k / n
    above, below = frac >= 0.5, frac < 0.5
    if not above.any():
        return Threshold(float("nan"), float("nan"), float(x[0]), "bracket")
    if not below.any():
        return Threshold(float("nan"), float(x[-1]), float("nan"), "bracket")
    # bracket: last point at or above 1/2 and the first point below it after that
    last_above = x[above].max()
    later = below & (x > last_above)
    first_below = x[later].min() if later.any() else x[below].min()
    lo, hi = sorted((last_above, first_below))
    bracket = Threshold(float((lo + hi) / 2), float(lo), float(hi), "bracket")
    if separated(x, k, n):
        return bracket
    beta, cov, converged = _logistic_fit(x, k, n)
    if not converged:
        return Threshold(bracket.alpha_50, bracket.low, bracket.high,
                         "bracket-unconverged")
    if beta[1] < 0:
        a50 = -beta[0] / beta[1]
        grad = np.array([-1 / beta[1], beta[0] / beta[1] ** 2])
        se = float(np.sqrt(grad @ cov @ grad))
        # a fit resting on few intermediate points can be wider than the grid
        # itself says; the bracket is then the more honest interval
        if 2 * z * se <= hi - lo:
            return Threshold(float(a50), float(a50 - z * se), float(a50 + z * se),
                             "logistic")
    return bracket
