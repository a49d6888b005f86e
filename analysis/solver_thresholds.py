"""Empirical capacity per solver: run scan specs locally, tabulate alpha_50 per group.

    .venv/bin/python analysis/solver_thresholds.py run SPEC.toml OUT_DIR
    .venv/bin/python analysis/solver_thresholds.py table OUT_DIR [OUT_DIR ...] \
        [--doc docs/solvers.md]

``run`` reuses OUT_DIR (``--resume`` semantics) so an interrupted run completes, then
prints the table. ``table`` reads finished scans (pooling the runs of one variant, N
and solver across them) and prints the markdown table of
alpha_50 (95% interval) by solver and variant beside the RS capacity and the
literature's number; with ``--doc`` it replaces the table between the markers
``<!-- thresholds:begin -->`` and ``<!-- thresholds:end -->`` of that file, with the
command that produced it. alpha_50 and its interval come from ``stats.alpha_50`` over
P(solved) per alpha (``analysis.capacity.solved_fraction``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import polars as pl

from relu_landscape import store
from relu_landscape.analysis.capacity import KEYS, solved_fraction
from relu_landscape.config import load_config
from relu_landscape.scan import run_scan
from relu_landscape.stats import alpha_50

# RS capacities (relu_landscape.theory, as quoted in issue #13) and published
# algorithmic thresholds, keyed by (activation, weights, K).
RS = {
    ("sign", "binary", 1): 0.833,
    ("sign", "binary", 3): 0.92,
    ("relu", "binary", 2): 0.575,
    ("relu", "binary", 4): 0.81,
    ("sign", "continuous", 1): 2.0,
    ("relu", "continuous", 2): 4 / 3,
    ("relu", "continuous", 4): 2.47,
}
LITERATURE = {
    ("sign", "binary", 1): "~0.75 at N ~ 1000 (reinforced BP, PRL 96, 030201; "
    "focusing BP, PNAS 113, E7655)",
    ("sign", "continuous", 1): "2 (Cover; exact, LP)",
}
BEGIN, END = "<!-- thresholds:begin -->", "<!-- thresholds:end -->"


def thresholds(*outs: str) -> pl.DataFrame:
    """alpha_50 with its interval per (activation, weights, K, N, solver), pooling the
    runs of every scan in ``outs`` (e.g. a second scan adding alphas to a first)."""
    runs = pl.concat([store.scan_runs(o) for o in outs], how="diagonal_relaxed")
    cells = solved_fraction(runs)
    rows = []
    for key, g in cells.group_by(KEYS[:-1], maintain_order=True):
        t = alpha_50(g["alpha"], g["solved"], g["instances"])
        curve = " ".join(
            f"{a:g}:{k}/{n}"
            for a, k, n in g.select("alpha", "solved", "instances").iter_rows()
        )
        rows.append(
            dict(zip(KEYS[:-1], key, strict=True))
            | {
                "alpha_50": t.alpha_50,
                "low": t.low,
                "high": t.high,
                "method": t.method,
                "solved_by_alpha": curve,
            }
        )
    return pl.DataFrame(rows)


def _num(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.3f}"


def markdown(table: pl.DataFrame) -> str:
    """The thresholds as a markdown table, one row per (variant, N, solver)."""
    lines = [
        "| activation | weights | K | N | solver | alpha_50 | 95% interval | method "
        "| RS alpha_c | literature | solved / instances by alpha |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = table.sort(["weights", "activation", "K", "N", "solver"])
    for r in order.iter_rows(named=True):
        key = (r["activation"], r["weights"], r["K"])
        lines.append(
            f"| {r['activation']} | {r['weights']} | {r['K']} | {r['N']} "
            f"| {r['solver']} "
            f"| {_num(r['alpha_50'])} | [{_num(r['low'])}, {_num(r['high'])}] "
            f"| {r['method']} | {_num(RS.get(key, float('nan')))} "
            f"| {LITERATURE.get(key, '')} | {r['solved_by_alpha']} |"
        )
    return "\n".join(lines)


def write_doc(doc: Path, table_md: str, command: str) -> None:
    """Replace the block between the markers of ``doc`` with the table and command."""
    text = doc.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = f"{BEGIN}\nProduced by `{command}`:\n\n{table_md}\n{END}"
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
    args = parser.parse_args(argv)
    outs = [args.out] if args.mode == "run" else args.outs
    if args.mode == "run":
        spec = load_config(args.spec, overrides={"execution": {"backend": "local"}})
        run_scan(spec, args.out, progress=False)
    table = thresholds(*outs)
    text = markdown(table)
    print(text)
    if args.mode == "table" and args.doc is not None:
        write_doc(args.doc, text, "analysis/solver_thresholds.py " + " ".join(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
