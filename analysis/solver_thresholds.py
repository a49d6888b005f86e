"""Empirical capacity per solver: run a scan spec locally, print alpha_50 per group.

    .venv/bin/python analysis/solver_thresholds.py SPEC.toml OUT_DIR

Reuses OUT_DIR (``--resume`` semantics) so an interrupted run completes. alpha_50 and
its 95% interval come from ``stats.alpha_50`` over P(solved) per alpha
(``analysis.capacity.solved_fraction``).
"""

from __future__ import annotations

import sys

import polars as pl

from relu_landscape import store
from relu_landscape.analysis.capacity import KEYS, solved_fraction
from relu_landscape.config import load_config
from relu_landscape.scan import run_scan
from relu_landscape.stats import alpha_50


def thresholds(out: str) -> pl.DataFrame:
    """alpha_50 with its interval per (activation, weights, K, N, solver)."""
    cells = solved_fraction(store.scan_runs(out))
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


if __name__ == "__main__":
    spec_path, out = sys.argv[1], sys.argv[2]
    spec = load_config(spec_path, overrides={"execution": {"backend": "local"}})
    run_scan(spec, out, progress=False)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=200, tbl_width_chars=250):
        print(thresholds(out))
