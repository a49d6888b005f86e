"""Contract of every registered probe: rows per instance, independence of batching."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from relu_landscape import model, probes
from relu_landscape.instances import make_batch
from relu_landscape.params import PROBE_PARAMS
from relu_landscape.probes import PROBES
from relu_landscape.store import SCHEMAS
from tests.probes.conftest import keys_for, solved

SMALL = {"local_energy": {"draws": 8, "points": 3}, "robustness": {"draws": 4, "points": 2},
         "local_entropy": {"draws": 50, "D_max": 2}, "walks": {"steps": 10, "checkpoints": 2},
         "enumerate": {}}
# Two alphas per variant: one batch pads every instance to the larger P, so a probe
# whose randomness followed the padded layout would give the smaller-alpha instances
# other numbers than they get alone.
VARIANTS = [("relu", 2, 6, "binary", (0.17, 0.25)), ("sign", 3, 5, "binary", (0.2, 0.3)),
            ("relu", 2, 10, "continuous", (0.3, 0.5))]
GRID = [(name, v) for name in PROBES for v in VARIANTS if v[3] in PROBES[name].weights]


def test_registry_matches_params_and_schemas():
    assert set(PROBES) == set(PROBE_PARAMS) == set(SMALL)
    assert set(PROBES) <= set(SCHEMAS)


@pytest.mark.parametrize("name,variant", GRID,
                         ids=[f"{v[0]}-{v[3]}-K{v[1]}/{name}" for name, v in GRID])
def test_rows_do_not_depend_on_the_batch(name, variant):
    """Every instance gets the same rows in a mixed-alpha batch as in a batch of its
    own (made by ``make_batch`` from its id alone, so padded to its own P)."""
    activation, K, n, weights, alphas = variant
    batch, sol, ids = solved(activation, K, n, weights, alphas, seeds=3)
    assert {i.alpha for i in ids} == set(alphas), "need solved instances at both alphas"
    run = PROBES[name].run
    params = PROBE_PARAMS[name](**SMALL[name])
    full = run(batch, sol, activation=activation, weights=weights, params=params,
               keys=keys_for(ids, name))
    # every instance has the same number of rows, and the schema's columns in order
    assert np.bincount(full.instance, minlength=len(ids)).tolist() == (
        [len(full.instance) // len(ids)] * len(ids))
    assert list(full.columns) == SCHEMAS[name].names[5:]
    for b, inst in enumerate(ids):
        one = model.to_torch(make_batch([inst]))
        assert one.xi.shape[1] == inst.P  # its own P, no padding
        alone = run(one, sol[b:b + 1], activation=activation, weights=weights,
                    params=params, keys=keys_for([inst], name))
        for col, values in full.columns.items():
            mine = values[full.instance == b]
            if mine.dtype.kind == "f":
                np.testing.assert_allclose(mine, alone.columns[col], rtol=1e-6, atol=1e-9,
                                           err_msg=f"{col} of {inst.run_id}")
            else:
                assert mine.tolist() == alone.columns[col].tolist(), col


def test_probes_load_no_ray_and_have_no_side_effects():
    code = "import sys, relu_landscape.probes; print('ray' in sys.modules)"
    assert subprocess.check_output([sys.executable, "-c", code]).strip() == b"False"
    source = " ".join(p.read_text() for p in Path(probes.__file__).parent.glob("*.py"))
    for banned in ("print(", "open(", "os.environ", "manual_seed"):
        assert banned not in source, banned
