"""Solution-space geometry from the probe tables: curves averaged over solutions.

Each probe table (docs/science.md §2) holds one row per (solution, probe setting), keyed
by run_id. A :class:`Curve` names the table, its setting column (x) and its value
column (y); ``probe_curve`` averages y over the solutions of each cell (activation,
weights, K, N, solver, alpha) with the standard error across solutions (ddof = 1, as
``stats.mean_stderr``), and ``at_load`` picks, per group, the alpha closest to a given
fraction of the theory capacity so ReLU and sign are compared at the same alpha/alpha_c.
``paired_rows`` pairs the solutions of a plain and of a dense-seeking solver found on
the same instance (typical against dense solutions).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Collection
from concurrent.futures import ProcessPoolExecutor
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
    higher_is_better: bool | None = None  # for a solution's robustness; None: neither

    @property
    def keys(self) -> tuple[str, ...]:
        return self.settings or (self.x,)


CURVES: dict[str, Curve] = {
    "local_energy": Curve(
        "local_energy",
        "d",
        "local_energy",
        "weight perturbation d (binary: flipped fraction; continuous: (1 - q)/2)",
        "local energy E_loc (training-error fraction)",
        settings=("s", "D"),  # continuous noise scale s or binary flips D; d averaged
        higher_is_better=False,
    ),
    "robustness": Curve(
        "robustness",
        "p",
        "robustness",
        "input noise p (bit-flip probability or Gaussian std)",
        "patterns still correct (fraction)",
        higher_is_better=True,
    ),
    "local_entropy": Curve(
        "local_entropy",
        "d",
        "local_entropy",
        "normalised Hamming distance d",
        "sampled local entropy (1/N) ln #solutions at d (nats)",
        settings=("D", "draws"),  # d = D/N per N; draws sets the sampling floor
    ),
    "enumerate": Curve(
        "enumerate",
        "d",
        "local_entropy",
        "normalised Hamming distance d",
        "exact local entropy (1/N) ln #solutions at d (nats)",
    ),
    "walks": Curve(
        "walks",
        "moves",
        "d",
        "accepted moves per walker",
        "distance from the start d (normalised)",
    ),
}


def missing_columns(schema: pl.Schema, curve: Curve) -> list[str]:
    """Columns ``curve`` needs that a probe table with ``schema`` lacks."""
    return [c for c in (*RUN_KEYS, *curve.keys, curve.x, curve.y) if c not in schema]


RUN_KEYS = ("run_id", "solver", "kappa")
"""A run's key in every table: run_id names the instance, which several solvers and
margins kappa of one scan may train."""


def _with_runs(probe: pl.LazyFrame, runs: pl.LazyFrame, probe_cols, run_cols) -> pl.LazyFrame:
    """Probe rows with columns of their run (inner join on RUN_KEYS)."""
    run_cols = [c for c in run_cols if c not in RUN_KEYS]
    return probe.select(*RUN_KEYS, *dict.fromkeys(probe_cols)).join(
        runs.select(*RUN_KEYS, *run_cols), on=list(RUN_KEYS), how="inner"
    )


def probe_curve(probe: pl.LazyFrame, runs: pl.LazyFrame, curve: Curve) -> pl.DataFrame:
    """Mean of ``curve.y`` over solutions per cell and probe setting.

    Columns: KEYS + settings + x, value, stderr (across solutions; 0 for one
    solution), solutions.
    The cell keys come from the runs table (joined on RUN_KEYS).
    """
    measured = [] if curve.x in curve.keys else [pl.col(curve.x).mean()]
    rows = _with_runs(probe, runs, [*curve.keys, curve.x, curve.y], KEYS)
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
    """-d ln d - (1-d) ln(1-d), the entropy of all vectors at distance d.

    docs/science.md §5; the N = inf limit of the ceiling of ``entropy_limits``.
    """
    d = np.asarray(d, dtype=float)
    return special.entr(d) + special.entr(1 - d)


COMPARE = ("alpha", "load")
"""How the geometry figures line up ReLU and sign units: at equal alpha (the paper's
choice) or at equal load alpha / alpha_c (docs/science.md §2)."""


def at_alpha(curves: pl.DataFrame, alpha: float | None = None) -> pl.DataFrame:
    """Rows of one alpha per weight type, the same alpha for every group of that type.

    Only alphas present in every group (activation, K, N, solver) of a weight type
    qualify; among them the one closest to ``alpha``, or the largest when ``alpha`` is
    None (the most constrained load at which every group has solutions). Weight types
    without a common alpha are dropped.
    """
    groups = curves.select(pl.struct(GROUP).n_unique().over("weights").alias("_groups"))
    common = (
        curves.with_columns(groups)
        .group_by("weights", "alpha")
        .agg(pl.struct(GROUP).n_unique().alias("_n"), pl.col("_groups").first())
        .filter(pl.col("_n") == pl.col("_groups"))
    )
    rank = -pl.col("alpha") if alpha is None else (pl.col("alpha") - alpha).abs()
    best = common.group_by("weights").agg(pl.col("alpha").sort_by(rank).first())
    return curves.join(best, on=["weights", "alpha"], how="semi").sort(KEYS)


def compare(
    curves: pl.DataFrame,
    theory: pl.DataFrame,
    mode: str,
    *,
    alpha: float | None = None,
    load: float = 0.5,
) -> tuple[pl.DataFrame, str]:
    """The rows the geometry figures show, with a ``load`` column, and a caption.

    ``mode`` "alpha": ``at_alpha(curves, alpha)``; "load": ``at_load(curves, theory,
    target=load)``. ``load`` = alpha / alpha_c (RS, tie = error) where the theory has
    the variant, else null.
    """
    if mode == "load":
        return at_load(
            curves, theory, target=load
        ), f"equal load alpha/alpha_c ~ {load:g}"
    if mode != "alpha":
        raise ValueError(f"compare={mode!r}; use one of {COMPARE}")
    th = theory.filter(
        (pl.col("level") == "RS")
        & (pl.col("tie") == "error")
        & pl.col("alpha_c").is_finite()
    ).select("activation", "weights", "K", "alpha_c")
    rows = (
        at_alpha(curves, alpha)
        .join(th, on=["activation", "weights", "K"], how="left")
        .with_columns((pl.col("alpha") / pl.col("alpha_c")).alias("load"))
    )
    what = (
        "largest alpha common to all"
        if alpha is None
        else f"alpha closest to {alpha:g}"
    )
    return rows, f"equal alpha ({what})"


def entropy_limits(N, D, draws) -> tuple[np.ndarray, np.ndarray]:
    """Finite-N ceiling (1/N) ln C(N, D) and sampling floor, that minus ln(draws)/N.

    The ceiling is the sampled local entropy when every D-flip neighbour is a solution;
    the floor is its value for a single hit in ``draws`` (docs/science.md §2): smaller
    local entropies cannot be resolved by that many draws.
    """
    N, D, draws = (np.asarray(v, dtype=float) for v in (N, D, draws))
    ceiling = (
        special.gammaln(N + 1) - special.gammaln(D + 1) - special.gammaln(N - D + 1)
    ) / N
    return ceiling, ceiling - np.log(draws) / N


THEORY_CURVES = ("franz_parisi", "dense")
"""Theory local-entropy kinds drawn beside the sampled curves (docs/science.md §5)."""

FINITE_K_THEORY = {("franz_parisi", "sign"), ("dense", "sign")}
"""(kind, activation) curves the report computes at the data's finite K > 1, by QMC at
"fast" precision (stderr about 0.003 nats) and at up to ``FINITE_K_POINTS`` distances.
Measured on one CPU core for sign units at alpha = 0.4: Franz-Parisi about 3 s a point
(K = 3 and 5), dense regions 8 s (K = 3) and 23 s (K = 5). ReLU units take about a
minute a point for the Franz-Parisi curve and minutes to hours for the dense one
(docs/local_entropy.md §8), so their curves are drawn at K = inf, labelled as such
(``relu-landscape theory franz-parisi|local-entropy --K`` computes them at finite K).
K = 1 and K = inf are quadrature: always computed, at up to ``max_points`` distances."""
FINITE_K_POINTS = 4


def _theory_ks(kind: str, activation: str, K: int) -> tuple[int | None, ...]:
    """The theory K to try in turn for a kind's curve beside data at K (None: inf)."""
    return (K, None) if K == 1 or (kind, activation) in FINITE_K_THEORY else (None,)


def _theory_rows(kind: str, activation: str, K: int | None, alpha: float, ds) -> list[dict]:
    from relu_landscape import theory

    curve = (
        theory.franz_parisi_curve
        if kind == "franz_parisi"
        else theory.dense_local_entropy_curve
    )
    # precision matters only where the curve is QMC (finite K > 1; FINITE_K_THEORY)
    rows = curve(activation, math.inf if K is None else K, alpha, ds, precision="fast")
    return [{**r, "kind": kind, "K": K, "weights": "binary"} for r in rows]


def _d_key(d) -> pl.Expr:
    """Distances as join keys: d is a mean over solutions, D/N up to rounding."""
    return d.round(9)


def _curve(
    kind: str, activation: str, alpha: float, tries: tuple
) -> tuple[int | None, list[dict], str | None]:
    """The rows of a kind's curve at the first theory K of ``tries`` ((theory K, the
    distances not cached yet) in turn; None: K = inf) that the theory has: (theory K,
    rows, None), or (None, [], why) when it has none of them."""
    from relu_landscape.errors import InvalidConfigError

    why = None
    for K, todo in tries:
        try:
            return K, (_theory_rows(kind, activation, K, alpha, list(todo)) if todo else []), None
        except InvalidConfigError as exc:
            why = str(exc)
    return None, [], why


def _parallel(fn, calls: list[tuple], workers: int) -> list:
    """``fn(*args)`` for every args of ``calls``, in up to ``workers`` processes (spawned:
    polars is not fork-safe), in this process where one suffices."""
    workers = min(workers, len(calls))
    if workers <= 1:
        return [fn(*args) for args in calls]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(fn, *zip(*calls, strict=True)))


def _spread(ds: np.ndarray, points: int) -> np.ndarray:
    """At most ``points`` of the sorted ``ds``, evenly spread, both ends kept."""
    return ds[np.linspace(0, len(ds) - 1, min(points, len(ds))).round().astype(int)]


def local_entropy_theory(
    root,
    picked: pl.DataFrame,
    *,
    max_points: int = 8,
    workers: int | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """Theory local entropy at the alphas and distances of the sampled ``picked``.

    For each (activation, K, alpha) of ``picked`` (binary weights) and each kind in
    ``THEORY_CURVES``: the curve at up to ``max_points`` of the data's d values (up to
    ``FINITE_K_POINTS`` at finite K > 1), at the data's K where ``FINITE_K_THEORY``
    lists it (or K = 1) and the theory has that K (the theory functions raise
    InvalidConfigError for a K they lack), else at K = inf. Rows already in
    OUT/local_entropy_theory are reused; new ones are computed in ``workers`` processes
    (default: one per CPU) and stored there. Returns the rows (columns kind,
    activation, K = data K, theory_K (null: inf), alpha, d, local_entropy, converged)
    and notes on curves the theory could not give.
    """
    from relu_landscape import store

    have = (
        store.scan_table(root, "local_entropy_theory")
        .collect()
        .with_columns(_d_key(pl.col("d")))
        if "local_entropy_theory" in store.tables(root)
        else pl.DataFrame(schema={"kind": pl.String, "activation": pl.String,
                                  "K": pl.Int64, "alpha": pl.Float64, "d": pl.Float64,
                                  "local_entropy": pl.Float64, "converged": pl.Boolean})
    )

    def cached(kind, act, alpha, K) -> pl.DataFrame:
        return have.filter(
            (pl.col("kind") == kind)
            & (pl.col("activation") == act)
            & (pl.col("alpha") == alpha)
            & (pl.col("K").is_null() if K is None else pl.col("K") == K)
        )

    # one theory call per (kind, activation, alpha, theory Ks): cells whose curves fall
    # back to the same K = inf curve share it, at the union of their distances
    curves, todo = [], {}
    cells = picked.filter(pl.col("weights") == "binary").group_by(
        "activation", "K", "alpha", maintain_order=True
    )
    for (act, K, alpha), g in cells:
        data_ds = np.unique(g["d"].round(9).to_numpy())
        for kind in THEORY_CURVES:
            wanted = {
                tK: _spread(data_ds, max_points if tK in (None, 1) else FINITE_K_POINTS)
                for tK in _theory_ks(kind, act, K)
            }
            key = (kind, act, float(alpha), tuple(wanted))
            curves.append((key, K, wanted))
            for tK, ds in wanted.items():
                known = set(cached(kind, act, alpha, tK)["d"])
                todo.setdefault(key, {}).setdefault(tK, set()).update(
                    float(d) for d in ds if float(d) not in known
                )
    calls = [
        (kind, act, alpha, tuple((tK, tuple(sorted(ds))) for tK, ds in tks.items()))
        for (kind, act, alpha, _), tks in todo.items()
    ]
    # only calls with distances left to compute go to the processes
    busy = [any(ds for _, ds in tries) for *_, tries in calls]
    done = iter(_parallel(_curve, [c for c, b in zip(calls, busy, strict=True) if b],
                          workers or os.cpu_count() or 1))
    results = {
        key: next(done) if b else _curve(*c)
        for key, c, b in zip(todo, calls, busy, strict=True)
    }
    new = [row for _, rows, _ in results.values() for row in rows]
    notes, out = [], []
    columns = {"d": pl.Float64, "local_entropy": pl.Float64, "converged": pl.Boolean}
    for key, K, wanted in curves:
        kind, act, alpha, _ = key
        tK, rows, why = results[key]
        if why is not None:
            notes.append(f"local_entropy: no {kind} theory for {act} K={K} alpha={alpha}: {why}")
            continue
        found = pl.concat([
            cached(kind, act, alpha, tK).select(list(columns)),
            pl.DataFrame([{c: r[c] for c in columns} for r in rows], schema=columns)
            .with_columns(_d_key(pl.col("d"))),
        ])
        out.append(
            found.filter(pl.col("d").is_in(wanted[tK].tolist())).with_columns(
                kind=pl.lit(kind),
                activation=pl.lit(act),
                K=pl.lit(K, pl.Int64),
                theory_K=pl.lit(tK, pl.Int64),
                alpha=pl.lit(alpha),
            )
        )
    if new:
        names = store.SCHEMAS["local_entropy_theory"].names
        table = pl.DataFrame(
            [
                {
                    k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in r.items()
                    if k in names
                }
                for r in new
            ],
            infer_schema_length=None,
        ).with_columns(pl.col("K").cast(pl.Int64))
        if have.height:
            table = pl.concat([have, table], how="diagonal_relaxed")
        store.write_table(root, "local_entropy_theory", table.to_arrow())
    schema = {
        "kind": pl.String,
        "activation": pl.String,
        "K": pl.Int64,
        "theory_K": pl.Int64,
        "alpha": pl.Float64,
        "d": pl.Float64,
        "local_entropy": pl.Float64,
        "converged": pl.Boolean,
    }
    frame = (
        pl.concat([o.select(list(schema)) for o in out])
        if out
        else pl.DataFrame(schema=schema)
    )
    return frame.sort(list(schema)[:6]), notes


# ------------------------------------------------------------ typical against dense

PAIR_KEYS = ["activation", "weights", "K", "N", "alpha", "kappa", "seed", "seed_index"]
"""An instance's identity (the solver aside; a pair shares its margin kappa): the runs
table's columns, with its seed index ``s`` renamed ``seed_index`` (``s`` is also the
local-energy noise scale)."""


def paired_rows(
    probe: pl.LazyFrame, runs: pl.LazyFrame, curve: Curve, dense: Collection[str]
) -> pl.DataFrame:
    """``curve.y`` of a plain and of a dense-seeking solver's solution of one instance,
    at one probe setting: a row per (instance, plain solver, dense solver, setting).

    ``dense``: the dense-seeking solver names (``params.DENSE_SEEKING``). Columns:
    PAIR_KEYS, settings, x, plain, dense, diff = dense - plain, plain_solver,
    dense_solver, and ``solver`` = "plain vs dense" (a GROUP key for ``compare``).
    Only instances both solvers solved appear (probes run on solutions only).
    """
    rows = _with_runs(probe, runs.with_columns(pl.col("s").alias("seed_index")),
                      [*curve.keys, curve.x, curve.y], PAIR_KEYS)
    is_dense = pl.col("solver").is_in(list(dense))
    on = [*PAIR_KEYS, *curve.keys]
    # a setting column is null where it does not apply (s for binary weights, D for
    # continuous), and such nulls must pair
    pairs = rows.filter(~is_dense).join(
        rows.filter(is_dense), on=on, suffix="_dense", nulls_equal=True
    )
    x = [] if curve.x in curve.keys else [
        ((pl.col(curve.x) + pl.col(f"{curve.x}_dense")) / 2).alias(curve.x)
    ]
    return (
        pairs.select(
            *on,
            *x,
            pl.col(curve.y).alias("plain"),
            pl.col(f"{curve.y}_dense").alias("dense"),
            (pl.col(f"{curve.y}_dense") - pl.col(curve.y)).alias("diff"),
            pl.col("solver").alias("plain_solver"),
            pl.col("solver_dense").alias("dense_solver"),
            pl.format("{} vs {}", "solver", "solver_dense").alias("solver"),
        )
        .sort([*PAIR_KEYS, "solver", *curve.keys])
        .collect()
    )


def _mean_stderr(col: str) -> list[pl.Expr]:
    return [
        pl.col(col).mean().alias(col),
        (pl.col(col).std(ddof=1) / pl.len().sqrt()).fill_null(0.0).alias(f"{col}_stderr"),
    ]


def paired_curve(pairs: pl.DataFrame, curve: Curve) -> pl.DataFrame:
    """Means over instances per cell, solver pair and setting: plain, dense and the
    paired difference diff (dense - plain), each with its stderr across instances;
    ``pairs`` the number of instances."""
    return (
        pairs.group_by([*KEYS, "plain_solver", "dense_solver", *curve.keys])
        .agg(
            *([] if curve.x in curve.keys else [pl.col(curve.x).mean()]),
            *_mean_stderr("plain"),
            *_mean_stderr("dense"),
            *_mean_stderr("diff"),
            pl.len().alias("pairs"),
        )
        .sort([*KEYS, curve.x])
    )


def paired_summary(pairs: pl.DataFrame, curve: Curve) -> pl.DataFrame:
    """One row per cell and solver pair: the paired difference averaged over the probe's
    settings per instance, then its mean and stderr across instances, and ``verdict``:
    which solver's solutions are the more robust at two standard errors."""
    per_instance = pairs.group_by([*KEYS, "seed", "seed_index", "plain_solver",
                                   "dense_solver"]).agg(
        pl.col("plain").mean(), pl.col("dense").mean(), pl.col("diff").mean()
    )
    better = pl.col("diff") if curve.higher_is_better else -pl.col("diff")
    clear = (better.abs() > 2 * pl.col("diff_stderr")) & (pl.col("pairs") >= 2)
    return (
        per_instance.group_by([*KEYS, "plain_solver", "dense_solver"])
        .agg(pl.len().alias("pairs"), pl.col("plain").mean(), pl.col("dense").mean(),
             *_mean_stderr("diff"))
        .with_columns(
            pl.when(clear & (better > 0)).then(pl.lit("dense more robust"))
            .when(clear).then(pl.lit("plain more robust"))
            .otherwise(pl.lit("no difference at 2 stderr"))
            .alias("verdict")
        )
        .sort(KEYS)
    )
