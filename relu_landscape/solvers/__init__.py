"""Solvers: every one trains a whole batch of instances per call (docs/science.md §3).

A solver is a function ``solve(batch, activation, params, keys, *, progress=None)``:

- batch: ``model.TorchBatch`` (B instances on one device);
- activation: any name of ``activations.ACTIVATIONS`` (``params.SOLVER_VARIANTS`` says
  which solvers train only some); params: its dataclass from ``params.py``;
- keys: one 128-bit stream key per instance (``instances.stream_key``), the only source
  of its randomness, so results do not depend on batching;
- progress: optional callable ``progress(done_fraction: float)``.

It returns a ``SolveResult``. The registry ``SOLVERS`` maps config names to them;
adding a solver is one new module, one line here and one in ``params.SOLVER_PARAMS``
(and one in ``params.SOLVER_VARIANTS`` if it trains only some (activation, K)).
"""

from __future__ import annotations

from collections.abc import Callable

from relu_landscape.solvers import anneal, bp, clipped_sgd, gd, lp, replicated, sbpi
from relu_landscape.solvers.base import SolveResult

__all__ = ["SOLVERS", "SolveResult"]


SOLVERS: dict[str, Callable[..., SolveResult]] = {
    "gd": gd.solve,
    "replicated_gd": replicated.solve_gd,
    "anneal": anneal.solve,
    "clipped_sgd": clipped_sgd.solve,
    "replicated_clipped_sgd": replicated.solve_clipped_sgd,
    "sbpi": sbpi.solve,
    "lp": lp.solve,
    "bp": bp.solve,
}
