"""The activation registry and the kernels of any g (activations.py, kernels.py)."""

import math

import numpy as np
import pytest
from scipy import integrate, special

from relu_landscape import activations
from relu_landscape.activations import ACTIVATIONS, slope_at_one
from relu_landscape.theory import kappa
from relu_landscape.theory.kernels import gardner_capacity, kernel, kernel_slope

QS = np.array([-0.95, -0.4, 0.0, 0.3, 0.7, 0.95, 0.999, 1.0])


def test_readout_and_valid_k():
    assert list(ACTIVATIONS["sign"].readout(3)) == [1, 1, 1]
    assert list(ACTIVATIONS["relu"].readout(4)) == [1, 1, -1, -1]
    assert list(ACTIVATIONS["gelu"].readout(2)) == [1, -1]
    for name, act in ACTIVATIONS.items():
        # odd g: all +1; every other g: balanced, so E[Delta] = 0 needs K even
        assert act.odd == bool(np.allclose(act.g(-QS), -act.g(QS)))
        assert act.k_issue(math.inf) is None and act.k_issue(0) is not None
        assert (act.k_issue(3) is None) == (act.odd)
        assert (act.k_issue(2) is None) == (name != "sign")
    with pytest.raises(KeyError, match="swish"):
        activations.get("swish")


def test_field_std_closed_forms():
    """sqrt(Var g(z)): sign 1, relu sqrt((pi - 1) / (2 pi)), erf sqrt((2/pi)
    arcsin(2/3)), quadratic sqrt 2, linear 1 (adaptive quadrature to ~1e-12)."""
    expect = {
        "sign": 1.0,
        "relu": math.sqrt((math.pi - 1) / (2 * math.pi)),
        "erf": math.sqrt(2 / math.pi * math.asin(2 / 3)),
        "quadratic": math.sqrt(2.0),
        "linear": 1.0,
    }
    for name, value in expect.items():
        assert ACTIVATIONS[name].field_std == pytest.approx(value, rel=1e-10)


def test_derivatives_match_finite_differences():
    x = np.linspace(-3.0, 3.0, 13) + 0.01  # off the ReLU kink
    for act in ACTIVATIONS.values():
        if act.derivative is None:
            continue
        numeric = (act.g(x + 1e-6) - act.g(x - 1e-6)) / 2e-6
        assert np.allclose(act.derivative(x), numeric, atol=1e-7)


def test_torch_and_numpy_agree():
    torch = pytest.importorskip("torch")
    x = np.linspace(-2.0, 2.0, 9)
    for act in ACTIVATIONS.values():
        out = act.g(torch.tensor(x))
        assert isinstance(out, torch.Tensor)
        assert np.allclose(out.numpy(), act.g(x), atol=1e-12)


def test_quadrature_kernel_matches_closed_forms():
    """Polar quadrature vs arcsine (sign), arccosine (relu), erf, q^2, q: ~1e-14."""
    for name, act in ACTIVATIONS.items():
        if act.kernel is not None:
            assert np.max(np.abs(kernel(name, QS) - act.kernel(QS))) < 1e-12


def test_smooth_kernels_match_tensor_gauss_hermite():
    """tanh and gelu (no closed form) vs an independent 150 x 150 Gauss-Hermite rule
    in the Cholesky coordinates (exponentially convergent for analytic g)."""
    x, w = special.roots_hermitenorm(150)
    w = w / math.sqrt(2 * math.pi)
    for name in ("tanh", "gelu"):
        g = ACTIVATIONS[name].g
        for q in (0.5, 0.9):
            y = q * x[:, None] + math.sqrt(1 - q * q) * x[None, :]
            pair = np.sum(w[:, None] * w[None, :] * g(x[:, None]) * g(y))
            mean, var = np.sum(w * g(x)), np.sum(w * g(x) ** 2) - np.sum(w * g(x)) ** 2
            assert kernel(name, q) == pytest.approx((pair - mean**2) / var, abs=1e-12)


def test_kernel_slope_and_slope_at_one():
    """Price's theorem kappa' = E[g' g'] / Var g vs central differences, and
    kappa'(1) = E[g'^2] / Var g vs its closed forms (relu pi/(pi-1), quadratic 2,
    erf 2 / (sqrt 5 arcsin(2/3)), linear 1)."""
    for name, act in ACTIVATIONS.items():
        if act.derivative is None:
            continue
        q = np.array([0.2, 0.8])
        numeric = (kernel(name, q + 1e-5) - kernel(name, q - 1e-5)) / 2e-5
        assert np.allclose(kernel_slope(name, q), numeric, atol=1e-8)
        assert float(kernel_slope(name, 1.0)) == pytest.approx(
            slope_at_one(name), rel=1e-10
        )
    closed = {
        "relu": math.pi / (math.pi - 1),
        "quadratic": 2.0,
        "erf": 2 / (math.sqrt(5) * math.asin(2 / 3)),
        "linear": 1.0,
    }
    for name, value in closed.items():
        assert slope_at_one(name) == pytest.approx(value, rel=1e-10)
    assert slope_at_one("sign") == math.inf


def test_public_kappa_uses_quadrature_where_no_closed_form():
    assert float(kappa("tanh", 0.5)) == pytest.approx(float(kernel("tanh", 0.5)))
    assert float(kappa("tanh", 1.0)) == pytest.approx(1.0, abs=1e-13)


@pytest.mark.parametrize("margin", [-0.5, 0.0, 0.5, 1.3])
def test_gardner_closed_form_matches_the_integral(margin):
    """alpha_G = 1 / int_{-kappa}^inf Dt (t + kappa)^2, by adaptive quadrature; the
    literature values 0.9612 (kappa = 0.5) and 4.7701 (kappa = -0.5)."""

    def integrand(t: float) -> float:
        return (t + margin) ** 2 * math.exp(-t * t / 2) / math.sqrt(2 * math.pi)

    integral = integrate.quad(integrand, -margin, np.inf, epsabs=1e-14)[0]
    assert gardner_capacity(margin) == pytest.approx(1 / integral, rel=1e-10)
    anchors = {0.5: 0.9612, -0.5: 4.7701, 0.0: 2.0}
    if margin in anchors:
        assert gardner_capacity(margin) == pytest.approx(anchors[margin], abs=5e-5)
