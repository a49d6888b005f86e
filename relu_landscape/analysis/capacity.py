"""P(solved) versus alpha per (activation, weights, K, N, solver)."""

from __future__ import annotations

import polars as pl

KEYS = ["activation", "weights", "K", "N", "solver", "alpha"]


def solved_fraction(runs: pl.LazyFrame) -> pl.DataFrame:
    """P(solved) per grid cell: columns KEYS + instances, solved, p_solved, mean_error_frac."""
    return (
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
