"""Gaussian measure helpers: H, quadrature exactness and QMC standard errors."""

import math

import numpy as np

from relu_landscape.theory.estimate import from_batches
from relu_landscape.theory.gauss import H, hermite_points, log_H, qmc_points


def test_h_and_log_h():
    assert H(0.0) == 0.5
    assert float(H(1.0)) == 0.5 * math.erfc(1 / math.sqrt(2))
    assert float(log_H(40.0)) < -800  # no underflow to -inf


def test_hermite_integrates_gaussian_moments():
    pts = hermite_points(2, 12)
    z = pts.z[0]
    assert abs(pts.w.sum() - 1) < 1e-14
    assert abs(pts.w @ (z[:, 0] ** 4 * z[:, 1] ** 2) - 3.0) < 1e-12


def test_qmc_stderr_covers_known_mean():
    """E[prod_l cos(z_l)] = exp(-K/2); the batch estimate lies within 4 stderr."""
    pts = qmc_points(5, 8, 10, seed=3)
    est = from_batches(pts.batch_means(np.prod(np.cos(pts.z), axis=-1)))
    assert 0 < est.stderr < 0.01
    assert abs(est.value - math.exp(-2.5)) < 4 * est.stderr
