"""Capacity against the margin kappa and the activation g, beside the RS theory.

A pattern is stored when sigma Delta > kappa std(Delta) (docs/science.md §1; the
theory's side in docs/theory_activations.md). The report's paper figures keep the
kappa = 0 runs of sign and ReLU units; this module prepares the section that shows
every kappa and every activation of a scan: alpha_50 per group (``capacity.thresholds``,
grouped by kappa) beside the RS alpha_c at the group's own K and kappa and at K = inf.
Pure functions of frames, except ``margin_theory``, which reads and completes the
OUT/theory cache (``theory_join.stored_theory``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from relu_landscape.analysis import theory_join
from relu_landscape.analysis.capacity import GROUP

PAPER_ACTIVATIONS = ("sign", "relu")
"""The activations of the paper's figures (Baldassi et al. 2019)."""


def applies(thr: pl.DataFrame) -> bool:
    """Whether ``thr`` (alpha_50 per group, every kappa) needs the margins section: it
    holds a kappa other than 0, or an activation other than sign and relu."""
    return bool((thr["kappa"] != 0).any()) or not thr["activation"].is_in(
        PAPER_ACTIVATIONS).all()


def theory_variants(thr: pl.DataFrame) -> list[theory_join.Variant]:
    """The RS variants the section shows: every measured (activation, weights, K, kappa)
    and its wide limit (K = inf, None), in a stable order without repeats."""
    keys = thr.select("activation", "weights", "K", "kappa").unique().sort(
        "activation", "weights", "kappa", "K")
    out = [
        (a, w, k, "RS", kappa)
        for a, w, K, kappa in keys.iter_rows()
        for k in (K, None)
    ]
    return list(dict.fromkeys(out))


def margin_theory(
    root: str | Path, thr: pl.DataFrame, *, tie: str = "error", precision: str = "default"
) -> tuple[pl.DataFrame, list[str]]:
    """The RS theory rows of ``theory_variants(thr)`` that ``relu_landscape.theory``
    computes (through the OUT/theory cache), and one note per variant it refuses (e.g.
    binary weights at finite K for a smooth g), naming the variant and the reason."""
    refused = {v: theory_join.refusal(v) for v in theory_variants(thr)}
    notes = [
        f"margins: no RS theory for {a} units, {w} weights, "
        f"K = {'inf' if K is None else K}, kappa = {kappa:g} ({why})"
        for (a, w, K, _, kappa), why in refused.items()
        if why
    ]
    wanted = [v for v, why in refused.items() if not why]
    return theory_join.stored_theory(root, wanted, tie=tie, precision=precision), notes


def margin_table(
    thr: pl.DataFrame, theory: pl.DataFrame, *, tie: str = "error"
) -> pl.DataFrame:
    """One row per group (GROUP, kappa included): measured alpha_50 beside RS theory.

    Columns: GROUP, instances, alpha_50, low, high (95% interval), method
    (``stats.Threshold``), alpha_c and alpha_c_stderr (RS at the group's K and kappa;
    quasi-Monte Carlo stderr at finite K for smooth g, 0 for closed forms), alpha_c_inf
    (RS at K = inf, same kappa), load = alpha_50 / alpha_c. Theory columns are null
    where ``theory`` has no row (refused or not computed).
    """
    on = ["activation", "weights", "kappa"]
    wide = theory.filter(
        (pl.col("level") == "RS") & (pl.col("tie") == tie) & pl.col("K").is_null()
    ).select(*on, pl.col("alpha_c").alias("alpha_c_inf"))
    return (
        theory_join.join_theory(thr, theory, tie=tie)
        .join(wide, on=on, how="left")
        .select(*GROUP, "instances", "alpha_50", "low", "high", "method", "alpha_c",
                "alpha_c_stderr", "alpha_c_inf", "load")
        .sort("activation", "weights", "K", "N", "solver", "kappa")
    )
