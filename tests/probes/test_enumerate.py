"""Exact enumeration against a plain brute-force loop on tiny instances (binary weights)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from relu_landscape.probes import enumerate as enumeration
from tests.probes.conftest import tiny_batch

# (activation, K, n, alpha): loads where solutions exist, N = 12 .. 15
CASES = [("relu", 2, 6, 0.25), ("relu", 4, 3, 0.3), ("sign", 3, 5, 0.4), ("sign", 1, 13, 0.4)]


def brute_force(xi: np.ndarray, y: np.ndarray, K: int, n: int, activation: str):
    """Every +-1 vector (all of itertools.product) and its training errors, one at a time.

    The field is written out from docs/science.md §1 (not taken from the model); a tie
    (|Delta| below rounding) is an error.
    """
    c = np.ones(K) if activation == "sign" else np.r_[np.ones(K // 2), -np.ones(K // 2)]
    g = np.sign if activation == "sign" else (lambda v: np.maximum(v, 0))
    x = xi.reshape(len(y), K, n)
    vectors = np.array(list(itertools.product([-1.0, 1.0], repeat=K * n)))
    errs = []
    for w in vectors:
        delta = g((x * w.reshape(K, n)).sum(-1) / math.sqrt(n)) @ c / math.sqrt(K)
        errs.append(int((y * delta <= 1e-12).sum()))
    return vectors, np.array(errs)


@pytest.mark.parametrize("activation,K,n,alpha", CASES, ids=lambda v: str(v))
def test_landscape_equals_brute_force(activation, K, n, alpha):
    batch, ids = tiny_batch(activation, K, n, alpha, seeds=2)
    land = enumeration.landscape(batch, batch.w0, activation)  # any reference will do
    N = K * n
    for b in range(len(ids)):
        P = int(batch.mask[b].sum())
        xi = batch.xi[b, :P].numpy().astype(float)
        y = batch.y[b, :P].numpy()
        vectors, errs = brute_force(xi, y, K, n, activation)
        sols = vectors[errs == 0]
        assert land.solutions[b].item() == len(sols) > 0
        # the solution indices decode to exactly the brute-force solutions
        index = land.solution_index[b].numpy()
        decoded = np.where((index[:, None] >> np.arange(N)) & 1, 1.0, -1.0)
        assert {tuple(v) for v in decoded} == {tuple(v) for v in sols}
        dist = (sols[:, None] != sols[None]).sum(-1)
        pairs = np.bincount(dist[np.triu_indices(len(sols), 1)], minlength=N + 1)
        assert land.pairs[b].tolist() == pairs.tolist()
        ref = batch.w0[b].numpy().ravel()
        d_ref = (vectors != ref).sum(-1)
        assert land.neighbours[b].tolist() == np.bincount(
            d_ref[errs == 0], minlength=N + 1).tolist()
        energy = np.bincount(d_ref, weights=errs, minlength=N + 1) / (
            np.bincount(d_ref, minlength=N + 1) * P)
        np.testing.assert_allclose(land.local_energy[b].numpy(), energy, rtol=1e-12)


def test_neighbour_counts_sum_to_pairs():
    batch, _ = tiny_batch("relu", 2, 6, 0.25, seeds=1)
    land = enumeration.landscape(batch, batch.w0, "relu")
    index = land.solution_index[0]
    curves = enumeration.neighbour_counts(index, index, 12)
    assert curves[:, 0].eq(1).all()  # every solution is at distance 0 from itself
    assert (curves[:, 1:].sum(0) // 2).tolist() == land.pairs[0, 1:].tolist()
    assert curves.sum(1).eq(len(index)).all()


def test_popcount_and_index():
    x = torch.tensor([0, 1, 2**39 + 7, 2**24 - 1])
    assert enumeration.popcount(x).tolist() == [0, 1, 4, 24]
    w = torch.tensor([[[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]])
    assert enumeration.weight_index(w).tolist() == [1 + 4 + 32]


# loads around the finite-N capacity, so that both answers occur
SOLVABLE_CASES = [("sign", 1, 13, 0.8), ("relu", 2, 6, 0.3), ("sign", 3, 3, 1.0),
                  ("relu", 4, 3, 0.5)]


@pytest.mark.parametrize("activation,K,n,alpha", SOLVABLE_CASES, ids=lambda v: str(v))
def test_solvable_equals_brute_force(activation, K, n, alpha):
    batch, _ = tiny_batch(activation, K, n, alpha, seeds=8)
    got = enumeration.solvable(batch, activation).tolist()
    want = []
    for b in range(len(got)):
        P = int(batch.mask[b].sum())
        _, errs = brute_force(batch.xi[b, :P].numpy(), batch.y[b, :P].numpy(), K, n,
                              activation)
        want.append(bool((errs == 0).any()))
    assert got == want
    assert True in want and False in want, "pick a load where both answers occur"
