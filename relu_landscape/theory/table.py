"""Capacity and curve tables: rows of plain values for the CLI and the report.

Rows are dicts with the column names of the theory store (``store.THEORY_SCHEMA``):
capacity rows ``{"activation", "weights", "K", "kappa", "level", "tie", "precision",
"theory_version", "alpha_c", "stderr", "converged"}`` with K an int or the string
"inf" and kappa the stability margin (docs/theory_activations.md §1); curve rows
``{"alpha", "q", "q_stderr"}`` plus ``"s", "s_stderr"`` for binary weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from relu_landscape.errors import InvalidConfigError
from relu_landscape.theory import validate
from relu_landscape.theory.estimate import Estimate
from relu_landscape.theory.rs import (
    binary_capacity,
    continuous_capacity,
    typical_overlap,
)
from relu_landscape.theory.rsb1 import rsb1_capacity_kernel

THEORY_VERSION = 5
"""Version of the theory's numbers: bump it whenever a change to relu_landscape.theory
changes a computed value, so that cached theory tables (OUT/theory) are recomputed.
2: capacity rows carry precision, theory_version and converged. 3: rows carry the
margin kappa; the K = inf external entropy of dense regions gained its kernel-curvature
term. 4: continuous weights at finite K for every smooth g (projection.py); linear at
finite K > 1 is now that QMC estimate rather than the perceptron's closed form.
5: G_E(q) at finite K for every g with g' by one lattice (energetic.log_inner_lattice):
binary weights and q(alpha) for tanh, erf, GELU, quadratic; ReLU's numbers move by
its lattice error (~1e-6); even g at finite K fall back to the annealed q = 0 value."""


def rsb1_issue(weights: str, K: float) -> str | None:
    """Why a 1RSB capacity cannot be computed for (weights, K), or None."""
    if weights != "continuous":
        return (
            f"level='1RSB' with weights={weights!r} is not available; "
            "use weights='continuous'"
        )
    if K != math.inf:
        return f"level='1RSB' with K={K!r} is not available; use K=math.inf"
    return None


def stability_note(weights: str, level: str, margin: float) -> str | None:
    """Where the RS value is known not to be the capacity, a one-line note, or None.

    Continuous weights with kappa < 0: the region sigma Delta > kappa of each pattern
    is non-convex even for the perceptron, the RS saddle is unstable (de Almeida-
    Thouless; Gardner & Derrida 1988) and RS overestimates alpha_c
    (docs/theory_activations.md §5).
    """
    if level == "RS" and weights == "continuous" and margin < 0:
        return (
            f"kappa={margin:g} < 0 with continuous weights: the solution space is "
            "non-convex and RS is unstable (Gardner & Derrida 1988, AT line); the RS "
            "alpha_c is an upper estimate (1RSB at K = inf is lower)"
        )
    return None


def capacity(
    activation: str,
    weights: str,
    K: float,
    level: str,
    tie: str,
    precision: str,
    margin: float = 0.0,
) -> Estimate:
    """alpha_c of one variant at one level and margin (arguments already validated)."""
    if level == "1RSB":
        point = rsb1_capacity_kernel(activation, margin=margin)
        return Estimate(point.alpha_c, 0.0, point.converged)
    if weights == "continuous":
        est = continuous_capacity(activation, K, tie, precision, margin)
    else:
        est = binary_capacity(activation, K, tie, precision, margin)
    return Estimate(float(est.value), float(est.stderr), est.converged)


def capacity_table(
    activations: Iterable[str],
    weights: Iterable[str],
    Ks: Iterable[float],
    *,
    levels: Sequence[str] = ("RS",),
    tie: str = "error",
    precision: str = "default",
    skip_invalid: bool = False,
    kappas: Iterable[float] = (0.0,),
) -> list[dict]:
    """Capacity rows, one per combination of the arguments.

    Row keys: "activation", "weights", "K" (int or "inf"), "kappa" (the stability
    margin in units of the field's std, docs/theory_activations.md §1), "level", "tie",
    "precision", "theory_version" (``THEORY_VERSION``), "alpha_c", "stderr",
    "converged" (False: the method missed its target, e.g. a QMC stderr above the
    precision's target when the point cap was reached; see ``Estimate``).

    Every combination of the arguments; an invalid one (K parity, 1RSB outside
    continuous K = inf) raises InvalidConfigError listing all of them, unless
    ``skip_invalid=True``, which drops those rows silently.
    """
    activations, weights, Ks, levels, kappas = (
        list(activations),
        list(weights),
        list(Ks),
        list(levels),
        [float(k) if validate.is_real(k) else k for k in kappas],
    )
    issues: list[str] = [
        f"kappa={k!r} is not allowed; choose a finite number"
        for k in kappas
        if not (validate.is_real(k) and math.isfinite(k))
    ]
    for option, values, allowed in (
        ("activation", activations, validate.REGISTERED),
        ("weights", weights, validate.WEIGHTS),
        ("level", levels, validate.LEVELS),
    ):
        issues += [
            f"{option}={v!r} is not allowed; choose one of {', '.join(allowed)}"
            for v in values
            if v not in allowed
        ]
    try:
        validate.check(tie=tie, precision=precision)
    except InvalidConfigError as error:
        issues += error.issues
    if issues:
        raise InvalidConfigError(issues)
    plan, skipped = [], []
    for act in activations:
        for wts in weights:
            for K in Ks:
                for level in levels:
                    for margin in kappas:
                        problem = (
                            validate.k_issue(act, K)
                            or (rsb1_issue(wts, K) if level == "1RSB" else None)
                            or validate.theory_issue(act, K, wts)
                        )
                        (skipped if problem else plan).append(
                            (act, wts, K, level, margin, problem)
                        )
    if skipped and not skip_invalid:
        raise InvalidConfigError(sorted({p for *_, p in skipped}))
    rows = []
    for act, wts, K, level, margin, _ in plan:
        est = capacity(act, wts, K, level, tie, precision, margin)
        rows.append(
            {
                "activation": act,
                "weights": wts,
                "K": "inf" if K == math.inf else int(K),
                "kappa": margin,
                "level": level,
                "tie": tie,
                "precision": precision,
                "theory_version": THEORY_VERSION,
                "alpha_c": est.value,
                "stderr": est.stderr,
                "converged": bool(est.converged),
            }
        )
    return rows


def curve_rows(
    activation: str,
    weights: str,
    K: float,
    alphas: Iterable[float],
    *,
    tie: str,
    precision: str,
    margin: float = 0.0,
) -> list[dict]:
    """Typical overlap (and binary entropy) at each alpha; see ``curve_table``."""
    rows = []
    for alpha in alphas:
        q, s = typical_overlap(
            activation, weights, K, float(alpha), tie, precision, margin
        )
        row = {"alpha": float(alpha), "q": q.value, "q_stderr": q.stderr}
        if s is not None:
            row.update({"s": s.value, "s_stderr": s.stderr})
        rows.append(row)
    return rows
