"""Local energy and input robustness of ReLU vs sign solutions at equal alpha / alpha_c.

Continuous weights, N = 120: sign units K = 3 and ReLU units K = 4, at alpha / alpha_c
= 0.5 and 0.7 (alpha_c: RS capacity from relu_landscape.theory), solved by a plain
(gd) and a replicated (replicated_gd) solver; every solution is probed with
local_energy and robustness. Prints, per curve point, the mean over solved instances
and its standard error across instances.

    .venv/bin/python analysis/robustness_compare.py [OUT] [SEEDS]
"""

from __future__ import annotations

import sys

import polars as pl

from relu_landscape import store
from relu_landscape.config import validate
from relu_landscape.scan import run_scan
from relu_landscape.theory import rs_capacity

OUT = sys.argv[1] if len(sys.argv) > 1 else "results/robustness_compare"
SEEDS = int(sys.argv[2]) if len(sys.argv) > 2 else 8
VARIANTS = {"sign": 3, "relu": 4}
FRACTIONS = (0.5, 0.7)
PROBES = {
    "local_energy": {"draws": 32, "points": 6, "s_max": 1.0},
    "robustness": {"draws": 16, "points": 6, "p_max": 0.25},
}


def measure(activation: str, K: int, solver: str) -> str:
    alpha_c = rs_capacity(activation, "continuous", K).value
    spec, issues = validate(
        {
            "seed": 1,
            "grid": {
                "K": {activation: [K]},
                "weights": ["continuous"],
                "N": [120],
                "alpha": [round(f * alpha_c, 4) for f in FRACTIONS],
                "seeds": SEEDS,
            },
            # small steps and margin: the defaults solve none of these loads at N = 120
        "solver": {"continuous": {"name": solver, "max_steps": 8000, "lr": 0.01,
                                  "margin": 0.1}},
            "probes": PROBES,
            "execution": {"backend": "local"},
        }
    )
    assert not issues, issues
    out = f"{OUT}/{activation}-{solver}"
    run_scan(spec, out, progress=False)
    return out


def summary(outs: list[str], table: str, x: str, y: str) -> pl.DataFrame:
    runs = pl.concat([store.read_runs(o) for o in outs], how="diagonal_relaxed")
    frac = runs.group_by("activation", "solver", "alpha").agg(
        pl.col("solved").mean().alias("p_solved")
    )
    rows = pl.concat([store.scan_table(o, table).collect() for o in outs
                      if table in store.tables(o)])  # no table where nothing was solved
    return (
        rows.group_by("activation", "solver", "alpha", x)
        .agg(
            pl.col(y).mean().alias(y),
            (pl.col(y).std() / pl.len().sqrt()).alias("se"),
            pl.len().alias("solutions"),
        )
        .join(frac, on=["activation", "solver", "alpha"])
        .sort("alpha", "solver", x, "activation")
    )


if __name__ == "__main__":
    outs = [
        measure(a, K, s) for a, K in VARIANTS.items() for s in ("gd", "replicated_gd")
    ]
    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=4):
        print(summary(outs, "local_energy", "s", "local_energy"))
        print(summary(outs, "robustness", "p", "robustness"))
