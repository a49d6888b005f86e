"""d(z) of docs/science.md §4: the pruned ReLU solver against full enumeration and
closed forms; the sign quadrature against Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import optimize

from relu_landscape.theory.distance import (
    relu_distance_sq,
    relu_distance_sq_enumerated,
    sign_distance_sq,
    sign_mean_distance_sq,
)


@pytest.mark.parametrize("K", [2, 4, 6, 8])
@pytest.mark.parametrize("tie", ["error", "success"])
def test_relu_pruned_matches_full_enumeration(K, tie):
    z = np.random.default_rng(K).normal(size=(400 if K < 8 else 60, K))
    np.testing.assert_allclose(
        relu_distance_sq(z, tie),
        relu_distance_sq_enumerated(z, tie),
        rtol=1e-9,
        atol=1e-12,
    )


@pytest.mark.parametrize("tie", ["error", "success"])
def test_relu_k2_matches_brute_force_optimisation(tie):
    """Independent of both solvers: SLSQP from many starts on the region's pieces."""
    rng = np.random.default_rng(7)
    for z in rng.normal(size=(15, 2)):
        f = lambda x, z=z: np.sum((x - z) ** 2)  # noqa: E731
        margin = {"type": "ineq", "fun": lambda x: max(x[0], 0) - max(x[1], 0)}
        cons = [margin]
        if tie == "error":
            cons.append({"type": "ineq", "fun": lambda x: x[0]})
        best = min(
            optimize.minimize(f, s, constraints=cons, method="SLSQP").fun
            for s in rng.normal(scale=2, size=(30, 2))
        )
        # strict region also allows the corner x = (0, <=0) reached only at the kink
        best = (
            min(best, z[0] ** 2 + max(z[1], 0) ** 2)
            if tie == "error"
            else min(best, max(z[1], 0) ** 2)
        )
        assert relu_distance_sq(z[None], tie)[0] == pytest.approx(
            best, rel=1e-5, abs=1e-8
        )


def test_relu_k2_closed_forms():
    """E[d^2] by sectors of the plane: 3/4 strict (alpha_c = 4/3) and
    3/8 - sqrt(2)/(4 pi) with ties counted correct; Monte Carlo within 4 stderr."""
    z = np.random.default_rng(0).normal(size=(400_000, 2))
    for tie, exact in [
        ("error", 0.75),
        ("success", 3 / 8 - math.sqrt(2) / (4 * math.pi)),
    ]:
        d2 = relu_distance_sq(z, tie)
        assert abs(d2.mean() - exact) < 4 * d2.std() / math.sqrt(d2.size)


@pytest.mark.parametrize("K", [1, 3, 7])
def test_sign_quadrature_matches_monte_carlo(K):
    d2 = sign_distance_sq(np.random.default_rng(K).normal(size=(200_000, K)))
    assert abs(d2.mean() - sign_mean_distance_sq(K)) < 4 * d2.std() / math.sqrt(d2.size)


def test_sign_distance_counts_majority():
    z = np.array([[0.5, -0.1, -2.0], [1.0, 2.0, -3.0], [-1.0, -0.2, -0.3]])
    np.testing.assert_allclose(sign_distance_sq(z), [0.01, 0.0, 0.04 + 0.09])
