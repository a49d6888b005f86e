"""Distance d(z) to the correct outputs for any smooth registered g (finite K).

docs/theory_activations.md §3. At the continuous-weight RS capacity alpha_c =
1 / E_z[d(z)^2], d(z) the distance from z in R^K to {x : F(x) >= theta},
F(x) = sum_l c_l g(x_l) (readout c from the registry, theta = kappa s_g sqrt K).
The problem is separable with one coupling constraint but not convex (g saturates
or has an extremum). At a projection x with multiplier mu >= 0 every unit is
stationary for its Lagrangian L_l(x) = (x - z_l)^2 / 2 - mu c_l g(x), and:

- units of one readout sign keep the order of z (swapping two of them keeps F and
  changes the cost by 2 (x_i - x_j)(z_j - z_i));
- at most one unit sits where L_l'' < 0 (the Hessian of the Lagrangian is
  diagonal and must be positive on the constraint's tangent space).

So, within each readout group sorted by z, the first k units sit on the largest
local minimiser of their L_l and the others on the smallest, up to one pivot.
Each such branch configuration (k per group, plus the configuration "every unit at
its global minimiser") gives a contribution sum that is nondecreasing in mu (on a
branch dy/dmu = g'^2 / L'' >= 0; for the global minimisers compare two multipliers),
so F = theta is bracketed by bisection in ln mu. Where the sum is continuous at the
root, the configuration's point is stationary and feasible. Where it jumps (a branch
ends at a fold, or a global minimiser switches), the unit that jumps is the pivot:
it takes the rest of theta at its least cost, and Newton on the full KKT system
(x, mu) polishes that point. d^2 is the least cost over configurations; the method
is checked against brute-force constrained minimisation in the tests.

Only the registry's g and g' are used (g'' by a central difference of g'), so a new
smooth activation needs nothing here. Sign and ReLU (kinks) have exact projections of
their own (distance.py). Assumes the projection lies in [-_BOX, _BOX]^K (the QMC
points have |z| <= 7.1 and the margins of interest are reached well inside); rows
whose theta is out of reach in the box get inf.
"""

from __future__ import annotations

import itertools

import numpy as np

from relu_landscape import activations

_BOX = 10.0
# Grid of the per-unit minimisation (spacing 0.25): locates the branches; the Newton
# steps that follow resolve each minimiser to rounding.
_GRID = np.linspace(-_BOX, _BOX, 81)
_HALF_SQ = 0.5 * _GRID**2
_NEWTON_STEPS = 5
_FD = 1e-5  # step of the central difference giving g''
# Bisections in ln mu of the bracket [mu, 4 mu]: relative width ~1e-8, so that the
# linear interpolation across it on a continuous branch errs by ~1e-16.
_BISECTIONS = 27
_JUMP = 1e-6  # relative jump of F across the final bracket treated as a discontinuity
_EXPANSIONS = 12  # x4 steps from the first guess: mu within 1.7e7 of it
_KKT_STEPS = 30
_CHUNK = 256  # rows per chunk (bounds the grid arrays to ~100 MB)
LOWER, UPPER, GLOBAL = 0, 1, 2


class _Unit:
    """g, g', g'' of one activation, its readout, and the branch minimisers."""

    def __init__(self, activation: str, K: int):
        act = activations.get(activation)
        if act.derivative is None or act.kinks:
            raise ValueError(
                f"{activation}: the generic projection needs a smooth g "
                "(sign and relu have exact ones in distance.py)"
            )
        self.g, self.dg = act.g, act.derivative
        self.c = act.readout(K)
        self.grid_g = np.asarray(self.g(_GRID), dtype=float)

    def ddg(self, x: np.ndarray) -> np.ndarray:
        return (self.dg(x + _FD) - self.dg(x - _FD)) / (2.0 * _FD)

    def minimisers(self, z: np.ndarray, mu: np.ndarray, mode: np.ndarray) -> np.ndarray:
        """Minimiser of (x - z)^2 / 2 - mu c g(x) on the branch ``mode`` asks for.

        z ``[M, 1, K]``, mu ``[M, C]``, mode ``[M, C, K]`` (LOWER: the smallest local
        minimiser, UPPER: the largest, GLOBAL: the global one). Returns ``[M, C, K]``.
        """
        cm = self.c * mu[..., None]  # [M, C, K]
        # L_l on the grid less its constant z^2 / 2 (which moves no minimiser)
        v = _HALF_SQ - z[..., None] * _GRID - cm[..., None] * self.grid_g
        falls = np.diff(v, axis=-1) < 0  # [..., n - 1]
        # grid point i is a local minimum: v falls into it and does not fall after
        local = np.ones(v.shape, dtype=bool)
        local[..., 1:] &= falls
        local[..., :-1] &= ~falls
        n = _GRID.size
        first = np.argmax(local, axis=-1)
        last = n - 1 - np.argmax(local[..., ::-1], axis=-1)
        best = np.argmin(v, axis=-1)
        idx = np.where(mode == LOWER, first, np.where(mode == UPPER, last, best))
        x = _GRID[idx]
        step = _GRID[1] - _GRID[0]
        lo, hi = x - step, x + step
        for _ in range(_NEWTON_STEPS):
            grad = x - z - cm * self.dg(x)
            curv = 1.0 - cm * self.ddg(x)
            # the grid point is within one spacing of the minimiser of its basin
            move = np.where(curv > 0, grad / np.where(curv > 0, curv, 1.0), 0.0)
            x = np.clip(x - move, lo, hi)
        return x

    def least_x(self, z: np.ndarray, need: np.ndarray, c: np.ndarray) -> np.ndarray:
        """The x nearest to z with c g(x) >= need, elementwise (nan if out of reach).

        The nearest feasible grid point, then bisection on the grid cell between it
        and its neighbour towards z (the constraint's boundary lies there).
        """
        ok = c[..., None] * self.grid_g >= need[..., None]
        dist = np.where(ok, np.abs(_GRID - z[..., None]), np.inf)
        idx = np.argmin(dist, axis=-1)
        reach = ok.any(-1)
        a = _GRID[idx]  # feasible
        b = _GRID[np.clip(idx + np.where(z > a, 1, -1), 0, _GRID.size - 1)]
        for _ in range(50):
            mid = 0.5 * (a + b)
            good = c * self.g(mid) >= need
            a, b = np.where(good, mid, a), np.where(good, b, mid)
        inside = c * self.g(z) >= need
        return np.where(inside, z, np.where(reach, a, np.nan))


def _configurations(z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Branch modes ``[M, C, K]``: per readout group (sorted by z, descending) the
    first k units UPPER and the rest LOWER, every k; last, all GLOBAL."""
    M, K = z.shape
    groups = [np.nonzero(c == s)[0] for s in (1.0, -1.0) if np.any(c == s)]
    ranks = np.zeros((M, K), dtype=int)
    for units in groups:
        order = np.argsort(-z[:, units], axis=-1)
        ranks[np.arange(M)[:, None], units[order]] = np.arange(units.size)
    splits = list(itertools.product(*[range(units.size + 1) for units in groups]))
    modes = np.empty((M, len(splits) + 1, K), dtype=int)
    for j, split in enumerate(splits):
        for units, k in zip(groups, split, strict=True):
            modes[:, j, units] = np.where(ranks[:, units] < k, UPPER, LOWER)
    modes[:, -1] = GLOBAL
    return modes


def distance_sq(activation: str, z: np.ndarray, theta: float = 0.0) -> np.ndarray:
    """d(z)^2 to {x : sum_l c_l g(x_l) >= theta} for a smooth registered g.

    z ``[..., K]``; returns ``[...]`` (0 where z is inside, inf where theta is out of
    reach in the box). Module docstring for the method.
    """
    shape, K = z.shape[:-1], z.shape[-1]
    flat = np.asarray(z, dtype=float).reshape(-1, K)
    unit = _Unit(activation, K)
    out = np.zeros(flat.shape[0])
    outside = np.nonzero(unit.c @ unit.g(flat.T) < theta)[0]
    for start in range(0, outside.size, _CHUNK):
        rows = outside[start : start + _CHUNK]
        out[rows] = _project(unit, flat[rows], theta)
    return out.reshape(shape)


def _total(unit, z, mu, modes):
    x = unit.minimisers(z[:, None], mu, modes)
    return x, (unit.c * unit.g(x)).sum(-1)


def _project(unit: _Unit, z: np.ndarray, theta: float) -> np.ndarray:
    modes = _configurations(z, unit.c)
    M, C, K = modes.shape
    # first guess: the linearised step, mu = (theta - F(z)) / sum g'(z)^2; then
    # x4 steps outwards until F(x(mu)) = theta is bracketed (F(x(0)) = F(z) < theta)
    slope = np.sum(unit.dg(z) ** 2, -1)
    guess = (theta - unit.c @ unit.g(z.T)) / np.maximum(slope, 1e-12)
    mu = np.repeat(np.clip(guess, 1e-3, 1e3)[:, None], C, axis=1)
    lo, hi = np.zeros((M, C)), np.full((M, C), np.inf)
    for _ in range(_EXPANSIONS):
        above = _total(unit, z, mu, modes)[1] >= theta
        hi = np.where(above, np.minimum(hi, mu), hi)
        lo = np.where(above, lo, np.maximum(lo, mu))
        if np.all(np.isfinite(hi) & (lo > 0)):
            break
        mu = np.where(np.isfinite(hi), np.where(lo > 0, mu, mu / 4.0), mu * 4.0)
    done = np.isfinite(hi)
    hi = np.where(done, hi, 1.0)
    for _ in range(_BISECTIONS):
        mid = np.where(lo > 0, np.sqrt(lo * hi), 0.5 * hi)
        above = _total(unit, z, mid, modes)[1] >= theta
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    x_lo, f_lo = _total(unit, z, lo, modes)
    x_hi, f_hi = _total(unit, z, hi, modes)
    zc = np.broadcast_to(z[:, None], x_lo.shape)
    jump = (f_hi - f_lo) > _JUMP * (1.0 + abs(theta))
    # continuous: interpolate across the bracket (the configuration's exact root)
    frac = np.clip((theta - f_lo) / np.where(jump, 1.0, f_hi - f_lo + 1e-300), 0, 1)
    x = x_lo + frac[..., None] * (x_hi - x_lo)
    # a jump: the unit that jumps takes the rest of theta, then KKT Newton
    y_lo = unit.c * unit.g(x_lo)
    pivot = np.argmax(np.abs(unit.c * unit.g(x_hi) - y_lo), axis=-1)
    one = np.arange(K) == pivot[..., None]
    need = theta - np.sum(np.where(one, 0.0, y_lo), -1)
    zp = np.take_along_axis(zc, pivot[..., None], -1)[..., 0]
    xp = unit.least_x(zp, need, unit.c[pivot])
    repaired = np.where(one, np.nan_to_num(xp)[..., None], x_lo)
    repaired, _ = _kkt_newton(unit, zc, repaired, hi, theta)
    x = np.where(jump[..., None], repaired, x)
    cost = np.sum((x - zc) ** 2, -1)
    feasible = done & ((unit.c * unit.g(x)).sum(-1) >= theta - 1e-9 * (1 + abs(theta)))
    feasible &= ~(jump & np.isnan(xp))
    # the upper end of any bracket is feasible: a fallback bound
    bound = np.where(done, np.sum((x_hi - zc) ** 2, -1), np.inf)
    return np.min(np.where(feasible, np.minimum(cost, bound), bound), axis=-1)


def _kkt_newton(unit, z, x, mu, theta):
    """Newton on x - z - mu c g'(x) = 0, sum c g(x) = theta from (x, mu); rows that
    do not converge, or converge to a worse point, keep their start."""
    c = unit.c
    x0 = x.copy()
    with np.errstate(all="ignore"):  # rows that diverge are rejected below
        x, mu = _kkt_steps(unit, z, x, mu, theta)
    ok = (
        np.all(np.isfinite(x), -1)
        & (np.abs(np.sum(c * unit.g(x), -1) - theta) < 1e-9 * (1 + abs(theta)))
        & (np.max(np.abs(x - z - mu[..., None] * c * unit.dg(x)), -1) < 1e-8)
        & (mu >= 0)
        & (np.sum((x - z) ** 2, -1) <= np.sum((x0 - z) ** 2, -1))
    )
    return np.where(ok[..., None], x, x0), ok


def _kkt_steps(unit, z, x, mu, theta):
    c = unit.c
    for _ in range(_KKT_STEPS):
        b = c * unit.dg(x)
        r = x - z - mu[..., None] * b
        s = np.sum(c * unit.g(x), -1) - theta
        d = 1.0 - mu[..., None] * c * unit.ddg(x)
        d = np.where(np.abs(d) < 1e-12, 1e-12, d)
        dmu = (-s + np.sum(b * r / d, -1)) / np.sum(b * b / d, -1)
        dx = (-r + b * dmu[..., None]) / d
        x, mu = x + dx, mu + dmu
    return x, mu
