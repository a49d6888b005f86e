"""Dense regions at finite y (theory.dense_finite_y), docs/local_entropy.md §7, and
at finite K (dense_finite_k.FiniteYTerm, §8).

Independent numbers: the y -> infinity curve and its external entropy Sigma
(theory/dense.py, Laplace integrals) and finite differences of the finite-y free
entropy. As y grows Phi_y = phi + Sigma / y + O(1/y^2) at the saddle (the order
parameters are stationary, so their O(1/y) shifts enter at O(1/y^2)); the
Richardson combination of two y removes the 1/y term and leaves O(1/y^2):
tolerances 2e-3 at y = 32, 64 (observed 1e-4).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from relu_landscape.cli import main
from relu_landscape.theory import dense as de
from relu_landscape.theory import dense_finite_k as dk
from relu_landscape.theory import dense_finite_y as fy
from relu_landscape.theory import dense_local_entropy_curve, franz_parisi_curve
from relu_landscape.theory.gauss import hermite_points, qmc_points
from tests.theory.conftest import bound

ALPHA, D = 0.5, 0.1


def saddle(kernel: str):
    p = 1 - 2 * D
    sd = de.solve_saddle(kernel, ALPHA, p, (p * p, 1.0))
    return sd, de.external_entropy(kernel, ALPHA, sd)


@pytest.fixture(scope="module")
def limit():
    return saddle("linear")


@pytest.mark.parametrize("kernel", ["linear", "sign", "relu"])
def test_free_entropy_tends_to_the_limit_with_its_1_over_y_term(kernel):
    """At the y -> infinity order parameters mapped to finite y (q0 = q1 - omega/y,
    q1h = q0h + delta/y): y (Phi_y - phi) -> Sigma; the entropic outputs tend to
    p and omega. The K = inf kernels check Sigma's kernel-curvature term (§5)."""
    sd, sigma = saddle(kernel)
    gaps = {}
    for y in (64, 128):
        value = fy.free_entropy(kernel, y, ALPHA, sd.p, sd.q1, sd.q1 - sd.omega / y,
                                sd.ph, sd.q0h + sd.delta / y, sd.q0h)
        gaps[y] = y * (value - sd.local_entropy)
        _, p, q1, q0, _ = fy._entropic(y, sd.q0h, math.sqrt(sd.delta / y), sd.ph)
        assert p == pytest.approx(sd.p, abs=2.0 / y)
        assert y * (q1 - q0) == pytest.approx(sd.omega, rel=8.0 / y)
    assert 2 * gaps[128] - gaps[64] == pytest.approx(sigma, abs=2e-3)


def test_entropic_p_is_the_ph_derivative():
    """p = (1/y) d/dph E_z ln sum_X E_eta (2cosh h)^y (central differences)."""
    y, eps = 8.0, 1e-5
    out = fy._entropic(y, 0.4, 0.3, 0.5)
    plus = fy._entropic(y, 0.4, 0.3, 0.5 + eps)[0]
    minus = fy._entropic(y, 0.4, 0.3, 0.5 - eps)[0]
    assert out[1] == pytest.approx((plus - minus) / (2 * eps * y), rel=1e-6)
    up = fy._entropic(y, 0.4, 0.3, 0.5 + eps)
    down = fy._entropic(y, 0.4, 0.3, 0.5 - eps)
    assert out[4] == pytest.approx((up[1] - down[1]) / (2 * eps), rel=1e-5)


def test_bad_y_exits_2(capsys):
    argv = ["theory", "local-entropy", "--activation", "sign", "--K", "1",
            "--alpha", "0.5", "--d", "0.1", "--y", "0.5"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "y=0.5" in err and "Traceback" not in err


@pytest.mark.slow
def test_finite_y_saddles_approach_the_y_inf_curve(limit, capsys):
    """Solved saddles at y = 16, 32, 64: y (Phi_y - phi) moves monotonically towards
    Sigma and its Richardson extrapolation from 32, 64 is Sigma within 2e-3; the
    CLI's --y row is the y = 64 value."""
    sd, sigma = limit
    gaps = {}
    for y in (16, 32, 64):
        f = fy.solve_saddle("linear", y, ALPHA, sd.p, (sd.q1, sd.omega))
        assert f.converged
        gaps[y] = y * (f.local_entropy - sd.local_entropy)
    assert gaps[16] > gaps[32] > gaps[64] > sigma
    assert 2 * gaps[64] - gaps[32] == pytest.approx(sigma, abs=2e-3)
    argv = ["theory", "local-entropy", "--activation", "sign", "--K", "1",
            "--alpha", str(ALPHA), "--d", str(D), "--y", "64", "--format", "json"]
    assert main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["y"] == 64 and row["converged"]
    assert row["local_entropy"] == pytest.approx(sd.local_entropy + gaps[64] / 64,
                                                 abs=1e-8)


# ---- finite y at finite K (dense_finite_k.FiniteYTerm), docs/local_entropy.md §8

@pytest.mark.parametrize("y, q1, q0", [(5.0, 0.8, 0.6), (20.0, 0.9, 0.85), (2.0, 0.7, 0.3)])
def test_K1_finite_y_term_equals_the_perceptron_grid(y, q1, q0):
    """K = 1 through the K-dimensional term (Laplace-centred Gauss-Hermite in eta,
    12 nodes) on the Gauss-Hermite z nodes of the perceptron term (uniform eta grid):
    value and the conjugate averages agree to the eta rule's error (observed 5e-6)."""
    term = dk.FiniteYTerm("sign", hermite_points(1, 64), nodes=12)
    assert term(y, q1, q0) == pytest.approx(fy.kernel_term("linear")(y, q1, q0), abs=2e-5)


@pytest.mark.parametrize(
    "activation, K, log2_n, nodes, rel",
    [("sign", 3, 5, 10, 5e-4), ("relu", 2, 5, 10, 5e-4), ("relu", 4, 3, 4, 1e-2),
     ("sign", 5, 4, 4, 1e-2)],
)
def test_finite_k_finite_y_conjugates_are_derivatives(activation, K, log2_n, nodes, rel):
    """Heat equation in K dimensions: dE/dq1 = y (y - 1) a1 / 2 and
    dE/dq0 = -y^2 a0 / 2 (central differences on the same points). The eta rules
    move with the modes, so agreement is to the rules' error: 10 nodes per axis at
    a small spread q1 - q0 (sign K = 3: observed 4e-5 and 8e-6 relative, 6 nodes:
    1e-3; ReLU K = 2, one mode: 7e-7 and 1.3e-6); ReLU K = 4 (lattice, several
    modes; 32 points): 2.0e-3 and 1.2e-3 at 4 nodes (on the 16 tested: 1.7e-4,
    8.7e-5), -4.4e-3 and -2.6e-3 at 5, 1.8e-3 and 1.2e-3 at 6, i.e. the rules'
    error as the modes found move with (q1, q0), not shrinking with the nodes at
    this spread; sign K = 5 (32 points):
    4.7e-3 and 2.2e-3 at 4 nodes, 8e-4 and 4e-4 at 5."""
    term = dk.FiniteYTerm(activation, qmc_points(K, log2_n, 2, seed=3), nodes=nodes)
    y, q1, q0, eps = 5.0, 0.8, 0.76, 1e-4
    _, a1, a0 = term(y, q1, q0)
    fd_q1 = (term(y, q1 + eps, q0)[0] - term(y, q1 - eps, q0)[0]) / (2 * eps)
    fd_q0 = (term(y, q1, q0 + eps)[0] - term(y, q1, q0 - eps)[0]) / (2 * eps)
    assert fd_q1 == pytest.approx(y * (y - 1) / 2 * a1, rel=rel)
    assert fd_q0 == pytest.approx(-y * y / 2 * a0, rel=rel)


@pytest.mark.parametrize(
    "activation, K, below, tol, y",
    [("sign", 3, -0.1, 2e-3, 64.0), ("relu", 2, -0.01, 5e-4, 64.0),
     pytest.param("relu", 4, -0.05, 1e-3, 128.0, marks=pytest.mark.slow),
     pytest.param("sign", 5, -0.1, 1e-3, 64.0, marks=pytest.mark.slow)],
)
def test_finite_k_free_entropy_tends_to_the_limit_with_sigma(activation, K, below, tol, y):
    """128 points: at the y -> infinity saddle (dense_finite_k on the same points)
    mapped to finite y, y (Phi_y - phi) -> Sigma, the finite-K external entropy
    (Laplace fluctuation determinant and centre shift): Richardson in y = 64, 128
    leaves O(1/y^2) (observed 2e-4 against Sigma = -0.138, sign K = 3; 9e-5
    against Sigma = -0.0155, ReLU K = 2, whose O(1/y^2) term is smaller). ReLU
    K = 4 (lattice, 4 eta nodes; ~1 minute): its O(1/y^2) term is larger, so
    y = 128, 256 (Richardson through 64/128, 128/256, 256/512: -0.09705,
    -0.09836, -0.09903 against Sigma = -0.09865; 5 nodes move them by < 1e-4).
    Sign K = 5 (4 eta nodes): -0.16317 (64/128), -0.16316 (128/256) against
    Sigma = -0.16299."""
    pts = qmc_points(K, 5, 4, seed=3)
    term = dk.DenseTerm(activation, pts)
    sd = de.solve_saddle(term, ALPHA, 1 - 2 * D, (0.64, 1.0))
    assert sd.converged
    sigma = dk.saddle_row(term, ALPHA, sd)["external_entropy"]
    finite = dk.FiniteYTerm(activation, pts)
    gaps = []
    for big in (y, 2 * y):
        value = fy.free_entropy(finite, big, ALPHA, sd.p, sd.q1, sd.q1 - sd.omega / big,
                                sd.ph, sd.q0h + sd.delta / big, sd.q0h)
        gaps.append(big * (value - sd.local_entropy))
    assert sigma < below
    assert 2 * gaps[1] - gaps[0] == pytest.approx(sigma, abs=tol)


def test_relu_starts_find_the_global_maximum_of_the_tilted_measure():
    """ReLU K = 4 (sigma = 0.2, omega = 30; 150 Gaussian fields, those with
    ln Z > -100): the ascent from 0 and from each of dense_finite_k._relu_starts
    reaches several local maxima on some fields (observed 31 of 148), the ascent
    from 0 alone misses the global one on some (1 here, by up to ~37 in the
    objective on other draws), and a brute-force search (1000 Gaussian
    draws of s with variance omega, the best 30 refined by the same ascent) finds
    nothing above the best start's maximum."""
    rng = np.random.default_rng(10)
    sigma, omega = 0.2, 30.0
    h = rng.normal(size=(150, 4))
    h = h[dk.local("relu", h, sigma)[0] > -100]

    def objective(s, fields):
        return dk.local("relu", fields + s, sigma)[0] - 0.5 * np.sum(s * s, 1) / omega

    found = []
    for start in [np.zeros_like(h), *dk._relu_starts(h, sigma)]:
        s, _, ok = dk.maximise("relu", h, sigma, omega, start)
        assert ok
        found.append(objective(s, h))
    found = np.array(found)
    several = np.flatnonzero(np.ptp(found, axis=0) > 1e-6)
    missed = np.flatnonzero(found.max(axis=0) - found[0] > 1e-6)
    assert len(several) > 5 and len(missed) > 0
    for i in [*missed[:2], *several[:2]]:
        draws = rng.normal(size=(1000, 4)) * math.sqrt(omega)
        fields = np.repeat(h[i : i + 1], 1000, axis=0)
        best = draws[np.argsort(objective(draws, fields))[-30:]]
        s, _, _ = dk.maximise("relu", fields[:30], sigma, omega, best)
        assert objective(s, fields[:30]).max() <= found[:, i].max() + 1e-9


def test_finite_k_finite_y_unconverged_is_nan(capsys):
    """d = 0.45 is beyond sign K = 3's binding range: nan, not a number."""
    argv = ["theory", "local-entropy", "--activation", "sign", "--K", "3", "--alpha",
            "0.5", "--d", "0.45", "--y", "10", "--precision", "fast", "--format", "json"]
    assert main(argv) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["K"] == 3 and row["y"] == 10 and row["converged"] is False
    assert row["local_entropy"] is None and row["stderr"] is None


@pytest.mark.slow
def test_K1_finite_y_saddle_through_the_finite_k_term(limit):
    """The solved K = 1 saddle through dense_finite_k.FiniteYTerm equals the
    perceptron's (y = 10; observed 6e-11 in Phi_y)."""
    sd, _ = limit
    ref = fy.solve_saddle("linear", 10.0, ALPHA, sd.p, (sd.q1, sd.omega))
    term = dk.FiniteYTerm("sign", hermite_points(1, 64), nodes=12)
    new = fy.solve_saddle(term, 10.0, ALPHA, sd.p, (sd.q1, sd.omega), tol=1e-9)
    assert ref.converged and new.converged
    assert new.local_entropy == pytest.approx(ref.local_entropy, abs=1e-7)
    assert new.ph == pytest.approx(ref.ph, abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("activation, K", [("sign", 3), ("relu", 2)])
def test_finite_k_finite_y_saddles_approach_the_y_inf_curve(activation, K):
    """alpha = 0.5, d = 0.1, "fast" points: solved saddles at
    y = 5, 10, 20; y (Phi_y - phi) decreases towards Sigma (1/y trend) and the
    three-point extrapolation in 1/y (Sigma + c/y + e/y^2) gives Sigma within
    0.02 (ReLU K = 2: g = 0.133, 0.066, 0.025, extrapolated -0.0189 against
    Sigma = -0.0163); S_FP <= Phi_y <= B(d) (B(d) + ln 2 / y is the rigorous
    bound)."""
    (base,) = dense_local_entropy_curve(activation, K, ALPHA, [D], precision="fast")
    (fp,) = franz_parisi_curve(activation, K, ALPHA, [D], precision="fast")
    term = dk.FiniteYTerm(activation, dk.points(K, "fast"))
    gaps = {}
    for y in (5.0, 10.0, 20.0):
        f = fy.solve_saddle(term, y, ALPHA, base["p"], (base["q1"], base["omega"]))
        assert f.converged
        assert fp["local_entropy"] - 3 * fp["stderr"] < f.local_entropy < bound(D)
        gaps[y] = y * (f.local_entropy - base["local_entropy"])
    assert gaps[5.0] > gaps[10.0] > gaps[20.0] > base["external_entropy"]
    # Richardson with three points: Sigma = (8 g20 - 6 g10 + g5) / 3
    extrapolated = (8 * gaps[20.0] - 6 * gaps[10.0] + gaps[5.0]) / 3
    assert extrapolated == pytest.approx(base["external_entropy"], abs=0.02)
