"""Empirical capacity: P(solved) versus alpha, alpha_50 and its finite-size trend.

Groups are (activation, weights, K, N, solver, kappa): runs at different margins kappa
are different problems and never pool; a cell adds alpha. P(solved) carries a
95% Wilson interval and alpha_50 (where half the instances are solved) the interval of
``stats.alpha_50`` (a converged logistic fit, or the grid bracket when the data are
separated or the fit did not converge; the ``method`` column says which).
docs/science.md §2; the estimators live in ``relu_landscape.stats``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from relu_landscape.stats import Threshold, alpha_50, wilson_interval

GROUP = ["activation", "weights", "K", "N", "solver", "kappa"]
KEYS = [*GROUP, "alpha"]
Z95 = 1.959963984540054


def solved_fraction(runs: pl.LazyFrame, keys: list[str] = KEYS) -> pl.DataFrame:
    """P(solved) per grid cell, and P(solvable) where the runs decided it exactly.

    ``keys``: the cell's columns (KEYS; more, e.g. solver_params, to split a cell).
    Columns: keys + instances, solved, p_solved, p_low, p_high (95% Wilson interval),
    mean_error_frac (mean final training-error fraction); decided (instances whose
    ``solvable`` is known: binary weights at small N), solvable, p_solvable,
    p_solvable_low, p_solvable_high (null unless every instance was decided: the exact
    finite-N capacity curve), missed (solvable but not solved) and failure_rate
    (missed / solvable: how often the solver fails where a solution exists).
    """
    if "solvable" not in runs.collect_schema().names():
        runs = runs.with_columns(pl.lit(None, pl.Boolean).alias("solvable"))
    cells = (
        runs.group_by(keys)
        .agg(
            pl.len().alias("instances"),
            pl.col("solved").sum().alias("solved"),
            pl.col("solved").mean().alias("p_solved"),
            pl.col("error_frac").mean().alias("mean_error_frac"),
            pl.col("solvable").is_not_null().sum().alias("decided"),
            pl.col("solvable").sum().alias("solvable"),
            (pl.col("solvable") & ~pl.col("solved")).sum().alias("missed"),
        )
        .sort(keys)
        .collect()
    )
    low, high = wilson_interval(
        cells["solved"].to_numpy(), cells["instances"].to_numpy()
    )
    s_low, s_high = wilson_interval(
        cells["solvable"].to_numpy(), np.maximum(cells["decided"].to_numpy(), 1)
    )
    decided = pl.col("decided") == pl.col("instances")
    cells = cells.with_columns(
        pl.Series("p_low", low),
        pl.Series("p_high", high),
        (pl.col("solvable") / pl.col("instances")).alias("p_solvable"),
        pl.Series("p_solvable_low", s_low),
        pl.Series("p_solvable_high", s_high),
        (pl.col("missed") / pl.col("solvable")).alias("failure_rate"),
    )
    exact = ["p_solvable", "p_solvable_low", "p_solvable_high", "failure_rate"]
    return cells.with_columns(
        pl.when(decided & (pl.col("solvable") > 0 if c == "failure_rate" else True))
        .then(pl.col(c)).otherwise(None).alias(c)
        for c in exact
    ).select(
        [*keys, "instances", "solved", "p_solved", "p_low", "p_high", "mean_error_frac",
         "decided", "solvable", "p_solvable", "p_solvable_low", "p_solvable_high",
         "missed", "failure_rate"]
    )


def thresholds(cells: pl.DataFrame, outcome: str = "solved") -> pl.DataFrame:
    """alpha_50 per group from ``solved_fraction`` cells, of P(solved) or, with
    ``outcome="solvable"``, of the exact P(solvable) (groups decided at every alpha).

    Columns: GROUP + alpha_50, low, high (nan where the crossing is outside the grid),
    method ("logistic", "bracket" or "bracket-unconverged": ``stats.Threshold``),
    instances (all alphas), alphas (grid points).
    """
    if outcome == "solvable":
        cells = cells.filter(
            (pl.col("decided") == pl.col("instances")).all().over(GROUP))
    rows = []
    for key, g in cells.sort(KEYS).group_by(GROUP, maintain_order=True):
        t: Threshold = alpha_50(
            g["alpha"].to_numpy(), g[outcome].to_numpy(), g["instances"].to_numpy()
        )
        rows.append(
            {
                **dict(zip(GROUP, key, strict=True)),
                "alpha_50": t.alpha_50,
                "low": t.low,
                "high": t.high,
                "method": t.method,
                "instances": int(g["instances"].sum()),
                "alphas": g.height,
            }
        )
    schema = {
        **cells.select(GROUP).schema,
        "alpha_50": pl.Float64,
        "low": pl.Float64,
        "high": pl.Float64,
        "method": pl.String,
        "instances": pl.Int64,
        "alphas": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


FSS_POWER = 0.5
"""Exponent of the finite-size law alpha_50(N) = alpha_inf + slope N^(-FSS_POWER).

The finite-size-scaling form P(solved) = f((alpha - alpha_inf) N^(1/nu)) shifts the
midpoint by c N^(-1/nu), c = f^-1(1/2), at the rate the width narrows, unless
f(0) = 1/2 (a curve symmetric about alpha_inf; the shift is then of higher order,
e.g. 1/N: Cover's separable fraction of the continuous perceptron has its midpoint at
alpha = 2 at every N while its width shrinks as N^-1/2). Nothing pins an algorithm's
success curve to f(0) = 1/2, so the generic mean-field exponent nu = 2 is the
default: the width of the binary perceptron's SAT/UNSAT and algorithmic transitions
comes from O(N^-1/2) fluctuations of the instance, and the measured width of bp's
success curve there shrinks as N^-x, x = 0.44 +- 0.10 at N = 251 .. 2001
(docs/solvers.md, "Finite-size trend"). A fit in 1/N (power = 1) is the
alternative; the two extrapolations' difference is a systematic error to quote
beside the fit's.
"""


@dataclass(frozen=True)
class Extrapolation:
    """alpha_50 at N = infinity from a fit alpha_50(N) = alpha_inf + slope N^-power.

    stderr: standard error of alpha_inf, from the points' errors (interval half-width
    / 1.96), inflated by sqrt(chi2 / dof) when that exceeds 1 (scatter beyond the
    stated errors: the law or the errors are off); chi2 and dof (points - 2) say how
    well the law fits (dof = 0: two points, no test).
    """

    alpha_inf: float
    stderr: float
    slope: float
    power: float
    chi2: float
    dof: int


def extrapolate(N, alpha_50, low, high, power: float = FSS_POWER) -> Extrapolation:
    """Weighted least squares of alpha_50 = alpha_inf + slope N^-power.

    N, alpha_50, low, high: one entry per size (the 95% interval [low, high] of each
    estimate, finite, high > low); each point weighs 1/se^2 with se = (high - low) /
    (2 * 1.96), a Gaussian reading of the interval (an approximation for the grid
    brackets of ``stats.alpha_50``). Needs at least two sizes.
    """
    N, a, low, high = (np.asarray(v, dtype=float) for v in (N, alpha_50, low, high))
    if len(np.unique(N)) < 2:
        raise ValueError("extrapolate needs alpha_50 at two sizes or more")
    se = (high - low) / (2 * Z95)
    if not np.all(np.isfinite(se) & (se > 0)):
        raise ValueError("extrapolate needs finite intervals with high > low")
    X = np.stack([np.ones_like(N), N**-power], axis=1)
    w = 1 / se**2
    cov = np.linalg.inv(X.T @ (X * w[:, None]))
    coef = cov @ (X.T @ (w * a))
    chi2 = float(np.sum(w * (a - X @ coef) ** 2))
    dof = len(a) - 2
    scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
    return Extrapolation(
        alpha_inf=float(coef[0]),
        stderr=math.sqrt(float(cov[0, 0]) * scale),
        slope=float(coef[1]),
        power=power,
        chi2=chi2,
        dof=dof,
    )


def finite_size_trend(
    thr: pl.DataFrame, power: float = FSS_POWER, min_sizes: int = 3
) -> pl.DataFrame:
    """``extrapolate`` per (activation, weights, K, solver, kappa) with at least ``min_sizes``
    sizes whose alpha_50 interval is finite (three by default: a line through two
    points cannot be checked). Columns: sizes, alpha_50_inf, stderr, slope, power,
    chi2, dof.
    """
    by = [c for c in GROUP if c != "N"]
    ok = thr.filter(
        pl.col("low").is_finite()
        & pl.col("high").is_finite()
        & (pl.col("high") > pl.col("low"))
    )
    rows = []
    for key, g in ok.sort("N").group_by(by, maintain_order=True):
        if g["N"].n_unique() < min_sizes:
            continue
        fit = extrapolate(g["N"], g["alpha_50"], g["low"], g["high"], power)
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "sizes": g.height,
                "alpha_50_inf": fit.alpha_inf,
                "stderr": fit.stderr,
                "slope": fit.slope,
                "power": fit.power,
                "chi2": fit.chi2,
                "dof": fit.dof,
            }
        )
    schema = {
        **thr.select(by).schema,
        "sizes": pl.Int64,
        "alpha_50_inf": pl.Float64,
        "stderr": pl.Float64,
        "slope": pl.Float64,
        "power": pl.Float64,
        "chi2": pl.Float64,
        "dof": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").sort(by)
