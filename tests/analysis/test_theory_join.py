"""Theory capacities merged with the measurements: dtypes, caching, join, real theory."""

from __future__ import annotations

import math

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relu_landscape import store
from relu_landscape.analysis import capacity, theory_join
from relu_landscape.theory import THEORY_VERSION
from tests.analysis.synthetic import flags, write_runs


def _row(weights, K, alpha_c, *, precision="default", version=THEORY_VERSION):
    """A sign-unit RS theory row with a planted alpha_c (tells reuse from recompute)."""
    return {
        "activation": "sign",
        "weights": weights,
        "K": K,
        "level": "RS",
        "tie": "error",
        "precision": precision,
        "theory_version": version,
        "alpha_c": alpha_c,
        "stderr": 0.0,
        "converged": True,
    }


def test_theory_frame_maps_inf_to_null_with_store_dtypes():
    df = theory_join.theory_frame(
        [
            {
                "activation": "relu",
                "weights": "binary",
                "K": "inf",
                "level": "RS",
                "tie": "error",
                "precision": "default",
                "theory_version": THEORY_VERSION,
                "alpha_c": 0.9,
                "stderr": 0.0,
            },
            {
                "activation": "relu",
                "weights": "binary",
                "K": 2,
                "level": "RS",
                "tie": "error",
                "precision": "default",
                "theory_version": THEORY_VERSION,
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
        # symmetric and overlapping around alpha = 2: the logistic fit crosses there
        {
            a: flags(k, 16)
            for a, k in ((1.0, 16), (1.5, 12), (2.0, 8), (2.5, 4), (3.0, 0))
        },
        solver="gd",
    )
    cached = theory_join.theory_frame([_row("binary", 1, 123.0, precision="fast")])
    store.write_table(tmp_path, "theory", cached.to_arrow())
    variants = [
        ("sign", "binary", 1, "RS", 0.0),
        ("sign", "continuous", 1, "RS", 0.0),
        ("relu", "continuous", None, "RS", 0.0),
    ]
    table = theory_join.stored_theory(tmp_path, variants, precision="fast")
    got = {(r["weights"], r["K"]): r["alpha_c"] for r in table.iter_rows(named=True)}
    assert got["binary", 1] == 123.0  # reused, not recomputed
    assert got["continuous", 1] == pytest.approx(2.0, abs=1e-9)  # Gardner 1988
    # ReLU, K = inf: 2 pi / (pi - 1) (docs/science.md §4), stored with K = null
    assert got["continuous", None] == pytest.approx(2 * math.pi / (math.pi - 1))
    back = store.sql(tmp_path, "SELECT * FROM theory WHERE K IS NULL")
    assert back.height == 1 and back.schema["K"] == pl.Int64
    thr = capacity.thresholds(capacity.solved_fraction(store.scan_runs(tmp_path)))
    joined = theory_join.join_theory(thr, table)
    row = joined.row(0, named=True)
    assert row["alpha_50"] == pytest.approx(2.0, abs=1e-9)
    assert row["alpha_c"] == pytest.approx(2.0) and row["load"] == pytest.approx(1.0)


def test_cache_is_keyed_by_precision_tie_and_version(tmp_path):
    """A cached row is reused only at its own tie, precision and theory version.

    Before the key covered precision and version, the planted 123.0 (fast) and 456.0
    (an older version) were returned for any precision.
    """
    planted = [
        _row("binary", 1, 123.0, precision="fast"),
        _row("continuous", 1, 456.0, version=THEORY_VERSION - 1),
    ]
    store.write_table(tmp_path, "theory", theory_join.theory_frame(planted).to_arrow())
    variants = [("sign", "binary", 1, "RS", 0.0), ("sign", "continuous", 1, "RS", 0.0)]
    table = theory_join.stored_theory(tmp_path, variants, precision="default")
    got = {r["weights"]: r for r in table.iter_rows(named=True)}
    # Krauth & Mezard 0.833, Gardner 2: computed, not the planted values
    assert got["binary"]["alpha_c"] == pytest.approx(0.833, abs=5e-4)
    assert got["continuous"]["alpha_c"] == pytest.approx(2.0, abs=1e-9)
    assert set(table["precision"]) == {"default"} and table.height == 2
    assert all(
        r["theory_version"] == THEORY_VERSION and r["converged"] for r in got.values()
    )
    stored = store.scan_table(tmp_path, "theory").collect()
    # the fast row stays cached beside the default ones; the old version is gone
    assert sorted(zip(stored["precision"], stored["weights"], strict=True)) == [
        ("default", "binary"), ("default", "continuous"), ("fast", "binary")
    ]
    assert 456.0 not in stored["alpha_c"].to_list()
    fast = theory_join.stored_theory(tmp_path, variants[:1], precision="fast")
    assert fast["alpha_c"].to_list() == [123.0]  # same precision: reused
    success = theory_join.stored_theory(tmp_path, variants[:1], tie="success",
                                        precision="fast")
    assert success["tie"].to_list() == ["success"]
    assert success["alpha_c"][0] == pytest.approx(0.833, abs=5e-4)


def test_cache_without_key_columns_is_recomputed(tmp_path):
    """OUT/theory from before the key columns (an older package) is not trusted."""
    old = pa.table(
        {
            "activation": ["sign"],
            "weights": ["continuous"],
            "K": pa.array([1], pa.int64()),
            "level": ["RS"],
            "tie": ["error"],
            "alpha_c": [99.0],
            "stderr": [0.0],
        }
    )
    (tmp_path / "theory").mkdir()
    pq.write_table(old, tmp_path / "theory" / "theory.parquet")
    table = theory_join.stored_theory(
        tmp_path, [("sign", "continuous", 1, "RS", 0.0)], precision="fast"
    )
    assert table["alpha_c"].to_list() == [pytest.approx(2.0, abs=1e-9)]
    stored = store.scan_table(tmp_path, "theory").collect()
    assert stored["alpha_c"].to_list() == [pytest.approx(2.0, abs=1e-9)]
    assert stored["theory_version"].to_list() == [THEORY_VERSION]
