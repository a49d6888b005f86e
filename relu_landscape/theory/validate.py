"""Argument checks shared by the public theory functions.

Every entry point collects all problems before raising one InvalidConfigError, one
message per problem naming the option, the bad value and the allowed values.
K conventions (docs/science.md §1): sign units need K odd (K = 1 is the
perceptron), ReLU units need K even; K = math.inf is the wide limit.
"""

from __future__ import annotations

import math
import numbers

from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory.gauss import PRECISIONS

ACTIVATIONS = ("sign", "relu")
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
    """Message for an invalid K (None when valid) given a valid activation."""
    if K == math.inf:
        return None
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or K < 1:
        return f"K={K!r} is not allowed; choose a positive integer or math.inf"
    if activation == "sign" and K % 2 == 0:
        return (
            f"K={K} is not allowed for activation='sign'; choose an odd K or math.inf"
        )
    if activation == "relu" and K % 2 == 1:
        return (
            f"K={K} is not allowed for activation='relu'; choose an even K or math.inf"
        )
    return None


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
) -> None:
    """Raise InvalidConfigError listing every invalid argument among those given."""
    issues: list[str] = []
    act_ok = activation is None or _choice(
        issues, "activation", activation, ACTIVATIONS
    )
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
    if alpha is not None and not (_is_real(alpha) and 0 < alpha < math.inf):
        issues.append(f"alpha={alpha!r} is not allowed; choose a finite number > 0")
    if q is not None and not (_is_real(q) and 0 <= q < 1):
        issues.append(f"q={q!r} is not allowed; choose a number with 0 <= q < 1")
    if issues:
        raise InvalidConfigError(issues)


def _is_real(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not math.isnan(value)
    )
