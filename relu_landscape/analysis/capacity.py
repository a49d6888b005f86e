"""Empirical capacity: P(solved) versus alpha, alpha_50 and its finite-size trend.

Groups are (activation, weights, K, N, solver); a cell adds alpha. P(solved) carries a
95% Wilson interval and alpha_50 (where half the instances are solved) the interval of
``stats.alpha_50`` (logistic fit, or the grid bracket when no fit is possible).
science.md §2; the estimators live in ``relu_landscape.stats``.
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
    """P(solved) per grid cell.

    Columns: KEYS + instances, solved, p_solved, p_low, p_high (95% Wilson interval),
    mean_error_frac (mean final training-error fraction).
    """
    cells = (
        runs.group_by(KEYS)
        .agg(
            pl.len().alias("instances"),
            pl.col("solved").sum().alias("solved"),
            pl.col("solved").mean().alias("p_solved"),
            pl.col("error_frac").mean().alias("mean_error_frac"),
        )
        .sort(KEYS)
        .collect()
    )
    low, high = wilson_interval(
        cells["solved"].to_numpy(), cells["instances"].to_numpy()
    )
    return cells.with_columns(
        pl.Series("p_low", low), pl.Series("p_high", high)
    ).select(
        [*KEYS, "instances", "solved", "p_solved", "p_low", "p_high", "mean_error_frac"]
    )


def thresholds(cells: pl.DataFrame) -> pl.DataFrame:
    """alpha_50 per group from ``solved_fraction`` cells.

    Columns: GROUP + alpha_50, low, high (nan where the crossing is outside the grid),
    method ("logistic" or "bracket"), instances (all alphas), alphas (grid points).
    """
    rows = []
    for key, g in cells.sort(KEYS).group_by(GROUP, maintain_order=True):
        t: Threshold = alpha_50(
            g["alpha"].to_numpy(), g["solved"].to_numpy(), g["instances"].to_numpy()
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
