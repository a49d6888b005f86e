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

from relu_landscape import activations
from relu_landscape.theory import kernels
from relu_landscape.theory.gauss import GaussPoints

# Floor on the inner probability: FFT rounding leaves ~1e-16 absolute error, so
# ln Z is meaningful only above ~1e-13; the floor only prevents ln(0).
_Z_FLOOR = 1e-300
# Rows of z processed at once by the ReLU lattice (bounds memory to ~100 MB).
_CHUNK = 1024


def kappa(activation: str, q: np.ndarray | float) -> np.ndarray:
    """Wide-limit kernel Q = kappa(q) = Cov(g(x), g(y)) / Var(g(x)), corr(x, y) = q.

    The registry's closed form where it has one (sign: (2/pi) arcsin q; relu:
    [sqrt(1-q^2) + q (pi - arccos q) - 1] / (pi - 1); linear, the perceptron: q),
    quadrature otherwise (kernels.py). docs/science.md §4.
    """
    q = np.asarray(q, dtype=float)
    act = _registered(activation)
    return act.kernel(q) if act.kernel is not None else kernels.kernel(activation, q)


def kappa_prime(activation: str, q: np.ndarray | float) -> np.ndarray:
    """d kappa / dq; at q = 1 it is E[g'(x)^2] / Var(g(x)) (inf for sign).

    Closed forms for sign, relu and linear, quadrature (Price's theorem) otherwise.
    """
    q = np.asarray(q, dtype=float)
    if activation == "sign":
        with np.errstate(divide="ignore"):
            return 2.0 / math.pi / np.sqrt(1.0 - q * q)
    if activation == "relu":
        return (math.pi - np.arccos(q)) / (math.pi - 1.0)
    if activation == "linear":
        return np.ones_like(q)
    _registered(activation)
    return kernels.kernel_slope(activation, q)


def _registered(activation: str) -> activations.Activation:
    try:
        return activations.get(activation)
    except KeyError as error:
        raise ValueError(str(error.args[0])) from None


def sign_needed(K: int, margin: float, tie: str) -> int:
    """Fewest positive sign units p for a stored pattern: 2p - K > margin sqrt(K)
    (>= for tie="success"); Delta = (2p - K) / sqrt(K) takes only these values, so a
    margin only changes the vote needed (docs/theory_activations.md §1). May be <= 0
    (every pattern stored) or > K (none)."""
    bound = (K + margin * math.sqrt(K)) / 2.0
    near = round(bound)
    if abs(bound - near) < 1e-9:  # the margin sits on a value of Delta: a tie
        return near if tie == "success" else near + 1
    return math.floor(bound) + 1


def log_inner_sign(h: np.ndarray, b: float, need: int | None = None) -> np.ndarray:
    """ln P[at least ``need`` of K units positive], unit l positive w.p. Phi(h_l / b).

    h: ``[..., K]`` local fields sqrt(q) z, b = sqrt(1 - q) > 0; need defaults to a
    majority, (K + 1) // 2 (K odd), and is 1 <= need <= K. Exact
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
    need = (K + 1) // 2 if need is None else need
    return special.logsumexp(log_count[..., need:], axis=-1)


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


def _relu_inner_lattice(
    h: np.ndarray, b: float, tie: str, cells: int, theta: float = 0.0
) -> np.ndarray:
    """P[S+ - S- > theta] on a lattice of ``cells`` cells; h [M, K].

    Lattice index i holds the value i delta / 2; the mass of a lattice value is
    spread uniformly over one cell (two indices) around it, so index pairs (a, b)
    count with weight clip((a - b - t + 1) / 2, 0, 1), t = 2 theta / delta (lattice
    ties a = b count half at theta = 0; one unit's cells sit on odd indices, so a
    narrower spread would leave the CDF of S+ - S- a staircase between them). The
    exact atom S+ = S- = 0 counts when 0 > theta (tie="success":
    0 >= theta).
    """
    k = h.shape[-1] // 2
    spread = b * (0.4 * k + 6.0 * math.sqrt(k) + 3.0)  # > 10 std of the sum's tail
    pos = np.maximum(h, 0.0)
    top = np.maximum(pos[:, :k].sum(1), pos[:, k:].sum(1)) + spread
    edges = (top / cells)[:, None, None] * np.arange(cells + 1)
    cdf = special.ndtr((edges - h[:, :, None]) / b)
    law_plus = _group_lattice(cdf[:, :k], cells)
    law_minus = _group_lattice(cdf[:, k:], cells)
    M, n = law_minus.shape
    # weight of S+ index a: sum_b law_minus[b] clip((a - b - t + 1) / 2, 0, 1): with
    # a - t - 1 = a + s + f (s integer, 0 <= f < 1, both per row), b <= a + s count
    # fully, b = a + s + 1 by (f + 1) / 2, b = a + s + 2 by f / 2
    t = 2.0 * theta / (top / cells)
    below = np.cumsum(law_minus, axis=-1) - law_minus  # P(S- index < b)
    if theta == 0:  # s = -1, f = 0: the common case without gathers
        weight = below + 0.5 * law_minus
    else:
        s = np.floor(-t - 1.0)
        f = (-t - 1.0 - s)[:, None]
        # padded so that every shifted index lands inside: P(index < b) and masses
        pad = n + 2
        zeros, total = np.zeros((M, pad)), law_minus.sum(-1, keepdims=True)
        below_pad = np.concatenate([zeros, below, np.repeat(total, pad, -1)], -1)
        mass_pad = np.concatenate([zeros, law_minus, zeros], -1)
        idx = np.clip(np.arange(n)[None, :] + s[:, None].astype(int) + 1 + pad, 0, None)
        idx = np.minimum(idx, below_pad.shape[1] - 2)
        take = np.take_along_axis
        weight = (
            take(below_pad, idx, -1)
            + (f + 1.0) / 2.0 * take(mass_pad, idx, -1)
            + f / 2.0 * take(mass_pad, idx + 1, -1)
        )
    inner = np.sum(law_plus * weight, axis=-1)
    atom = law_plus[:, 0] * law_minus[:, 0]
    given = np.clip((1.0 - t) / 2.0, 0.0, 1.0)  # what the sum gave the atom
    exact = 1.0 if theta < 0 or (theta == 0 and tie == "success") else 0.0
    return inner + atom * (exact - given)


def log_inner_relu(
    h: np.ndarray, b: float, tie: str, cells: int, theta: float = 0.0
) -> np.ndarray:
    """ln P_u[sum_l c_l relu(h_l + b u_l) > theta], ReLU units (K even), h ``[..., K]``.

    Lattice convolution of the laws of S+ and S- (numerical convolution, docs/science.md
    §4) at ``cells`` and ``cells/2``, Richardson-extrapolated (the lattice error is
    O(delta^2): masses are exact cell integrals placed at cell midpoints and lattice
    ties split in half). Rows processed in chunks of ``_CHUNK``.
    """
    flat = h.reshape(-1, h.shape[-1])
    out = np.empty(flat.shape[0])
    for start in range(0, flat.shape[0], _CHUNK):
        rows = flat[start : start + _CHUNK]
        fine = _relu_inner_lattice(rows, b, tie, cells, theta)
        coarse = _relu_inner_lattice(rows, b, tie, cells // 2, theta)
        inner = np.where(fine > 1e-8, (4.0 * fine - coarse) / 3.0, fine)
        out[start : start + _CHUNK] = np.log(np.maximum(inner, _Z_FLOOR))
    return out.reshape(h.shape[:-1])


def kernel_energetic(
    activation: str, q: float, *, derivative: bool = False, margin: float = 0.0
) -> float:
    """G_E(q) at K = inf, or its derivative: the perceptron term at Q = kappa(q).

    G_E = E_z ln H((margin - sqrt(Q) z) / sqrt(1 - Q)) = E_z ln Phi(t z - s),
    t = sqrt(Q / (1 - Q)), s = margin / sqrt(1 - Q) (the normalised field exceeds the
    margin, docs/theory_activations.md §1); by the heat-equation identity
    dG/dQ = -E_z[(phi(t z - s) / Phi(t z - s))^2] / (2 (1 - Q)), times kappa'(q).
    Adaptive quadrature on each half-line (the integrand has a layer at z = s / t).
    """
    big_q = float(kappa(activation, q))
    t = math.sqrt(big_q / (1.0 - big_q))
    shift = margin / math.sqrt(1.0 - big_q)
    if derivative:

        def ratio_sq(z: float) -> float:
            a = t * z - shift
            log_ratio = -0.5 * a * a - 0.5 * math.log(2 * math.pi) - special.log_ndtr(a)
            return math.exp(2.0 * log_ratio - 0.5 * z * z) / math.sqrt(2 * math.pi)

        total = _half_lines(ratio_sq)
        return float(-total / (2.0 * (1.0 - big_q)) * kappa_prime(activation, q))

    def log_h(z: float) -> float:
        return (
            float(special.log_ndtr(t * z - shift))
            * math.exp(-0.5 * z * z)
            / math.sqrt(2 * math.pi)
        )

    return _half_lines(log_h, shift / t if t > 0 else 0.0)


def _half_lines(fn, split: float = 0.0) -> float:
    """Integral of fn over R as two adaptive quadratures split at ``split``
    (clipped to [-39, 39]; the Gaussian weight is negligible beyond +-40)."""
    opts = {"epsabs": 1e-13, "epsrel": 1e-11, "limit": 400}
    mid = min(39.0, max(-39.0, split))
    return (
        integrate.quad(fn, -40.0, mid, **opts)[0]
        + integrate.quad(fn, mid, 40.0, **opts)[0]
    )


def relu_cells(cells: int, q: float) -> int:
    """Lattice cells for ReLU at overlap q: more as the unit width sqrt(1-q) shrinks."""
    width = math.sqrt(1.0 - q)
    return int(min(4096, cells * 2 ** max(0, math.ceil(math.log2(0.6 / width)))))


def exact_kernel(activation: str, K: float, margin: float, tie: str):
    """(kernel, margin) of the exact one-dimensional route, or None.

    K = inf: the activation's kernel at the margin. linear at any K: the normalised
    field is one Gaussian, so the committee is the perceptron (linear kernel). sign
    at K = 1: Delta = sign(lambda) = +-1, so any margin that asks for the one unit to
    be positive (sign_needed = 1) is the perceptron at margin 0.
    """
    if K == math.inf:
        return activation, margin
    if activation == "linear":
        return "linear", margin
    if activation == "sign" and K == 1 and sign_needed(1, margin, tie) == 1:
        return "linear", 0.0
    return None


def energetic_batches(
    activation: str,
    K: int,
    q: float,
    *,
    tie: str,
    points: GaussPoints,
    cells: int,
    margin: float = 0.0,
) -> np.ndarray:
    """Batch means ``[R]`` of ln Z(sqrt(q) z) over ``points`` (finite K, 0 <= q < 1).

    sign: at least ``sign_needed(K, margin, tie)`` positive units (1 .. K); relu:
    sum_l c_l relu > theta = margin * std * sqrt(K). Other g have no finite-K inner
    probability (docs/theory_activations.md §6).
    """
    if activation not in ("sign", "relu"):
        raise ValueError(f"{activation}: no finite-K inner probability (sign, relu)")
    h = math.sqrt(q) * points.z
    b = math.sqrt(1.0 - q)
    if activation == "sign":
        log_z = log_inner_sign(h, b, sign_needed(K, margin, tie))
    else:
        theta = margin * activations.get("relu").field_std * math.sqrt(K)
        log_z = log_inner_relu(h, b, tie, relu_cells(cells, q), theta)
    return points.batch_means(log_z)


class EnergeticModel:
    """G_E(q) and G_E'(q) per batch, as smooth functions of q on [lo, hi].

    Finite K: a Chebyshev interpolant (``nodes`` points) of the batch values of G_E
    on one fixed point set (common random numbers), so every batch is a smooth
    function of q and G_E' is the interpolant's derivative. The exact route
    (``exact_kernel``: K = inf, linear, the perceptron) is quadrature (one batch).
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
        margin: float = 0.0,
    ):
        self.activation, self.K, self.lo, self.hi = activation, K, lo, hi
        self.coef = None
        route = exact_kernel(activation, K, margin, tie)
        if route is not None:
            self.activation, self.margin = route
            return
        x = np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
        qs = lo + (hi - lo) * (x + 1.0) / 2.0
        values = np.stack(
            [
                energetic_batches(
                    activation,
                    int(K),
                    float(q),
                    tie=tie,
                    points=points,
                    cells=cells,
                    margin=margin,
                )
                for q in qs
            ]
        )
        self.coef = np.polynomial.chebyshev.chebfit(x, values, nodes - 1)
        self.dcoef = np.polynomial.chebyshev.chebder(self.coef) * 2.0 / (hi - lo)

    def __call__(self, q: float) -> tuple[np.ndarray, np.ndarray]:
        if self.coef is None:
            value = kernel_energetic(self.activation, q, margin=self.margin)
            slope = kernel_energetic(
                self.activation, q, derivative=True, margin=self.margin
            )
            return np.array([value]), np.array([slope])
        x = 2.0 * (q - self.lo) / (self.hi - self.lo) - 1.0
        cheb = np.polynomial.chebyshev.chebval
        return np.atleast_1d(cheb(x, self.coef)), np.atleast_1d(cheb(x, self.dcoef))
