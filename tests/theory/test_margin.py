"""Capacities of any registered g at a stability margin kappa (docs, §1-5)."""

import json
import math

import numpy as np
import pytest
from scipy import integrate, special

from relu_landscape.activations import ACTIVATIONS, slope_at_one
from relu_landscape.cli import main
from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory import capacity_table, rs_capacity, rsb1_capacity
from relu_landscape.theory.distance import relu_distance_sq, relu_distance_sq_enumerated
from relu_landscape.theory.energetic import (
    kernel_energetic,
    log_inner_relu,
    sign_needed,
)
from relu_landscape.theory.kernels import gardner_capacity

GARDNER = {0.5: 0.9612, -0.5: 4.7701}  # 1 / int_{-kappa}^inf Dt (t + kappa)^2


@pytest.mark.parametrize("margin", [0.5, -0.5])
def test_perceptron_reproduces_gardner(margin):
    """The perceptron with Delta = lambda (linear, K = 1): Gardner's alpha_c(kappa);
    the linear committee at K = inf is the same perceptron (kernel route). Finite
    K > 1 goes through the generic projection: tests/theory/test_capacity_generic.py."""
    for K in (1, math.inf):
        est = rs_capacity("linear", "continuous", K, kappa=margin)
        assert est.value == pytest.approx(GARDNER[margin], abs=5e-5)


def test_wide_limit_closed_form_for_every_g():
    """K = inf, continuous: alpha_c = kappa'(1) alpha_G(kappa); linear 2 at kappa = 0,
    ReLU 2 pi / (pi - 1), sign inf."""
    assert rs_capacity("linear", "continuous", math.inf).value == 2.0
    for name in ACTIVATIONS:
        for margin in (-0.5, 0.0, 0.5):
            value = rs_capacity(name, "continuous", math.inf, kappa=margin).value
            assert value == pytest.approx(
                slope_at_one(name) * gardner_capacity(margin), rel=1e-12
            )
    relu = rs_capacity("relu", "continuous", math.inf).value
    assert relu == pytest.approx(2 * math.pi / (math.pi - 1), rel=1e-12)


@pytest.mark.parametrize("name", ["tanh", "gelu", "quadratic"])
def test_wide_limit_matches_the_rs_saddle_as_q_goes_to_one(name):
    """Independent route: the RS saddle alpha(q) = -q / (2 (1-q)^2 G_E'(q)), with
    G_E' from the quadrature kernel near q = 1, extrapolated to q = 1 from
    1 - q = 1e-3 and 5e-4 (smooth g: alpha(q) is smooth in 1 - q, error O(1e-6))."""
    for margin in (-0.5, 0.5):
        alphas = []
        for gap in (1e-3, 5e-4):
            slope = kernel_energetic(name, 1 - gap, derivative=True, margin=margin)
            alphas.append(-(1 - gap) / (2 * gap * gap * slope))
        target = rs_capacity(name, "continuous", math.inf, kappa=margin).value
        assert 2 * alphas[1] - alphas[0] == pytest.approx(target, rel=2e-4)


def test_sign_margin_changes_the_vote():
    """Delta = (2p - K) / sqrt(K) for sign units: at K = 3 kappa = 0.5 asks for a
    majority (as kappa = 0) and kappa = 0.6 for all three units, where each unit is a
    perceptron on its own block: alpha_c = 1 / (3 E[z_-^2]) = 2/3 (continuous) and
    0.833 / 3 (binary, Krauth-Mezard per unit)."""
    assert sign_needed(3, 0.5, "error") == 2 and sign_needed(3, 0.6, "error") == 3
    assert sign_needed(3, 1 / math.sqrt(3), "error") == 3  # Delta = kappa is a tie
    assert sign_needed(3, 1 / math.sqrt(3), "success") == 2
    base = rs_capacity("sign", "continuous", 3).value
    assert rs_capacity("sign", "continuous", 3, kappa=0.5).value == base
    assert rs_capacity("sign", "continuous", 3, kappa=0.6).value == pytest.approx(
        2 / 3, rel=1e-9
    )
    assert rs_capacity("sign", "continuous", 3, kappa=2.0).value == 0.0
    assert rs_capacity("sign", "continuous", 3, kappa=-2.0).value == math.inf


@pytest.mark.parametrize("theta", [-0.7, 0.3, 1.5])
def test_relu_distance_at_a_margin_matches_enumeration(theta):
    """d(z)^2 to {F(x) >= theta}: the K/2 + 1-pattern algorithm vs all 2^K patterns
    (bisection, no shared code); the tie convention is moot at theta != 0."""
    z = 1.3 * np.random.default_rng(3).normal(size=(200, 4))
    fast = relu_distance_sq(z, "error", theta)
    assert np.allclose(fast, relu_distance_sq_enumerated(z, "error", theta), atol=1e-9)
    assert np.array_equal(fast, relu_distance_sq(z, "success", theta))
    assert np.all(np.isfinite(fast)) and np.any(fast > 0)


@pytest.mark.parametrize("theta", [-0.3, 0.0, 0.05, 0.4])
def test_relu_inner_probability_at_a_margin(theta):
    """K = 2: P[relu(A) - relu(B) > theta] = E_A[1{relu(A) > theta}
    Phi((relu(A) - theta - h_B) / b)] by adaptive quadrature, vs the lattice at 96
    cells: error ~1e-7 at theta = 0, up to ~5e-5 elsewhere (the threshold's place
    inside a cell changes with the cell size, which Richardson does not remove)."""
    h, b = np.array([[0.3, -0.2], [-0.5, 0.4]]), 0.6
    lattice = np.exp(log_inner_relu(h, b, "error", 96, theta))
    for row, value in zip(h, lattice, strict=True):

        def integrand(x, row=row):
            gain = max(x, 0.0) - theta
            density = math.exp(-0.5 * ((x - row[0]) / b) ** 2) / b
            if gain <= 0:
                return 0.0
            return density * special.ndtr((gain - row[1]) / b) / math.sqrt(2 * math.pi)

        kink = max(theta, 0.0)
        exact = sum(
            integrate.quad(integrand, lo, hi, epsabs=1e-13, limit=200)[0]
            for lo, hi in ((-10.0, 0.0), (0.0, kink), (kink, 10.0))
            if hi > lo
        )
        assert value == pytest.approx(exact, abs=1e-6 if theta == 0 else 1e-4)


def test_unavailable_cases_name_the_option():
    for call, fragment in (
        (lambda: rs_capacity("gelu", "continuous", 3), "K=3"),
        (lambda: rs_capacity("gelu", "binary", 3), "K=3"),
        (lambda: rs_capacity("sign", "binary", 3, kappa=math.nan), "kappa"),
    ):
        with pytest.raises(InvalidConfigError) as info:
            call()
        assert any(fragment in issue for issue in info.value.issues)


def test_cli_kappa_list_and_negative_margin_warning(capsys):
    argv = ["theory", "capacity", "--activation", "tanh", "--weights", "continuous",
            "--K", "inf", "--kappa=-0.5,0.5", "--format", "json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["kappa"] for r in rows] == [-0.5, 0.5]
    assert set(rows[0]) == {"activation", "weights", "K", "kappa", "level", "tie",
                            "precision", "theory_version", "alpha_c", "stderr",
                            "converged"}
    assert rows[1]["alpha_c"] == pytest.approx(
        slope_at_one("tanh") * GARDNER[0.5], rel=1e-4
    )
    assert "kappa=-0.5 < 0" in captured.err and "unstable" in captured.err


@pytest.mark.slow
def test_binary_and_1rsb_at_a_margin():
    """Binary: the linear committee is the binary perceptron at every K (K = 1 route
    vs K = inf kernel route); 1RSB of the convex perceptron (kappa >= 0) equals RS,
    and lies below it where the problem is not convex (kappa < 0)."""
    for margin in (-0.5, 0.5):
        one = rs_capacity("linear", "binary", 1, kappa=margin).value
        wide = rs_capacity("linear", "binary", math.inf, kappa=margin).value
        assert one == pytest.approx(wide, rel=1e-9)
    assert rsb1_capacity("linear", kappa=0.5).value == pytest.approx(
        GARDNER[0.5], abs=5e-5
    )
    assert rsb1_capacity("linear", kappa=-0.5).value < GARDNER[-0.5] - 0.05


def test_binary_sign_committee_at_a_margin_is_three_perceptrons():
    """K = 3, kappa = 0.6 asks all three units to be right, each a binary perceptron
    on its third of the weights: alpha_c = alpha_KM / 3 (the finite-K dynamic
    programme on Hermite points against the K = 1 kernel route; ~1 s)."""
    rows = capacity_table(["sign"], ["binary"], [3], kappas=[0.6], precision="fast")
    assert rows[0]["kappa"] == 0.6
    assert rows[0]["alpha_c"] == pytest.approx(
        rs_capacity("sign", "binary", 1).value / 3, rel=1e-6
    )


def test_even_kernel_binary_capacity_is_annealed_where_q_stays_zero():
    """Quadratic units, K = inf, kappa = -0.5: kappa'(0) = 0, q = 0 is the saddle up to
    the capacity, where s = ln 2 + alpha ln H(kappa) = 0 (the annealed bound)."""
    est = rs_capacity("quadratic", "binary", math.inf, kappa=-0.5)
    assert est.value == pytest.approx(math.log(2) / -math.log(special.ndtr(0.5)))
