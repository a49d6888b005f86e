"""Simulated annealing's incremental bookkeeping against full recomputation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from relu_landscape import model
from relu_landscape.solvers import anneal
from relu_landscape.solvers.base import random_block
from tests.solvers.conftest import VARIANTS, batch_of, instances, small_params


@pytest.mark.parametrize("energy", ["errors", "stability"])
@pytest.mark.parametrize("activation,K", VARIANTS, ids=str)
def test_cache_and_energy_match_recomputation_after_many_flips(activation, K, energy):
    ids = instances(activation, "binary", K, (0.6, 1.5), seeds=(0, 1), n=9)
    batch, keys = batch_of(ids, "anneal")
    params = small_params("anneal", energy=energy)
    n = batch.n
    cache = model.flip_cache(batch.w0, batch.xi, batch.y, activation, batch.mask)
    e = anneal.energy(cache, params, n)
    solved = torch.zeros(len(ids), dtype=torch.bool)  # never freeze: keep flipping
    steps = torch.zeros(len(ids), dtype=torch.int64)
    accepted = 0
    for k in range(5):  # 5 sweeps of N proposals at a temperature that accepts many
        before = cache.w.clone()
        e = anneal.sweep(
            cache,
            e,
            solved,
            steps,
            0.3,
            random_block(keys, k, (K * n, 2), torch.device("cpu")),
            params,
        )
        accepted += int((before != cache.w).sum())
        solved.zero_()
    assert accepted > 10 * len(ids)  # the chains really moved
    fresh = model.flip_cache(cache.w, batch.xi, batch.y, activation, batch.mask)
    assert torch.equal(cache.h, fresh.h) and torch.equal(cache.out, fresh.out)
    assert torch.equal(
        cache.wrong, model.errors(cache.w, batch.xi, batch.y, activation, batch.mask)
    )
    torch.testing.assert_close(e, anneal.energy(fresh, params, n), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("activation,K", [("relu", 2), ("relu", 4), ("linear", 3)])
def test_proposed_energy_from_output_sums_is_the_recomputed_one(activation, K):
    """relu and linear read a proposal's energy off its output sums: bit for bit the
    violation of its recomputed preactivations (integer sums)."""
    ids = instances(activation, "binary", K, (0.6, 1.5), seeds=(0,), n=9)
    batch, _ = batch_of(ids, "anneal")
    params = small_params("anneal", energy="stability")
    cache = model.flip_cache(batch.w0, batch.xi, batch.y, activation, batch.mask)
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        unit = torch.randint(0, K, (len(ids),), generator=g)
        index = torch.randint(0, batch.n, (len(ids),), generator=g)
        prop = model.flip_delta(cache, unit, index)
        want = model.violation(model.proposed_preact(cache, prop), cache.y, cache.mask,
                               activation, batch.n, params.margin)
        got = anneal.proposed_energy(cache, prop, params, batch.n)
        assert torch.equal(got, want.to(torch.float64))
        model.apply_flip(cache, prop, torch.rand(len(ids), generator=g) < 0.5)


def naive_violation(h, y, mask, activation, n, margin):
    """model.violation by explicit loops over patterns and units (docs/science.md §3)."""
    B, P, K = h.shape
    c = [1.0] * K if activation == "sign" else [1.0] * (K // 2) + [-1.0] * (K // 2)
    out = np.zeros(B)
    for b, p in itertools.product(range(B), range(P)):
        if not mask[b, p]:
            continue
        lam = [h[b, p, k] / np.sqrt(n) for k in range(K)]
        if activation == "sign":
            costs = sorted(max(0.0, margin - y[b, p] * lam_k) for lam_k in lam)
            out[b] += sum(costs[: (K + 1) // 2])
        else:
            delta = sum(c[k] * max(0.0, lam[k]) for k in range(K)) / np.sqrt(K)
            out[b] += max(0.0, margin - y[b, p] * delta)
    return out


@pytest.mark.parametrize("activation,K", VARIANTS, ids=str)
def test_violation_matches_loops_and_vanishes_only_on_solutions(activation, K):
    ids = instances(activation, "binary", K, (0.3, 1.0), seeds=(0,), n=5)
    batch, _ = batch_of(ids, "anneal")
    h = model.dot(batch.w0, batch.xi)
    y = batch.y.float()
    got = model.violation(h, y, batch.mask, activation, batch.n, 0.2)
    want = naive_violation(
        h.double().numpy(), y.numpy(), batch.mask.numpy(), activation, batch.n, 0.2
    )
    np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-5)
    errs = model.errors(batch.w0, batch.xi, batch.y, activation, batch.mask)
    assert ((got == 0) <= (errs == 0)).all()  # zero energy implies zero errors
    assert (got[errs > 0] > 0).all()
