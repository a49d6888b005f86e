"""Estimates with a standard error, built from independent batch means.

Every quantity of ``relu_landscape.theory`` is computed either by deterministic
quadrature (one batch, stderr 0.0) or by randomised quasi-Monte Carlo with R
independently scrambled point sets (R batches). A batched quantity is a float array
``[R]`` of batch means; its estimate is their mean and its stderr their standard
deviation over sqrt(R) (docs/science.md §4, "quasi-Monte Carlo with a reported standard
error"). Derived quantities (roots such as a capacity) get their stderr by the delta
method, one linearised root per batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize


@dataclass(frozen=True)
class Estimate:
    """A value and its standard error (0.0 for closed forms and quadrature).

    ``converged`` is False when the method stopped before reaching its target (a
    quasi-Monte Carlo point budget spent with stderr above the precision's target, an
    optimiser that reported failure, a root that was not found): the value is then
    the best available, not one to quote without that flag.
    """

    value: float
    stderr: float = 0.0
    converged: bool = True


def from_batches(batches: np.ndarray) -> Estimate:
    """Estimate from batch means ``[R]``: mean, stderr = std / sqrt(R) (0 if R = 1)."""
    batches = np.asarray(batches, dtype=float)
    value = float(batches.mean())
    if batches.size < 2 or not math.isfinite(value):
        return Estimate(value, 0.0)
    return Estimate(value, float(batches.std(ddof=1) / math.sqrt(batches.size)))


def root_with_batches(
    fn: Callable[[float], np.ndarray],
    lo: float,
    hi: float,
    *,
    xtol: float = 1e-10,
) -> tuple[float, np.ndarray]:
    """Root of the pooled batch mean of ``fn`` in [lo, hi], and one root per batch.

    ``fn(x)`` returns batch values ``[R]`` computed on the same random points for every
    x (common random numbers), so the pooled mean is a smooth function of x. The
    per-batch roots are linearised: x_r = x* - fn_r(x*) / slope(x*), slope of the
    pooled mean by a central difference. Returns ``(x*, x_r [R])``.
    """
    root = optimize.brentq(lambda x: float(np.mean(fn(x))), lo, hi, xtol=xtol)
    at_root = np.asarray(fn(root), dtype=float)
    if at_root.size < 2:
        return root, np.array([root])
    step = 1e-4 * max(hi - lo, 1e-12)
    a, b = max(lo, root - step), min(hi, root + step)
    slope = (np.mean(fn(b)) - np.mean(fn(a))) / (b - a)
    return root, root - (at_root - at_root.mean()) / slope
