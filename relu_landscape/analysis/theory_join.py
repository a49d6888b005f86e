"""Replica-theory capacities beside the measurements: compute, cache as OUT/theory, join.

The theory table has the store's key dtypes (activation String, weights String, K Int64
with null for K = infinity, kappa Float64), so it joins the runs-derived tables on
(activation, weights, K, kappa) directly: each row gets the theory at its own margin.
Values come from ``relu_landscape.theory.capacity_table`` (docs/science.md §4).
OUT/theory is a cache keyed by (activation, weights, K, kappa, level, tie, precision,
theory_version): a row is reused only for the same tie convention and precision and
the current ``relu_landscape.theory.THEORY_VERSION``; rows of an older version (or a
file written before these columns existed) are dropped and recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from relu_landscape import store

THEORY_KEYS = [
    "activation", "weights", "K", "kappa", "level", "tie", "precision", "theory_version"
]
THEORY_DTYPES = {
    name: pl.from_arrow(store.THEORY_SCHEMA.empty_table()).schema[name]
    for name in store.THEORY_SCHEMA.names
}

VARIANT_KEYS = ["activation", "weights", "K", "level", "kappa"]
Variant = tuple[str, str, int | None, str, float]
"""(activation, weights, K or None for infinity, level, margin kappa)."""


def theory_frame(rows: Iterable[dict]) -> pl.DataFrame:
    """``capacity_table`` rows as a frame with the store's dtypes (K "inf" -> null; a
    row without kappa is at kappa = 0, the store's reading of rows from before it)."""
    rows = [
        {"kappa": 0.0, **r, "K": None if r["K"] == "inf" else int(r["K"])} for r in rows
    ]
    return pl.DataFrame(rows, schema=THEORY_DTYPES, orient="row")


def figure_variants(
    data_K: dict[str, Iterable[int]], *, k_max: int = 12
) -> list[Variant]:
    """Theory variants for the capacity-versus-K figure and the key-numbers table.

    Every K of the valid parity up to max(k_max, largest K in the data) for both
    weight types, the K = infinity asymptote (RS, and 1RSB for continuous weights), at
    kappa = 0 (the paper's figures). ``data_K`` maps activation to the Ks measured
    (sign and relu always included).
    """
    top = max([k_max, *[k for ks in data_K.values() for k in ks]])
    out: list[Variant] = []
    for activation, first in (("sign", 1), ("relu", 2)):
        for weights in ("binary", "continuous"):
            out += [
                (activation, weights, K, "RS", 0.0) for K in range(first, top + 1, 2)
            ]
            out.append((activation, weights, None, "RS", 0.0))
        out.append((activation, "continuous", None, "1RSB", 0.0))
    return out


def refusal(variant: Variant) -> str | None:
    """Why ``relu_landscape.theory`` refuses ``variant`` (one line), or None.

    The checks of ``capacity_table`` (K valid for the activation, 1RSB only for
    continuous weights at K = inf, finite K only where a theory is implemented),
    without computing anything.
    """
    from relu_landscape.theory import table, validate

    activation, weights, K, level, _ = variant
    K = math.inf if K is None else K
    return (
        validate.k_issue(activation, K)
        or (table.rsb1_issue(weights, K) if level == "1RSB" else None)
        or validate.theory_issue(activation, K, weights)
    )


def theory_capacities(
    variants: Iterable[Variant],
    *,
    cached: pl.DataFrame | None = None,
    tie: str = "error",
    precision: str = "default",
) -> pl.DataFrame:
    """``cached`` completed with ``variants`` at (tie, precision, THEORY_VERSION).

    Variants that ``cached`` holds with this tie, precision and the current theory
    version are reused, the others computed; rows of other ties or precisions are
    kept beside them, rows of another theory version dropped.
    """
    from relu_landscape.theory import THEORY_VERSION, capacity_table

    have = (cached if cached is not None else theory_frame([])).filter(
        pl.col("theory_version") == THEORY_VERSION
    )
    known = set(_matching(have, tie, precision).select(VARIANT_KEYS).iter_rows())
    rows = []
    for activation, weights, K, level, kappa in variants:
        if (activation, weights, K, level, kappa) in known:
            continue
        rows += capacity_table(
            [activation],
            [weights],
            [math.inf if K is None else K],
            levels=(level,),
            tie=tie,
            precision=precision,
            kappas=(kappa,),
        )
    return (
        pl.concat([have, theory_frame(rows)])
        .unique(THEORY_KEYS, keep="first")
        .sort(THEORY_KEYS, nulls_last=True)
    )


def _matching(table: pl.DataFrame, tie: str, precision: str) -> pl.DataFrame:
    return table.filter((pl.col("tie") == tie) & (pl.col("precision") == precision))


def _read_cache(root: str | Path) -> pl.DataFrame | None:
    """OUT/theory in THEORY_DTYPES, or None when absent or written without the
    cache-key columns (an older package: nothing in it can be trusted to match). A
    null kappa reads as 0 (store.THEORY_SCHEMA)."""
    if "theory" not in store.tables(root):
        return None
    frame = store.scan_table(root, "theory").collect()
    if not set(THEORY_DTYPES) <= set(frame.columns):
        return None
    return (
        frame.select(THEORY_DTYPES.keys())
        .cast(THEORY_DTYPES)
        .with_columns(pl.col("kappa").fill_null(0.0))
    )


def stored_theory(
    root: str | Path,
    variants: Iterable[Variant],
    *,
    tie: str = "error",
    precision: str = "default",
) -> pl.DataFrame:
    """The theory rows of ``variants`` for ``tie`` and ``precision`` at the current
    theory version: OUT/theory reused where it matches, the rest computed and the
    whole cache written back through the store when it changed."""
    variants = list(variants)
    cached = _read_cache(root)
    table = theory_capacities(variants, cached=cached, tie=tie, precision=precision)
    if cached is None or not table.equals(cached.sort(THEORY_KEYS, nulls_last=True)):
        store.write_table(root, "theory", table.to_arrow())
    wanted = pl.DataFrame(
        variants, schema={k: THEORY_DTYPES[k] for k in VARIANT_KEYS}, orient="row"
    )
    return _matching(table, tie, precision).join(
        wanted, on=VARIANT_KEYS, how="semi", nulls_equal=True
    )


def theory_for(
    root: str | Path,
    cells: pl.DataFrame,
    *,
    tie: str = "error",
    precision: str = "default",
) -> pl.DataFrame:
    """``stored_theory`` for the figure variants of the Ks in ``cells`` (a runs
    summary): sign and relu at kappa = 0."""
    data_K = {
        a: g["K"].unique().to_list() for (a,), g in cells.group_by(["activation"])
    }
    return stored_theory(root, figure_variants(data_K), tie=tie, precision=precision)


def join_theory(
    thr: pl.DataFrame, theory: pl.DataFrame, *, level: str = "RS", tie: str = "error"
) -> pl.DataFrame:
    """``thr`` (alpha_50 per group) left-joined with the theory alpha_c of its variant
    at its margin kappa.

    ``theory`` holds one precision (``stored_theory``'s result). Adds alpha_c,
    alpha_c_stderr, alpha_c_converged and load = alpha_50 / alpha_c (null where the
    variant has no theory row).
    """
    on = ["activation", "weights", "K", "kappa"]
    th = theory.filter((pl.col("level") == level) & (pl.col("tie") == tie)).select(
        *on,
        "alpha_c",
        pl.col("stderr").alias("alpha_c_stderr"),
        pl.col("converged").alias("alpha_c_converged"),
    )
    return thr.join(th, on=on, how="left").with_columns(
        (pl.col("alpha_50") / pl.col("alpha_c")).alias("load")
    )
