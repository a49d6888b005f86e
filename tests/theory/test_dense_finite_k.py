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
from relu_landscape.theory import dense as de
from relu_landscape.theory import dense_finite_k as dk
from relu_landscape.theory.committee_fields import sign_inner
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
    0.142, 0.064 < phi 0.232, 0.169; ReLU K = 2 at d = 0.1: 0.055 < 0.093 (ReLU:
    ~15 CPU-minutes for its one point, the lattice Hessian)."""
    dense = dense_local_entropy_curve(activation, K, 0.5, ds, precision="fast")
    fps = franz_parisi_curve(activation, K, 0.5, ds, precision="fast")
    for d, row, fp in zip(ds, dense, fps, strict=True):
        assert row["converged"] and fp["converged"]
        err = 3 * math.hypot(row["stderr"], fp["stderr"])
        assert fp["local_entropy"] < row["local_entropy"] + err
        assert row["local_entropy"] < bound(d)


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

