"""RS energetic term G_E(q) of the tree committee machine (docs/science.md §4).

    G_E(q) = E_{z in R^K} ln P_u[ sum_l c_l g(sqrt(q) z_l + sqrt(1-q) u_l) > 0 ]

sign units: g = sign, c_l = +1, K odd (majority vote). Other g: the registry's
readout (odd g all +1; ReLU, GELU, quadratic: K even, c_l = +1 on the first K/2
units and -1 on the rest); 0 becomes theta with a margin. ``tie="error"`` is the
strict inequality (Theta(0) = 0, the project default), ``tie="success"`` counts
Delta = 0 as correct. For K = math.inf the output field is Gaussian with overlap
Q = kappa(q) and G_E(q) = E_z ln H(-sqrt(Q / (1 - Q)) z).

The inner probability Z(h) (h = sqrt(q) z) is exact for sign units (a dynamic
programme over the count of positive units, in log space) and a lattice convolution
for every other registered g (ReLU, tanh, erf, GELU, quadratic, linear: the units'
laws from the Gaussian measure of g's level sets, ``log_inner_lattice``); the outer
expectation uses a :class:`GaussPoints` set.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import fft, integrate, optimize, special

from relu_landscape import activations
from relu_landscape.theory import gauss, kernels
from relu_landscape.theory.gauss import GaussPoints

# Floor on the inner probability: FFT rounding leaves ~1e-16 absolute error, so
# ln Z is meaningful only above ~1e-13; the floor only prevents ln(0).
_Z_FLOOR = 1e-300
# Most rows of z processed at once by the lattice.
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


def _group_lattice(units: np.ndarray, cells: int) -> np.ndarray:
    """Law of a sum of k units on the half-lattice, from the units' laws.

    units: ``[M, k, 2 cells + 1]`` (``_unit_laws``), index i the value i delta / 2
    above the unit's a_l, so sums of k units land on integers. Index 0 of the sum
    holds the product of the units' index-0 masses exactly. Returns
    ``[M, 2 cells + 1]`` (the sum beyond the span is negligible by its choice).
    """
    M, k, n = units.shape
    if k == 0:  # an empty group (odd g have no -1 readout): the sum is 0
        law = np.zeros((M, n))
        law[:, 0] = 1.0
        return law
    if k == 1:
        return units[:, 0]
    nfft = fft.next_fast_len(n, real=True)
    spectrum = np.prod(fft.rfft(units, nfft, axis=-1), axis=1)
    law = np.clip(fft.irfft(spectrum, nfft, axis=-1)[:, :n], 0.0, None)
    law[:, 0] = np.prod(units[..., 0], axis=1)
    return law


# Units' values are followed over x = h + b u, |u| <= _REACH (P(u > 7) = 1.3e-12).
_REACH = 7.0
# The inverse tables of g cover |x| <= _X_MAX (|h| <= 7 for Sobol' points, b <= 1).
_X_MAX = 16.0
# Points per monotone piece of g in its inverse table (linear interpolation of x).
_TABLE = 20001
# Cells of g other than ReLU per ReLU cell: without ReLU's exact atom a unit's body
# (quadratic: the 1/sqrt peak at 0) is narrow in a span set by its tail.
_SMOOTH_CELLS = 2
# Gauss-Hermite nodes for the units' mean and spread (they set the lattice's span).
_MOMENT_NODES = 24


@dataclass(frozen=True)
class _Piece:
    """One piece of R on which g is monotone (``kind`` +1 / -1) or flat (0).

    ``lo``, ``hi``: its ends (-inf / inf outside); ``value``: g on a flat piece.
    Inverse table: x as a function of w, w = sqrt|y - ``level``| when an end is a
    critical point of g at height ``level`` (x is smooth in w there, not in y), else
    w = y; ``y_lo``, ``y_hi``: the range of g on the piece.
    """

    lo: float
    hi: float
    kind: int
    value: float
    level: float | None
    w: np.ndarray
    x: np.ndarray
    y_lo: float
    y_hi: float
    identity: bool = False  # g(x) = x here (ReLU on, linear): no table lookup

    def cut(self, e: np.ndarray) -> np.ndarray:
        """x where the piece meets the level e: {x in the piece: g(x) <= e} is
        [lo, cut] (increasing) or [cut, hi] (decreasing); beyond g's range on the
        piece, one of its ends (-inf / inf outside the inverse table)."""
        y = np.clip(e, self.y_lo, self.y_hi)
        if self.identity:
            x = y
        else:
            w = y if self.level is None else np.sqrt(np.abs(y - self.level))
            x = np.interp(w, self.w, self.x)
        full, empty = (self.hi, self.lo) if self.kind > 0 else (self.lo, self.hi)
        return np.where(e >= self.y_hi, full, np.where(e < self.y_lo, empty, x))


@functools.cache
def _pieces(activation: str) -> tuple[tuple[_Piece, ...], np.ndarray]:
    """(monotone pieces of g, its critical points and kinks) for a registered g with
    a derivative: split at the kinks and at the sign changes of g' (brentq on an
    1.25e-3 grid of [-_X_MAX, _X_MAX])."""
    act = _registered(activation)
    if act.derivative is None:
        raise ValueError(f"{activation}: the lattice needs g' (sign uses log_inner_sign)")
    grid = np.linspace(-_X_MAX, _X_MAX, 25601) + 1e-7  # off x = 0, where g' may vanish
    slope = np.sign(act.derivative(grid))
    turns = [
        optimize.brentq(act.derivative, grid[i], grid[i + 1], xtol=1e-14)
        for i in np.nonzero(slope[:-1] * slope[1:] < 0)[0]
    ]
    ends = sorted({*act.kinks, *turns})
    bounds = [-math.inf, *ends, math.inf]
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        a, c = max(lo, -_X_MAX), min(hi, _X_MAX)
        x = np.linspace(a, c, _TABLE)
        kind = int(np.sign(act.derivative((a + c) / 2.0)))
        y = np.asarray(act.g(x), dtype=float)
        critical = [end for end in (lo, hi) if end in turns]
        level = float(act.g(critical[0])) if critical else None
        w = y if level is None else np.sqrt(np.abs(y - level))
        order = np.argsort(w, kind="stable")
        pieces.append(
            _Piece(lo, hi, kind, float(y[len(y) // 2]), level, w[order], x[order],
                   float(y.min()), float(y.max()), level is None and np.array_equal(y, x))
        )
    return tuple(pieces), np.array(ends)


def _flat(activation: str) -> bool:
    """Whether g has a flat piece (ReLU): its atoms keep the lattice at midpoints
    (``_unit_laws``) and the threshold where it falls (``_inner_lattice``)."""
    return any(piece.kind == 0 for piece in _pieces(activation)[0])


def _ndtr(z: np.ndarray) -> np.ndarray:
    """Phi(z) as erfc(-z / sqrt 2) / 2, to ~1e-13 relative in the lower tail as
    scipy's ndtr, by torch's vectorised erfc (~7x faster: the lattice's edges are
    most of the theory table's time). torch is imported here, not with the module,
    so that ``import relu_landscape.theory`` stays light."""
    import torch

    return 0.5 * torch.special.erfc(torch.from_numpy(z) * -math.sqrt(0.5)).numpy()


def _unit_laws(
    activation: str, h: np.ndarray, b: float, low: np.ndarray, delta: np.ndarray,
    cells: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(laws ``[M, K, 2 cells + 1]``, atoms ``[M, K]``) of y_l = g(h_l + b u_l) on
    the half-lattice a_l + i delta / 2 (a_l = ``low``).

    The mass of cell (a_l + (j-1) delta, a_l + j delta] is the Gaussian measure of
    its preimage, summed over g's monotone pieces (``_Piece.cut``; differences of
    lower or upper tail probabilities, whichever are small, so that tail cells keep
    their relative precision), and is shared between indices 2j - 2, 2j - 1, 2j so
    that the cell's mean and variance of y are kept (3-node Gauss-Legendre in the
    Gaussian probability over the preimage): a unit's law is then right to O(delta^4)
    in its first two moments, and a saturated unit's narrow peak (tanh far from 0)
    sits where it is, not at a cell midpoint, an O(delta) error otherwise. Flat
    pieces of g (ReLU off) are atoms: at a_l (index 0, returned as ``atoms`` for the
    exact tie rule) or inside the span (in the cell holding their value); such g keep
    every cell's mass at its midpoint (``_flat``), so they need no moments.
    """
    act = activations.get(activation)
    pieces, _ = _pieces(activation)
    flat = _flat(activation)
    edges = low[..., None] + delta[:, None, None] * np.arange(cells + 1)
    hh = h[..., None]
    mass = np.zeros(h.shape + (cells,))
    # sums of m y', m y'^2 per cell: the moments that only g without flat pieces use
    first, second = (None, None) if flat else (np.zeros_like(mass), np.zeros_like(mass))
    atoms = np.zeros(h.shape)
    nodes, weights = special.roots_legendre(3)
    nodes, weights = (nodes + 1.0) / 2.0, weights / 2.0
    for piece in pieces:
        if piece.kind == 0:
            m = special.ndtr((piece.hi - h) / b) - special.ndtr((piece.lo - h) / b)
            at_low = piece.value <= low
            atoms += np.where(at_low, m, 0.0)
            cell = np.ceil((piece.value - low) / delta[:, None]).astype(int) - 1
            inside = ~at_low & (cell >= 0) & (cell < cells)
            cell = np.clip(cell, 0, cells - 1)[..., None]
            held = np.take_along_axis(mass, cell, -1)[..., 0]
            # a flat g's cells keep their mass at midpoints
            np.put_along_axis(mass, cell, (held + np.where(inside, m, 0.0))[..., None], -1)
            continue
        z = (piece.cut(edges) - hh) / b
        if flat:  # midpoints, no moments: CDF differences (half the ndtr calls)
            mass += np.abs(np.diff(_ndtr(z), axis=-1))
            continue
        below, above = _ndtr(z), _ndtr(-z)
        if piece.kind > 0:  # the preimage of cell j is [cut_{j-1}, cut_j]
            pa, pb, sa, sb = below[..., :-1], below[..., 1:], above[..., :-1], above[..., 1:]
        else:
            pa, pb, sa, sb = below[..., 1:], below[..., :-1], above[..., 1:], above[..., :-1]
        lower = pa + pb < 1.0  # the preimage lies mostly below the mean h
        m = np.where(lower, pb - pa, sa - sb)
        mass += m
        start = np.where(lower, pa, sb)[..., None]
        prob = np.clip(start + m[..., None] * nodes, 1e-300, 1.0)
        sign = np.where(lower, 1.0, -1.0)[..., None]
        y = np.asarray(act.g(hh[..., None] + b * sign * special.ndtri(prob)), float)
        offset = (y - edges[..., :-1, None]) / delta[:, None, None, None]
        first += m * (offset @ weights)
        second += m * (offset**2 @ weights)
    units = np.zeros(h.shape + (2 * cells + 1,))
    units[..., 0] = atoms
    if flat:  # g with a flat piece (ReLU): midpoints, as mass placed next to the
        # atom would tie with the other group's atom; such g do not saturate
        units[..., 1::2] = mass
        return units, atoms
    # each cell's mass on its edges and midpoint (offsets 0, 1/2, 1 of a cell)
    # with the cell's mean and variance: weights 1 - 3 m1 + 2 m2, 4 (m1 - m2),
    # 2 m2 - m1 (Simpson's 1/6, 2/3, 1/6 for a flat density); where one would be
    # negative (a peak narrower than the cell) the mean alone, on two of them
    safe = np.where(mass > 0, mass, 1.0)
    m1 = np.clip(first / safe, 0.0, 1.0)
    m2 = np.clip(second / safe, m1 * m1, m1)
    w0, w1, w2 = 1.0 - 3.0 * m1 + 2.0 * m2, 4.0 * (m1 - m2), 2.0 * m2 - m1
    r = 2.0 * m1
    negative = (w0 < 0) | (w2 < 0)
    w0 = np.where(negative, np.maximum(1.0 - r, 0.0), w0)
    w1 = np.where(negative, 1.0 - np.abs(r - 1.0), w1)
    w2 = np.where(negative, np.maximum(r - 1.0, 0.0), w2)
    units[..., 1::2] = mass * w1
    units[..., 0:-1:2] += mass * w0
    units[..., 2::2] += mass * w2
    return units, atoms


def _geometry(activation: str, h: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower ends a ``[M, K]``, span ``[M]``) of the lattice, any g.

    a_l = min of g over h_l +- _REACH b (g's critical points and kinks included), so
    each unit's excess y_l - a_l >= 0 but with probability ~1e-12, and its reach r_l
    the range of g there. The span covers every readout group's summed excess: the
    sum of the reaches, or, when smaller (many units), the mean excess plus 8 std of
    the sum plus the largest reach (the units' moments by Gauss-Hermite).
    """
    act = activations.get(activation)
    _, ends = _pieces(activation)
    left, right = h - _REACH * b, h + _REACH * b
    inside = np.clip(np.broadcast_to(ends, h.shape + ends.shape), left[..., None],
                     right[..., None])
    probes = np.concatenate([left[..., None], right[..., None], inside], -1)
    values = np.asarray(act.g(probes), dtype=float)
    low, reach = values.min(-1), values.max(-1) - values.min(-1)
    u, w = gauss.hermite_1d(_MOMENT_NODES)
    y = np.asarray(act.g(h[..., None] + b * u), dtype=float)
    mean = y @ w - low
    var = np.maximum((y * y) @ w - (y @ w) ** 2, 0.0)
    plus = act.readout(h.shape[-1]) > 0
    span = np.zeros(h.shape[0])
    for group in (plus, ~plus):
        if group.any():
            tail = mean[:, group].sum(1) + 8.0 * np.sqrt(var[:, group].sum(1))
            tail += reach[:, group].max(1)
            span = np.maximum(span, np.minimum(reach[:, group].sum(1), tail))
    return low, np.maximum(span, 1e-9 * b)


def _inner_lattice(
    activation: str, h: np.ndarray, b: float, tie: str, cells: int, theta: float
) -> np.ndarray:
    """P[S+ - S- > theta] on a lattice of ``cells`` cells; h [M, K], any g with g'.

    S+- = sum of g over the units of readout +-1 (S- = 0 for odd g). Each unit's law
    of y_l - a_l (``_geometry``) sits on the half-lattice (``_unit_laws``: exact cell
    masses, each cell's mean and variance kept, flat pieces of g as atoms), and index i of a
    group's sum holds the value i delta / 2 above its a's. With the
    shifted threshold t = 2 (theta - A+ + A-) / delta (A+- the groups' sums of a_l),
    index pairs (a, b) count with weight clip((a - b - t + 1) / 2, 0, 1): each lattice
    mass spread uniformly over one cell (lattice ties count half at t = 0; one unit's
    cells sit on odd indices, so a narrower spread would leave the CDF of S+ - S- a
    staircase between them). The exact atom (every unit on a flat piece at its a_l:
    ReLU's units all off) counts when 0 > the shifted theta (tie="success": 0 >=).
    """
    plus = activations.get(activation).readout(h.shape[-1]) > 0
    low, span = _geometry(activation, h, b)
    if not _flat(activation):
        # lower the first +1 unit's a by less than a cell so that the shifted theta
        # is a whole number of cells: the threshold on the lattice, as ReLU's 0 is
        delta = span / (cells - 1)
        gap = theta - low[:, plus].sum(1) + low[:, ~plus].sum(1)
        low[:, np.argmax(plus)] -= np.ceil(gap / delta) * delta - gap
    else:
        delta = span / cells
    units, atoms = _unit_laws(activation, h, b, low, delta, cells)
    law_plus = _group_lattice(units[:, plus], cells)
    law_minus = _group_lattice(units[:, ~plus], cells)
    shifted = theta - low[:, plus].sum(1) + low[:, ~plus].sum(1)
    M, n = law_minus.shape
    # weight of S+ index a: sum_b law_minus[b] clip((a - b - t + 1) / 2, 0, 1): with
    # a - t - 1 = a + s + f (s integer, 0 <= f < 1, both per row), b <= a + s count
    # fully, b = a + s + 1 by (f + 1) / 2, b = a + s + 2 by f / 2
    t = 2.0 * shifted / delta
    below = np.cumsum(law_minus, axis=-1) - law_minus  # P(S- index < b)
    if not shifted.any():  # s = -1, f = 0: the common ReLU case without gathers
        weight = below + 0.5 * law_minus
    else:
        s = np.floor(-t - 1.0)
        f = (-t - 1.0 - s)[:, None]
        # padded so that every shifted index lands inside: P(index < b) and masses
        pad = n + 2
        zeros, total = np.zeros((M, pad)), law_minus.sum(-1, keepdims=True)
        below_pad = np.concatenate([zeros, below, np.repeat(total, pad, -1)], -1)
        mass_pad = np.concatenate([zeros, law_minus, zeros], -1)
        step = np.clip(s, -pad - n, pad + n).astype(int)
        idx = np.clip(np.arange(n)[None, :] + step[:, None] + 1 + pad, 0, None)
        idx = np.minimum(idx, below_pad.shape[1] - 2)
        take = np.take_along_axis
        weight = (
            take(below_pad, idx, -1)
            + (f + 1.0) / 2.0 * take(mass_pad, idx, -1)
            + f / 2.0 * take(mass_pad, idx + 1, -1)
        )
    inner = np.sum(law_plus * weight, axis=-1)
    atom = np.prod(atoms, axis=1)  # every unit on a flat piece at its a_l
    given = np.clip((1.0 - t) / 2.0, 0.0, 1.0)  # what the sum gave the atom
    counts = (shifted < 0) | ((shifted == 0) & (tie == "success"))
    return inner + atom * (counts - given)


def log_inner_lattice(
    activation: str, h: np.ndarray, b: float, tie: str, cells: int, theta: float = 0.0
) -> np.ndarray:
    """ln P_u[sum_l c_l g(h_l + b u_l) > theta] for any g with g' (not sign), h
    ``[..., K]``, c the registry's readout.

    Lattice convolution of the laws of S+ and S- (``_inner_lattice``; docs/science.md
    §4, docs/theory_activations.md §4) at ``cells`` and ``cells/2``,
    Richardson-extrapolated: where the units' laws have smooth densities the
    lattice error is O(delta^2) (exact cell masses; lattice ties split in half, the
    spread of each mass over a cell adds delta^2 / 12 to the variance), near an
    interior extremum of g (GELU, quadratic: a 1/sqrt peak of the density)
    O(delta^1.5). Measured against closed forms at 128 cells: linear K = 1, 2, 3
    < 3e-5, 1.1e-4, 3.2e-4 relative at Z ~ 0.02; ReLU K = 2 1.6e-7 at 96 cells.
    Without a flat piece theta sits on a lattice point; for ReLU with a margin the
    part of the error from theta's place inside a cell is not removed
    (docs/theory_activations.md §4).
    Rows processed in chunks that bound each array to ~32 MB.
    """
    flat = h.reshape(-1, h.shape[-1])
    out = np.empty(flat.shape[0])
    chunk = max(1, min(_CHUNK, 2**22 // (flat.shape[-1] * (cells + 1))))
    for start in range(0, flat.shape[0], chunk):
        rows = flat[start : start + chunk]
        fine = _inner_lattice(activation, rows, b, tie, cells, theta)
        coarse = _inner_lattice(activation, rows, b, tie, cells // 2, theta)
        inner = np.where(fine > 1e-8, (4.0 * fine - coarse) / 3.0, fine)
        out[start : start + chunk] = np.log(np.maximum(inner, _Z_FLOOR))
    return out.reshape(h.shape[:-1])


def log_inner_relu(
    h: np.ndarray, b: float, tie: str, cells: int, theta: float = 0.0
) -> np.ndarray:
    """``log_inner_lattice`` for ReLU units (K even): ln P_u[S+ - S- > theta]."""
    return log_inner_lattice("relu", h, b, tie, cells, theta)


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
    """Lattice cells at overlap q (any g; the name is historical): more as the unit
    width sqrt(1-q) shrinks."""
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

    sign: at least ``sign_needed(K, margin, tie)`` positive units (1 .. K), exact;
    any other registered g: sum_l c_l g > theta = margin * std * sqrt(K) by the
    lattice (``log_inner_lattice``; linear too, a check: its value is the
    perceptron's).
    """
    h = math.sqrt(q) * points.z
    b = math.sqrt(1.0 - q)
    if activation == "sign":
        log_z = log_inner_sign(h, b, sign_needed(K, margin, tie))
    else:
        theta = margin * activations.get(activation).field_std * math.sqrt(K)
        fine = relu_cells(cells * (1 if activation == "relu" else _SMOOTH_CELLS), q)
        log_z = log_inner_lattice(activation, h, b, tie, fine, theta)
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
