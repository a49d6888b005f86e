"""analysis/solver_thresholds.py: one row per solver setting, RS from the theory."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa

from relu_landscape import stats, store, theory
from tests.analysis.synthetic import PROV, flags, runs_rows

SCRIPT = Path(__file__).parents[2] / "analysis" / "solver_thresholds.py"


def _module():
    spec = importlib.util.spec_from_file_location("solver_thresholds", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write(root, shard: str, solved: dict, params: dict) -> None:
    rows = runs_rows(101, solved, "sbpi", shard)
    rows = rows.set_column(
        rows.schema.get_field_index("solver_params"), "solver_params",
        pa.array([json.dumps(params)] * rows.num_rows),
    )
    store.write_shard(root, "runs", rows, activation="sign", weights="binary", K=1,
                      shard_id=shard, provenance=PROV, device="cpu")


def test_settings_get_their_own_rows_and_rs_comes_from_theory(tmp_path):
    """Two SBPI settings of the binary perceptron: two rows, each alpha_50 that of its
    own counts, labelled by the parameter that differs; the RS column is
    theory.rs_capacity, the zero-entropy alpha (0.833, Krauth & Mezard 1989)."""
    a = {"max_state": 101, "theta": 5}
    b = {"max_state": 21, "theta": 5}
    _write(tmp_path, "a", {0.5: flags(8, 8), 0.6: flags(5, 8), 0.7: flags(0, 8)}, a)
    _write(tmp_path, "b", {0.5: flags(3, 8), 0.6: flags(0, 8)}, b)
    mod = _module()
    table = mod.thresholds(str(tmp_path))
    assert table.height == 2
    row = table.filter(table["solver_params"] == json.dumps(a)).row(0, named=True)
    want = stats.alpha_50([0.5, 0.6, 0.7], [8, 5, 0], [8, 8, 8])
    assert (row["alpha_50"], row["low"], row["high"]) == (want.alpha_50, want.low,
                                                          want.high)
    md = mod.markdown(table)
    assert "| sbpi (max_state=101) |" in md and "| sbpi (max_state=21) |" in md
    rs = theory.rs_capacity("sign", "binary", 1).value
    assert abs(rs - 0.833) < 1e-3 and md.count(f"| {rs:.3f} |") == 2
