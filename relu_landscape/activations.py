"""Registry of hidden-unit activations g (docs/science.md §1, theory_activations.md).

One :class:`Activation` entry per g holds everything the model, the solvers and the
theory need to know about it; a new activation is one entry in ``ACTIVATIONS``:

- ``g`` and ``derivative``: elementwise callables accepting numpy arrays (or floats)
  and torch tensors alike (torch is never imported here; a tensor is recognised by
  its type's module), ``derivative`` the a.e. derivative g' (None for sign, whose
  derivative vanishes a.e.: gradient solvers use a surrogate, docs/science.md §3);
- the readout c: all +1 for odd g (``odd``), else +1 on the first K/2 units and -1 on
  the rest, which makes E[Delta] = 0 for any g and needs K even;
- the valid K (``k_issue``) and the tie semantics (``tie_atom``);
- ``degree``: p where g is positively homogeneous, g(a x) = a^p g(x) for a > 0 (the
  model may then work with unnormalised sums), None otherwise;
- ``kinks``: points where g or g' is not smooth (0 or none here; the theory's
  quadrature in kernels.py assumes no others);
- ``kernel``: the normalised kernel in closed form where one is known (the theory
  checks it against quadrature), None otherwise.

Output field and margin (docs/theory_activations.md §1): Delta = (1/sqrt K) sum_l c_l
g(lambda_l); a pattern is stored when sigma Delta > kappa * ``field_std``, where
field_std = sqrt(Var g(z)), z ~ N(0, 1), is the standard deviation of Delta over
random patterns and weights (lambda_l ~ N(0, 1), independent units, balanced or odd
readout). Sign units have field_std = 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import integrate, special


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _array(x):
    return x if _is_torch(x) else np.asarray(x, dtype=float)


def _sign(x):
    x = _array(x)
    return x.sign() if _is_torch(x) else np.sign(x)


def _relu(x):
    x = _array(x)
    return x.clamp(min=0) if _is_torch(x) else np.maximum(x, 0.0)


def _step(x):
    x = _array(x)
    return (x > 0).to(x.dtype) if _is_torch(x) else (x > 0).astype(float)


def _tanh(x):
    x = _array(x)
    return x.tanh() if _is_torch(x) else np.tanh(x)


def _sech_sq(x):
    return 1.0 - _tanh(x) ** 2


def _erf(x):
    x = _array(x)
    return x.erf() if _is_torch(x) else special.erf(x)


def _exp(x):
    x = _array(x)
    return x.exp() if _is_torch(x) else np.exp(x)


def _erf_prime(x):
    return (2.0 / math.sqrt(math.pi)) * _exp(-_array(x) ** 2)


def _normal_cdf(x):
    return 0.5 * (1.0 + _erf(_array(x) / math.sqrt(2.0)))


def _gelu(x):
    x = _array(x)
    return x * _normal_cdf(x)


def _gelu_prime(x):
    x = _array(x)
    return _normal_cdf(x) + x * _exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _identity(x):
    return _array(x)


def _one(x):
    x = _array(x)
    return x * 0 + 1


def _square(x):
    x = _array(x)
    return x * x


def _twice(x):
    return 2.0 * _array(x)


# Closed-form normalised kernels kappa(q) = Cov(g(x), g(y)) / Var g(x), corr(x, y) = q.
def _sign_kernel(q):
    return 2.0 / math.pi * np.arcsin(q)


def _relu_kernel(q):
    root = np.sqrt(np.clip(1.0 - q * q, 0.0, None))
    return (root + q * (math.pi - np.arccos(q)) - 1.0) / (math.pi - 1.0)


def _erf_kernel(q):
    # E[erf(x) erf(y)] = (2/pi) arcsin(2q / 3) for unit Gaussians of correlation q
    return np.arcsin(2.0 * q / 3.0) / math.asin(2.0 / 3.0)


@dataclass(frozen=True)
class Activation:
    """One hidden-unit activation g and its conventions (module docstring)."""

    name: str
    g: Callable
    derivative: Callable | None
    odd: bool
    degree: int | None
    tie_atom: bool
    kinks: tuple[float, ...] = ()
    kernel: Callable | None = None

    def readout(self, K: int) -> np.ndarray:
        """c [K]: all +1 for odd g, else +1 on the first K/2 units and -1 after."""
        c = np.ones(K)
        if not self.odd:
            c[K // 2 :] = -1.0
        return c

    def k_issue(self, K: object) -> str | None:
        """Why K is not valid for this g (None when it is); K = math.inf is valid.

        sign: K odd (an even vote can tie); other odd g: any K >= 1; g not odd: K even
        (the balanced readout).
        """
        if K == math.inf:
            return None
        if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
            return f"K={K!r} is not allowed; choose a positive integer or math.inf"
        if self.name == "sign" and K % 2 == 0:
            return (
                f"K={K} is not allowed for activation='sign'; "
                "choose an odd K or math.inf"
            )
        if not self.odd and K % 2 == 1:
            return (
                f"K={K} is not allowed for activation={self.name!r}; "
                "choose an even K or math.inf"
            )
        return None

    @property
    def field_std(self) -> float:
        """sqrt(Var g(z)), z ~ N(0, 1): the std of Delta, the unit of the margin."""
        return _moments(self.name)[0]


@cache
def _moments(name: str) -> tuple[float, float]:
    """(sqrt Var g(z), E[g'(z)^2]) by adaptive quadrature (inf for sign's E[g'^2])."""
    act = ACTIVATIONS[name]
    opts = {"epsabs": 1e-14, "epsrel": 1e-12, "limit": 400}

    def gauss_mean(fn: Callable) -> float:
        def weighted(x: float) -> float:
            return float(fn(x)) * math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

        edges = (-40.0, *act.kinks, 40.0)  # the Gaussian weight is < 1e-300 beyond
        return sum(
            integrate.quad(weighted, a, b, **opts)[0]
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        )

    mean = gauss_mean(act.g)
    var = gauss_mean(lambda x: (float(act.g(x)) - mean) ** 2)
    slope = (
        math.inf
        if act.derivative is None
        else gauss_mean(lambda x: float(act.derivative(x)) ** 2)
    )
    return math.sqrt(var), slope


def slope_at_one(name: str) -> float:
    """kappa'(1) = E[g'(z)^2] / Var g(z) (Price's theorem; inf for sign)."""
    std, slope = _moments(name)
    return slope / std**2


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sign", _sign, None, True, 0, False, (0.0,), _sign_kernel),
        Activation("relu", _relu, _step, False, 1, True, (0.0,), _relu_kernel),
        Activation("tanh", _tanh, _sech_sq, True, None, False),
        Activation("erf", _erf, _erf_prime, True, None, False, (), _erf_kernel),
        Activation("gelu", _gelu, _gelu_prime, False, None, False),
        Activation("quadratic", _square, _twice, False, 2, False, (), np.square),
        Activation("linear", _identity, _one, True, 1, False, (), np.asarray),
    )
}
"""Registered activations by name. tie_atom: True where Delta = 0 has positive
probability under Gaussian preactivations (ReLU: every unit inactive, about 2^-K), so
the tie convention changes the theory; elsewhere ties have probability 0 (sign: K odd)
and tie="error" and "success" agree. Ties always count as errors in the model."""


def get(name: str) -> Activation:
    """The registry entry of ``name``; KeyError naming the choices otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise KeyError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}"
        ) from None
