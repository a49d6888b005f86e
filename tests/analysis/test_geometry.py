"""Probe curves averaged over solutions and picked at the same alpha / alpha_c."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from relu_landscape import store
from relu_landscape.analysis import geometry
from tests.analysis.synthetic import (
    energy_probe_rows,
    flags,
    write_fake_theory,
    write_runs,
)
from tests.analysis.test_report import _write_probe


def test_probe_curve_and_at_load(tmp_path):
    write_runs(tmp_path, "sign", "binary", 1, 20, {0.2: flags(4), 0.4: flags(4)})
    write_fake_theory(tmp_path, {"sign": [1], "relu": [2]})
    _write_probe(tmp_path, energy_probe_rows())
    curve = geometry.CURVES["local_energy"]
    probe = store.scan_table(tmp_path, "local_energy")
    assert geometry.missing_columns(probe.collect_schema(), curve) == []
    rows = geometry.probe_curve(probe, store.scan_runs(tmp_path), curve)
    assert rows.height == 4 and rows["solutions"].to_list() == [2, 2, 2, 2]
    first = rows.row(0, named=True)  # alpha 0.2, perturbation 0.1: values 0.0, 0.1
    assert first["value"] == pytest.approx(0.05)
    assert first["stderr"] == pytest.approx(np.std([0.0, 0.1], ddof=1) / np.sqrt(2))
    theory = pl.read_parquet(tmp_path / "theory" / "theory.parquet")
    picked = geometry.at_load(rows, theory, target=0.6)  # alpha_c = 0.6: loads 1/3, 2/3
    assert picked["alpha"].unique().to_list() == [0.4]
    assert picked["load"][0] == pytest.approx(0.4 / 0.6)
    assert geometry.at_load(rows, theory, target=0.3)["alpha"].unique().to_list() == [
        0.2
    ]


def test_entropy_bound():
    d = np.array([0.0, 0.5, 0.1])
    expect = [0.0, np.log(2), -0.1 * np.log(0.1) - 0.9 * np.log(0.9)]
    assert geometry.entropy_bound(d) == pytest.approx(expect)
