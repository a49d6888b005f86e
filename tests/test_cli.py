"""`relu-landscape query` over a results directory."""

from __future__ import annotations

import polars as pl

from relu_landscape.cli import main
from tests.test_store import write


def test_query_prints_and_writes(tmp_path, capsys):
    write(tmp_path, "s1", 4, K=3)
    sql = "SELECT K, count(*) AS n FROM runs GROUP BY K"
    assert main(["query", str(tmp_path), sql]) == 0
    assert "│ 3" in capsys.readouterr().out
    csv = tmp_path / "q.csv"
    assert main(["query", str(tmp_path), sql, "--csv", str(csv)]) == 0
    assert pl.read_csv(csv).row(0) == (3, 4)


def test_query_errors_are_one_line(tmp_path, capsys):
    assert main(["query", str(tmp_path / "none"), "SELECT 1"]) == 2
    assert "no result tables" in capsys.readouterr().err
    write(tmp_path)
    assert main(["query", str(tmp_path), "SELECT nope FROM runs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relu-landscape: error: SQL:") and "Traceback" not in err
