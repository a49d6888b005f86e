"""Hyperparameters of every solver and probe, as frozen dataclasses (torch-free).

The TOML spec's ``[solver.<weights>]`` and ``[probes.<name>]`` tables are validated
against these classes by ``config.py``: every field may be set there, every field has
a default, and field metadata gives its range (``min``/``gt``/``max``) or ``choices``.
The implementations live in ``solvers/`` and ``probes/``; they receive these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _f(default, **meta):
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class GDParams:
    """Gradient descent (Adam) on the per-unit-sphere parametrisation, continuous weights.

    ``margin`` is in units of the output field Delta (science.md §1); the loss is the
    mean over patterns of ``relu(margin - sigma*Delta)`` (hinge) or
    ``softplus(-beta*sigma*Delta)/beta`` (cross_entropy). Stops at zero training errors.
    Training uses the surrogates tanh(slope*lambda) (sign) and softplus(slope*lambda)/slope
    (ReLU), the slope raised geometrically from 1 to ``slope_end`` over ``max_steps``.
    """

    loss: str = _f("hinge", choices=("hinge", "cross_entropy"))
    margin: float = _f(0.5, min=0.0)
    beta: float = _f(5.0, gt=0.0)
    lr: float = _f(0.05, gt=0.0)
    max_steps: int = _f(3000, min=1)
    slope_end: float = _f(10.0, gt=0.0)


@dataclass(frozen=True)
class AnnealParams:
    """Simulated annealing with single-weight Metropolis flips, binary weights.

    Energy = number of misclassified patterns (a tie is an error). The inverse
    temperature grows geometrically from ``beta_start`` to ``beta_end`` over ``sweeps``
    sweeps of N proposals each; a chain stops at zero errors.
    """

    sweeps: int = _f(300, min=1)
    beta_start: float = _f(0.5, gt=0.0)
    beta_end: float = _f(20.0, gt=0.0)


# name -> (parameter class, weight types it trains)
SOLVER_PARAMS: dict[str, tuple[type, tuple[str, ...]]] = {
    "gd": (GDParams, ("continuous",)),
    "anneal": (AnnealParams, ("binary",)),
}

# name -> parameter class; filled in by the probes as they land
PROBE_PARAMS: dict[str, type] = {}

DEFAULT_SOLVER = {"binary": "anneal", "continuous": "gd"}
