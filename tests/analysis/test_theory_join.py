"""Theory capacities merged with the measurements: dtypes, caching, join, real theory."""

from __future__ import annotations

import math

import polars as pl
import pytest

from relu_landscape import store
from relu_landscape.analysis import capacity, theory_join
from tests.analysis.synthetic import flags, write_runs


def test_theory_frame_maps_inf_to_null_with_store_dtypes():
    df = theory_join.theory_frame(
        [
            {
                "activation": "relu",
                "weights": "binary",
                "K": "inf",
                "level": "RS",
                "tie": "error",
                "alpha_c": 0.9,
                "stderr": 0.0,
            },
            {
                "activation": "relu",
                "weights": "binary",
                "K": 2,
                "level": "RS",
                "tie": "error",
                "alpha_c": 0.6,
                "stderr": 0.0,
            },
        ]
    )
    assert df.schema["K"] == pl.Int64 and df.schema["activation"] == pl.String
    assert df["K"].to_list() == [None, 2]


def test_stored_theory_computes_missing_reuses_cached_and_joins(tmp_path):
    write_runs(
        tmp_path,
        "sign",
        "continuous",
        1,
        20,
        {1.0: flags(4), 2.0: flags(2), 3.0: flags(0)},
        solver="gd",
    )
    cached = theory_join.theory_frame(
        [
            {
                "activation": "sign",
                "weights": "binary",
                "K": 1,
                "level": "RS",
                "tie": "error",
                "alpha_c": 123.0,
                "stderr": 0.0,
            }
        ]
    )
    store.write_table(tmp_path, "theory", cached.to_arrow())
    variants = [
        ("sign", "binary", 1, "RS"),
        ("sign", "continuous", 1, "RS"),
        ("relu", "continuous", None, "RS"),
    ]
    table = theory_join.stored_theory(tmp_path, variants, precision="fast")
    got = {(r["weights"], r["K"]): r["alpha_c"] for r in table.iter_rows(named=True)}
    assert got["binary", 1] == 123.0  # reused, not recomputed
    assert got["continuous", 1] == pytest.approx(2.0, abs=1e-9)  # Gardner 1988
    # ReLU, K = inf: 2 pi / (pi - 1) (science.md §4), stored with K = null
    assert got["continuous", None] == pytest.approx(2 * math.pi / (math.pi - 1))
    back = store.sql(tmp_path, "SELECT * FROM theory WHERE K IS NULL")
    assert back.height == 1 and back.schema["K"] == pl.Int64
    thr = capacity.thresholds(capacity.solved_fraction(store.scan_runs(tmp_path)))
    joined = theory_join.join_theory(thr, table)
    row = joined.row(0, named=True)
    assert row["alpha_50"] == pytest.approx(2.0, abs=1e-9)
    assert row["alpha_c"] == pytest.approx(2.0) and row["load"] == pytest.approx(1.0)
