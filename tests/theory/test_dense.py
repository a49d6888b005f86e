"""Dense-region local entropy, y -> infinity (relu_landscape.theory.dense), §5.

Independent numbers: the bound -d ln d - (1-d) ln(1-d) (reached as alpha -> 0 and
approached as d -> 0 below capacity, Baldassi et al. PRL 115, 128101 (2015)), the
Franz-Parisi curve (a typical solution is one admissible centre, so the densest
region is at least as dense), finite differences of the free entropy, and the
closed-form kernel derivatives. Quadrature: tolerances are quadrature errors.
"""

from __future__ import annotations

import math

import pytest

from relu_landscape.theory import dense as de
from relu_landscape.theory import dense_local_entropy_curve, franz_parisi_curve
from relu_landscape.theory.energetic import kappa_prime
from tests.theory.conftest import bound


@pytest.mark.parametrize("kernel", ["linear", "sign", "relu"])
def test_energetic_derivatives_match_finite_differences(kernel):
    eps = 1e-6
    _, d_q1, d_omega = de.energetic(kernel, 0.8, 0.7)
    fd_q1 = (
        de.energetic(kernel, 0.8 + eps, 0.7)[0]
        - de.energetic(kernel, 0.8 - eps, 0.7)[0]
    )
    fd_om = (
        de.energetic(kernel, 0.8, 0.7 + eps)[0]
        - de.energetic(kernel, 0.8, 0.7 - eps)[0]
    )
    assert d_q1 == pytest.approx(fd_q1 / (2 * eps), rel=1e-6)
    assert d_omega == pytest.approx(fd_om / (2 * eps), rel=1e-6)
    fd_k = (kappa_prime(kernel, 0.6 + eps) - kappa_prime(kernel, 0.6 - eps)) / (2 * eps)
    assert de.kappa_second(kernel, 0.6) == pytest.approx(
        float(fd_k), rel=1e-6, abs=1e-9
    )


def test_entropic_outputs_are_derivatives_of_its_value():
    """p = dF/dph, q1 = 2 dF/d delta, omega + 1 - q1 = 2 dF/dq0h."""
    eps = 1e-6
    _, p, q1, omega, slope = de.entropic(0.8, 1.3, 0.7)

    def f(q0h, delta, ph):
        return de.entropic(q0h, delta, ph)[0]

    assert p == pytest.approx(
        (f(0.8, 1.3, 0.7 + eps) - f(0.8, 1.3, 0.7 - eps)) / (2 * eps), rel=1e-6
    )
    assert q1 / 2 == pytest.approx(
        (f(0.8, 1.3 + eps, 0.7) - f(0.8, 1.3 - eps, 0.7)) / (2 * eps), rel=1e-6
    )
    assert (omega + 1 - q1) / 2 == pytest.approx(
        (f(0.8 + eps, 1.3, 0.7) - f(0.8 - eps, 1.3, 0.7)) / (2 * eps), rel=1e-6
    )


def test_two_starts_and_dampings_agree():
    p = 0.8
    a = de.solve_saddle("linear", 0.5, p, (p * p, 1.0), damping=0.3)
    b = de.solve_saddle("linear", 0.5, p, ((1 + p * p) / 2, 3.0), damping=0.8)
    assert a.converged and b.converged
    assert a.local_entropy == pytest.approx(b.local_entropy, abs=1e-8)
    assert (a.q1, a.omega) == pytest.approx((b.q1, b.omega), rel=1e-6)


def test_dense_lies_between_franz_parisi_and_bound():
    (fp_row,) = franz_parisi_curve("sign", 1, 0.5, [0.2])
    (row,) = dense_local_entropy_curve("sign", 1, 0.5, [0.2])
    assert row["converged"] and fp_row["converged"]
    assert fp_row["local_entropy"] <= row["local_entropy"] < bound(0.2)


def test_small_load_reaches_the_bound():
    """alpha -> 0: every centre's ball is full of solutions, phi -> bound(d)."""
    (row,) = dense_local_entropy_curve("sign", 1, 0.02, [0.05])
    assert row["converged"]
    assert row["local_entropy"] == pytest.approx(bound(0.05), rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("activation", "K"), [("sign", 1), ("sign", math.inf), ("relu", math.inf)]
)
def test_curve_positive_above_franz_parisi_and_approaches_bound(activation, K):
    ds = [0.1, 0.05, 0.02, 0.01]
    dense = dense_local_entropy_curve(activation, K, 0.5, ds)
    typical = franz_parisi_curve(activation, K, 0.5, ds)
    for row, fp_row in zip(dense, typical, strict=True):
        assert row["converged"] and fp_row["converged"]
        assert 0 < row["local_entropy"] < bound(row["d"])
        assert row["local_entropy"] >= fp_row["local_entropy"]
    ratio = [r["local_entropy"] / bound(r["d"]) for r in dense]
    assert ratio == sorted(ratio)  # closer to the bound as d -> 0
    assert ratio[-1] > 0.95
