"""Empirical capacity: P(solved) versus alpha, alpha_50 and its finite-size trend.

Groups are (activation, weights, K, N, solver); a cell adds alpha. P(solved) carries a
95% Wilson interval and alpha_50 (where half the instances are solved) the interval of
``stats.alpha_50`` (a converged logistic fit, or the grid bracket when the data are
separated or the fit did not converge; the ``method`` column says which).
docs/science.md §2; the estimators live in ``relu_landscape.stats``.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from relu_landscape.stats import Threshold, alpha_50, wilson_interval

GROUP = ["activation", "weights", "K", "N", "solver"]
KEYS = [*GROUP, "alpha"]
Z95 = 1.959963984540054


def solved_fraction(runs: pl.LazyFrame) -> pl.DataFrame:
    """P(solved) per grid cell, and P(solvable) where the runs decided it exactly.

    Columns: KEYS + instances, solved, p_solved, p_low, p_high (95% Wilson interval),
    mean_error_frac (mean final training-error fraction); decided (instances whose
    ``solvable`` is known: binary weights at small N), solvable, p_solvable,
    p_solvable_low, p_solvable_high (null unless every instance was decided: the exact
    finite-N capacity curve), missed (solvable but not solved) and failure_rate
    (missed / solvable: how often the solver fails where a solution exists).
    """
    if "solvable" not in runs.collect_schema().names():
        runs = runs.with_columns(pl.lit(None, pl.Boolean).alias("solvable"))
    cells = (
        runs.group_by(KEYS)
        .agg(
            pl.len().alias("instances"),
            pl.col("solved").sum().alias("solved"),
            pl.col("solved").mean().alias("p_solved"),
            pl.col("error_frac").mean().alias("mean_error_frac"),
            pl.col("solvable").is_not_null().sum().alias("decided"),
            pl.col("solvable").sum().alias("solvable"),
            (pl.col("solvable") & ~pl.col("solved")).sum().alias("missed"),
        )
        .sort(KEYS)
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
        [*KEYS, "instances", "solved", "p_solved", "p_low", "p_high", "mean_error_frac",
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


def finite_size_trend(thr: pl.DataFrame) -> pl.DataFrame:
    """Extrapolate alpha_50 to N = infinity by a weighted fit alpha_50 = a + b / N.

    One row per (activation, weights, K, solver) with at least two sizes whose
    alpha_50 interval is finite: columns sizes, alpha_50_inf (= a), stderr (of a;
    each point weighted by its interval half-width / 1.96, an approximation for
    bracket intervals), slope (= b).
    """
    by = [c for c in GROUP if c != "N"]
    ok = thr.filter(
        pl.col("low").is_finite()
        & pl.col("high").is_finite()
        & (pl.col("high") > pl.col("low"))
    )
    rows = []
    for key, g in ok.sort("N").group_by(by, maintain_order=True):
        if g["N"].n_unique() < 2:
            continue
        x = 1.0 / g["N"].to_numpy().astype(float)
        se = (g["high"] - g["low"]).to_numpy() / (2 * Z95)
        coef, cov = np.polyfit(x, g["alpha_50"].to_numpy(), 1, w=1 / se, cov="unscaled")
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "sizes": g.height,
                "alpha_50_inf": float(coef[1]),
                "stderr": math.sqrt(float(cov[1, 1])),
                "slope": float(coef[0]),
            }
        )
    schema = {
        **thr.select(by).schema,
        "sizes": pl.Int64,
        "alpha_50_inf": pl.Float64,
        "stderr": pl.Float64,
        "slope": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").sort(by)
