"""Dense regions (y -> infinity) at finite K, binary weights (docs/local_entropy.md §8).

The tree committee of K units (sign units, K odd; ReLU units, K even) with per-unit
overlaps equal across units. The entropic and conjugate terms of the dense free
entropy are those of the perceptron (theory/dense.py, per weight); the energetic
term is a K-dimensional Laplace maximum,

    F_E(z) = max_{s in R^K} [ln Z(sqrt(q1) z + s; sqrt(1 - q1)) - |s|^2 / (2 omega)],

z ~ N(0, I_K), Z(h; sigma) the inner probability of a correct committee output
(theory/committee_fields.py). With L = ln Z at the maximiser x = h + s*
(s* = omega grad L), by the envelope theorem and the heat equation in sigma^2:

    dF_E/domega = |s*|^2 / (2 omega^2),
    dF_E/dq1    = grad L . z / (2 sqrt(q1)) - (Laplacian L + |grad L|^2) / 2,

and the 1/y coefficient of the energetic term (external entropy) is
-ln det(I - omega Hess L) / 2 - z . s* / (2 sqrt(q1)). E_z is taken on one point
set (common random numbers for every (q1, omega)): randomised QMC with R batches
(stderr from their spread) or a Gauss-Hermite rule (K = 1 checks).

Finite y (``FiniteYTerm``):
E_z ln E_eta Z(sqrt(q0) z + sqrt(q1 - q0) eta; sqrt(1 - q1))^y with eta in R^K
averaged by Gauss-Hermite rules centred on the modes of the tilted measure, for the
finite-y solver of theory/dense_finite_y.py.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import special

from relu_landscape.theory import committee_fields, dense
from relu_landscape.theory.energetic import relu_cells
from relu_landscape.theory.franz_parisi import FINITE_K_POINTS, row_keys
from relu_landscape.theory.gauss import GaussPoints, hermite_points, qmc_points

_ASCENT = 100  # most Newton steps of the inner maximisation
_TOL = 1e-11  # stationarity |omega grad L - s| of the inner maximiser
# A Newton step is accepted unless it lowers the objective by more than the noise of
# ln Z: sign and ReLU K = 2, log-space sums and quadrature (~1e-14); ReLU K >= 4, the
# Richardson-extrapolated lattice (~1e-9; a tighter test rejects good steps and
# halves them for nothing)
_EXACT_NOISE, _LATTICE_NOISE = 1e-12, 1e-8
_HESS_STEP = 1e-4  # sign: central-difference step (units of sigma) of the exact gradient


def local(
    activation: str, x: np.ndarray, sigma: float, *, tie: str = "error", cells: int = 64
) -> tuple[np.ndarray, ...]:
    """(ln Z ``[M]``, gradient ``[M, K]``, Hessian ``[M, K, K]``) at fields x ``[M, K]``.

    Sign: exact value, gradient and Hessian diagonal (committee_fields.sign_inner),
    off-diagonal entries by central differences of the exact gradient (step
    1e-4 sigma: truncation ~1e-8, rounding ~1e-12). ReLU K = 2: all exact
    (committee_fields.relu_pair_inner). ReLU K >= 4: the lattice value with its
    derivatives at fixed geometry (committee_fields.relu_lattice_inner, ``cells``
    scaled by ``relu_cells``).
    """
    M, K = x.shape
    eye = np.eye(K)
    if activation == "sign":
        log_z, grad, diag = committee_fields.sign_inner(x, sigma)
        hess = np.zeros((M, K, K))
        if K > 1:
            step = _HESS_STEP * sigma
            shifted = np.concatenate([x + sg * step * e for sg in (1, -1) for e in eye])
            g = committee_fields.sign_inner(shifted, sigma)[1].reshape(2, K, M, K)
            hess = np.moveaxis((g[0] - g[1]) / (2.0 * step), 0, 1)  # [M, l, k]
            hess = 0.5 * (hess + np.swapaxes(hess, 1, 2))
        hess[:, range(K), range(K)] = diag
        return log_z, grad, hess
    return committee_fields.relu_inner(
        x, sigma, tie=tie, cells=relu_cells(cells, 1.0 - sigma * sigma)
    )


def maximise(
    activation: str,
    h: np.ndarray,
    sigma: float,
    omega: float,
    start: np.ndarray,
    *,
    tie: str = "error",
    cells: int = 64,
) -> tuple[np.ndarray, tuple[np.ndarray, ...], bool]:
    """The maximiser s of ln Z(h + s; sigma) - |s|^2 / (2 omega), per row of h.

    Newton from ``start`` on the stationarity s = omega grad ln Z(h + s), with the
    matrix I - omega Hess ln Z shifted to eigenvalues >= 0.1 where it is not
    (Levenberg: ln Z need not be concave at finite K), and step halving while the
    objective decreases: the local maximum of the ascent's basin. Returns (s,
    (ln Z, grad, Hessian) at h + s, every row stationary to _TOL).
    """
    s = start.copy()
    K = h.shape[1]
    eye = np.eye(K)
    noise = _LATTICE_NOISE if activation == "relu" and K > 2 else _EXACT_NOISE
    cur = local(activation, h + s, sigma, tie=tie, cells=cells)
    value = cur[0] - 0.5 * np.sum(s * s, axis=1) / omega
    for _ in range(_ASCENT):
        resid = omega * cur[1] - s  # omega x gradient of the objective
        rows = np.flatnonzero(np.max(np.abs(resid), axis=1) >= _TOL)
        if not rows.size:
            return s, cur, True
        mat = eye - omega * cur[2][rows]
        shift = np.maximum(0.1 - np.linalg.eigvalsh(mat)[:, 0], 0.0)
        step = np.linalg.solve(mat + shift[:, None, None] * eye, resid[rows][..., None])
        step = step[..., 0]
        for _ in range(40):  # halve the step of rows whose objective went down
            trial = s[rows] + step
            new = local(activation, h[rows] + trial, sigma, tie=tie, cells=cells)
            new_value = new[0] - 0.5 * np.sum(trial * trial, axis=1) / omega
            good = new_value >= value[rows] - noise
            s[rows[good]] = trial[good]
            value[rows[good]] = new_value[good]
            for part, fresh in zip(cur, new, strict=True):
                part[rows[good]] = fresh[good]
            rows, step = rows[~good], 0.5 * step[~good]
            if not rows.size:
                break
    err = np.max(np.abs(omega * cur[1] - s), axis=1)
    return s, cur, bool(np.all(err < 1e3 * _TOL))


class DenseTerm:
    """E_z F_E at finite K on fixed points, per batch (a ``dense.DenseTerm``).

    ``term(q1, omega)`` -> pooled (E F_E, d/dq1, d/domega) for ``dense.solve_saddle``;
    ``term.batches(q1, omega)`` -> E F_E per batch ``[R]``; ``term.external(q1,
    omega)`` -> the energetic 1/y coefficient per batch. The maximiser of the last
    call warm-starts the next (the solver moves in small steps). A maximisation
    that does not reach stationarity gives nan (the saddle is then unconverged).
    """

    # Fixed-point tolerance of the saddle solver on this term: on a finite point set
    # the inner maximiser of a point can jump between basins (L is not concave), so
    # the update is only piecewise smooth and |update - x| stalls near 1e-7 at some
    # loads (sign K = 3, alpha = 0.644, d = 0.05); phi is stationary, so a residual
    # of 1e-6 moves it by far less than its QMC stderr (~1e-4).
    tol = 1e-6

    def __init__(
        self, activation: str, points: GaussPoints, *, tie: str = "error", cells: int = 64
    ):
        R, M, K = points.z.shape
        self.activation, self.tie, self.cells = activation, tie, cells
        self.z = points.z.reshape(R * M, K)
        self.w, self.R = points.w, R
        self.exact = points.exact
        self._s = np.zeros_like(self.z)
        self._cache: dict[tuple[float, float], tuple] = {}

    def _means(self, values: np.ndarray) -> np.ndarray:
        return values.reshape(self.R, -1) @ self.w

    def _solve(self, q1: float, omega: float) -> tuple:
        key = (q1, omega)
        if key not in self._cache:
            sigma = math.sqrt(1.0 - q1)
            h = math.sqrt(q1) * self.z
            s, (log_z, g, hess), ok = maximise(
                self.activation, h, sigma, omega, self._s, tie=self.tie, cells=self.cells
            )
            if ok:
                self._s = s
            self._cache = {key: (s, log_z, g, hess, ok)}
        return self._cache[key]

    def evaluate(self, q1: float, omega: float) -> tuple[np.ndarray, ...]:
        """(E F_E, d/dq1, d/domega) per batch, each ``[R]`` (nan if not stationary)."""
        s, log_z, g, hess, ok = self._solve(q1, omega)
        if not ok:
            nan = np.full(self.R, math.nan)
            return nan, nan, nan
        s2 = np.sum(s * s, axis=1)
        g2 = np.sum(g * g, axis=1)
        d_q1 = np.sum(g * self.z, axis=1) / (2.0 * math.sqrt(q1)) - 0.5 * (
            np.trace(hess, axis1=1, axis2=2) + g2
        )
        return (
            self._means(log_z - 0.5 * s2 / omega),
            self._means(d_q1),
            self._means(0.5 * s2 / omega**2),
        )

    def batches(self, q1: float, omega: float) -> np.ndarray:
        return self.evaluate(q1, omega)[0]

    def __call__(self, q1: float, omega: float) -> tuple[float, float, float]:
        return tuple(float(v.mean()) for v in self.evaluate(q1, omega))

    def external(self, q1: float, omega: float) -> np.ndarray:
        """Per batch E_z[-ln det(I - omega Hess L)/2 - z . s*/(2 sqrt(q1))]
        (docs/local_entropy.md §8; no kernel-curvature term at finite K)."""
        s, _, _, hess, ok = self._solve(q1, omega)
        if not ok:
            return np.full(self.R, math.nan)
        K = self.z.shape[1]
        sign, logdet = np.linalg.slogdet(np.eye(K) - omega * hess)
        fluct = np.where(sign > 0, -0.5 * logdet, math.nan)
        shift = -np.sum(self.z * s, axis=1) / (2.0 * math.sqrt(q1))
        return self._means(fluct + shift)


def points(K: int, precision: str) -> GaussPoints:
    """The QMC set of the finite-K dense term (sizes as the Franz-Parisi ones)."""
    log2_n, batches = FINITE_K_POINTS[precision]
    return qmc_points(K, log2_n, batches, seed=K)


def saddle_row(
    term: DenseTerm, alpha: float, sd: dense.DenseSaddle
) -> dict:
    """Value, stderr, external entropy and its stderr at one solved saddle.

    phi is stationary in every order parameter, so a batch moves it by
    alpha (G_r - G) at fixed order parameters: stderr = alpha std(G_r) / sqrt(R);
    likewise for the external entropy's energetic part.
    """
    R = term.R
    g = term.batches(sd.q1, sd.omega)
    ext = term.external(sd.q1, sd.omega)
    entropic_part = dense.entropic_external(sd.q0h, sd.delta, sd.ph, sd.q1)
    se = alpha * float(g.std(ddof=1)) / math.sqrt(R) if R > 1 else 0.0
    se_ext = alpha * float(ext.std(ddof=1)) / math.sqrt(R) if R > 1 else 0.0
    return {
        "local_entropy": float(sd.local_entropy),
        "stderr": se,
        "external_entropy": entropic_part + alpha * float(ext.mean()),
        "external_stderr": se_ext,
    }


def curve_rows(
    activation: str,
    K: int,
    alpha: float,
    ds: list[float],
    *,
    damping: float,
    precision: str = "default",
    max_step: float = 0.02,
) -> list[dict]:
    """Dense rows at finite K in the order of ``ds`` (arguments already checked).

    Saddles by ``dense.continuation`` with this module's term on one QMC set
    (``FINITE_K_POINTS[precision]``). Rows carry "stderr",
    "external_entropy" (with "external_stderr") and "d_zero_external".
    """
    term = DenseTerm(activation, points(K, precision))
    saddles = dense.continuation(term, alpha, ds, damping=damping, max_step=max_step)
    rows = []
    nan = math.nan
    for d in ds:
        sd = saddles[d]
        values = (
            saddle_row(term, alpha, sd)
            if sd.converged
            else dict.fromkeys(
                ("local_entropy", "stderr", "external_entropy", "external_stderr"), nan
            )
        )
        ok = sd.converged and all(math.isfinite(v) for v in values.values())
        rows.append(
            {
                **row_keys("dense", activation, K, alpha, d),
                **(values if ok else dict.fromkeys(values, nan)),
                "converged": ok,
                **{
                    k: float(getattr(sd, k))
                    for k in ("p", "q1", "omega", "ph", "q0h", "delta")
                },
            }
        )
    d_zero = dense.external_zero(rows, dense.binding_end(activation, K, alpha))
    return [{**row, "d_zero_external": d_zero} for row in rows]


def eta_nodes(K: int) -> int:
    """Gauss-Hermite nodes per axis of each eta rule: 6 up to K = 3 (216 a mode), 4
    beyond (256 a mode at K = 4, where every node of ReLU units is a lattice pass,
    1024 at K = 5). Against 5 nodes on 32 points: 4e-4 in E_z ln E_eta Z^y at
    y = 20, ReLU K = 4 (1e-5 in Phi_y at alpha = 0.5)."""
    return 6 if K <= 3 else 4

_SAME_MODE = 1e-7  # maximisers closer than this (max norm, in s) are one mode


def _vote_starts(h: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Starts of the sign-unit maximisation, one per majority set S of units: the
    shift that puts every unit of S at +sigma (0 where it is above already).

    The tilted eta measure of a pattern the centre gets wrong has one mode per way
    of turning it right (which units flip), hence one start per set."""
    K = h.shape[1]
    need = (K + 1) // 2
    starts = []
    for chosen in itertools.combinations(range(K), need):
        s = np.zeros_like(h)
        idx = list(chosen)
        s[:, idx] = np.maximum(sigma - h[:, idx], 0.0)
        starts.append(s)
    return starts


def _relu_starts(h: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Starts of the ReLU (K >= 4) maximisation, one per nonempty set A of the
    positive group (units 0 .. K/2 - 1): A's units raised together, by a common
    shift (and each at least to +sigma), until their sum exceeds the negative
    group's by sigma (no shift where it does already).

    The wrong set {S+ <= S-} is convex in the positive group's fields (S+ is a sum
    of convex relus), so a pattern the centre gets wrong is made right across one of
    its faces, one per set A of units that carry S+ (sharing the rise is cheaper in
    |s|^2 than one unit alone); the negative group's part is convex and left to the
    ascent."""
    K = h.shape[1]
    k = K // 2
    deficit = np.sum(np.maximum(h[:, k:], 0.0), axis=1) + sigma
    starts = []
    for size in range(1, k + 1):
        for chosen in itertools.combinations(range(k), size):
            idx = list(chosen)
            rise = np.maximum((deficit - h[:, idx].sum(axis=1)) / size, 0.0)
            s = np.zeros_like(h)
            up = np.maximum(rise[:, None], sigma - h[:, idx])  # each of A active
            s[:, idx] = np.where(rise[:, None] > 0, up, 0.0)
            starts.append(s)
    return starts


class FiniteYTerm:
    """E_z ln E_eta Z(sqrt(q0) z + sqrt(q1 - q0) eta; sqrt(1 - q1))^y at finite K,
    per batch (docs/local_entropy.md §8, "Finite y").

    z on fixed points (as ``DenseTerm``). eta in R^K: the tilted measure
    e^{y L - |eta|^2/2} (L = ln Z) has one mode per way of making the committee
    right, so its modes are found by ``maximise`` (omega = y (q1 - q0)) from the
    warm start and from one start per way (sign units: per majority set of units,
    ``_vote_starts``; ReLU K >= 4: per set of positive-group units that carry the
    sum, ``_relu_starts``), each continued from the last call's maximisers (ReLU
    K = 2 has one mode: its correct set {u1 > 0, u1 > u2} is convex, so Z is
    log-concave);
    each distinct mode m gets a tensor Gauss-Hermite rule of ``nodes`` per axis
    (default ``eta_nodes(K)``)
    centred on it and scaled by its Laplace covariance (I - omega Hess L)^-1
    (eigenvalues floored at 0.1 as in ``maximise``), and the rules are combined
    by the balance heuristic: mode m integrates f N pi_m N_m / sum_m' pi_m' N_m',
    pi_m its Laplace mass. Exact for a mixture of Gaussians; one mode is plain
    Laplace-centred Gauss-Hermite. All in log space; ReLU K >= 4 on the lattice of
    ``cells`` (as ``DenseTerm``'s) in the maximisation and the rules alike. ``term(y, q1, q0)`` ->
    pooled (value, a1, a0) with q1h = alpha a1, q0h = alpha a0: a1 = 2 dE/dq1 /
    (y (y - 1)) = E_z <|grad L|^2> (heat equation; <.> the tilted eta average) and
    a0 = -2 dE/dq0 / y^2 = E_z[<|grad L|^2> + <Laplacian L> / y
    - z . <grad L> / (y sqrt(q0))] (whose expectation is E_z |<grad L>|^2);
    ``term.batches(y, q1, q0)`` -> the value per batch ``[R]``. nan where the
    warm-started maximiser is not stationary.
    """

    tol = DenseTerm.tol  # same piecewise smoothness of the warm-started maximiser

    def __init__(
        self, activation: str, points: GaussPoints, *, nodes: int | None = None,
        cells: int = 64,
    ):
        R, M, K = points.z.shape
        nodes = eta_nodes(K) if nodes is None else nodes
        self.activation, self.cells = activation, cells
        self.z = points.z.reshape(R * M, K)
        self.w, self.R = points.w, R
        rule = hermite_points(K, nodes)
        self.xi, self.log_xi_w = rule.z[0], np.log(rule.w)
        self._s = np.zeros_like(self.z)
        self._votes: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._cache: dict[tuple[float, float, float], tuple] = {}

    def _means(self, values: np.ndarray) -> np.ndarray:
        return values.reshape(self.R, -1) @ self.w

    def _modes(self, h: np.ndarray, sigma: float, omega: float, y: float):
        """Candidate modes per point (C = 1 + the starts of the ways): shifts s
        ``[C, M, K]``, Laplace factors C_m = V / sqrt(lam) ``[C, M, K, K]``, the
        eigenvalues lam of I - omega Hess L ``[C, M, K]``, sum ln lam ``[C, M]`` and
        log Laplace masses ``[C, M]`` (-inf for a duplicate or non-stationary
        candidate); None if the warm start fails."""
        found = []
        if self.activation == "sign":
            votes = _vote_starts(h, sigma)
        else:
            votes = _relu_starts(h, sigma) if h.shape[1] > 2 else []
        if self._votes is not None:  # each start continued from its last stationary point
            votes = [np.where(ok[:, None], last, v) for v, (last, ok) in
                     zip(votes, self._votes, strict=True)]
        for n, start in enumerate([self._s, *votes]):
            s, (log_z, grad, hess), ok = maximise(
                self.activation, h, sigma, omega, start, cells=self.cells
            )
            if n == 0:
                if not ok:
                    return None
                self._s = s
            good = np.max(np.abs(omega * grad - s), axis=1) < 1e3 * _TOL
            # a non-stationary candidate is dropped below; keep its numbers finite
            found.append((s, log_z, np.where(good[:, None, None], hess, 0.0), good))
        self._votes = [(f[0], f[3]) for f in found[1:]]
        K = h.shape[1]
        shifts = np.stack([f[0] for f in found])
        lam, vec = np.linalg.eigh(np.eye(K) - omega * np.stack([f[2] for f in found]))
        lam = np.maximum(lam, 0.1)
        log_det = np.sum(np.log(lam), axis=2)
        peak = y * (np.stack([f[1] for f in found]) - 0.5 * np.sum(shifts**2, 2) / omega)
        log_mass = peak - 0.5 * log_det
        for c, f in enumerate(found):
            same = np.zeros(h.shape[0], dtype=bool)
            for e in range(c):
                same |= np.max(np.abs(shifts[c] - shifts[e]), axis=1) < _SAME_MODE
            log_mass[c] = np.where(f[3] & ~same, log_mass[c], -np.inf)
        return shifts, vec / np.sqrt(lam)[..., None, :], lam, log_det, log_mass

    def evaluate(self, y: float, q1: float, q0: float) -> tuple[np.ndarray, ...]:
        """(value, a1, a0) per batch, each ``[R]`` (nan if not stationary)."""
        key = (y, q1, q0)
        if key in self._cache:
            return self._cache[key]
        sigma, spread = math.sqrt(1.0 - q1), math.sqrt(q1 - q0)
        h = math.sqrt(q0) * self.z
        modes = self._modes(h, sigma, y * (q1 - q0), y)
        if modes is None:
            nan = np.full(self.R, math.nan)
            self._cache = {key: (nan, nan, nan)}
            return nan, nan, nan
        shifts, chol, lam, log_det, log_mass = modes
        M, K = self.z.shape
        log_pi = log_mass - special.logsumexp(log_mass, axis=0)
        cand, point = np.nonzero(np.isfinite(log_pi))  # the (mode, point) pairs used
        centre = shifts[cand, point] / spread  # eta at the mode
        eta = centre[:, None, :] + np.einsum("pkj,nj->pnk", chol[cand, point], self.xi)
        log_z, grad, diag = committee_fields.inner(
            self.activation,
            (h[point][:, None, :] + spread * eta).reshape(-1, K),
            sigma,
            cells=relu_cells(self.cells, 1.0 - sigma * sigma),  # as maximise's lattice
        )
        # log of the mixture density sum_m pi_m N_m(eta) (up to (2 pi)^-K/2) at the
        # nodes, over every mode m of the pair's point
        diff = eta[None] - shifts[:, point][:, :, None, :] / spread  # [C, P, n, K]
        # C_m^-1 (eta - mu_m) = lam V^T (eta - mu_m) / sqrt(lam), C_m = V / sqrt(lam)
        proj = np.einsum("cpkj,cpnk->cpnj", chol[:, point], diff)
        proj = proj * lam[:, point][:, :, None, :]
        log_n = -0.5 * np.sum(proj * proj, axis=3) + 0.5 * log_det[:, point][:, :, None]
        log_q = special.logsumexp(log_pi[:, point][:, :, None] + log_n, axis=0)
        log_f = (
            y * log_z.reshape(len(cand), -1)
            - 0.5 * np.sum(eta * eta, axis=2)
            + log_pi[cand, point][:, None]
            - log_q
            + self.log_xi_w
        )
        # per point: logsumexp over its pairs and nodes
        top = np.full(M, -np.inf)
        np.maximum.at(top, point, log_f.max(axis=1))
        expf = np.exp(log_f - top[point][:, None])
        mass = np.zeros(M)
        np.add.at(mass, point, expf.sum(axis=1))
        total = top + np.log(mass)
        weight = (expf / mass[point][:, None])[..., None]
        grad = grad.reshape(len(cand), -1, K)
        mean_g = np.zeros((M, K))
        np.add.at(mean_g, point, np.sum(weight * grad, axis=1))
        g2 = np.zeros(M)
        np.add.at(g2, point, np.sum(weight * grad * grad, axis=(1, 2)))
        lap = np.zeros(M)
        np.add.at(lap, point, np.sum(weight[..., 0] * diag.reshape(len(cand), -1, K).sum(2), 1))
        # a0 = -2 dE/dq0 / y^2 differentiated along the points (z . <grad L> term), so
        # that Phi_y is stationary on the point set; E_z of it is E_z |<grad L>|^2
        a0 = g2 + lap / y - np.sum(self.z * mean_g, axis=1) / (y * math.sqrt(q0))
        out = (self._means(total), self._means(g2), self._means(a0))
        self._cache = {key: out}
        return out

    def batches(self, y: float, q1: float, q0: float) -> np.ndarray:
        return self.evaluate(y, q1, q0)[0]

    def __call__(self, y: float, q1: float, q0: float) -> tuple[float, float, float]:
        return tuple(float(v.mean()) for v in self.evaluate(y, q1, q0))
