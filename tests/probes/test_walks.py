"""Random walks never leave the solution set, checked with the model at every step."""

from __future__ import annotations

import pytest
import torch

from relu_landscape import model
from relu_landscape.params import WalksParams
from relu_landscape.probes import walks
from tests.probes.conftest import keys_for, solved

CASES = [("sign", 3, 11, "binary", 0.3), ("relu", 4, 8, "binary", 0.2),
         ("sign", 3, 10, "continuous", 0.5), ("relu", 2, 15, "continuous", 0.5)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[3]}-K{c[1]}")
def test_walkers_stay_solutions(case):
    activation, K, n, weights, alpha = case
    batch, sol, ids = solved(activation, K, n, weights, alpha)
    params = WalksParams(walkers=3, steps=40, checkpoints=40, step=0.1)
    trace = walks.walk(batch, sol, activation=activation, weights=weights, params=params,
                       keys=keys_for(ids, "walks"))
    C, B, S = trace.moves.shape
    assert (C, B, S) == (40, len(ids), 3) and trace.steps.tolist() == list(range(1, 41))
    # every recorded position (one per proposal) is checked with the model itself
    flat = trace.positions.permute(1, 0, 2, 3, 4).reshape(B, C * S, K, n)
    for s in range(C * S):
        assert model.errors(flat[:, s], batch.xi, batch.y, activation, batch.mask).eq(0).all()
    if weights == "continuous":  # and stays on the per-unit spheres
        torch.testing.assert_close((trace.positions**2).sum(-1),
                                   torch.full((C, B, S, K), float(n)), rtol=1e-4, atol=1e-4)
    else:  # binary walkers are +-1 and one flip per accepted move away at most
        assert trace.positions.abs().eq(1).all()
        moved = (trace.positions != sol[None, :, None]).sum((-2, -1))
        assert (moved <= trace.moves).all() and ((moved - trace.moves) % 2 == 0).all()
    assert (trace.moves[-1] > 0).any()  # the walk went somewhere: the check can fail


def test_probe_rows_spread_with_moves():
    batch, sol, ids = solved("relu", 2, 15, "continuous", 0.5)
    rows = walks.probe(batch, sol, activation="relu", weights="continuous",
                       params=WalksParams(walkers=4, steps=60, checkpoints=3, step=0.1),
                       keys=keys_for(ids, "walks"))
    cols = {k: v.reshape(len(ids), 3) for k, v in rows.columns.items()}
    assert cols["steps"][0].tolist() == [20, 40, 60]
    assert (cols["d"][:, -1] > cols["d"][:, 0]).all()
    assert ((cols["acceptance"] > 0) & (cols["acceptance"] <= 1)).all()
