"""G_E(q): fast paths against brute-force Monte Carlo of the defining integral."""

import math

import numpy as np
import pytest

from relu_landscape.theory import energetic_term
from relu_landscape.theory.energetic import kappa, kappa_prime, kernel_energetic


def brute_force(activation, K, q, tie, n_z=4000, n_u=4000, seed=0):
    """E_z ln P_u[...] with P_u by plain sampling of u (n_u draws per z); returns
    (mean, stderr over z). The log of a sampled probability is biased by about
    -(1-P)/(2 n_u P), kept well below the tolerance by the choice of points."""
    rng = np.random.default_rng(seed)
    c = (
        np.ones(K)
        if activation == "sign"
        else np.where(np.arange(K) < K // 2, 1.0, -1.0)
    )
    g = np.sign if activation == "sign" else (lambda x: np.maximum(x, 0.0))
    logs = np.empty(n_z)
    for i in range(n_z):
        x = math.sqrt(q) * rng.normal(size=K) + math.sqrt(1 - q) * rng.normal(
            size=(n_u, K)
        )
        field = g(x) @ c
        p = np.mean(field > 0) if tie == "error" else np.mean(field >= 0)
        logs[i] = math.log(max(p, 0.5 / n_u))
    return logs.mean(), logs.std() / math.sqrt(n_z)


@pytest.mark.parametrize(
    "activation,K,q,tie",
    [
        ("sign", 3, 0.4, "error"),
        ("relu", 2, 0.5, "error"),
        ("relu", 4, 0.3, "success"),
    ],
)
def test_fast_path_matches_brute_force(activation, K, q, tie):
    """Agreement within 4 combined standard errors."""
    fast = energetic_term(activation, K, q, tie=tie, precision="fast")
    mean, err = brute_force(activation, K, q, tie, n_z=1500, n_u=3000)
    assert abs(fast.value - mean) < 4 * math.hypot(err, fast.stderr)


def test_perceptron_quadrature_matches_kernel():
    for q in (0.1, 0.5, 0.9):
        value, slope = energetic_term("sign", 1, q, derivative=True)
        assert value.stderr == 0.0
        assert value.value == pytest.approx(kernel_energetic("linear", q), rel=1e-9)
        assert slope.value == pytest.approx(
            kernel_energetic("linear", q, derivative=True), rel=1e-6
        )


def test_kernel_derivative_matches_finite_difference():
    for activation in ("sign", "relu"):
        q, eps = 0.45, 1e-5
        numeric = (
            kernel_energetic(activation, q + eps)
            - kernel_energetic(activation, q - eps)
        ) / (2 * eps)
        assert kernel_energetic(activation, q, derivative=True) == pytest.approx(
            numeric, rel=1e-6
        )


def test_kernels():
    assert float(kappa("sign", 1.0)) == pytest.approx(1.0)
    assert float(kappa("relu", 1.0)) == pytest.approx(1.0)
    assert float(kappa("relu", 0.0)) == pytest.approx(0.0, abs=1e-15)
    assert float(kappa_prime("relu", 1.0)) == pytest.approx(math.pi / (math.pi - 1))
    # kappa(q) = Cov(g(x), g(y)) / Var g by Monte Carlo at q = 0.6 (4 stderr)
    rng = np.random.default_rng(1)
    x, e = rng.normal(size=(2, 400_000))
    y = 0.6 * x + 0.8 * e
    gx, gy = np.maximum(x, 0), np.maximum(y, 0)
    prod = (gx - gx.mean()) * (gy - gy.mean()) / gx.var()
    assert abs(prod.mean() - float(kappa("relu", 0.6))) < 4 * prod.std() / math.sqrt(
        x.size
    )


def test_finite_k_derivative_matches_finite_difference():
    value, slope = energetic_term("relu", 2, 0.4, derivative=True, precision="fast")
    up = energetic_term("relu", 2, 0.401, precision="fast").value
    down = energetic_term("relu", 2, 0.399, precision="fast").value
    assert slope.value == pytest.approx((up - down) / 0.002, rel=1e-4)
