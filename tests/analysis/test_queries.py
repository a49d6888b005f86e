"""The example queries of analysis/queries.sql run on a results directory."""

from __future__ import annotations

import re
from pathlib import Path

from relu_landscape import store
from tests.analysis.synthetic import flags, write_fake_theory, write_runs

QUERIES = Path(__file__).parents[2] / "analysis" / "queries.sql"


def test_example_queries_run_and_return_rows(tmp_path):
    write_runs(tmp_path, "relu", "binary", 2, 20, {0.2: flags(4), 0.4: flags(1)})
    write_fake_theory(tmp_path, {"relu": [2]})
    statements = [
        s for s in re.sub(r"--[^\n]*", "", QUERIES.read_text()).split(";") if s.strip()
    ]
    assert len(statements) == 5
    results = [store.sql(tmp_path, s) for s in statements]
    assert all(r.height > 0 for r in results)
    assert results[1]["alpha_half_solved"].to_list() == [0.2]
