"""Finite-K local fields of the geometry theory (docs/local_entropy.md §4).

At finite K the overlaps are per unit (all units alike) and every energetic term is
an average over per-unit Gaussian fields h in R^K of ln Z(h; sigma), with

    Z(h; sigma) = P_w[ sum_l c_l g(h_l + sigma w_l) > 0 ],  w ~ N(0, I_K),

the inner probability of docs/science.md §4 (``energetic.log_inner_sign`` /
``log_inner_relu``). This module gives ln Z with its gradient and the diagonal of
its Hessian in h (sign: exact dynamic programme with leave-one-out pivots; ReLU:
central differences of the lattice value), and samples the reference fields
conditioned on a correct output (the measure x | z of the Franz-Parisi term).

Sampling x | z, u = sqrt(q0) z + sqrt(1 - q0) x correct: sign units exactly (each
unit's sign drawn given the previous ones from the law of the remaining count, then
its value from the truncated Gaussian); ReLU units on the lattice of the inner
probability: the group sums (S+, S-) drawn from their lattice laws conditioned on
S+ > S- (lattice ties counted half, as in ``log_inner_relu``), each group's units
drawn backwards given the group sum, each unit's value drawn inside its lattice
cell. The ReLU sampler's error is the lattice's: the boundary S+ = S- is resolved to
about one cell (tests compare it with rejection sampling).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft, special

from relu_landscape.theory.energetic import log_inner_relu

_LOG_2PI = math.log(2.0 * math.pi)
# Central-difference step for the ReLU gradient, in units of sigma: the lattice value
# is smooth in h; truncation ~ (step)^2, rounding ~ 1e-13 / step^2, both < 1e-6.
_FD_STEP = 0.01
# Rows per chunk of the ReLU lattice sampler (bounds memory to ~100 MB).
_CHUNK = 2048


def _count_laws(log_p: np.ndarray, log_m: np.ndarray, reverse: bool) -> np.ndarray:
    """Log laws of the count of positive units among prefixes (or suffixes).

    log_p, log_m: ``[M, K]`` log P(unit positive / negative). Returns
    ``[K + 1, M, K + 1]``: entry j is the law of the count over units 0..j-1
    (``reverse``: over units j..K-1).
    """
    M, K = log_p.shape
    laws = np.full((K + 1, M, K + 1), -np.inf)
    order = range(K - 1, -1, -1) if reverse else range(K)
    cur = np.full((M, K + 1), -np.inf)
    cur[:, 0] = 0.0
    laws[K if reverse else 0] = cur
    for unit in order:
        new = cur + log_m[:, unit, None]
        new[:, 1:] = np.logaddexp(new[:, 1:], cur[:, :-1] + log_p[:, unit, None])
        cur = new
        laws[unit if reverse else unit + 1] = cur
    return laws


def sign_inner(h: np.ndarray, sigma: float) -> tuple[np.ndarray, ...]:
    """(ln Z, d ln Z / dh_l, d^2 ln Z / dh_l^2) for a majority of K sign units.

    h ``[M, K]`` (K odd), sigma > 0. Unit l is pivotal when exactly (K - 1)/2 of the
    others are positive, so dZ/dh_l = phi(h_l/sigma)/sigma * P(pivot_l) and
    d^2 Z/dh_l^2 = -(h_l/sigma^2) dZ/dh_l (exact, in log space).
    """
    M, K = h.shape
    a = h / sigma
    log_p, log_m = special.log_ndtr(a), special.log_ndtr(-a)
    prefix = _count_laws(log_p, log_m, reverse=False)
    suffix = _count_laws(log_p, log_m, reverse=True)
    need = (K + 1) // 2
    log_z = special.logsumexp(prefix[K][:, need:], axis=-1)
    # P(others count = need - 1) = sum_c prefix_l(c) suffix_{l+1}(need - 1 - c)
    c = np.arange(need)
    pivot = special.logsumexp(
        prefix[:K][:, :, c] + suffix[1:][:, :, need - 1 - c], axis=-1
    ).T  # [M, K]
    grad = np.exp(-0.5 * a * a - 0.5 * _LOG_2PI + pivot - log_z[:, None]) / sigma
    hess = -(h / sigma**2) * grad - grad * grad
    return log_z, grad, hess


def relu_inner(
    h: np.ndarray, sigma: float, *, tie: str, cells: int
) -> tuple[np.ndarray, ...]:
    """(ln Z, gradient, Hessian diagonal) for ReLU units by central differences.

    h ``[M, K]`` (K even); the lattice value (``log_inner_relu``) at h and at
    h +- step e_l, step = _FD_STEP * sigma.
    """
    M, K = h.shape
    step = _FD_STEP * sigma
    shifts = np.concatenate([np.zeros((1, K)), step * np.eye(K), -step * np.eye(K)])
    vals = log_inner_relu(h[None] + shifts[:, None, :], sigma, tie, cells)
    centre, up, down = vals[0], vals[1 : K + 1].T, vals[K + 1 :].T
    grad = (up - down) / (2.0 * step)
    hess = (up - 2.0 * centre[:, None] + down) / step**2
    return centre, grad, hess


def inner(
    activation: str, h: np.ndarray, sigma: float, *, tie: str = "error", cells: int = 96
) -> tuple[np.ndarray, ...]:
    """(ln Z, gradient, Hessian diagonal) of the inner probability at fields h."""
    if activation == "sign":
        return sign_inner(h, sigma)
    return relu_inner(h, sigma, tie=tie, cells=cells)


def _truncated(c: np.ndarray, u: np.ndarray, above: np.ndarray) -> np.ndarray:
    """x ~ N(0, 1) conditioned on x > c (``above``) or x < c, by inverse CDF."""
    log_u = np.log(u)
    hi = -special.ndtri_exp(log_u + special.log_ndtr(-c))
    lo = special.ndtri_exp(log_u + special.log_ndtr(c))
    return np.where(above, hi, lo)


def _interval(lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """x ~ N(0, 1) conditioned on lo < x <= hi, by inverse CDF (both tails stable)."""
    upper = lo > 0  # work with the upper tail H = 1 - Phi there
    H_lo, H_hi = special.ndtr(-lo), special.ndtr(-hi)
    x_up = -special.ndtri(np.clip(H_lo - u * (H_lo - H_hi), 1e-300, 1.0))
    P_lo, P_hi = special.ndtr(lo), special.ndtr(hi)
    x_dn = special.ndtri(np.clip(P_lo + u * (P_hi - P_lo), 1e-300, 1.0 - 1e-16))
    return np.clip(np.where(upper, x_up, x_dn), lo, hi)


def sign_reference(z: np.ndarray, u: np.ndarray, q0: float) -> np.ndarray:
    """x | z with a correct majority of sign(sqrt(q0) z_l + sqrt(1-q0) x_l), exactly.

    z ``[M, K]``, u ``[M, 2K]`` uniforms (the first K choose the signs, the rest the
    values). Returns x ``[M, K]``.
    """
    M, K = z.shape
    c = -math.sqrt(q0 / (1.0 - q0)) * z  # unit l positive iff x_l > c_l
    log_p, log_m = special.log_ndtr(-c), special.log_ndtr(c)
    suffix = _count_laws(log_p, log_m, reverse=True)  # [K + 1, M, K + 1]
    # tails[j][:, n] = ln P(count over units j.. >= n), n = 0 .. K + 1
    tails = np.concatenate(
        [
            np.flip(np.logaddexp.accumulate(np.flip(suffix, -1), axis=-1), -1),
            np.full((K + 1, M, 1), -np.inf),
        ],
        axis=-1,
    )
    need = (K + 1) // 2
    count = np.zeros(M, dtype=int)
    positive = np.zeros((M, K), dtype=bool)
    rows = np.arange(M)
    for unit in range(K):
        rest = tails[unit + 1]
        lp = log_p[:, unit] + rest[rows, np.clip(need - count - 1, 0, K + 1)]
        lm = log_m[:, unit] + rest[rows, np.clip(need - count, 0, K + 1)]
        prob = np.exp(lp - np.logaddexp(lp, lm))
        positive[:, unit] = u[:, unit] < prob
        count += positive[:, unit]
    return _truncated(c, u[:, K:], positive)


def _sample_index(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn from the (unnormalised) discrete law ``weights [M, n]``."""
    cum = np.cumsum(weights, axis=-1)
    target = u * cum[:, -1]
    return np.minimum((cum < target[:, None]).sum(axis=-1), weights.shape[1] - 1)


def _suffix_laws(units: np.ndarray) -> np.ndarray:
    """Laws of the lattice sums of units j..k-1 for each j: ``[M, k, n]`` from
    ``units [M, k, n]`` (FFT convolution, clipped at 0)."""
    M, k, n = units.shape
    nfft = fft.next_fast_len(2 * n, real=True)
    spec = fft.rfft(units, nfft, axis=-1)
    suffix = np.flip(np.cumprod(np.flip(spec, 1), axis=1), 1)
    return np.clip(fft.irfft(suffix, nfft, axis=-1)[..., :n], 0.0, None)


def _group_draw(
    units: np.ndarray, suffix: np.ndarray, total: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Unit lattice indices of one group given its sum index ``total`` (backwards).

    units, suffix ``[M, k, n]``; u ``[M, k - 1]`` uniforms. Returns ``[M, k]``.
    """
    M, k, n = units.shape
    idx = np.arange(n)
    out = np.zeros((M, k), dtype=int)
    rest = total.copy()
    rows = np.arange(M)[:, None]
    for j in range(k - 1):
        left = rest[:, None] - idx
        weights = units[:, j] * np.where(
            left >= 0, suffix[:, j + 1][rows, np.clip(left, 0, n - 1)], 0.0
        )
        out[:, j] = _sample_index(weights, u[:, j])
        rest = rest - out[:, j]
    # the last unit takes the remainder; an even index > 0 (rounding) goes to its cell
    even = (rest > 0) & (rest % 2 == 0)
    out[:, k - 1] = np.where(even, rest - 1, np.maximum(rest, 0))
    return out


def relu_reference(
    z: np.ndarray, u: np.ndarray, q0: float, *, tie: str = "error", cells: int = 128
) -> np.ndarray:
    """x | z with sum_{l<K/2} relu(u_l) > sum_{l>=K/2} relu(u_l), on the lattice.

    z ``[M, K]``, u ``[M, 2K]`` uniforms. Lattice as in ``energetic``: the mass of a
    unit in cell ((j-1) delta, j delta] sits at index 2j - 1, the atom u <= 0 at 0.
    """
    out = np.empty_like(z)
    for start in range(0, z.shape[0], _CHUNK):
        sl = slice(start, start + _CHUNK)
        out[sl] = _relu_reference_chunk(z[sl], u[sl], q0, tie, cells)
    return out


def _relu_reference_chunk(
    z: np.ndarray, u: np.ndarray, q0: float, tie: str, cells: int
) -> np.ndarray:
    M, K = z.shape
    k = K // 2
    b = math.sqrt(1.0 - q0)
    h = math.sqrt(q0) * z
    spread = b * (0.4 * k + 6.0 * math.sqrt(k) + 3.0)
    pos = np.maximum(h, 0.0)
    delta = (np.maximum(pos[:, :k].sum(1), pos[:, k:].sum(1)) + spread) / cells
    edges = delta[:, None, None] * np.arange(cells + 1)
    cdf = special.ndtr((edges - h[:, :, None]) / b)
    n = 2 * cells + 1
    units = np.zeros((M, K, n))
    units[..., 0] = cdf[..., 0]
    units[..., 1::2] = np.diff(cdf, axis=-1)
    plus, minus = _suffix_laws(units[:, :k]), _suffix_laws(units[:, k:])
    law_p, law_m = plus[:, 0], minus[:, 0]
    law_p[:, 0], law_m[:, 0] = np.prod(cdf[:, :k, 0], 1), np.prod(cdf[:, k:, 0], 1)
    # joint weight of (a, b): law_p(a) law_m(b) ([b < a] + [b = a] / 2), a >= 1
    # (tie="success" adds the a = b = 0 atom)
    lp = law_p.copy()
    atom = lp[:, 0].copy()
    lp[:, 0] = 0.0
    above = np.cumsum(lp[:, ::-1], axis=-1)[:, ::-1] - lp  # sum_{a > b}
    weight_b = law_m * (above + 0.5 * lp)
    if tie == "success":
        weight_b[:, 0] += law_m[:, 0] * atom
    b_idx = _sample_index(weight_b, u[:, 0])
    idx = np.arange(n)
    weight_a = lp * ((idx > b_idx[:, None]) + 0.5 * (idx == b_idx[:, None]))
    if tie == "success":
        weight_a[:, 0] = np.where(b_idx == 0, atom, 0.0)
    a_idx = _sample_index(weight_a, u[:, 1])
    cell = np.concatenate(
        [
            _group_draw(units[:, :k], plus, a_idx, u[:, 2 : k + 1]),
            _group_draw(units[:, k:], minus, b_idx, u[:, k + 1 : 2 * k]),
        ],
        axis=1,
    )
    j = (cell + 1) // 2  # cell ((j-1) delta, j delta]; j = 0 is the atom
    lo = np.where(j > 0, ((j - 1) * delta[:, None] - h) / b, -np.inf)
    hi = np.where(j > 0, (j * delta[:, None] - h) / b, -h / b)
    return _interval(lo, hi, u[:, K:])


def reference(
    activation: str,
    z: np.ndarray,
    u: np.ndarray,
    q0: float,
    *,
    tie: str = "error",
    cells: int = 128,
) -> np.ndarray:
    """Reference noise x | z given a correct output (``sign_reference`` /
    ``relu_reference``)."""
    if activation == "sign":
        return sign_reference(z, u, q0)
    return relu_reference(z, u, q0, tie=tie, cells=cells)
