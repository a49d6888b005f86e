"""Solution-space geometry from the probe tables: curves averaged over solutions.

Each probe table (science.md §2) holds one row per (solution, probe setting), keyed
by run_id. A :class:`Curve` names the table, its setting column (x) and its value
column (y); ``probe_curve`` averages y over the solutions of each cell (activation,
weights, K, N, solver, alpha) with the standard error across solutions (ddof = 1, as
``stats.mean_stderr``), and ``at_load`` picks, per group, the alpha closest to a given
fraction of the theory capacity so ReLU and sign are compared at the same alpha/alpha_c.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import special

from relu_landscape.analysis.capacity import GROUP, KEYS


@dataclass(frozen=True)
class Curve:
    """One probe's curve: ``y`` of ``table`` against ``x``, with axis labels.

    ``settings``: the probe-setting columns that define a point (default: ``x``
    itself). When ``x`` is not among them it is a measured quantity averaged per
    point, e.g. the distance d reached by a continuous noise scale s.
    """

    table: str
    x: str
    y: str
    xlabel: str
    ylabel: str
    settings: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return self.settings or (self.x,)


CURVES: dict[str, Curve] = {
    "local_energy": Curve(
        "local_energy", "d", "local_energy",
        "weight perturbation d (binary: flipped fraction; continuous: (1 - q)/2)",
        "local energy E_loc (training-error fraction)",
        settings=("s", "D"),  # continuous noise scale s or binary flips D; d averaged
    ),
    "robustness": Curve(
        "robustness", "p", "robustness",
        "input noise p (bit-flip probability or Gaussian std)",
        "patterns still correct (fraction)",
    ),
    "local_entropy": Curve(
        "local_entropy", "d", "local_entropy", "normalised Hamming distance d",
        "sampled local entropy (1/N) ln #solutions at d (nats)",
    ),
    "enumerate": Curve(
        "enumerate", "d", "local_entropy", "normalised Hamming distance d",
        "exact local entropy (1/N) ln #solutions at d (nats)",
    ),
    "walks": Curve(
        "walks", "moves", "d", "accepted moves per walker",
        "distance from the start d (normalised)",
    ),
}


def missing_columns(schema: pl.Schema, curve: Curve) -> list[str]:
    """Columns ``curve`` needs that a probe table with ``schema`` lacks."""
    return [c for c in ("run_id", *curve.keys, curve.x, curve.y) if c not in schema]


def probe_curve(probe: pl.LazyFrame, runs: pl.LazyFrame, curve: Curve) -> pl.DataFrame:
    """Mean of ``curve.y`` over solutions per cell and probe setting.

    Columns: KEYS + settings + x, value, stderr (across solutions; 0 for one
    solution), solutions.
    The cell keys come from the runs table (joined on run_id).
    """
    measured = [] if curve.x in curve.keys else [pl.col(curve.x).mean()]
    rows = probe.select("run_id", *dict.fromkeys([*curve.keys, curve.x, curve.y])).join(
        runs.select("run_id", *KEYS), on="run_id", how="inner"
    )
    return (
        rows.group_by([*KEYS, *curve.keys])
        .agg(
            *measured,
            pl.col(curve.y).mean().alias("value"),
            (pl.col(curve.y).std(ddof=1) / pl.len().sqrt())
            .fill_null(0.0)
            .alias("stderr"),
            pl.len().alias("solutions"),
        )
        .sort([*KEYS, curve.x])
        .collect()
    )


def at_load(
    curves: pl.DataFrame,
    theory: pl.DataFrame,
    *,
    target: float = 0.5,
    level: str = "RS",
    tie: str = "error",
) -> pl.DataFrame:
    """Rows of the alpha closest to ``target`` * alpha_c in each group, with ``load``.

    ``load`` = alpha / alpha_c of the variant (theory rows filtered by level and tie);
    groups without a finite theory capacity are dropped.
    """
    th = theory.filter(
        (pl.col("level") == level)
        & (pl.col("tie") == tie)
        & pl.col("alpha_c").is_finite()
    ).select("activation", "weights", "K", "alpha_c")
    with_load = curves.join(
        th, on=["activation", "weights", "K"], how="inner"
    ).with_columns((pl.col("alpha") / pl.col("alpha_c")).alias("load"))
    best = (
        with_load.with_columns((pl.col("load") - target).abs().alias("_gap"))
        .group_by(GROUP)
        .agg(pl.col("alpha").sort_by("_gap").first())
    )
    return with_load.join(best, on=[*GROUP, "alpha"], how="semi").sort([*KEYS])


def entropy_bound(d: np.ndarray) -> np.ndarray:
    """-d ln d - (1-d) ln(1-d): the entropy of all vectors at distance d (science.md §5)."""
    d = np.asarray(d, dtype=float)
    return special.entr(d) + special.entr(1 - d)
