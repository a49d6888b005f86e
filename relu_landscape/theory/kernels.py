"""Kernels of any registered activation by quadrature (docs/theory_activations.md §2).

kappa_g(q) = Cov(g(x), g(y)) / Var g(x) for unit Gaussians x, y of correlation q, and
its derivative kappa_g'(q) = E[g'(x) g'(y)] / Var g(x) (Price's theorem). Polar
coordinates make the double integral smooth for every registered g (all are smooth
away from 0): x = r cos(phi), y = r cos(phi - theta), cos(theta) = q, and

    E[F] = (1 / 2 pi) int_0^pi dphi int_0^inf dt e^-t [F(r, phi) + F(-r, phi)],
    r = sqrt(2 t),

whose radial integrand is a smooth function of t (an even function of r: a function
of r^2; for the homogeneous sign and ReLU it is a monomial), integrated by
Gauss-Laguerre, and whose angular integrand is smooth between the angles where x or y
changes sign (pi/2 and theta +- pi/2), integrated by Gauss-Legendre on each piece.
Sign and ReLU agree with their closed forms (activations.py) to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
from scipy import special

from relu_landscape import activations

# Gauss-Legendre nodes per angular piece and Gauss-Laguerre nodes in t: tanh, the
# slowest registered case (poles at r = i pi/2, t = -pi^2/8), is resolved to ~1e-12.
_ANGLE_NODES = 48
_RADIAL_NODES = 96


@cache
def _rules() -> tuple[np.ndarray, ...]:
    x, w = special.roots_legendre(_ANGLE_NODES)
    t, v = special.roots_laguerre(_RADIAL_NODES)
    return x, w, t, v


def gauss_pair_mean(fn: Callable, q: np.ndarray | float) -> np.ndarray:
    """E[fn(x) fn(y)] for unit Gaussians x, y of correlation q (any shape of q).

    fn must be smooth away from 0 (every registered g and g'; ``kernel`` checks the
    registry's kinks).
    """
    q = np.clip(np.asarray(q, dtype=float), -1.0, 1.0)
    theta = np.arccos(q)[..., None]
    # angular breakpoints in [0, pi]: where cos(phi) = 0 or cos(phi - theta) = 0
    other = np.where(theta <= math.pi / 2, theta + math.pi / 2, theta - math.pi / 2)
    first, second = np.minimum(other, math.pi / 2), np.maximum(other, math.pi / 2)
    edges = np.concatenate(
        [np.zeros_like(theta), first, second, np.full_like(theta, math.pi)], -1
    )
    x, w, t, v = _rules()
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]
    phi = (lo + (hi - lo) * (x + 1) / 2).reshape(*q.shape, -1)  # [..., 3 * nodes]
    wphi = ((hi - lo) / 2 * w).reshape(*q.shape, -1)
    r = np.sqrt(2.0 * t)
    a = r * np.cos(phi)[..., None]  # [..., angles, radii]
    b = r * np.cos(phi[..., None] - theta[..., None])
    values = fn(a) * fn(b) + fn(-a) * fn(-b)
    return np.einsum("...ar,...a,r->...", values, wphi, v) / (2.0 * math.pi)


def kernel(name: str, q: np.ndarray | float) -> np.ndarray:
    """kappa_g(q) = Cov(g(x), g(y)) / Var g(x) by quadrature (module docstring); the
    mean and variance of g are the pair means at q = 0 and q = 1."""
    act = activations.get(name)
    if any(k != 0.0 for k in act.kinks):
        raise ValueError(f"{name}: kernels.py handles kinks at 0 only, not {act.kinks}")
    g = act.g
    at_zero, at_one = gauss_pair_mean(g, [0.0, 1.0])  # (E g)^2 and E g^2
    return (gauss_pair_mean(g, q) - at_zero) / (at_one - at_zero)


def kernel_slope(name: str, q: np.ndarray | float) -> np.ndarray:
    """kappa_g'(q) = E[g'(x) g'(y)] / Var g by quadrature; sign (no g'): closed form."""
    act = activations.get(name)
    if act.derivative is None:
        q = np.asarray(q, dtype=float)
        with np.errstate(divide="ignore"):
            return 2.0 / math.pi / np.sqrt(1.0 - q * q)
    return gauss_pair_mean(act.derivative, q) / act.field_std**2


def gardner_capacity(margin: float) -> float:
    """Gardner's alpha_c(kappa) = 1 / int_{-kappa}^inf Dt (t + kappa)^2, closed form.

    The integral is E[(kappa - t)_+^2] = (1 + kappa^2) H(-kappa) + kappa phi(kappa).
    """
    k = float(margin)
    second = (1.0 + k * k) * special.ndtr(k) + k * math.exp(-0.5 * k * k) / math.sqrt(
        2.0 * math.pi
    )
    return 1.0 / second
