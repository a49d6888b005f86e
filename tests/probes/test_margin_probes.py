"""Every probe on a smooth activation (tanh) at a margin kappa: the unperturbed
solution stores every pattern at the margin, and the margin is what is counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relu_landscape import model
from relu_landscape.instances import InstanceId, make_batch, stream_key
from relu_landscape.params import PROBE_PARAMS, AnnealParams
from relu_landscape.probes import PROBES
from relu_landscape.probes import enumerate as enumeration
from relu_landscape.solvers import SOLVERS
from tests.probes.conftest import keys_for

SMALL = {"local_energy": {"draws": 8, "points": 3}, "robustness": {"draws": 4, "points": 2},
         "local_entropy": {"draws": 50, "D_max": 2}, "walks": {"steps": 10, "checkpoints": 2},
         "enumerate": {}}
KAPPA = 0.3


def margin_solutions():
    """(batch at kappa, its solutions) for tanh, K = 3, n = 5, binary weights."""
    torch.set_num_threads(1)
    ids = [InstanceId(3, "binary", "tanh", "binary", 3, 15, 0.2, s) for s in range(3)]
    batch = model.to_torch(make_batch(ids), kappa=KAPPA)
    res = SOLVERS["anneal"](batch, "tanh", AnnealParams(), [stream_key(i, "anneal") for i in ids])
    assert res.solved.all()
    return batch, res.weights, ids


@pytest.mark.parametrize("name", list(PROBES))
def test_probes_count_errors_at_the_margin(name):
    batch, sol, ids = margin_solutions()
    out = PROBES[name].run(batch, sol, activation="tanh", weights="binary",
                           params=PROBE_PARAMS[name](**SMALL[name]), keys=keys_for(ids, name))
    cols = out.columns
    if name == "local_energy":
        assert np.all(np.asarray(cols["local_energy"])[np.asarray(cols["D"]) == 0] == 0)
    elif name == "robustness":
        assert np.all(np.asarray(cols["robustness"])[np.asarray(cols["p"]) == 0] == 1)
    elif name == "walks":
        assert len(out.instance) > 0
    elif name == "enumerate":
        assert len(out.instance) > 0


def test_enumeration_counts_the_margin():
    """Exact solvability at a margin: a larger kappa leaves no more solvable instances,
    and kappa far above any reachable Delta (tanh's |Delta| <= sqrt(K)) leaves none."""
    ids = [InstanceId(3, "binary", "tanh", "binary", 3, 15, 0.6, s) for s in range(4)]
    found = [enumeration.solvable(model.to_torch(make_batch(ids), kappa=k), "tanh")
             for k in (0.0, 1.0, 3.0)]
    assert (found[1] <= found[0]).all() and found[0].any()
    assert not found[2].any()
