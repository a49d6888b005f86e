"""Empirical capacity per solver: run scan specs locally, tabulate alpha_50 per group.

    .venv/bin/python analysis/solver_thresholds.py run SPEC.toml OUT_DIR
    .venv/bin/python analysis/solver_thresholds.py table OUT_DIR [OUT_DIR ...] \
        [--doc docs/solvers.md]

``run`` reuses OUT_DIR (``--resume`` semantics) so an interrupted run completes, then
prints the table. ``table`` reads finished scans (pooling the runs of one variant, N,
solver and solver parameters across them) and prints the markdown table of alpha_50
(95% interval) by solver and variant beside the RS capacity (computed by
``relu_landscape.theory.rs_capacity``: binary weights, the alpha where the RS entropy
vanishes) and the literature's number; solver parameters that differ between rows of
one solver are shown beside its name. With ``--doc`` it replaces the table between the
markers ``<!-- thresholds:begin -->`` and ``<!-- thresholds:end -->`` of that file
(``--marker NAME``: between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``), with the
command that produced it. alpha_50 and its interval come from ``stats.alpha_50`` over
P(solved) per alpha (``analysis.capacity.solved_fraction``).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl

from relu_landscape import store, theory
from relu_landscape.analysis.capacity import KEYS, finite_size_trend, solved_fraction
from relu_landscape.config import load_config
from relu_landscape.scan import run_scan
from relu_landscape.stats import _logistic_fit, alpha_50

# published algorithmic thresholds, keyed by (activation, weights, K)
LITERATURE = {
    ("sign", "binary", 1): "~0.75 at N ~ 1000 (reinforced BP, PRL 96, 030201; "
    "focusing BP, PNAS 113, E7655)",
    ("sign", "continuous", 1): "2 (Cover; exact, LP)",
}
GROUP = [*KEYS[:-1], "solver_params"]


def thresholds(*outs: str) -> pl.DataFrame:
    """alpha_50 with its interval per (activation, weights, K, N, solver,
    solver_params), pooling the runs of every scan in ``outs`` (e.g. a second scan
    adding alphas to a first)."""
    runs = pl.concat([store.scan_runs(o) for o in outs], how="diagonal_relaxed")
    cells = solved_fraction(runs, [*GROUP, "alpha"])
    rows = []
    for key, g in cells.group_by(GROUP, maintain_order=True):
        t = alpha_50(g["alpha"], g["solved"], g["instances"])
        # width of the success curve: 1/|b| of the logistic fit a + b alpha
        beta, cov, ok = _logistic_fit(*(g[c].to_numpy().astype(float)
                                        for c in ("alpha", "solved", "instances")))
        width, width_se = (1 / abs(beta[1]), math.sqrt(cov[1, 1]) / beta[1] ** 2) \
            if ok and t.method == "logistic" else (math.nan, math.nan)
        curve = " ".join(
            f"{a:g}:{k}/{n}"
            for a, k, n in g.select("alpha", "solved", "instances").iter_rows()
        )
        rows.append(
            dict(zip(GROUP, key, strict=True))
            | {
                "alpha_50": t.alpha_50,
                "low": t.low,
                "high": t.high,
                "method": t.method,
                "width": width,
                "width_se": width_se,
                "solved_by_alpha": curve,
            }
        )
    return pl.DataFrame(rows)


def _num(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.3f}"


@functools.cache
def rs_capacity(activation: str, weights: str, K: int) -> str:
    """The RS alpha_c of one variant (``theory.rs_capacity``), with its QMC standard
    error where it has one."""
    est = theory.rs_capacity(activation, weights, K)
    return _num(est.value) + (f" ± {est.stderr:.3f}" if est.stderr > 0 else "")


def _settings(table: pl.DataFrame) -> dict[tuple[str, str], str]:
    """Per (solver, solver_params): the parameters whose values differ between the
    rows of that solver, as "name=value" (empty when the solver has one setting)."""
    out = {}
    for (solver,), g in table.group_by(["solver"]):
        params = {p: json.loads(p) for p in g["solver_params"].unique().to_list()}
        names = sorted({k for d in params.values() for k in d})
        varying = [k for k in names if len({json.dumps(d.get(k)) for d in
                                            params.values()}) > 1]
        for p, d in params.items():
            out[solver, p] = ", ".join(f"{k}={d.get(k)}" for k in varying)
    return out


def markdown(table: pl.DataFrame) -> str:
    """The thresholds as a markdown table, one row per (variant, N, solver setting)."""
    lines = [
        "| activation | weights | K | N | solver | alpha_50 | 95% interval | method "
        "| RS alpha_c | literature | solved / instances by alpha |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    settings = _settings(table)
    order = table.sort(["weights", "activation", "K", "N", "solver", "solver_params"])
    for r in order.iter_rows(named=True):
        key = (r["activation"], r["weights"], r["K"])
        setting = settings[r["solver"], r["solver_params"]]
        solver = f"{r['solver']} ({setting})" if setting else r["solver"]
        lines.append(
            f"| {r['activation']} | {r['weights']} | {r['K']} | {r['N']} "
            f"| {solver} "
            f"| {_num(r['alpha_50'])} | [{_num(r['low'])}, {_num(r['high'])}] "
            f"| {r['method']} | {rs_capacity(*key)} "
            f"| {LITERATURE.get(key, '')} | {r['solved_by_alpha']} |"
        )
    return "\n".join(lines)


def trend_markdown(table: pl.DataFrame, powers=(0.5, 1.0)) -> str:
    """The width of each success curve (1/|b| of the logistic fit, with its delta-method
    standard error), then the finite-size fits alpha_50 = alpha_inf + slope N^-power
    of every variant and solver setting with three sizes or more
    (``capacity.finite_size_trend``)."""
    settings = _settings(table)
    table = table.with_columns(
        pl.struct("solver", "solver_params").map_elements(
            lambda r: " ".join(
                filter(None, (r["solver"], settings[r["solver"], r["solver_params"]]))
            ),
            return_dtype=pl.String,
        ).alias("solver")
    )
    widths = ["| activation | weights | K | N | solver | width 1/b (logistic fit) |",
              "|---|---|---|---|---|---|"]
    fitted = table.filter(pl.col("width").is_finite()).sort(
        "activation", "weights", "K", "solver", "N")
    for r in fitted.iter_rows(named=True):
        widths.append(f"| {r['activation']} | {r['weights']} | {r['K']} | {r['N']} "
                      f"| {r['solver']} | {r['width']:.4f} ± {r['width_se']:.4f} |")
    for key, g in fitted.group_by(["activation", "weights", "K", "solver"],
                                  maintain_order=True):
        if g.height < 3:
            continue
        # width ~ N^-x: weighted least squares in log-log, se(log w) = se(w) / w
        coef, cov = np.polyfit(np.log(g["N"].to_numpy()), np.log(g["width"].to_numpy()),
                               1, w=(g["width"] / g["width_se"]).to_numpy(),
                               cov="unscaled")
        widths.append(f"\nwidth ~ N^-x for {' '.join(map(str, key))}: "
                      f"x = {-coef[0]:.2f} ± {math.sqrt(cov[0, 0]):.2f}")
    lines = [
        "| activation | weights | K | solver | power | sizes | alpha_50 at N = inf "
        "| stderr | slope | chi2 / dof |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for power in powers:
        for r in finite_size_trend(table, power=power).iter_rows(named=True):
            lines.append(
                f"| {r['activation']} | {r['weights']} | {r['K']} | {r['solver']} "
                f"| {power:g} | {r['sizes']} | {r['alpha_50_inf']:.4f} "
                f"| {r['stderr']:.4f} | {r['slope']:.3f} "
                f"| {r['chi2']:.2f} / {r['dof']} |"
            )
    return "\n".join(widths) + "\n\n" + "\n".join(lines)


def write_doc(doc: Path, table_md: str, command: str, marker: str) -> None:
    """Replace the block between the markers of ``doc`` with the table and command."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    text = doc.read_text()
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    block = f"{begin}\nProduced by `{command}`:\n\n{table_md}\n{end}"
    doc.write_text(head + block + tail)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    run = sub.add_parser("run")
    run.add_argument("spec")
    run.add_argument("out")
    tab = sub.add_parser("table")
    tab.add_argument("outs", nargs="+")
    tab.add_argument("--doc", type=Path)
    tab.add_argument("--marker", default="thresholds")
    tab.add_argument("--trend", action="store_true",
                     help="append the finite-size fits (N^-1/2 and 1/N)")
    args = parser.parse_args(argv)
    outs = [args.out] if args.mode == "run" else args.outs
    if args.mode == "run":
        spec = load_config(args.spec, overrides={"execution": {"backend": "local"}})
        run_scan(spec, args.out, progress=False)
    table = thresholds(*outs)
    text = markdown(table)
    if args.mode == "table" and args.trend:
        text += "\n\n" + trend_markdown(table)
    print(text)
    if args.mode == "table" and args.doc is not None:
        write_doc(
            args.doc, text, "analysis/solver_thresholds.py " + " ".join(argv),
            args.marker,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
