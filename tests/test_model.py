"""The batched model against plain nested loops (docs/science.md §1), all four variants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from relu_landscape import model

VARIANTS = [("sign", 1), ("sign", 3), ("relu", 2), ("relu", 4)]


def naive_field(W: np.ndarray, x: np.ndarray, activation: str) -> float:
    """Delta for one weight set W [K, n] and one pattern x [N], by explicit loops."""
    K, n = W.shape
    total = 0.0
    for unit in range(K):
        lam = sum(W[unit, i] * x[unit * n + i] for i in range(n)) / math.sqrt(n)
        g = float(np.sign(lam)) if activation == "sign" else max(0.0, lam)
        c = 1.0 if activation == "sign" or unit < K // 2 else -1.0
        total += c * g
    return total / math.sqrt(K)


def random_instance(rng, B, P, K, n, weights):
    xi = rng.choice([-1, 1], size=(B, P, K * n)).astype(np.int8)
    y = rng.choice([-1, 1], size=(B, P)).astype(np.int8)
    if weights == "binary":
        w = rng.choice([-1.0, 1.0], size=(B, K, n))
    else:
        w = rng.standard_normal((B, K, n))
        w *= np.sqrt(n) / np.linalg.norm(w, axis=-1, keepdims=True)
    return xi, y, w


@pytest.mark.parametrize("weights", ["binary", "continuous"])
@pytest.mark.parametrize("activation,K", VARIANTS, ids=lambda v: str(v))
def test_field_and_errors_match_nested_loops(activation, K, weights):
    rng = np.random.default_rng(K)
    # n = 2 makes ties frequent: preactivations hit 0 and, for ReLU, all units go inactive.
    for n in (2, 5):
        xi, y, w = random_instance(rng, 3, 40, K, n, weights)
        wt = torch.tensor(w, dtype=torch.float64)
        delta = model.field(wt, torch.tensor(xi), activation).numpy()
        naive = np.array([[naive_field(w[b], xi[b, p].astype(float), activation)
                           for p in range(40)] for b in range(3)])
        np.testing.assert_allclose(delta, naive, atol=1e-12)
        naive_err = ((y * naive) <= 1e-12).sum(-1)
        got = model.errors(wt, torch.tensor(xi), torch.tensor(y), activation).numpy()
        if weights == "binary":
            np.testing.assert_array_equal(got, naive_err)
            # float32 path (the one solvers use) is exact on integers, ties included
            got32 = model.errors(wt.float(), torch.tensor(xi), torch.tensor(y), activation)
            np.testing.assert_array_equal(got32.numpy(), naive_err)


def test_ties_are_errors():
    # ReLU, K = 2, all units inactive -> Delta = 0 exactly -> an error for either label.
    w = torch.ones(1, 2, 3)
    xi = -torch.ones(1, 2, 6, dtype=torch.int8)
    y = torch.tensor([[1, -1]], dtype=torch.int8)
    assert model.field(w, xi, "relu").abs().max() == 0
    assert model.errors(w, xi, y, "relu").item() == 2
    # sign, K = 1, n even, preactivation 0 -> sign(0) = 0 -> error
    xs = torch.tensor([[[1, -1]]], dtype=torch.int8)
    assert model.errors(torch.ones(1, 1, 2), xs, torch.tensor([[1]]), "sign").item() == 1


def test_readout_and_mask():
    assert model.readout("relu", 4).tolist() == [1, 1, -1, -1]
    assert model.readout("sign", 3).tolist() == [1, 1, 1]
    rng = np.random.default_rng(0)
    xi, y, w = random_instance(rng, 2, 10, 3, 5, "binary")
    wt, xt, yt = torch.tensor(w).float(), torch.tensor(xi), torch.tensor(y)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, :4] = True
    full = model.stability(wt, xt, yt, "sign") <= 0
    assert model.errors(wt, xt, yt, "sign", mask).tolist() == full[:, :4].sum(-1).tolist()


def test_project_sphere():
    w = torch.randn(4, 3, 7, dtype=torch.float64) * 5
    p = model.project_sphere(w)
    torch.testing.assert_close((p**2).sum(-1), torch.full((4, 3), 7.0, dtype=torch.float64))


@pytest.mark.parametrize("activation,K", VARIANTS, ids=lambda v: str(v))
def test_flip_cache_equals_recomputation(activation, K):
    rng = np.random.default_rng(1)
    n, B, P = 5, 4, 30
    xi, y, w = random_instance(rng, B, P, K, n, "binary")
    xt, yt = torch.tensor(xi), torch.tensor(y)
    mask = torch.ones(B, P, dtype=torch.bool)
    mask[0, 20:] = False
    cache = model.flip_cache(torch.tensor(w), xt, yt, activation, mask)
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        unit = torch.randint(0, K, (B,), generator=g)
        index = torch.randint(0, n, (B,), generator=g)
        prop = model.flip_delta(cache, unit, index)
        trial = cache.w.clone()
        trial[torch.arange(B), unit, index] *= -1
        assert prop.wrong.tolist() == model.errors(trial, xt, yt, activation, mask).tolist()
        model.apply_flip(cache, prop, torch.rand(B, generator=g) < 0.5)
    torch.testing.assert_close(cache.h, model.dot(cache.w, xt), rtol=0, atol=0)
    assert cache.wrong.tolist() == model.errors(cache.w, xt, yt, activation, mask).tolist()


@pytest.mark.parametrize("K", [1, 2, 3, 5, 9])
def test_sum_smallest_is_the_sorted_prefix_sum(K):
    x = torch.randint(-3, 4, (200, K), generator=torch.Generator().manual_seed(K)).float()
    for v in range(K + 1):  # small integers: many ties, and exact sums in any order
        want = x.sort(-1).values[:, :v].sum(-1)
        assert torch.equal(model._sum_smallest(list(x.unbind(-1)), v), want)


def test_dot_shared_equals_dot_with_gradients():
    """The shared-pattern kernel (alphas of a seed on one matrix) against the plain one."""
    from relu_landscape.instances import InstanceId, make_batch

    ids = [InstanceId(0, "binary", "relu", "continuous", 2, 40, a, s)
           for s in range(3) for a in (0.2, 0.5, 1.0)]
    batch = model.to_torch(make_batch(ids))
    assert batch.xi_unique.shape[0] == 3 and batch.slot.tolist() == [0, 1, 2] * 3
    xu = model.unit_major(batch.xi_unique, 2, dtype=torch.float64)
    w = batch.w0.double().requires_grad_(True)
    shared = model.dot_shared(w, xu, batch.source, batch.slot)
    plain = model.dot(w, batch.xi)
    torch.testing.assert_close(shared, plain)
    weight = torch.randn(plain.shape, dtype=torch.float64) * batch.mask[..., None]
    (g_shared,) = torch.autograd.grad((shared * weight).sum(), w)
    (g_plain,) = torch.autograd.grad((plain * weight).sum(), w)
    torch.testing.assert_close(g_shared, g_plain)


@pytest.mark.parametrize("K", [1, 3])
def test_dot_rows_numbers_do_not_depend_on_the_batch(K, monkeypatch):
    """Continuous weights (rounding matters): every instance's dot_rows, shared
    matrices or one each, chunked or not, alone or with others, equals the product
    of its own row paired with itself bit for bit. A one-row bmm (one instance at
    K = 1) takes another BLAS path (a lone row differs from the same row in a pair),
    so dot_rows never makes one."""
    torch.manual_seed(0)
    n, P = 300 // K, 700
    xi = torch.randint(0, 2, (3, P, n * K), dtype=torch.int8) * 2 - 1
    w = torch.randn(9, K, n)
    source = torch.tensor([0, 0, 0, 0, 2, 2, 2, 2, 1])
    own = torch.cat([model.dot(w[b].expand(2, K, n), xi[source[b]].expand(2, P, n * K))[:1]
                     for b in range(9)])
    assert torch.equal(model.dot_rows(w, xi, source), own)
    assert torch.equal(model.dot_rows(w[8:], xi, source[8:]), own[8:])
    assert torch.equal(model.dot_rows(w, xi[source]), own)
    monkeypatch.setattr(model, "WORK_BYTES", 2 * (1 + 4) * P * n * K)  # chunks of two
    assert torch.equal(model.dot_rows(w, xi[source]), own)  # the last chunk: one row
    lone = model.dot(w[8:], xi[source[8:]])
    assert torch.equal(lone, own[8:]) == (K > 1)  # the path dot_rows avoids differs
