"""Argument checks shared by the public theory functions.

Every entry point collects all problems before raising one InvalidConfigError, one
message per problem naming the option, the bad value and the allowed values.
K conventions (docs/science.md §1): sign units need K odd (K = 1 is the
perceptron), ReLU units need K even; K = math.inf is the wide limit.
"""

from __future__ import annotations

import math
import numbers

from relu_landscape import activations as _registry
from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory.gauss import PRECISIONS

ACTIVATIONS = ("sign", "relu")
"""Activations of the local-entropy theory (Franz-Parisi, dense regions)."""
REGISTERED = tuple(_registry.ACTIVATIONS)
"""Activations of the capacity theory: every entry of relu_landscape.activations."""
FINITE_K = ("sign", "relu", "linear")
"""Activations with a finite-K theory of every kind by their own routes (sign: exact
vote; ReLU: exact projection). Every other g with g' has one too: G_E(q) by the
lattice (energetic.log_inner_lattice; binary weights, q(alpha) curves) and, when it
has no kinks, the continuous capacity by the generic projection (projection.py)."""
WEIGHTS = ("binary", "continuous")
TIES = ("error", "success")
LEVELS = ("RS", "1RSB")


def _choice(issues: list[str], option: str, value: object, allowed: tuple) -> bool:
    if value in allowed:
        return True
    issues.append(
        f"{option}={value!r} is not allowed; choose one of {', '.join(allowed)}"
    )
    return False


def k_issue(activation: str, K: object) -> str | None:
    """Message for an invalid K (None when valid) given a registered activation
    (the registry's rule: sign odd K, odd g any K, other g even K)."""
    if isinstance(K, numbers.Integral) and not isinstance(K, bool):
        K = int(K)
    return _registry.get(activation).k_issue(K)


def theory_issue(activation: str, K: object, weights: str | None = None) -> str | None:
    """Why no theory is implemented for a valid (activation, K, weights), or None.

    K = inf and FINITE_K: always. Other g at finite K: G_E(q) needs g' (the lattice
    of energetic.py), the continuous capacity also no kinks (the generic projection);
    every registered g qualifies, the check guards new registry entries."""
    if K == math.inf or activation in FINITE_K:
        return None
    act = _registry.get(activation)
    if act.derivative is not None and not (weights == "continuous" and act.kinks):
        return None
    return (
        f"K={K!r} with activation={activation!r}"
        + (f", weights={weights!r}" if weights else "")
        + ": finite K needs g' (and, for continuous weights, no kinks); "
        "choose K=math.inf"
    )


def check(
    *,
    activation: str | None = None,
    weights: str | None = None,
    K: object = None,
    tie: str | None = None,
    precision: str | None = None,
    alpha: object = None,
    q: object = None,
    level: str | None = None,
    kappa: object = None,
    allowed: tuple[str, ...] = ACTIVATIONS,
) -> None:
    """Raise InvalidConfigError listing every invalid argument among those given.

    ``allowed``: the activations of the caller's theory (ACTIVATIONS or REGISTERED).
    With activation and K valid, ``theory_issue`` is checked too.
    """
    issues: list[str] = []
    act_ok = activation is None or _choice(issues, "activation", activation, allowed)
    if weights is not None:
        _choice(issues, "weights", weights, WEIGHTS)
    if tie is not None:
        _choice(issues, "tie", tie, TIES)
    if precision is not None:
        _choice(issues, "precision", precision, tuple(PRECISIONS))
    if level is not None:
        _choice(issues, "level", level, LEVELS)
    if K is not None and act_ok and activation is not None:
        message = k_issue(activation, K)
        if message:
            issues.append(message)
    if alpha is not None and not (is_real(alpha) and 0 < alpha < math.inf):
        issues.append(f"alpha={alpha!r} is not allowed; choose a finite number > 0")
    if q is not None and not (is_real(q) and 0 <= q < 1):
        issues.append(f"q={q!r} is not allowed; choose a number with 0 <= q < 1")
    if kappa is not None and not (is_real(kappa) and math.isfinite(kappa)):
        issues.append(f"kappa={kappa!r} is not allowed; choose a finite number")
    if not issues and activation is not None and K is not None:
        message = theory_issue(activation, K, weights)
        if message:
            issues.append(message)
    if issues:
        raise InvalidConfigError(issues)


def is_real(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not math.isnan(value)
    )
