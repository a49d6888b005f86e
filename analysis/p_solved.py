"""P(solved) versus alpha with 95% Wilson intervals, and alpha_50 with its interval.

Usage: python analysis/p_solved.py RESULTS_DIR
"""

import sys

import polars as pl

from relu_landscape import store
from relu_landscape.analysis import capacity

cells = capacity.solved_fraction(store.scan_runs(sys.argv[1]))
thr = capacity.thresholds(cells)
with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=3):
    print(cells.drop("mean_error_frac"))
    print(thr)
    print(capacity.finite_size_trend(thr))
