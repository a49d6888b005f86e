"""1RSB capacity at K = inf (rsb1.py)."""

import math

import pytest

from relu_landscape.theory import Estimate, rs_capacity, rsb1_capacity
from relu_landscape.theory.rsb1 import rsb1_alpha, rsb1_capacity_kernel


def test_linear_kernel_gives_gardner():
    point = rsb1_capacity_kernel("linear")
    assert point.converged and point.alpha_c == pytest.approx(2.0, abs=1e-6)


def test_rs_limit_q0_to_one():
    for activation in ("linear", "relu"):
        rs = (
            rs_capacity("relu", "continuous", math.inf).value
            if activation == "relu"
            else 2.0
        )
        assert rsb1_alpha(activation, 1 - 1e-9, 3.0) == pytest.approx(rs, rel=1e-6)


def test_relu_below_rs_at_a_stationary_point():
    point = rsb1_capacity_kernel("relu")
    value, q0, x = point.alpha_c, point.q0, point.x
    assert point.converged
    assert 2.0 < value < rs_capacity("relu", "continuous", math.inf).value
    assert 0 < q0 < 1 and x > 0
    eps = 1e-4
    for dq, dx in ((eps, 0), (0, eps * x)):
        plus, minus = (
            rsb1_alpha("relu", q0 + dq, x + dx),
            rsb1_alpha("relu", q0 - dq, x - dx),
        )
        assert abs(plus - minus) / 2 < 1e-6  # gradient ~ 0
    assert rsb1_capacity("relu") == Estimate(value, 0.0, True)


def test_unconverged_minimisation_is_flagged():
    # 5 Nelder-Mead iterations per start (62-98 are needed) stop off the minimum,
    # 2.6642800566 (q0 = 0.7571, x = 16.63), at 2.66454 (q0 = 0.740)
    starved = rsb1_capacity_kernel("relu", maxiter=5)
    assert not starved.converged
    assert starved.alpha_c - 2.6642800566 > 1e-5


def test_sign_is_infinite():
    assert rsb1_capacity("sign").value == math.inf
