"""Finite-K local fields of the geometry theory (docs/local_entropy.md §4).

At finite K the overlaps are per unit (all units alike) and every energetic term is
an average over per-unit Gaussian fields h in R^K of ln Z(h; sigma), with

    Z(h; sigma) = P_w[ sum_l c_l g(h_l + sigma w_l) > 0 ],  w ~ N(0, I_K),

the inner probability of docs/science.md §4 (``energetic.log_inner_sign`` /
``log_inner_relu``). This module gives ln Z with its gradient and the diagonal of
its Hessian in h (sign: exact dynamic programme with leave-one-out pivots), ReLU's
value, gradient and full Hessian for the Franz-Parisi and dense terms alike (K = 2
exactly, ``relu_pair_inner``: a one-dimensional integral and closed-form
derivatives; K >= 4, ``relu_lattice_inner``: the lattice with analytic derivatives
of its cell masses; ``relu_inner`` dispatches, ``inner`` keeps the diagonal), and
samples the reference fields conditioned on a correct output (the measure x | z of
the Franz-Parisi term).

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

import functools
import math

import numpy as np
from scipy import fft, special

_LOG_2PI = math.log(2.0 * math.pi)
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


def _log_phi(v: np.ndarray) -> np.ndarray:
    return -0.5 * v * v - 0.5 * _LOG_2PI


def _log_pair_mass(a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """ln int_{-a}^inf phi(t) Phi(e + t) dt = ln P[w1 > -a, w2 < e + w1], elementwise.

    The integrand is log-concave (curvature in [-2, -1]): Gauss-Legendre on a window
    from its mode on the half-line (Newton on t = phi/Phi (e + t), or the end -a) to
    where it has fallen by e^-40 or more (length _PAIR_SPAN, shorter where it starts
    with a steep slope), 2 x _PAIR_NODES nodes, all in log space: error ~1e-13 in
    ln Z for any a, e (no cancellation: Z can be 1e-300 with full relative precision).
    """
    t = np.maximum(0.0, -0.5 * e)
    for _ in range(6):  # F(t) = t - r(e + t), F' = 1 + r (v + r) in (1, 2)
        v = e + t
        r = np.exp(_log_phi(v) - special.log_ndtr(v))
        t = t - (t - r) / (1.0 + r * (v + r))
    mode = np.maximum(t, -a)
    v = e + mode
    slope = -mode + np.exp(_log_phi(v) - special.log_ndtr(v))  # <= 0 at the mode
    lo = np.maximum(-a, t - _PAIR_SPAN)
    hi = mode + np.minimum(_PAIR_SPAN, 40.0 / np.maximum(-slope, 1e-300))
    nodes, weights = _pair_rule()
    half = (0.5 * (hi - lo))[..., None]
    tt = 0.5 * (hi + lo)[..., None] + half * nodes
    log_f = _log_phi(tt) + special.log_ndtr(e[..., None] + tt) + np.log(half * weights)
    top = log_f.max(axis=-1)
    return top + np.log(np.exp(log_f - top[..., None]).sum(axis=-1))


# Window half-length of _log_pair_mass: the log integrand falls by >= span^2 / 2 = 40
# over it (curvature <= -1). Nodes per half of the window: 28 give 1e-13 in ln Z
# against adaptive quadrature (24: 1.4e-13; 20: 3e-10) over a, e in +-40.
_PAIR_SPAN = 9.0
_PAIR_NODES = 28


@functools.cache
def _pair_rule() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre on [-1, 1] as two rules on [-1, 0] and [0, 1] (the window's
    halves: the mode sits near the middle of an interior window)."""
    v, w = special.roots_legendre(_PAIR_NODES)
    return np.concatenate([(v - 1.0) / 2.0, (v + 1.0) / 2.0]), np.concatenate([w, w]) / 2.0


def relu_pair_inner(
    h: np.ndarray, sigma: float, *, tie: str = "error"
) -> tuple[np.ndarray, ...]:
    """(ln Z ``[M]``, gradient ``[M, 2]``, Hessian ``[M, 2, 2]``) for K = 2 ReLU units.

    Z = P[relu(u1) > relu(u2)] = P[u1 > 0, u1 > u2], u_l = h_l + sigma w_l
    (tie="success" adds the atom P[u1 <= 0, u2 <= 0]). With alpha = h1/sigma,
    gamma = -h2/sigma, e = (h1 - h2)/sigma, beta = e/sqrt 2, delta = (h1 + h2)/(sigma
    sqrt 2): Z = int_{-alpha}^inf phi(t) Phi(e + t) dt (``_log_pair_mass``) and,
    exactly, sigma dZ/dh1 = P + Q / sqrt 2, sigma dZ/dh2 = -Q / sqrt 2 with
    P = phi(alpha) Phi(gamma) (u1 = 0 with u2 < 0), Q = phi(beta) Phi(delta)
    (u1 = u2 > 0), and the Hessian from their derivatives; every term is a product
    of phi and Phi, taken relative to Z in log space.
    """
    alpha, gamma = h[:, 0] / sigma, -h[:, 1] / sigma
    e = alpha + gamma
    beta, delta = e / math.sqrt(2.0), (h[:, 0] + h[:, 1]) / (sigma * math.sqrt(2.0))
    log_z = _log_pair_mass(alpha, e)
    atom = special.log_ndtr(-alpha) + special.log_ndtr(gamma)
    if tie == "success":
        log_z = np.logaddexp(log_z, atom)
    lpa, lpg = _log_phi(alpha), _log_phi(gamma)
    p = np.exp(lpa + special.log_ndtr(gamma) - log_z)  # P / Z
    q = np.exp(_log_phi(beta) + special.log_ndtr(delta) - log_z)  # Q / Z
    qq = np.exp(_log_phi(beta) + _log_phi(delta) - log_z)  # phi(beta) phi(delta) / Z
    pp = np.exp(lpa + lpg - log_z)  # phi(alpha) phi(gamma) / Z
    s2 = math.sqrt(2.0)
    # sigma^2 d2Z/dh_i dh_j / Z: d/dh1 of (P, Q) sigma = (-alpha P, (qq - beta Q)/sqrt 2),
    # d/dh2 of (P, Q) sigma = (-pp, (qq + beta Q)/sqrt 2)
    z1, z2 = p + q / s2, -q / s2
    z11 = -alpha * p + 0.5 * (qq - beta * q)
    z12 = -pp + 0.5 * (qq + beta * q)
    z22 = -0.5 * (qq + beta * q)
    if tie == "success":  # the atom T = Phi(-alpha) Phi(gamma) and its derivatives / Z
        t1 = -p
        t2 = -np.exp(special.log_ndtr(-alpha) + lpg - log_z)
        z1, z2 = z1 + t1, z2 + t2
        z11, z12, z22 = z11 - alpha * t1, z12 + pp, z22 + gamma * t2
    grad = np.stack([z1, z2], axis=1) / sigma
    hess = np.empty((h.shape[0], 2, 2))
    hess[:, 0, 0], hess[:, 0, 1], hess[:, 1, 1] = z11, z12, z22
    hess[:, 1, 0] = z12
    hess = hess / sigma**2 - grad[:, :, None] * grad[:, None, :]
    return log_z, grad, hess


def _relu_lattice_terms(
    h: np.ndarray, sigma: float, tie: str, cells: int, full: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Z ``[M]``, dZ/dh ``[M, K]``, d2Z/dh2 ``[M, K, K]``, or its diagonal ``[M, K]``
    unless ``full``) on one lattice of ``cells``.

    Every unit on the half-lattice from 0 (as ``energetic._unit_laws`` for ReLU: the
    atom relu = 0 at index 0, the mass of cell ((j-1) delta, j delta] at 2j - 1),
    one delta per row covering each group's summed reach relu(h_l + 7 sigma). The
    cell masses are differences of C_j = Phi((j delta - h)/sigma), so their
    derivatives in h_l are exact: C' = -phi / sigma, C'' = -z phi / sigma^2. Z is
    bilinear in the groups' laws (P, M): sum_a P_a (M[b < a] + M_a / 2), minus
    P_0 M_0 / 2 (both groups off: a failure; tie="success" adds it instead), and
    each group's law is the convolution of its units' laws, multilinear in them:
    a derivative replaces the laws of the units it acts on by their derivatives
    (FFT products). The lattice's geometry (delta) is held fixed, so these are the
    derivatives of the lattice value at fixed geometry, which approximate those of
    Z to the lattice's order.
    """
    M, K = h.shape
    k = K // 2
    pos = np.maximum(h + _RELU_REACH * sigma, 0.0)
    delta = np.maximum(np.maximum(pos[:, :k].sum(1), pos[:, k:].sum(1)), 1e-9) / cells
    z = (delta[:, None, None] * np.arange(cells + 1) - h[:, :, None]) / sigma
    phi = np.exp(_log_phi(z))
    n = 2 * cells + 1
    laws = np.zeros((3, M, K, n))  # law, d/dh_l, d2/dh_l2 of each unit
    for order, cum in enumerate((special.ndtr(z), -phi / sigma, -z * phi / sigma**2)):
        laws[order, ..., 0] = cum[..., 0]
        laws[order, ..., 1::2] = np.diff(cum, axis=-1)
    nfft = fft.next_fast_len(n, real=True)
    spec = fft.rfft(laws, nfft, axis=-1)  # [3, M, K, F]

    def group(orders: np.ndarray, units: range) -> np.ndarray:
        """Law of the group's sum with unit u's law differentiated orders[u] times."""
        prod = np.prod([spec[orders[u], :, u] for u in units], axis=0)
        law = fft.irfft(prod, nfft, axis=-1)[:, :n]
        law[:, 0] = np.prod([laws[orders[u], :, u, 0] for u in units], axis=0)
        return law

    def bilinear(p: np.ndarray, m: np.ndarray) -> np.ndarray:
        weight = np.cumsum(m, axis=-1) - 0.5 * m
        atom = (0.5 if tie == "success" else -0.5) * p[:, 0] * m[:, 0]
        return np.sum(p * weight, axis=-1) + atom

    plus, minus = range(k), range(k, K)
    none = np.zeros(K, dtype=int)
    base_p, base_m = group(none, plus), group(none, minus)
    value = bilinear(base_p, base_m)
    first = [group(none + (np.arange(K) == u), plus if u < k else minus) for u in range(K)]
    grad = np.stack(
        [bilinear(first[u], base_m) if u < k else bilinear(base_p, first[u]) for u in range(K)],
        axis=1,
    )
    hess = np.empty((M, K, K) if full else (M, K))
    for i in range(K):
        for j in range(i, K if full else i + 1):
            if (i < k) != (j < k):  # one unit in each group
                entry = bilinear(first[i], first[j])
            else:
                orders = none + (np.arange(K) == i) + (np.arange(K) == j)
                law = group(orders, plus if i < k else minus)
                entry = bilinear(law, base_m) if i < k else bilinear(base_p, law)
            if full:
                hess[:, i, j] = hess[:, j, i] = entry
            else:
                hess[:, i] = entry
    return value, grad, hess


_RELU_REACH = 7.0  # each unit's values followed to h + 7 sigma (as energetic._REACH)


def relu_lattice_inner(
    h: np.ndarray, sigma: float, *, tie: str = "error", cells: int = 64, full: bool = True
) -> tuple[np.ndarray, ...]:
    """(ln Z ``[M]``, gradient ``[M, K]``, Hessian ``[M, K, K]``) for K even ReLU units;
    the Hessian's diagonal ``[M, K]`` alone unless ``full`` (K instead of
    K (K + 1) / 2 second-order group laws).

    The lattice value and its derivatives at fixed geometry
    (``_relu_lattice_terms``) at ``cells`` and ``cells // 2``, Richardson-extrapolated
    as ``energetic.log_inner_lattice`` (O(delta^2) errors of value and derivatives
    alike; where Z < 1e-8 the fine lattice alone); gradient Z'/Z and Hessian
    Z''/Z - grad grad^T. One lattice pass per resolution instead of the
    1 + 2K + 2K(K - 1) shifted values of finite differences. Rows in chunks that
    bound each array to ~32 MB.
    """
    M, K = h.shape
    out = (np.empty(M), np.empty((M, K)), np.empty((M, K, K) if full else (M, K)))
    chunk = max(1, 2**22 // (K * K * (2 * cells + 1)))
    for start in range(0, M, chunk):
        rows = slice(start, start + chunk)
        fine = _relu_lattice_terms(h[rows], sigma, tie, cells, full)
        coarse = _relu_lattice_terms(h[rows], sigma, tie, cells // 2, full)
        use = fine[0] > 1e-8
        z, dz, d2z = (
            np.where(use.reshape((-1,) + (1,) * (f.ndim - 1)), (4.0 * f - c) / 3.0, f)
            for f, c in zip(fine, coarse, strict=True)
        )
        z = np.maximum(z, 1e-300)
        # below the lattice's resolution (Z < ~1e-10, FFT rounding) the derivatives
        # are not resolved and may overflow; callers' step control rejects those rows
        with np.errstate(over="ignore", invalid="ignore"):
            grad = dz / z[:, None]
            out[0][rows] = np.log(z)
            out[1][rows] = grad
            if full:
                hess = d2z / z[:, None, None] - grad[:, :, None] * grad[:, None, :]
            else:
                hess = d2z / z[:, None] - grad * grad
            out[2][rows] = hess
    return out


def inner(
    activation: str, h: np.ndarray, sigma: float, *, tie: str = "error", cells: int = 96
) -> tuple[np.ndarray, ...]:
    """(ln Z ``[M]``, gradient ``[M, K]``, Hessian diagonal ``[M, K]``) at fields h:
    ``sign_inner`` (exact) or ``relu_inner``. The Franz-Parisi term needs the
    diagonal only."""
    if activation == "sign":
        return sign_inner(h, sigma)
    return relu_inner(h, sigma, tie=tie, cells=cells, full=False)


def relu_inner(
    h: np.ndarray, sigma: float, *, tie: str = "error", cells: int = 96, full: bool = True
) -> tuple[np.ndarray, ...]:
    """(ln Z, gradient, Hessian, or its diagonal unless ``full``) of K even ReLU
    units: ``relu_pair_inner`` at K = 2 (exact; ``cells`` unused),
    ``relu_lattice_inner`` at ``cells`` beyond (the lattice's O(delta^2) error)."""
    if h.shape[1] > 2:
        return relu_lattice_inner(h, sigma, tie=tie, cells=cells, full=full)
    log_z, grad, hess = relu_pair_inner(h, sigma, tie=tie)
    return log_z, grad, hess if full else np.diagonal(hess, axis1=1, axis2=2)


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
