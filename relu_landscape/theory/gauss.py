"""Gaussian measure Dz: H(x), Gauss-Hermite quadrature and randomised quasi-Monte Carlo.

Conventions (docs/science.md §4): Dz is the standard Gaussian measure and
H(x) = P(z > x) = Phi(-x) for z ~ N(0, 1). Expectations over z in R^K are taken on a
:class:`GaussPoints` set: a tensor Gauss-Hermite rule (one batch, exact to rounding
for polynomials, stderr 0) or R independently scrambled Sobol' sets mapped through
the inverse normal CDF (R batches, stderr from their spread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.stats import qmc

# Largest |z| produced from a uniform in (0, 1) kept away from 0 and 1 by this amount.
_U_CLIP = 1e-12


def H(x: np.ndarray | float) -> np.ndarray:
    """H(x) = P(z > x) for z ~ N(0, 1) (docs/science.md §4)."""
    return special.ndtr(-np.asarray(x, dtype=float))


def log_H(x: np.ndarray | float) -> np.ndarray:
    """ln H(x), accurate for large positive x (no underflow to -inf before ~1e300)."""
    return special.log_ndtr(-np.asarray(x, dtype=float))


@dataclass(frozen=True)
class GaussPoints:
    """Points for E_z f(z), z ~ N(0, I_K).

    Attributes:
        z: float64 ``[R, M, K]``, R batches of M points.
        w: float64 ``[M]``, weights summing to 1 (shared by all batches).
        exact: True for a quadrature rule (R = 1, no statistical error).
    """

    z: np.ndarray
    w: np.ndarray
    exact: bool

    def batch_means(self, values: np.ndarray) -> np.ndarray:
        """Weighted mean over points of ``values [R, M]`` -> batch means ``[R]``."""
        return values @ self.w


def hermite_1d(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for the probabilists' measure Dz (sum w = 1)."""
    x, w = special.roots_hermitenorm(n)
    return x, w / math.sqrt(2.0 * math.pi)


def hermite_points(K: int, n: int) -> GaussPoints:
    """Tensor Gauss-Hermite rule with n nodes per axis in K dimensions (n**K points)."""
    x, w = hermite_1d(n)
    grids = np.meshgrid(*([x] * K), indexing="ij")
    wgrid = np.meshgrid(*([w] * K), indexing="ij")
    z = np.stack([g.ravel() for g in grids], axis=-1)
    weights = np.prod(np.stack([g.ravel() for g in wgrid], axis=-1), axis=-1)
    return GaussPoints(z=z[None], w=weights, exact=True)


def qmc_points(K: int, log2_n: int, R: int, seed: int = 0) -> GaussPoints:
    """R independently scrambled Sobol' sets of 2**log2_n Gaussian points in R^K.

    Each batch is an unbiased estimator of E_z f(z); the R batch means are i.i.d., so
    their spread gives the standard error. Deterministic for a given seed.
    """
    seeds = np.random.SeedSequence(seed).spawn(R)
    batches = []
    for ss in seeds:
        sobol = qmc.Sobol(d=K, scramble=True, seed=np.random.default_rng(ss))
        u = np.clip(sobol.random_base2(log2_n), _U_CLIP, 1.0 - _U_CLIP)
        batches.append(special.ndtri(u))
    n = 2**log2_n
    return GaussPoints(z=np.stack(batches), w=np.full(n, 1.0 / n), exact=False)


@dataclass(frozen=True)
class Precision:
    """Accuracy settings behind the ``precision`` option of the public functions.

    Attributes:
        rel_target: stderr / value aimed at by (quasi-)Monte Carlo estimates.
        log2_n: log2 of the points per batch at the first attempt.
        batches: number R of independent scrambles (the stderr uses R - 1 dof).
        max_log2_n: cap on log2_n when points are added to reach rel_target.
        lattice: cells of the ReLU convolution lattice (docs/science.md §4).
        hermite: Gauss-Hermite nodes per axis for the quadrature cases.
    """

    rel_target: float
    log2_n: int
    batches: int
    max_log2_n: int
    lattice: int
    hermite: int


PRECISIONS: dict[str, Precision] = {
    "fast": Precision(0.02, 6, 8, 10, 64, 24),
    "default": Precision(0.003, 7, 10, 14, 96, 40),
    "high": Precision(0.0005, 9, 16, 18, 192, 64),
}
