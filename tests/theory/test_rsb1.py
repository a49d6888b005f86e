"""1RSB capacity at K = inf (rsb1.py)."""

import math

import pytest

from relu_landscape.theory import rs_capacity, rsb1_capacity
from relu_landscape.theory.rsb1 import rsb1_alpha, rsb1_capacity_kernel


def test_linear_kernel_gives_gardner():
    assert rsb1_capacity_kernel("linear")[0] == pytest.approx(2.0, abs=1e-6)


def test_rs_limit_q0_to_one():
    for activation in ("linear", "relu"):
        rs = (
            rs_capacity("relu", "continuous", math.inf).value
            if activation == "relu"
            else 2.0
        )
        assert rsb1_alpha(activation, 1 - 1e-9, 3.0) == pytest.approx(rs, rel=1e-6)


def test_relu_below_rs_at_a_stationary_point():
    value, q0, x = rsb1_capacity_kernel("relu")
    assert 2.0 < value < rs_capacity("relu", "continuous", math.inf).value
    assert 0 < q0 < 1 and x > 0
    eps = 1e-4
    for dq, dx in ((eps, 0), (0, eps * x)):
        plus, minus = (
            rsb1_alpha("relu", q0 + dq, x + dx),
            rsb1_alpha("relu", q0 - dq, x - dx),
        )
        assert abs(plus - minus) / 2 < 1e-6  # gradient ~ 0
    assert rsb1_capacity("relu").value == value


def test_sign_is_infinite():
    assert rsb1_capacity("sign").value == math.inf
