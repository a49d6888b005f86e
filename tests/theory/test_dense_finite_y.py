"""Dense regions at finite y (theory.dense_finite_y), docs/local_entropy.md §7.

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

import pytest

from relu_landscape.cli import main
from relu_landscape.theory import dense as de
from relu_landscape.theory import dense_finite_y as fy

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
