"""alpha_50 per (activation, weights, K, N, solver) beside the RS capacity, and the figure,
at margin kappa = 0 (the report's margins section shows the other kappas).

Usage: python analysis/capacity_vs_K.py RESULTS_DIR  (writes RESULTS_DIR/report/capacity_vs_K.png)
"""

import sys
from pathlib import Path

import polars as pl

from relu_landscape import store
from relu_landscape.analysis import capacity, figures, theory_join

root = Path(sys.argv[1])
cells = capacity.solved_fraction(store.scan_runs(root).filter(pl.col("kappa") == 0))
theory = theory_join.theory_for(root, cells)
joined = theory_join.join_theory(capacity.thresholds(cells), theory)
with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=3):
    print(joined.drop("alphas"))
(root / "report").mkdir(exist_ok=True)
print(
    figures.save(
        figures.plot_capacity_vs_K(joined, theory),
        root / "report" / "capacity_vs_K.png",
    )
)
