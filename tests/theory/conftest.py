"""Independent numbers and checks shared by the theory tests."""

from __future__ import annotations

import itertools
import math


def bound(d: float) -> float:
    """Binary entropy -d ln d - (1-d) ln(1-d): the log-number (per weight) of all
    binary vectors at normalised distance d, an upper bound on every local entropy."""
    return -d * math.log(d) - (1 - d) * math.log(1 - d)


def assert_approaches_wide_limit(wide: dict, rows: dict) -> None:
    """Rows (by increasing K) approach the K = inf row ``wide``: |phi_K - phi_inf|
    never grows by more than 3 combined stderr and ends below a third of its start."""
    assert wide["converged"] and all(r["converged"] for r in rows.values())
    gaps = [abs(rows[K]["local_entropy"] - wide["local_entropy"]) for K in rows]
    errs = [rows[K]["stderr"] for K in rows]
    for (g1, e1), (g2, e2) in itertools.pairwise(zip(gaps, errs, strict=True)):
        assert g2 < g1 + 3 * math.hypot(e1, e2)
    assert gaps[-1] < gaps[0] / 3
