"""RS energetic term G_E(q) of the tree committee machine (docs/science.md §4).

    G_E(q) = E_{z in R^K} ln P_u[ sum_l c_l g(sqrt(q) z_l + sqrt(1-q) u_l) > 0 ]

sign units: g = sign, c_l = +1, K odd (majority vote). ReLU units: g = max(0, x),
K even, c_l = +1 on the first K/2 units and -1 on the rest. ``tie="error"`` is the
strict inequality (Theta(0) = 0, the project default), ``tie="success"`` counts
Delta = 0 as correct. For K = math.inf the output field is Gaussian with overlap
Q = kappa(q) and G_E(q) = E_z ln H(-sqrt(Q / (1 - Q)) z).

The inner probability Z(h) (h = sqrt(q) z) is exact for sign units (a dynamic
programme over the count of positive units, in log space) and a lattice convolution
for ReLU units; the outer expectation uses a :class:`GaussPoints` set.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft, integrate, special

from relu_landscape.theory.gauss import GaussPoints

# Floor on the inner probability: FFT rounding leaves ~1e-16 absolute error, so
# ln Z is meaningful only above ~1e-13; the floor only prevents ln(0).
_Z_FLOOR = 1e-300
# Rows of z processed at once by the ReLU lattice (bounds memory to ~100 MB).
_CHUNK = 1024


def kappa(activation: str, q: np.ndarray | float) -> np.ndarray:
    """Wide-limit kernel Q = kappa(q) = Cov(g(x), g(y)) / Var(g(x)), corr(x, y) = q.

    sign: (2/pi) arcsin q; relu: [sqrt(1-q^2) + q (pi - arccos q) - 1] / (pi - 1);
    linear (the perceptron, used as a check): q. docs/science.md §4.
    """
    q = np.asarray(q, dtype=float)
    if activation == "sign":
        return 2.0 / math.pi * np.arcsin(q)
    if activation == "relu":
        root = np.sqrt(np.clip(1.0 - q * q, 0.0, None))
        return (root + q * (math.pi - np.arccos(q)) - 1.0) / (math.pi - 1.0)
    if activation == "linear":
        return q
    raise ValueError(f"unknown activation {activation!r}")


def kappa_prime(activation: str, q: np.ndarray | float) -> np.ndarray:
    """d kappa / dq; at q = 1 it is E[g'(x)^2] / Var(g(x)) (inf for sign)."""
    q = np.asarray(q, dtype=float)
    if activation == "sign":
        with np.errstate(divide="ignore"):
            return 2.0 / math.pi / np.sqrt(1.0 - q * q)
    if activation == "relu":
        return (math.pi - np.arccos(q)) / (math.pi - 1.0)
    if activation == "linear":
        return np.ones_like(q)
    raise ValueError(f"unknown activation {activation!r}")


def log_inner_sign(h: np.ndarray, b: float) -> np.ndarray:
    """ln P[majority of K units positive], unit l positive w.p. Phi(h_l / b).

    h: ``[..., K]`` local fields sqrt(q) z, b = sqrt(1 - q) > 0, K odd. Exact
    dynamic programme over the count of positive units, carried in log space so that
    tiny probabilities (q near 1) keep their relative precision.
    """
    K = h.shape[-1]
    log_p, log_m = special.log_ndtr(h / b), special.log_ndtr(-h / b)
    log_count = np.full(h.shape[:-1] + (K + 1,), -np.inf)
    log_count[..., 0] = 0.0
    for unit in range(K):
        new = log_count + log_m[..., unit, None]
        new[..., 1:] = np.logaddexp(
            new[..., 1:], log_count[..., :-1] + log_p[..., unit, None]
        )
        log_count = new
    return special.logsumexp(log_count[..., (K + 1) // 2 :], axis=-1)


def _group_lattice(cdf: np.ndarray, cells: int) -> np.ndarray:
    """Law of a sum of rectified Gaussians on the half-lattice, from unit CDFs.

    cdf: ``[M, k, cells + 1]`` unit CDF at edges j * delta. Index 0 holds the atom at 0
    (every unit inactive); the mass of a unit in cell ((j-1) delta, j delta] sits at
    index 2j - 1 (value (j - 1/2) delta), so sums of k units land on integers. Returns
    ``[M, 2 cells + 1]``.
    """
    M, k, _ = cdf.shape
    n = 2 * cells + 1
    units = np.zeros((M, k, n))
    units[..., 0] = cdf[..., 0]
    units[..., 1::2] = np.diff(cdf, axis=-1)
    if k == 1:
        return units[:, 0]
    nfft = fft.next_fast_len(n, real=True)
    spectrum = np.prod(fft.rfft(units, nfft, axis=-1), axis=1)
    law = np.clip(fft.irfft(spectrum, nfft, axis=-1)[:, :n], 0.0, None)
    law[:, 0] = np.prod(cdf[..., 0], axis=1)  # the atom, exactly
    return law


def _relu_inner_lattice(h: np.ndarray, b: float, tie: str, cells: int) -> np.ndarray:
    """P[S+ > S-] (>= for tie="success") on a lattice of ``cells`` cells; h [M, K]."""
    k = h.shape[-1] // 2
    spread = b * (0.4 * k + 6.0 * math.sqrt(k) + 3.0)  # > 10 std of the sum's tail
    pos = np.maximum(h, 0.0)
    top = np.maximum(pos[:, :k].sum(1), pos[:, k:].sum(1)) + spread
    edges = (top / cells)[:, None, None] * np.arange(cells + 1)
    cdf = special.ndtr((edges - h[:, :, None]) / b)
    law_plus = _group_lattice(cdf[:, :k], cells)
    law_minus = _group_lattice(cdf[:, k:], cells)
    below = np.cumsum(law_minus, axis=-1) - law_minus  # P(S- < value)
    inner = np.sum(law_plus[:, 1:] * (below[:, 1:] + 0.5 * law_minus[:, 1:]), axis=-1)
    if tie == "success":
        inner = inner + law_plus[:, 0] * law_minus[:, 0]
    return inner


def log_inner_relu(h: np.ndarray, b: float, tie: str, cells: int) -> np.ndarray:
    """ln P_u[sum_l c_l relu(h_l + b u_l) > 0] for ReLU units (K even), h ``[..., K]``.

    Lattice convolution of the laws of S+ and S- (numerical convolution, docs/science.md
    §4) at ``cells`` and ``cells/2``, Richardson-extrapolated (the lattice error is
    O(delta^2): masses are exact cell integrals placed at cell midpoints and lattice
    ties split in half). Rows processed in chunks of ``_CHUNK``.
    """
    flat = h.reshape(-1, h.shape[-1])
    out = np.empty(flat.shape[0])
    for start in range(0, flat.shape[0], _CHUNK):
        rows = flat[start : start + _CHUNK]
        fine = _relu_inner_lattice(rows, b, tie, cells)
        coarse = _relu_inner_lattice(rows, b, tie, cells // 2)
        inner = np.where(fine > 1e-8, (4.0 * fine - coarse) / 3.0, fine)
        out[start : start + _CHUNK] = np.log(np.maximum(inner, _Z_FLOOR))
    return out.reshape(h.shape[:-1])


def kernel_energetic(activation: str, q: float, *, derivative: bool = False) -> float:
    """G_E(q) at K = inf, or its derivative: the perceptron term at Q = kappa(q).

    G_E = E_z ln H(-t z), t = sqrt(Q / (1 - Q)); by the heat-equation identity
    dG/dQ = -E_z[(phi(t z) / Phi(t z))^2] / (2 (1 - Q)), times kappa'(q). Adaptive
    quadrature on each half-line (the integrand has a kink-like layer at z = 0).
    """
    big_q = float(kappa(activation, q))
    t = math.sqrt(big_q / (1.0 - big_q))
    if derivative:

        def ratio_sq(z: float) -> float:
            log_ratio = (
                -0.5 * (t * z) ** 2
                - 0.5 * math.log(2 * math.pi)
                - special.log_ndtr(t * z)
            )
            return math.exp(2.0 * log_ratio - 0.5 * z * z) / math.sqrt(2 * math.pi)

        total = _half_lines(ratio_sq)
        return float(-total / (2.0 * (1.0 - big_q)) * kappa_prime(activation, q))

    def log_h(z: float) -> float:
        return (
            float(special.log_ndtr(t * z))
            * math.exp(-0.5 * z * z)
            / math.sqrt(2 * math.pi)
        )

    return _half_lines(log_h)


def _half_lines(fn) -> float:
    """Integral of fn over R as two adaptive quadratures split at 0."""
    opts = {"epsabs": 1e-13, "epsrel": 1e-11, "limit": 400}
    return (
        integrate.quad(fn, -40.0, 0.0, **opts)[0]
        + integrate.quad(fn, 0.0, 40.0, **opts)[0]
    )


def relu_cells(cells: int, q: float) -> int:
    """Lattice cells for ReLU at overlap q: more as the unit width sqrt(1-q) shrinks."""
    width = math.sqrt(1.0 - q)
    return int(min(4096, cells * 2 ** max(0, math.ceil(math.log2(0.6 / width)))))


def energetic_batches(
    activation: str, K: int, q: float, *, tie: str, points: GaussPoints, cells: int
) -> np.ndarray:
    """Batch means ``[R]`` of ln Z(sqrt(q) z) over ``points`` (finite K, 0 <= q < 1)."""
    h = math.sqrt(q) * points.z
    b = math.sqrt(1.0 - q)
    if activation == "sign":
        log_z = log_inner_sign(h, b)
    else:
        log_z = log_inner_relu(h, b, tie, relu_cells(cells, q))
    return points.batch_means(log_z)


class EnergeticModel:
    """G_E(q) and G_E'(q) per batch, as smooth functions of q on [lo, hi].

    Finite K: a Chebyshev interpolant (``nodes`` points) of the batch values of G_E
    on one fixed point set (common random numbers), so every batch is a smooth
    function of q and G_E' is the interpolant's derivative. K = inf: exact
    quadrature (one batch), also used for sign K = 1 (the perceptron, Q = q).
    Call ``model(q)`` -> ``(G [R], G' [R])``.
    """

    def __init__(
        self,
        activation: str,
        K: float,
        tie: str,
        lo: float,
        hi: float,
        nodes: int = 0,
        points: GaussPoints | None = None,
        cells: int = 0,
    ):
        self.activation, self.K, self.lo, self.hi = activation, K, lo, hi
        self.coef = None
        if K == math.inf or (activation == "sign" and K == 1):
            # one sign unit is the perceptron: the linear kernel, exactly
            self.activation = "linear" if K == 1 else activation
            return
        x = np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
        qs = lo + (hi - lo) * (x + 1.0) / 2.0
        values = np.stack(
            [
                energetic_batches(
                    activation, int(K), float(q), tie=tie, points=points, cells=cells
                )
                for q in qs
            ]
        )
        self.coef = np.polynomial.chebyshev.chebfit(x, values, nodes - 1)
        self.dcoef = np.polynomial.chebyshev.chebder(self.coef) * 2.0 / (hi - lo)

    def __call__(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        if self.coef is None:
            value = kernel_energetic(self.activation, q)
            slope = kernel_energetic(self.activation, q, derivative=True)
            return np.array([value]), np.array([slope])
        x = 2.0 * (q - self.lo) / (self.hi - self.lo) - 1.0
        cheb = np.polynomial.chebyshev.chebval
        return np.atleast_1d(cheb(x, self.coef)), np.atleast_1d(cheb(x, self.dcoef))
