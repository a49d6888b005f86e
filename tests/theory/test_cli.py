"""`relu-landscape theory capacity|curve`: JSON, tables, Parquet, clean errors."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from relu_landscape.cli import main


def run_json(capsys, *argv) -> list[dict]:
    assert main(["theory", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_capacity_json_rows(capsys):
    rows = run_json(capsys, "capacity", "--activation", "sign", "--weights",
                    "continuous", "--K", "1,inf", "--level", "RS,1RSB", "--precision", "fast")
    rows += run_json(capsys, "capacity", "--activation", "relu", "--weights",
                     "continuous", "--K", "2,inf", "--level", "RS,1RSB", "--precision", "fast")
    got = {(r["activation"], r["K"], r["level"]): r for r in rows}
    assert set(got) == {("sign", 1, "RS"), ("relu", 2, "RS"), ("sign", "inf", "RS"),
                        ("relu", "inf", "RS"), ("sign", "inf", "1RSB"), ("relu", "inf", "1RSB")}
    assert got[("sign", 1, "RS")]["alpha_c"] == pytest.approx(2.0, rel=1e-6)  # Gardner
    assert got[("relu", "inf", "RS")]["alpha_c"] == pytest.approx(2 * math.pi / (math.pi - 1))
    assert got[("relu", "inf", "1RSB")]["alpha_c"] < got[("relu", "inf", "RS")]["alpha_c"]
    assert all(set(r) == {"activation", "weights", "K", "kappa", "level", "tie",
                          "precision", "theory_version", "alpha_c", "stderr", "converged"}
               and r["kappa"] == 0.0 for r in rows)


def test_capacity_parquet_and_tie_option(tmp_path, capsys):
    out = tmp_path / "theory.parquet"
    assert main(["theory", "capacity", "--activation", "relu", "--weights", "continuous",
                 "--K", "2", "--tie", "success", "--out", str(out)]) == 0
    assert "relu" in capsys.readouterr().out
    df = pl.read_parquet(out)
    assert df.schema["K"] == pl.Int64 and df["tie"].to_list() == ["success"]
    assert df["kappa"].to_list() == [0.0]
    # ties counted as successes raise the K = 2 ReLU capacity well above 4/3
    assert df["alpha_c"][0] > 3


def test_curve_binary_writes_q_and_s(tmp_path, capsys):
    out = tmp_path / "curve.parquet"
    rows = run_json(capsys, "curve", "--activation", "sign", "--weights", "binary",
                    "--K", "1", "--alpha", "0.2:0.6:0.2", "--out", str(out))
    assert [r["alpha"] for r in rows] == [0.2, 0.4, 0.6]
    s = [r["s"] for r in rows]
    assert s == sorted(s, reverse=True) and 0 < s[-1] < math.log(2)
    assert pl.read_parquet(out).height == 3


@pytest.mark.parametrize("argv,fragment", [
    (["capacity", "--activation", "relu", "--weights", "binary", "--K", "3"], "K=3"),
    (["capacity", "--activation", "swish", "--weights", "binary", "--K", "3"], "swish"),
    (["capacity", "--activation", "sign", "--weights", "binary", "--K", "x"], "--K: 'x'"),
    (["capacity", "--activation", "sign", "--weights", "binary", "--K", "1",
      "--level", "1RSB"], "--level 1RSB"),
    (["curve", "--activation", "sign", "--weights", "binary", "--K", "1,3",
      "--alpha", "0.1"], "give one K"),
    (["curve", "--activation", "sign", "--weights", "binary", "--K", "1",
      "--alpha", "a,b"], "--alpha"),
])
def test_bad_options_exit_2(capsys, argv, fragment):
    assert main(["theory", *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_json_rows_write_nan_as_null(capsys):
    import argparse

    from relu_landscape.cli import _emit_rows

    args = argparse.Namespace(out=None, format="json")
    _emit_rows([{"K": 3, "local_entropy": float("nan"), "converged": False}], args, "x")
    (row,) = json.loads(capsys.readouterr().out)
    assert row == {"K": 3, "local_entropy": None, "converged": False}
