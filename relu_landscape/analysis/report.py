"""`relu-landscape report`: every analysis of one results directory, PNGs and report.md.

Reads OUT/runs (required), the probe tables and OUT/theory when present (the theory
table is completed with the variants the figures need and stored back through
``store.write_table``), writes the figures and ``report.md`` to OUT/report (or
``out``). Whatever the data do not contain is skipped with a note in the report.
Numbers in report.md are rounded to 3 decimals; "n/a" marks an undefined value.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from relu_landscape import store
from relu_landscape.analysis import capacity, figures, geometry, margins, theory_join
from relu_landscape.errors import InvalidConfigError
from relu_landscape.params import DENSE_SEEKING

CAPTIONS = {
    "capacity_vs_K": "Capacity versus K: RS theory (lines; dashed: K = inf, dotted: "
    "1RSB) and the measured alpha_50 with its 95% interval (points; bars "
    "clipped to [0, 2 alpha_50]).",
    "p_solved": "P(solved) versus alpha with 95% Wilson intervals; dotted verticals: "
    "RS alpha_c of each K; dashed (binary weights at small N): the exact P(solvable), "
    "decided by enumerating every weight vector.",
    "finite_size": "alpha_50 versus N^-power with 95% intervals, the weighted "
    "least-squares line alpha_50 = alpha_50_inf + slope N^-power and its value at "
    "N = inf (square, 95% interval); power 1/2 unless stated "
    "(relu_landscape.analysis.capacity.FSS_POWER).",
    "capacity_vs_kappa": "Capacity versus the margin kappa, every kappa and activation "
    "of the scan: measured alpha_50 with its 95% interval (open markers) beside RS "
    "theory at the data's finite K (solid lines with dots, labelled finite K; bars: "
    "QMC stderr) and at K = inf (dashed).",
    "capacity_by_activation": "Capacity per hidden activation, one panel per kappa and "
    "weight type: measured alpha_50 with its 95% interval (points), RS theory at the "
    "same finite K (bars of the same colour) and at K = inf (black crosses).",
    "typical_vs_dense": "Typical against dense solutions: the paired difference "
    "dense - plain of local energy and robustness, on instances solved by both a plain "
    "solver and a dense-seeking (replicated) one; error bars one standard error of the "
    "paired difference.",
    "local_entropy": "Sampled local entropy (binary weights; mean over solutions where "
    "a neighbour was found, error bars one standard error) beside the Franz-Parisi "
    "and dense-region theory, the bound B(d), the finite-N ceiling and the sampling "
    "floor.",
}


@dataclass(frozen=True)
class ReportResult:
    """Where the report went: report.md, the PNGs written, notes on skipped parts."""

    path: Path
    figures: list[Path]
    notes: list[str]


def fmt(x: float | int | None) -> str:
    """A number as report.md prints it: integers as is, floats to 3 decimals."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, int):
        return str(x)
    return "inf" if math.isinf(x) else f"{x:.3f}"


def _md_table(df: pl.DataFrame) -> list[str]:
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * df.width]
    lines += [
        "| " + " | ".join(v if isinstance(v, str) else fmt(v) for v in row) + " |"
        for row in df.iter_rows()
    ]
    return lines


@dataclass(frozen=True)
class Comparison:
    """How the geometry figures line up ReLU and sign units (``geometry.compare``)."""

    mode: str = "alpha"
    alpha: float | None = None
    load: float = 0.5

    def pick(self, rows: pl.DataFrame, theory: pl.DataFrame) -> tuple[pl.DataFrame, str]:
        """``geometry.compare`` of ``rows`` in this mode: the rows shown and how."""
        return geometry.compare(rows, theory, self.mode, alpha=self.alpha, load=self.load)


def _geometry(
    root: Path,
    out: Path,
    present: list[str],
    theory: pl.DataFrame,
    comparison: Comparison,
    notes: list[str],
) -> tuple[list[tuple[str, Path]], dict[str, tuple[pl.DataFrame, str]]]:
    """Probe figures; also the rows each shows and its caption (for report.md)."""
    made, shown = [], {}
    runs = _runs(root)
    for name, curve in geometry.CURVES.items():
        if curve.table not in present:
            notes.append(
                f"{name}: no '{curve.table}' table in {root} (configure "
                f"[probes.{curve.table}] in the scan spec); figure skipped"
            )
            continue
        probe = store.scan_table(root, curve.table)
        lacking = geometry.missing_columns(probe.collect_schema(), curve)
        if lacking:
            notes.append(
                f"{name}: table '{curve.table}' lacks columns {lacking}; figure skipped"
            )
            continue
        rows = geometry.probe_curve(probe, runs, curve)
        if not rows.height:
            notes.append(
                f"{name}: no '{curve.table}' row matches a run_id of the runs "
                "table; figure skipped"
            )
            continue
        picked, compared = comparison.pick(rows, theory)
        if not picked.height:
            notes.append(f"{name}: no cells at {compared}; all alphas shown")
            picked, compared = rows, "all alphas"
        if name == "local_entropy":
            lt, why = geometry.local_entropy_theory(root, picked)
            notes += why
            fig = figures.plot_local_entropy(picked, lt, compared)
            shown[name] = (_local_entropy_table(picked, lt), compared)
        else:
            fig = figures.plot_probe_curves(picked, curve, compared)
            shown[name] = (_picked_cells(picked), compared)
        made.append((name, figures.save(fig, out / f"{name}.png")))
    return made, shown


def _runs(root: Path) -> pl.LazyFrame:
    """The runs of the paper's figures and tables: those at margin kappa = 0 (the
    margins section, ``_margins``, reads every run)."""
    return store.scan_runs(root).filter(pl.col("kappa") == 0)


def _typical_vs_dense(
    root: Path,
    out: Path,
    present: list[str],
    theory: pl.DataFrame,
    comparison: Comparison,
    notes: list[str],
    shown: dict,
) -> list[tuple[str, Path]]:
    """Typical against dense: local energy and robustness of the solutions of a plain
    and of a dense-seeking solver on the same instances (params.DENSE_SEEKING)."""
    runs = _runs(root)
    panels, summaries = {}, []
    for name in ("local_energy", "robustness"):
        curve = geometry.CURVES[name]
        if name not in present:
            continue
        probe = store.scan_table(root, name)
        if geometry.missing_columns(probe.collect_schema(), curve):
            continue  # the probe figure's note says what is lacking
        pairs = geometry.paired_rows(probe, runs, curve, DENSE_SEEKING)
        if not pairs.height:
            continue
        rows, compared = comparison.pick(geometry.paired_curve(pairs, curve), theory)
        if rows.height:
            panels[name] = (rows, curve)
        summaries.append(geometry.paired_summary(pairs, curve).select(
            pl.lit(name).alias("probe"), "activation", "weights", "K", "N", "alpha", "plain_solver",
            "dense_solver", "pairs", "plain", "dense", "diff", "diff_stderr", "verdict"))
    if not panels:
        notes.append(
            "typical_vs_dense: no instance solved by a plain and by a dense-seeking "
            f"solver ({', '.join(sorted(DENSE_SEEKING))}) with local_energy or robustness "
            "probes (list both solvers as [[solver.<weights>]] tables); figure skipped"
        )
        return []
    fig = figures.plot_typical_vs_dense(panels, compared)
    shown["typical_vs_dense"] = (pl.concat(summaries), compared)
    return [("typical_vs_dense", figures.save(fig, out / "typical_vs_dense.png"))]


def _margins(
    root: Path, out: Path, thr: pl.DataFrame, tie: str, precision: str, notes: list[str],
    shown: dict,
) -> list[tuple[str, Path]]:
    """The margins section (``thr``: the thresholds at every kappa and activation of the
    scan; ``margins``) when the scan has a kappa other than 0 or activations beyond
    sign and relu; its table goes to ``shown["margins"]``."""
    if not margins.applies(thr):
        return []
    kappas = sorted(thr["kappa"].unique().to_list())
    if kappas != [0.0]:
        notes.append(
            f"kappa: the scan has margins {kappas}; capacity_vs_K, p_solved, "
            "finite_size and the probe figures show the kappa = 0 runs, the margins "
            "section (capacity_vs_kappa and its table) every kappa"
        )
    theory, refused = margins.margin_theory(root, thr, tie=tie, precision=precision)
    notes += refused
    table = margins.margin_table(thr, theory, tie=tie)
    shown["margins"] = table
    made = []
    if kappas != [0.0]:
        fig = figures.plot_capacity_vs_kappa(table)
        made.append(("capacity_vs_kappa", figures.save(fig, out / "capacity_vs_kappa.png")))
    if not thr["activation"].is_in(margins.PAPER_ACTIVATIONS).all():
        fig = figures.plot_capacity_by_activation(table)
        made.append(("capacity_by_activation",
                     figures.save(fig, out / "capacity_by_activation.png")))
    return made


def _verdicts(summary: pl.DataFrame) -> list[str]:
    """One sentence per probe: in how many cells the paired difference favours the
    dense-seeking solver, the plain one, or neither."""
    lines = []
    for (probe,), g in summary.group_by("probe", maintain_order=True):
        counts = dict(g.group_by("verdict").len().iter_rows())
        lines.append(
            f"- {probe}: of {g.height} cells, the dense-seeking solver's solutions are "
            f"more robust in {counts.get('dense more robust', 0)}, less robust in "
            f"{counts.get('plain more robust', 0)}, and indistinguishable at two "
            f"standard errors in {counts.get('no difference at 2 stderr', 0)}."
        )
    return lines


def _picked_cells(picked: pl.DataFrame) -> pl.DataFrame:
    """The cells a probe figure shows: keys, solutions, alpha/alpha_c."""
    return (
        picked.group_by(capacity.KEYS, maintain_order=True)
        .agg(pl.col("solutions").max(), pl.col("load").first())
        .sort(capacity.KEYS)
    )


def _local_entropy_table(picked: pl.DataFrame, theory: pl.DataFrame) -> pl.DataFrame:
    """Sampled local entropy per point beside the finite-N limits and the theory."""
    rows = picked.filter(pl.col("weights") == "binary")
    ceiling, floor = geometry.entropy_limits(rows["N"], rows["D"], rows["draws"])
    rows = rows.with_columns(ceiling=ceiling, floor=floor, _d=pl.col("d").round(9))
    # one column pair per kind: the kinds may come at different theory K
    for kind in geometry.THEORY_CURVES:
        rows = rows.join(
            theory.filter(pl.col("kind") == kind).select(
                "activation",
                "K",
                "alpha",
                pl.col("d").round(9).alias("_d"),
                pl.col("local_entropy").alias(kind),
                pl.when(pl.col("theory_K").is_null())
                .then(pl.lit("inf"))
                .otherwise(pl.col("theory_K").cast(pl.String))
                .alias(f"{kind}_K"),
            ),
            on=["activation", "K", "alpha", "_d"],
            how="left",
        )
    return rows.select(
        "activation",
        "K",
        "N",
        "solver",
        "alpha",
        "D",
        "d",
        "draws",
        "solutions",
        pl.col("value").alias("sampled"),
        "stderr",
        "ceiling",
        "floor",
        "franz_parisi",
        "franz_parisi_K",
        "dense",
        "dense_K",
    ).sort("activation", "K", "N", "solver", "alpha", "D")


def write_report(
    root: str | Path,
    out: str | Path | None = None,
    *,
    tie: str = "error",
    precision: str = "default",
    compare: str = "alpha",
    alpha: float | None = None,
    load: float = 0.5,
) -> ReportResult:
    """Run the analyses on results directory ``root``; write PNGs, report.md to ``out``.

    ``tie``/``precision``: conventions of the RS capacities (docs/science.md §4); the
    local-entropy theory at finite K is "fast" QMC (geometry.FINITE_K_THEORY). The
    geometry figures compare ReLU and sign units at equal alpha (``compare="alpha"``,
    the paper's choice: the grid alpha closest to ``alpha``, default the largest common
    one) or at equal load (``compare="load"``: alpha closest to ``load`` * alpha_c in
    each group).
    """
    if compare not in geometry.COMPARE:
        raise InvalidConfigError(
            f"--compare: {compare!r}; use one of {list(geometry.COMPARE)}"
        )
    comparison = Comparison(compare, alpha, load)
    root = Path(root)
    present = store.tables(root)
    if "runs" not in present:
        raise InvalidConfigError(
            f"DIR: no runs table under {str(root)!r}; run "
            f"`relu-landscape scan --out {root}` first"
        )
    out = Path(out) if out is not None else root / "report"
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    every = capacity.solved_fraction(store.scan_runs(root))  # grouped by kappa too
    every_thr = capacity.thresholds(every)
    cells, thr = (t.filter(pl.col("kappa") == 0) for t in (every, every_thr))
    theory = theory_join.theory_for(root, cells, tie=tie, precision=precision)
    joined = theory_join.join_theory(thr, theory, tie=tie)
    made = [
        (
            "capacity_vs_K",
            figures.save(
                figures.plot_capacity_vs_K(joined, theory), out / "capacity_vs_K.png"
            ),
        ),
        (
            "p_solved",
            figures.save(
                figures.plot_solved_fraction(cells, theory), out / "p_solved.png"
            ),
        ),
    ]
    trend = capacity.finite_size_trend(thr)
    if trend.height:
        made.append(
            (
                "finite_size",
                figures.save(
                    figures.plot_finite_size(thr, trend), out / "finite_size.png"
                ),
            )
        )
    else:
        notes.append(
            "finite_size: no group has a finite alpha_50 interval at three sizes "
            "or more; trend skipped"
        )
    probes, shown = _geometry(root, out, present, theory, comparison, notes)
    made += probes
    made += _typical_vs_dense(root, out, present, theory, comparison,
                              notes, shown)
    made += _margins(root, out, every_thr, tie, precision, notes, shown)
    text = _markdown(root, cells, joined, theory, trend, made, notes, present, shown)
    path = out / "report.md"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return ReportResult(path, [p for _, p in made], notes)


def _markdown(root, cells, joined, theory, trend, made, notes, present, shown) -> str:
    n_alpha = cells["alpha"].n_unique()
    lines = [
        "# relu-landscape report",
        "",
        f"Results: `{root}`; tables: {', '.join(present)}; instances: "
        f"{fmt(int(cells['instances'].sum()))}; alpha grid points: {fmt(n_alpha)}.",
        "",
    ]
    for name, png in made:
        lines += [
            f"## {name}",
            "",
            f"![{name}]({png.name})",
            "",
            CAPTIONS.get(
                name,
                f"Probe '{name}': mean over solutions, error bars one standard error.",
            ),
            "",
        ]
        if name == "typical_vs_dense":
            table, compared = shown[name]
            lines += [
                f"Figure at {compared}. Each row below is one cell at every alpha "
                "with pairs: the paired difference dense - plain averaged over the "
                "probe's settings per instance, then its mean and standard error "
                "across the instances both solvers solved (plain, dense: the means "
                "themselves). The paper's claim is that dense-region solutions are "
                "the robust ones (lower local energy, higher robustness). What these "
                "data show:",
                "",
                *_verdicts(table),
                "",
                *_md_table(table),
                "",
            ]
        elif name in shown:
            table, compared = shown[name]
            lines += [
                f"ReLU and sign compared at {compared}; the cells shown "
                "(load = alpha / alpha_c, RS):"
                if name != "local_entropy"
                else f"Sampled local entropy at {compared}, beside the finite-N "
                "ceiling (1/N) ln C(N, D), the sampling floor (ceiling - ln(draws)/N) "
                "and the theory at the same alpha (franz_parisi: typical solution; "
                "dense: densest regions; *_K: the K of that theory, inf = the wide "
                "limit):",
                "",
                *_md_table(table),
                "",
            ]
        if name == "capacity_vs_K":
            lines += [
                "Key numbers (low, high: 95% interval of alpha_50; alpha_c: RS "
                "theory; load = alpha_50 / alpha_c):",
                "",
                *_md_table(
                    joined.select(
                        *capacity.GROUP,
                        "instances",
                        "alpha_50",
                        "low",
                        "high",
                        "method",
                        "alpha_c",
                        pl.col("alpha_c_stderr").alias("stderr"),
                        pl.col("alpha_c_converged").alias("converged"),
                        "load",
                    )
                ),
                "",
                "Wide limit (K = inf), theory:",
                "",
                *_md_table(
                    theory.filter(pl.col("K").is_null()).select(
                        "activation",
                        "weights",
                        "level",
                        "alpha_c",
                        "stderr",
                        "converged",
                    )
                ),
                "",
            ]
        if name == "p_solved":
            lines += [
                "P(solved) as fraction (solved/instances) per alpha:",
                "",
                *_md_table(_solved_pivot(cells)),
                "",
            ]
            exact = cells.filter(pl.col("p_solvable").is_not_null())
            if exact.height:
                lines += [
                    "Exact finite-N capacity curve (every instance decided by "
                    "enumeration) and the solver's failures: missed = solvable but "
                    "not solved, failure_rate = missed / solvable:",
                    "",
                    *_md_table(exact.select(
                        *capacity.KEYS, "instances", "solved", "solvable",
                        "p_solvable", "p_solvable_low", "p_solvable_high", "missed",
                        "failure_rate")),
                    "",
                ]
        if name == "finite_size":
            lines += [
                "Weighted least-squares fit alpha_50 = alpha_50_inf + slope N^-power "
                "(stderr inflated by sqrt(chi2/dof) when that exceeds 1):",
                "",
                *_md_table(trend),
                "",
            ]
    if "margins" in shown:
        lines += [
            "## margins",
            "",
            "Capacity at every margin kappa and activation of the scan (low, high: 95% "
            "interval of alpha_50; alpha_c: RS theory at the row's finite K and kappa, "
            "alpha_c_stderr its QMC standard error; alpha_c_inf: RS at K = inf; n/a: "
            "no theory, see the notes; load = alpha_50 / alpha_c):",
            "",
            *_md_table(shown["margins"]),
            "",
        ]
    lines += ["## Notes", ""] + ([f"- {n}" for n in notes] or ["- nothing skipped"])
    return "\n".join(lines) + "\n"


def _solved_pivot(cells: pl.DataFrame) -> pl.DataFrame:
    cell = pl.format(
        "{} ({}/{})",
        pl.col("p_solved").map_elements(fmt, return_dtype=pl.String),
        pl.col("solved"),
        pl.col("instances"),
    )
    return (
        cells.with_columns(
            cell.alias("cell"),
            pl.col("alpha").map_elements(fmt, return_dtype=pl.String),
        )
        .pivot(on="alpha", index=capacity.GROUP, values="cell", sort_columns=False)
        .rename(lambda c: c if c in capacity.GROUP else f"alpha={c}")
    )
