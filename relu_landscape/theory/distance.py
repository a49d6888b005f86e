"""Distance d(z) from z in R^K to the region of correct outputs (docs/science.md §4).

At the continuous-weight RS capacity the typical overlap reaches 1 and
alpha_c = 1 / E_z[d(z)^2], with d(z) the Euclidean distance from z to
{x : sum_l c_l g(x_l) > 0}. Ties (docs/science.md §4): with ``tie="error"`` the
region is open and d is the distance to its closure, {F(x) >= 0 and max over
+1-readout units of x_l >= 0}; with ``tie="success"`` it is {F(x) >= 0}. A margin
(docs/theory_activations.md §3) replaces 0 by theta. Here
F(x) = sum_{l < K/2} relu(x_l) - sum_{l >= K/2} relu(x_l) for ReLU units.

Shapes: z is ``[..., K]``; results are ``[...]``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import integrate, special, stats

# Stand-in for "no breakpoint" in the piecewise-linear root find (finite, so that
# 0 * _FAR stays 0).
_FAR = 1e12


def sign_distance_sq(z: np.ndarray, need: int | None = None) -> np.ndarray:
    """d(z)^2 for sign units: the sum of squares of the m smallest |z_l| among the
    negative z_l, m = how many more positive units are needed (``need`` positive
    units in all, default a majority of an odd K)."""
    K = z.shape[-1]
    neg = np.where(z < 0, -z, np.inf)
    need = (K + 1) // 2 if need is None else need
    need = np.maximum(0, need - np.sum(z >= 0, axis=-1))
    ordered = np.sort(neg, axis=-1)
    take = np.arange(K) < need[..., None]
    return np.sum(np.where(take, ordered, 0.0) ** 2, axis=-1)


def sign_mean_distance_sq(K: int, need: int | None = None) -> float:
    """E_z[d(z)^2] for sign units, by one 1-D quadrature (no sampling).

    ``need``: the fewest positive units of a correct output, 1 <= need <= K (default
    a majority, (K + 1) // 2; a margin raises it, energetic.sign_needed). With n
    negative units (prob C(K, n) / 2^K) d^2 is the sum of the m = need - (K - n)
    smallest of n half-normal squares. The densities of those order statistics sum to
    n f(x) P[Bin(n - 1, F(x)) <= m - 1] (F, f: half-normal CDF and density).
    """
    need = (K + 1) // 2 if need is None else need
    ns = np.arange(K - need + 1, K + 1)
    weights = np.exp(
        special.gammaln(K + 1)
        - special.gammaln(ns + 1)
        - special.gammaln(K - ns + 1)
        - K * math.log(2.0)
    )
    missing = need - (K - ns)

    def integrand(x: float) -> float:
        cdf, pdf = (
            math.erf(x / math.sqrt(2.0)),
            2.0 * math.exp(-x * x / 2) / math.sqrt(2 * math.pi),
        )
        tail = stats.binom.cdf(missing - 1, ns - 1, cdf)
        return x * x * pdf * float(np.sum(weights * ns * tail))

    value, _ = integrate.quad(
        integrand, 0.0, 40.0, epsabs=1e-13, epsrel=1e-11, limit=400
    )
    return value


def _pattern_mu(
    top_plus: np.ndarray, r_minus: np.ndarray, theta: float = 0.0
) -> np.ndarray:
    """Smallest mu >= 0 with sum relu(a_i + mu) - sum relu(r_j - mu) >= theta, exactly
    (nan where no mu reaches theta: no active +1 unit and theta > 0).

    top_plus: ``[M, k]`` fields a of the active +1-readout units; r_minus: ``[M, h]``
    relu of the -1-readout fields. The left side minus the right is increasing and
    piecewise linear in mu with breakpoints -a_i and r_j; the root is read off the
    sorted breakpoints (exact up to rounding); a last breakpoint at _FAR covers a root
    beyond them all (theta > 0).
    """
    far = np.full_like(r_minus[:, :1], _FAR)
    bp = np.concatenate([-top_plus, r_minus, far], axis=-1)
    kind = np.concatenate(
        [np.ones_like(top_plus), -np.ones_like(r_minus), np.zeros_like(far)], axis=-1
    )
    valid = bp > 0
    bp, kind = np.where(valid, bp, _FAR), np.where(valid, kind, 0.0)
    order = np.argsort(bp, axis=-1)
    bp, kind = np.take_along_axis(bp, order, -1), np.take_along_axis(kind, order, -1)
    f0 = np.maximum(top_plus, 0).sum(-1) - r_minus.sum(-1) - theta
    slope0 = np.sum(top_plus >= 0, -1) + np.sum(r_minus > 0, -1)
    slopes = slope0[:, None] + np.cumsum(kind, -1) - kind  # slope on (bp_{t-1}, bp_t)
    left = np.concatenate([np.zeros_like(bp[:, :1]), bp[:, :-1]], -1)
    f_at = f0[:, None] + np.cumsum(slopes * (bp - left), -1)  # f at each bp
    # f(max r_j) >= -theta exactly; pin it so rounding cannot hide the root.
    r_max = np.max(r_minus, axis=-1, initial=0.0)[:, None]
    f_at = np.where(bp >= r_max, np.maximum(f_at, -theta), f_at)
    reached = f_at >= 0
    first = np.argmax(reached, axis=-1)
    f_left = np.where(
        first > 0,
        np.take_along_axis(f_at, np.maximum(first - 1, 0)[:, None], -1)[:, 0],
        f0,
    )
    lo = np.take_along_axis(left, first[:, None], -1)[:, 0]
    slope = np.take_along_axis(slopes, first[:, None], -1)[:, 0]
    mu = lo - f_left / np.maximum(slope, 1)
    mu = np.where(reached.any(-1), np.maximum(mu, 0.0), np.nan)
    return np.where(f0 >= 0, 0.0, mu)


def relu_distance_sq(
    z: np.ndarray, tie: str = "error", theta: float = 0.0
) -> np.ndarray:
    """d(z)^2 for ReLU units (K even, readout +1 on the first K/2 units, -1 after) to
    the closure of {F(x) > theta} (theta = margin * std * sqrt(K); 0 by default).

    Exact: fix the number k of active +1-readout units; an exchange argument shows
    they are the k largest z_l of that half, and the -1-readout half is a convex
    water-filling. Each pattern is a convex projection solved by one common
    multiplier mu (:func:`_pattern_mu`); d^2 is the minimum over k (k >= 1 for
    ``tie="error"``, k >= 0 for ``"success"``; for theta != 0 the tie is moot: k >= 1
    when theta > 0, k >= 0 when theta < 0): K/2 + 1 patterns instead of 2^K, checked
    against :func:`relu_distance_sq_enumerated` in the tests.
    """
    shape, K = z.shape[:-1], z.shape[-1]
    flat = z.reshape(-1, K)
    half = K // 2
    plus = -np.sort(-flat[:, :half], axis=-1)  # descending
    r_minus = np.maximum(flat[:, half:], 0.0)
    best = np.full(flat.shape[0], np.inf)
    empty_ok = theta < 0 or (theta == 0 and tie == "success")
    for k in range(0 if empty_ok else 1, half + 1):
        mu = _pattern_mu(plus[:, :k], r_minus, theta)
        feasible = ~np.isnan(mu)
        mu = np.where(feasible, mu, 0.0)
        cost = np.sum((np.maximum(plus[:, :k] + mu[:, None], 0) - plus[:, :k]) ** 2, -1)
        cost += np.sum(np.maximum(plus[:, k:], 0) ** 2, -1)
        cost += np.sum(np.minimum(mu[:, None], r_minus) ** 2, -1)
        best = np.minimum(best, np.where(feasible, cost, np.inf))
    return best.reshape(shape)


def relu_distance_sq_enumerated(
    z: np.ndarray, tie: str = "error", theta: float = 0.0
) -> np.ndarray:
    """Reference d(z)^2 for ReLU units by enumerating all 2^K activation patterns.

    Slow, for tests: per pattern (active set S) the convex projection shifts active
    +1 units up and active -1 units down by mu (clipped at 0), inactive units go to
    min(z_l, 0); mu by bisection. Shares no code with :func:`relu_distance_sq`.
    """
    shape, K = z.shape[:-1], z.shape[-1]
    flat = z.reshape(-1, K)
    sign = np.where(np.arange(K) < K // 2, 1.0, -1.0)
    best = np.full(flat.shape[0], np.inf)
    for pattern in itertools.product([False, True], repeat=K):
        active = np.array(pattern)
        empty_ok = theta < 0 or (theta == 0 and tie == "success")
        if not empty_ok and not active[: K // 2].any():
            continue

        def project(mu: np.ndarray, active: np.ndarray = active) -> np.ndarray:
            moved = np.maximum(flat + sign * mu[:, None], 0.0)
            return np.where(active, moved, np.minimum(flat, 0.0))

        def margin(mu: np.ndarray, active: np.ndarray = active) -> np.ndarray:
            return np.sum(np.where(active, sign * project(mu), 0.0), -1)

        lo, hi = (
            np.zeros(flat.shape[0]),
            np.full(flat.shape[0], np.abs(flat).sum(-1) + abs(theta) + 1.0),
        )
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            ok = margin(mid) >= theta
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        mu = np.where(margin(lo) >= theta, lo, hi)
        cost = np.sum((project(mu) - flat) ** 2, -1)
        best = np.minimum(best, np.where(margin(mu) >= theta, cost, np.inf))
    return best.reshape(shape)
