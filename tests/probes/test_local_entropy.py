"""Sampled local entropy and local energy agree with exact enumeration (binary weights)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from relu_landscape import model
from relu_landscape.params import LocalEnergyParams, LocalEntropyParams
from relu_landscape.probes import enumerate as enumeration
from relu_landscape.probes import local_energy, local_entropy
from tests.probes.conftest import keys_for, tiny_batch

CASES = [("relu", 2, 6, 0.25), ("sign", 3, 5, 0.4)]


def reference_solutions(activation, K, n, alpha, seeds):
    """The instances that have solutions, one exact solution each (the middle of its
    sorted index list) and the enumeration around it: (batch, ids, ref, landscape)."""
    batch, ids = tiny_batch(activation, K, n, alpha, seeds)
    land = enumeration.landscape(batch, batch.w0, activation)
    keep = torch.nonzero(land.solutions > 0).flatten()
    batch = model.TorchBatch(batch.xi[keep], batch.y[keep], batch.mask[keep], batch.w0[keep])
    index = torch.stack([land.solution_index[b][land.solutions[b] // 2] for b in keep])
    ref = torch.where((index[:, None] >> torch.arange(K * n)) & 1 == 1, 1.0, -1.0)
    ref = ref.view(-1, K, n)
    ids = [ids[b] for b in keep.tolist()]
    return batch, ids, ref, enumeration.landscape(batch, ref, activation)


@pytest.mark.parametrize("activation,K,n,alpha", CASES, ids=lambda v: str(v))
def test_sampled_fraction_matches_enumeration(activation, K, n, alpha):
    batch, ids, ref, land = reference_solutions(activation, K, n, alpha, seeds=3)
    N, draws = K * n, 3000
    rows = local_entropy.probe(batch, ref, activation=activation, weights="binary",
                               params=LocalEntropyParams(draws=draws, D_max=3),
                               keys=keys_for(ids, "local_entropy"))
    D = rows.columns["D"]
    exact = land.neighbours.numpy()[rows.instance, D] / np.array(
        [math.comb(N, int(k)) for k in D])
    # binomial standard error of the exact fraction: valid even where no hit was drawn
    se = np.sqrt(exact * (1 - exact) / draws)
    assert exact.min() > 0  # these loads have solutions at D = 1..3 around the middle one
    np.testing.assert_array_less(np.abs(rows.columns["solution_frac"] - exact), 4 * se)
    assert rows.columns["resolved"].all()
    entropy = np.log(exact * [math.comb(N, int(k)) for k in D]) / N
    np.testing.assert_array_less(np.abs(rows.columns["local_entropy"] - entropy),
                                 4 * rows.columns["local_entropy_stderr"])


@pytest.mark.parametrize("activation,K,n,alpha", CASES, ids=lambda v: str(v))
def test_sampled_local_energy_matches_enumeration(activation, K, n, alpha):
    batch, ids, ref, land = reference_solutions(activation, K, n, alpha, seeds=3)
    rows = local_energy.probe(batch, ref, activation=activation, weights="binary",
                              params=LocalEnergyParams(draws=400, points=6, d_max=0.5),
                              keys=keys_for(ids, "local_energy"))
    D = rows.columns["D"].astype(int)
    exact = land.local_energy.numpy()[rows.instance, D]
    se = rows.columns["local_energy_stderr"]
    # within 4 standard errors of the sample mean; D = 0 is exact (zero error, zero se)
    np.testing.assert_array_less(np.abs(rows.columns["local_energy"] - exact), 4 * se + 1e-12)
    assert (se[D > 0] > 0).all()


def test_unresolved_fraction_reports_an_upper_bound():
    # D_max = 12 = N for ReLU K = 2: the fully flipped vector -W has every unit's
    # preactivation negated, rarely a solution; 20 draws all miss at large D
    batch, ids, ref, land = reference_solutions("relu", 2, 6, 0.25, seeds=1)
    rows = local_entropy.probe(batch, ref, activation="relu", weights="binary",
                               params=LocalEntropyParams(draws=20, D_max=12),
                               keys=keys_for(ids, "local_entropy"))
    missing = rows.columns["hits"] == 0
    assert missing.any()
    assert np.isnan(rows.columns["local_entropy"][missing]).all()
    assert not rows.columns["resolved"][missing].any()
    assert (rows.columns["solution_frac_upper"][missing] > 0).all()
