"""Replica theory of the tree committee machine (docs/science.md §4); numpy, scipy.

Conventions: the activations are those of relu_landscape.activations (sign units need
K odd, K = 1 the perceptron; other odd g any K with readout +1; other g even K with
readout +1 on the first K/2 units and -1 on the rest); K = math.inf is the wide limit.
``kappa`` (capacity functions) is the stability margin: a pattern is stored when
sigma Delta > kappa std(Delta) (docs/theory_activations.md); K = inf works for every
registered g and kappa, and so does finite K: G_E(q) (binary weights, q(alpha)) by
the exact vote for sign and one lattice for every other g (energetic.py), the
continuous capacity by ReLU's projection or the generic one (theory/projection.py).
``tie="error"`` (default) counts Delta = 0 as an error (Theta(0) = 0), ``"success"``
as correct. ``precision`` is "fast", "default" (QMC stderr <= 0.3% of the value) or
"high". Results are :class:`Estimate` (value, stderr; stderr 0.0 for closed forms and
quadrature).

Where things are computed:

=========================  ==============================
quantity                   module
=========================  ==============================
H(x), quadrature, QMC      relu_landscape.theory.gauss
G_E(q), kappa(q)           relu_landscape.theory.energetic
kappa(q) of any g          relu_landscape.theory.kernels
d(z) at the q -> 1 limit   relu_landscape.theory.distance
d(z), any smooth g         relu_landscape.theory.projection
RS capacity, q, s          relu_landscape.theory.rs
1RSB capacity (K = inf)    relu_landscape.theory.rsb1
tables                     relu_landscape.theory.table
Franz-Parisi local entropy relu_landscape.theory.franz_parisi
finite-K fields, sampling  relu_landscape.theory.committee_fields
dense-region local entropy relu_landscape.theory.dense
dense regions, finite K    relu_landscape.theory.dense_finite_k
dense regions, finite y    relu_landscape.theory.dense_finite_y
=========================  ==============================
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

import numpy as np

from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory import dense as _dense
from relu_landscape.theory import energetic as _energetic
from relu_landscape.theory import franz_parisi as _franz_parisi
from relu_landscape.theory import rs as _rs
from relu_landscape.theory import table as _table
from relu_landscape.theory import validate as _validate
from relu_landscape.theory.estimate import Estimate, from_batches
from relu_landscape.theory.gauss import PRECISIONS
from relu_landscape.theory.table import THEORY_VERSION, capacity_table

__all__ = [
    "THEORY_VERSION",
    "Estimate",
    "capacity_table",
    "curve_table",
    "dense_local_entropy_curve",
    "energetic_term",
    "franz_parisi_curve",
    "kappa",
    "rs_capacity",
    "rs_entropy",
    "rs_overlap",
    "rsb1_capacity",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_CHECKED = ("activation", "weights", "K", "tie", "precision", "alpha", "q", "kappa")
"""Arguments of ``validate.check`` that the capacity functions take by these names."""


def _checked(**fixed: object) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator: ``validate.check`` (every registered g) of the function's arguments
    named in _CHECKED before the call; ``fixed`` adds values or, given None, skips one.
    """

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        signature = inspect.signature(func)
        names = [name for name in signature.parameters if name in _CHECKED]

        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return func(*args, **kwargs)  # Python's own message for a bad call
            bound.apply_defaults()
            given = {name: bound.arguments[name] for name in names} | fixed
            _validate.check(**given, allowed=_validate.REGISTERED)
            return func(*args, **kwargs)

        return wrapper

    return decorate


@_checked()
def rs_capacity(
    activation: str,
    weights: str,
    K: float,
    *,
    tie: str = "error",
    precision: str = "default",
    kappa: float = 0.0,
) -> Estimate:
    """RS capacity alpha_c (patterns per weight) at margin kappa, docs/science.md §4.

    Continuous weights: 1 / E_z[d(z)^2] (sign: exact quadrature; ReLU: exact d(z),
    angular quadrature at K = 2, QMC beyond; any smooth g: the generic projection,
    QMC); at K = inf kappa'(1) alpha_G(kappa)
    (ReLU 2 pi / (pi - 1), sign math.inf at kappa = 0). Binary weights: the alpha where
    the RS entropy s = 0. kappa < 0 with continuous weights: RS is unstable (an upper
    estimate; ``table.stability_note``).
    """
    return _table.capacity(activation, weights, K, "RS", tie, precision, kappa)


@_checked()
def rsb1_capacity(
    activation: str,
    weights: str = "continuous",
    K: float = math.inf,
    *,
    tie: str = "error",
    precision: str = "default",
    kappa: float = 0.0,
) -> Estimate:
    """1RSB capacity (level "1RSB"), available for continuous weights at K = inf.

    Kernel-mapped perceptron at margin ``kappa``, q1 -> 1 with m / (1 - q1) fixed
    (rsb1.py); ReLU gives about 2.664 (RS 2.934), sign units math.inf. ``tie`` and
    ``precision`` are accepted for a uniform API and do not change the K = inf result.
    """
    problem = _table.rsb1_issue(weights, K)
    if problem:
        raise InvalidConfigError(problem)
    return _table.capacity(activation, weights, K, "1RSB", tie, precision, kappa)


@_checked()
def rs_overlap(
    activation: str,
    weights: str,
    K: float,
    alpha: float,
    *,
    tie: str = "error",
    precision: str = "default",
    kappa: float = 0.0,
) -> Estimate:
    """Typical RS overlap q(alpha) between two solutions in one group (margin kappa).

    nan (with nan stderr) when no RS solution with q <= 0.995 exists at this alpha.
    """
    # q(alpha) needs G_E(q), which finite K has for sign, relu, linear only
    _validate.check(activation=activation, K=K, allowed=_validate.REGISTERED)
    return _rs.typical_overlap(
        activation, weights, K, float(alpha), tie, precision, float(kappa)
    )[0]


@_checked(weights="binary")
def rs_entropy(
    activation: str,
    K: float,
    alpha: float,
    *,
    tie: str = "error",
    precision: str = "default",
    kappa: float = 0.0,
) -> Estimate:
    """RS entropy s(alpha) of binary weights (per weight, natural log; ln 2 at 0)."""
    return _rs.typical_overlap(
        activation, "binary", K, float(alpha), tie, precision, float(kappa)
    )[1]


@_checked()
def energetic_term(
    activation: str,
    K: float,
    q: float,
    *,
    tie: str = "error",
    derivative: bool = False,
    precision: str = "default",
):
    """G_E(q) as an Estimate, or the pair (G_E(q), G_E'(q)) when ``derivative``.

    K = inf, and sign K = 1 (Q = q): adaptive quadrature of the kernel formula.
    Finite K: quadrature for sign K = 3 and ReLU K = 2, QMC otherwise; G_E' is the
    derivative of a 7-node Chebyshev model on a window around q (same points).
    Kernel formula: G_E(q) = E_z ln H(-sqrt(Q / (1 - Q)) z), Q = kappa(q).
    """
    route = _energetic.exact_kernel(activation, K, 0.0, tie)
    if route is not None:
        kernel = route[0]  # K = 1 sign and linear at any K: the perceptron
        value = Estimate(_energetic.kernel_energetic(kernel, q))
        slope = Estimate(_energetic.kernel_energetic(kernel, q, derivative=True))
        return (value, slope) if derivative else value
    prec = PRECISIONS[precision]
    points = _rs.gauss_points(activation, int(K), precision, prec.log2_n + 3)
    value = from_batches(
        _energetic.energetic_batches(
            activation, int(K), float(q), tie=tie, points=points, cells=prec.lattice
        )
    )
    if not derivative:
        return value
    width = min(0.05, 0.1 * (1.0 - q))
    lo, hi = max(0.0, q - width), min(1.0 - 1e-9, q + width)
    model = _energetic.EnergeticModel(
        activation, K, tie, lo, hi, 7, points, prec.lattice
    )
    return value, from_batches(model(float(q))[1])


@_checked(q=None)  # q: any array of overlaps
def kappa(activation: str, q):
    """Wide-limit kernel kappa(q) of docs/science.md §4 (sign: (2/pi) arcsin q; relu;
    any registered g by quadrature, theory/kernels.py)."""
    return _energetic.kappa(activation, np.asarray(q, dtype=float))


@_checked()
def curve_table(
    activation: str,
    weights: str,
    K: float,
    alphas: Iterable[float],
    *,
    tie: str = "error",
    precision: str = "default",
    kappa: float = 0.0,
) -> list[dict]:
    """Rows {"alpha", "q", "q_stderr"} (+ "s", "s_stderr" for binary weights)."""
    alphas = list(alphas)
    bad = [
        f"alphas contains {a!r}; every alpha must be a finite number > 0"
        for a in alphas
        if not (isinstance(a, (int, float)) and 0 < a < math.inf)
    ]
    if bad:
        raise InvalidConfigError(bad)
    # curves need G_E(q), which finite K has for sign, relu, linear only
    _validate.check(activation=activation, K=K, allowed=_validate.REGISTERED)
    return _table.curve_rows(
        activation, weights, K, alphas, tie=tie, precision=precision, margin=kappa
    )


def franz_parisi_curve(
    activation: str,
    K: float,
    alpha: float,
    ds: Iterable[float],
    *,
    weights: str = "binary",
    damping: float = 0.5,
    precision: str = "default",
) -> list[dict]:
    """Franz-Parisi local entropy of a typical solution at each distance d (§5).

    Binary weights; sign units at odd K or K = inf, ReLU units at even K or
    K = inf. Rows, in the order of ``ds``: "kind" ("franz_parisi"), "activation",
    "weights", "K" (an int or "inf"), "alpha", "d", "local_entropy" (per weight,
    natural log; nan when not converged), "stderr" (0 for the quadrature cases
    K = 1 and K = inf; randomised QMC at finite K > 1, points by ``precision``),
    "converged", and the order parameters "q0", "p" = 1 - 2d, "t", "q1", "ph",
    "th", "q1h". Continued in d from d0 = (1 - q0)/2, where it equals s(alpha).
    """
    ds = list(ds)
    _franz_parisi.check_arguments(activation, weights, K, alpha, ds)
    _validate.check(precision=precision)
    return _franz_parisi.curve_rows(
        activation, K, alpha, ds, damping=damping, precision=precision
    )


def dense_local_entropy_curve(
    activation: str,
    K: float,
    alpha: float,
    ds: Iterable[float],
    *,
    weights: str = "binary",
    damping: float = 0.5,
    y: float = math.inf,
    precision: str = "default",
) -> list[dict]:
    """Local entropy of the densest regions (y -> infinity) at each distance d.

    Binary weights; sign units at odd K or K = inf, ReLU units at even K or
    K = inf; key columns as ``franz_parisi_curve`` (kind "dense", "stderr"
    0 for the quadrature cases K = 1 and K = inf; finite K > 1: randomised QMC,
    points by ``precision``, with "external_stderr"); "p",
    "q1", "omega" = y (q1 - q0), "ph", "q0h", "delta" = y (q1h - q0h). The centre
    is any binary vector (docs/local_entropy.md §3); not converged (nan) where d
    is beyond the range in which the distance constraint binds. "d_zero_external":
    where the external entropy of the y -> infinity curve reaches 0. A finite ``y``
    (y > 1 real replicas, docs/local_entropy.md §7; finite K > 1: §8) gives
    ln Z(y) / (N y) instead, with a "y" column, "q0", "q1h" and external_entropy nan.
    """
    ds = list(ds)
    _franz_parisi.check_arguments(activation, weights, K, alpha, ds)
    _validate.check(precision=precision)
    if not (isinstance(y, (int, float)) and y > 1):
        raise InvalidConfigError(f"y={y!r} is not allowed; give y > 1 or inf")
    finite_k = not _franz_parisi.exact(activation, K)
    if y != math.inf:
        from relu_landscape.theory import dense_finite_y

        return dense_finite_y.curve_rows(
            activation, K, alpha, ds, y, damping=damping, precision=precision
        )
    if finite_k:
        from relu_landscape.theory import dense_finite_k

        return dense_finite_k.curve_rows(
            activation, int(K), alpha, ds, damping=damping, precision=precision
        )
    return _dense.curve_rows(activation, K, alpha, ds, damping=damping)
