"""Dense regions at finite K (relu_landscape.theory.dense_finite_k),
docs/local_entropy.md §8.

Independent numbers: the quadrature perceptron term and curve of theory/dense.py
(K = 1 run through the K-dimensional machinery), finite differences of the term,
brute-force Gaussian integrals over the replica noise eta at large y (the Laplace
correction behind the external entropy), the RS entropy s(alpha) (every local
entropy is at most the log-number of all solutions) and the bound
-d ln d - (1-d) ln(1-d). QMC tolerances are multiples of the reported stderr.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from relu_landscape.cli import main
from relu_landscape.theory import (
    breakup,
    dense_local_entropy_curve,
    franz_parisi_curve,
    rs_entropy,
)
from relu_landscape.theory import committee_fields as cf
from relu_landscape.theory import dense as de
from relu_landscape.theory import dense_finite_k as dk
from relu_landscape.theory.committee_fields import sign_inner
from relu_landscape.theory.energetic import log_inner_relu, relu_cells
from relu_landscape.theory.gauss import hermite_points, qmc_points
from tests.theory.conftest import assert_approaches_wide_limit, bound


@pytest.mark.parametrize("q1, omega", [(0.8, 0.7), (0.95, 2.0), (0.5, 0.3)])
def test_K1_term_equals_the_perceptron_quadrature(q1, omega):
    """K = 1 through the K-dimensional maximisation: the same Gauss-Hermite nodes
    as dense.energetic, so agreement is to the inner solver's tolerance."""
    term = dk.DenseTerm("sign", hermite_points(1, 64))
    assert term(q1, omega) == pytest.approx(de.energetic("linear", q1, omega), abs=1e-9)
    assert float(term.external(q1, omega)[0]) == pytest.approx(
        de.energetic_external("linear", q1, omega), abs=1e-8
    )


def test_K1_saddle_equals_the_perceptron_dense_curve():
    term = dk.DenseTerm("sign", hermite_points(1, 64))
    for p in (0.8, 0.9):
        sd = de.solve_saddle(term, 0.5, p, (p * p, 1.0), tol=1e-9)
        ref = de.solve_saddle("linear", 0.5, p, (p * p, 1.0))
        assert sd.converged and ref.converged
        assert sd.local_entropy == pytest.approx(ref.local_entropy, abs=1e-8)
        assert sd.ph == pytest.approx(ref.ph, abs=1e-6)


# ReLU K = 2 fields, sigma = 0.6: typical, far off (Z ~ e^-35, beyond the lattice's
# reach), far on, and both units off
_PAIR_FIELDS = np.array(
    [[0.3, -0.4], [-0.8, 0.5], [1.1, 1.3], [-5.0, 0.0], [0.0, 6.0], [3.0, -3.0],
     [-2.0, -2.5], [10.0, 15.0]]
)


@pytest.mark.parametrize("tie", ["error", "success"])
def test_relu_pair_value_matches_adaptive_quadrature(tie):
    """K = 2: ln Z against scipy's adaptive quadrature of P[u1 > 0, u1 > u2] (plus the
    both-off atom for tie="success") in the scaled integrand: 1e-11 in ln Z
    (the rule's measured error is 1e-13), also where Z ~ 1e-15."""
    from scipy import integrate, special

    sigma = 0.6
    log_z = cf.relu_pair_inner(_PAIR_FIELDS, sigma, tie=tie)[0]
    for (h1, h2), got in zip(_PAIR_FIELDS, log_z, strict=True):
        def log_f(t, h1=h1, h2=h2):
            return -0.5 * t * t + special.log_ndtr((h1 - h2) / sigma + t)

        lo = -h1 / sigma
        top = max(log_f(t) for t in np.linspace(lo, lo + 30.0, 3001))
        mass = integrate.quad(lambda t, top=top: math.exp(log_f(t) - top), lo, lo + 60.0,
                              epsabs=0.0, epsrel=1e-13, limit=400)[0]
        ref = top + math.log(mass / math.sqrt(2.0 * math.pi))
        if tie == "success":
            ref = np.logaddexp(ref, special.log_ndtr(-h1 / sigma) + special.log_ndtr(
                -h2 / sigma))
        assert got == pytest.approx(ref, abs=1e-11)


@pytest.mark.parametrize("tie", ["error", "success"])
def test_relu_pair_derivatives_match_finite_differences(tie):
    """K = 2: the closed-form gradient and Hessian against central differences of
    the exact value and gradient (step 1e-5: truncation ~1e-10, rounding ~1e-8)."""
    sigma, eps = 0.6, 1e-5
    _, grad, hess = cf.relu_pair_inner(_PAIR_FIELDS, sigma, tie=tie)
    for k in range(2):
        shift = eps * np.eye(2)[k]
        up = cf.relu_pair_inner(_PAIR_FIELDS + shift, sigma, tie=tie)
        down = cf.relu_pair_inner(_PAIR_FIELDS - shift, sigma, tie=tie)
        scale = 1.0 + np.abs(grad[:, k])
        assert np.all(np.abs((up[0] - down[0]) / (2 * eps) - grad[:, k]) < 1e-6 * scale)
        scale = 1.0 + np.abs(hess[:, k])
        assert np.all(np.abs((up[1] - down[1]) / (2 * eps) - hess[:, k]) < 1e-6 * scale)


def test_relu_lattice_derivatives_match_the_exact_pair():
    """K = 2 through the lattice with analytic derivatives (the K >= 4 route) against
    the exact pair: value, gradient and Hessian to the lattice's O(delta^2) error
    (measured 4.5e-6, 1.7e-5, 3.2e-5 on these fields at 128 cells, Z > 8e-4)."""
    sigma = 0.5
    fields = qmc_points(2, 5, 1, seed=1).z[0] * 0.8
    exact = cf.relu_pair_inner(fields, sigma)
    lattice = cf.relu_lattice_inner(fields, sigma, cells=relu_cells(64, 1 - sigma**2))
    assert np.all(exact[0] > math.log(1e-4))
    for got, ref in zip(lattice, exact, strict=True):
        assert np.max(np.abs(got - ref)) < 2e-4
        assert np.max(np.abs(ref)) > 0.1  # the comparison has power


def test_relu_lattice_K4_reduces_to_the_pair_and_matches_differences():
    """K = 4, c = (+, +, -, -): with units 2 and 4 far off (h = -12 sigma) Z is the
    pair's Z(h1, h3) and its derivatives in h2, h4 vanish (exact, independent);
    on generic fields the analytic lattice derivatives equal central differences
    (step 0.01 sigma) of the independent lattice value energetic.log_inner_relu,
    which carries the finite-difference error (~1e-4 relative, Hessian) and its
    geometry's motion (measured: value 4e-8, gradient 4e-5, Hessian 3.6e-4 with
    entries up to 3.5; pair reduction 5e-5)."""
    sigma = 0.5
    cells = relu_cells(64, 1 - sigma**2)
    pair = qmc_points(2, 4, 1, seed=2).z[0] * 0.8
    off = np.full(len(pair), -12.0 * sigma)
    fields = np.stack([pair[:, 0], off, pair[:, 1], off], axis=1)
    log_z, grad, hess = cf.relu_lattice_inner(fields, sigma, cells=cells)
    ref = cf.relu_pair_inner(pair, sigma)
    assert np.max(np.abs(log_z - ref[0])) < 2e-4
    assert np.max(np.abs(grad[:, [0, 2]] - ref[1])) < 2e-4
    assert np.max(np.abs(hess[:, [0, 2]][:, :, [0, 2]] - ref[2])) < 2e-4
    assert np.max(np.abs(grad[:, [1, 3]])) < 1e-12
    fields = qmc_points(4, 4, 1, seed=2).z[0] * 0.8
    log_z, grad, hess = cf.relu_lattice_inner(fields, sigma, cells=cells)
    step = 0.01 * sigma
    eye = step * np.eye(4)

    def value(x):
        return log_inner_relu(x, sigma, "error", cells)

    assert np.max(np.abs(log_z - value(fields))) < 1e-6
    fd_hess = np.empty_like(hess)
    for i in range(4):
        fd = (value(fields + eye[i]) - value(fields - eye[i])) / (2 * step)
        assert np.max(np.abs(fd - grad[:, i])) < 3e-4
        for j in range(4):
            fd_hess[:, i, j] = (value(fields + eye[i] + eye[j]) - value(fields + eye[i] - eye[j])
                                - value(fields - eye[i] + eye[j])
                                + value(fields - eye[i] - eye[j])) / (4 * step**2)
    assert np.max(np.abs(fd_hess - hess)) < 1.5e-3
    assert np.max(np.abs(hess[:, 0, 2])) > 0.1  # across the groups: power


def test_relu_inner_diagonal_alone_is_the_full_hessians():
    """The Franz-Parisi route (committee_fields.inner: the Hessian's diagonal alone,
    K second-order group laws instead of K (K + 1) / 2) equals the diagonal of the
    full Hessian, value and gradient alike (same arithmetic: 1e-12), at K = 2
    (exact pair) and K = 6 (lattice)."""
    for K in (2, 6):
        fields = qmc_points(K, 4, 1, seed=3).z[0] * 0.8
        full = cf.relu_inner(fields, 0.5, cells=48)
        diag = cf.inner("relu", fields, 0.5, cells=48)
        assert diag[2].shape == fields.shape
        np.testing.assert_allclose(diag[0], full[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(diag[1], full[1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(diag[2], np.diagonal(full[2], axis1=1, axis2=2),
                                   rtol=0, atol=1e-12)
        assert np.max(np.abs(diag[2])) > 0.1


def _lattice_differences(x, sigma, *, tie="error", cells=64):
    """The former ReLU route of dense_finite_k.local: central and second differences
    (step 0.01 sigma) of the lattice value energetic.log_inner_relu."""
    M, K = x.shape
    step, eye = 0.01 * sigma, 0.01 * sigma * np.eye(K)
    cells = relu_cells(cells, 1.0 - sigma * sigma)

    def value(shift):
        return log_inner_relu(x + shift, sigma, tie, cells)

    centre = value(0.0)
    grad, hess = np.empty((M, K)), np.empty((M, K, K))
    for i in range(K):
        up, down = value(eye[i]), value(-eye[i])
        grad[:, i] = (up - down) / (2 * step)
        hess[:, i, i] = (up - 2 * centre + down) / step**2
        for j in range(i + 1, K):
            hess[:, i, j] = hess[:, j, i] = (
                value(eye[i] + eye[j]) - value(eye[i] - eye[j]) - value(eye[j] - eye[i])
                + value(-eye[i] - eye[j])) / (4 * step**2)
    return centre, grad, hess


@pytest.mark.parametrize("K, log2_n", [(2, 3), pytest.param(4, 2, marks=pytest.mark.slow)])
def test_relu_term_equals_the_lattice_difference_term(K, log2_n, monkeypatch):
    """The ReLU dense term (E F_E, d/dq1, d/domega and the external term) with the
    exact (K = 2) or analytic-lattice (K = 4) local fields equals the same term
    through the former route, finite differences of the independent lattice value:
    both solve the same inner maximum, to the lattice's error (~1e-5 in ln Z and its
    derivatives; measured <= 5e-6 on these pooled means). The former route is the
    cost of this test: ~40 times the new one at K = 2, ~20 times at K = 4 (slow;
    CI checks K = 4's local fields per point instead)."""
    pts = qmc_points(K, log2_n, 2, seed=5)
    new = dk.DenseTerm("relu", pts)
    values = [*new.evaluate(0.7, 0.8), new.external(0.7, 0.8)]
    monkeypatch.setattr(dk, "local", lambda activation, x, sigma, **kw:
                        _lattice_differences(x, sigma, **kw))
    monkeypatch.setattr(dk, "_EXACT_NOISE", dk._LATTICE_NOISE)  # the lattice's noise
    old = dk.DenseTerm("relu", pts)
    for got, ref in zip(values, [*old.evaluate(0.7, 0.8), old.external(0.7, 0.8)],
                        strict=True):
        assert np.all(np.isfinite(got))
        assert got == pytest.approx(ref, abs=2e-5)


@pytest.mark.parametrize("activation, K", [("sign", 3), ("sign", 5)])
def test_term_derivatives_match_finite_differences(activation, K):
    """Envelope theorem and heat equation: d/dq1 and d/domega on the same points."""
    term = dk.DenseTerm(activation, qmc_points(K, 6, 2, seed=3))
    q1, omega, eps = 0.8, 0.7, 1e-5
    _, d_q1, d_omega = term(q1, omega)
    fd_q1 = (term(q1 + eps, omega)[0] - term(q1 - eps, omega)[0]) / (2 * eps)
    fd_om = (term(q1, omega + eps)[0] - term(q1, omega - eps)[0]) / (2 * eps)
    assert d_q1 == pytest.approx(fd_q1, rel=1e-5)
    assert d_omega == pytest.approx(fd_om, rel=1e-5)


def test_laplace_correction_matches_brute_force_at_large_y():
    """K = 3: y [(1/y) ln E_eta Z(h + sqrt(omega/y) eta)^y - F_E] -> -ln det(I -
    omega Hess ln Z)/2, by Gauss-Hermite in eta around the maximiser (Richardson
    in y = 200, 400)."""
    q1, omega, sigma = 0.8, 0.7, math.sqrt(0.2)
    h = math.sqrt(q1) * np.array([[0.3, -0.9, 0.5], [-1.2, 0.4, -0.2]])
    s, (log_z, _, hess), ok = dk.maximise("sign", h, sigma, omega, np.zeros_like(h))
    assert ok
    f_e = log_z - 0.5 * np.sum(s * s, axis=1) / omega
    fluct = -0.5 * np.linalg.slogdet(np.eye(3) - omega * hess)[1]
    v = hermite_points(3, 24)
    nodes, w = v.z[0], v.w
    gaps = []
    for y in (200.0, 400.0):
        out = []
        for row in range(2):
            centre = math.sqrt(y / omega) * s[row]  # eta at the maximiser
            x = h[row] + s[row] + math.sqrt(omega / y) * nodes
            log_f = y * sign_inner(x, sigma)[0] - nodes @ centre - centre @ centre / 2
            top = log_f.max()
            out.append((top + math.log(w @ np.exp(log_f - top))) / y)
        gaps.append(y * (np.array(out) - f_e))
    richardson = 2 * gaps[1] - gaps[0]
    assert richardson == pytest.approx(fluct, abs=2e-3)
    assert np.all(np.abs(fluct) > 0.05)  # the check has power


def test_unconverged_points_are_nan_not_numbers():
    """d = 0.45 at alpha = 0.5 is beyond the binding range of sign K = 3."""
    (row,) = dense_local_entropy_curve("sign", 3, 0.5, [0.45], precision="fast")
    assert row["converged"] is False and row["K"] == 3
    assert math.isnan(row["local_entropy"]) and math.isnan(row["stderr"])
    assert math.isnan(row["external_entropy"])


def test_finite_k_dense_lies_between_its_bounds_cheaply():
    """sign K = 3, alpha = 0.5, d = 0.1 on 128 points: phi <= s(alpha) (the whole
    solution space), phi <= B(d), and the external entropy is negative (RS
    overestimates, as at K = 1 and K = inf)."""
    term = dk.DenseTerm("sign", qmc_points(3, 5, 4, seed=3))
    sd = de.solve_saddle(term, 0.5, 0.8, (0.64, 1.0))
    assert sd.converged
    row = dk.saddle_row(term, 0.5, sd)
    s = rs_entropy("sign", 3, 0.5, precision="fast").value  # quadrature at K = 3
    assert 0 < row["stderr"] < 0.01
    assert row["local_entropy"] < min(s, bound(0.1)) - 3 * row["stderr"]
    assert row["external_entropy"] < -3 * row["external_stderr"]


def test_breakup_profile_at_finite_k_has_slope_twice_ph():
    """The alpha_U machinery on a finite-K term (sign K = 3, 128 points): the
    continued profile is complete and positive at alpha = 0.5, and
    dphi/dd = 2 ph (envelope theorem, central difference over 0.01)."""
    term = dk.DenseTerm("sign", qmc_points(3, 5, 4, seed=3))
    prof = breakup.profile(term, 0.5, d_hi=0.1, d_lo=0.09, step=0.005)
    assert prof.complete and not prof.broken and np.all(prof.ph > 0)
    assert list(prof.d) == pytest.approx([0.1, 0.095, 0.09])
    slope = (prof.local_entropy[0] - prof.local_entropy[2]) / 0.01
    assert slope == pytest.approx(2 * prof.ph[1], rel=2e-3)


def test_cli_gives_finite_k_rows(capsys):
    argv = ["theory", "local-entropy", "--activation", "sign", "--K", "3", "--alpha",
            "0.5", "--d", "0.45", "--precision", "fast", "--format", "json"]
    assert main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["K"] == 3 and row["converged"] is False
    assert {"external_entropy", "d_zero_external", "stderr"} <= set(row)


@pytest.mark.slow
@pytest.mark.parametrize(
    "activation, K, ds",
    [("sign", 3, [0.1, 0.05]), ("sign", 5, [0.1, 0.05]), ("relu", 2, [0.1])],
)
def test_franz_parisi_below_dense_below_bound(activation, K, ds):
    """alpha = 0.5, "fast" points. Measured: sign K = 3 at d = 0.1, 0.05: S_FP
    0.142, 0.064 < phi 0.232, 0.169; ReLU K = 2 at d = 0.1: 0.055 < 0.093."""
    dense = dense_local_entropy_curve(activation, K, 0.5, ds, precision="fast")
    fps = franz_parisi_curve(activation, K, 0.5, ds, precision="fast")
    for d, row, fp in zip(ds, dense, fps, strict=True):
        assert row["converged"] and fp["converged"]
        err = 3 * math.hypot(row["stderr"], fp["stderr"])
        assert fp["local_entropy"] < row["local_entropy"] + err
        assert row["local_entropy"] < bound(d)


@pytest.mark.slow
def test_relu_k2_curve_equals_the_former_lattice_route():
    """ReLU K = 2, alpha = 0.5, "fast" points: the curve through the exact local
    fields equals the saddles solved through the former route (finite differences
    of the lattice, same points; recorded: phi 0.0928194322, 0.0665109097, Sigma
    -0.0162734977, -0.0715575368 at d = 0.1, 0.05, 30 CPU-seconds per saddle from
    the new one's order parameters, ~13 minutes per point from scratch). The
    lattice's ~1e-6 error in ln Z moves phi by ~1e-8 and Sigma by ~1e-6, far below
    the stderr (1.7e-3 and 1e-3). ~20 s."""
    rows = dense_local_entropy_curve("relu", 2, 0.5, [0.1, 0.05], precision="fast")
    former = {0.1: (0.0928194322, -0.0162734977), 0.05: (0.0665109097, -0.0715575368)}
    for row in rows:
        phi, sigma = former[row["d"]]
        assert row["converged"]
        assert row["local_entropy"] == pytest.approx(phi, abs=1e-7)
        assert row["external_entropy"] == pytest.approx(sigma, abs=1e-5)
        assert row["stderr"] > 1e-3


@pytest.mark.slow
def test_sign_dense_approaches_the_wide_limit_as_K_grows():
    """alpha = 0.5, d = 0.1: |phi_K - phi_inf| shrinks with K (K = 1 .. 15)."""
    (wide,) = dense_local_entropy_curve("sign", math.inf, 0.5, [0.1])
    rows = {
        K: dense_local_entropy_curve("sign", K, 0.5, [0.1], precision="fast")[0]
        for K in (3, 7, 15)
    }
    (narrow,) = dense_local_entropy_curve("sign", 1, 0.5, [0.1])
    rows = {1: narrow, **rows}
    assert_approaches_wide_limit(wide, rows)

