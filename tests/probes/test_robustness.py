"""Input robustness: every pattern correct without noise, 1/2 of them for random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relu_landscape.params import RobustnessParams
from relu_landscape.probes import robustness
from relu_landscape.solvers.base import random_block
from tests.probes.conftest import keys_for, solved


def run(activation, K, n, weights, alpha, inputs="binary", **params):
    batch, sol, ids = solved(activation, K, n, weights, alpha, inputs=inputs)
    rows = robustness.probe(batch, sol, activation=activation, weights=weights,
                            params=RobustnessParams(**params),
                            keys=keys_for(ids, "robustness"))
    G = len(rows.instance) // len(ids)
    return {k: v.reshape(len(ids), G) for k, v in rows.columns.items()}


@pytest.mark.parametrize("activation,K", [("sign", 3), ("relu", 4)])
def test_flip_noise_from_one_to_half(activation, K):
    # p = 0.5 makes every input a fresh random vector, unrelated to its label
    cols = run(activation, K, 15, "continuous", 0.5, draws=100, points=3, p_max=0.5)
    r, se = cols["robustness"], cols["robustness_stderr"]
    assert (r[:, 0] == 1).all() and (cols["noise"] == "flip").all()
    assert (r[:, 1] < 1).all() and (r[:, 2] < r[:, 1]).all()
    # correct = 1 - error; random inputs err with 1/2 plus half the ties (ReLU: all
    # units inactive, probability 2^-K). Pooled over instances, within 4 stderr.
    expected = 0.5 - (2.0 ** -(K + 1) if activation == "relu" else 0.0)
    assert abs(r[:, 2].mean() - expected) < 4 * np.sqrt((se[:, 2] ** 2).sum()) / len(se)


def test_gaussian_inputs_use_gaussian_noise():
    cols = run("relu", 2, 20, "continuous", 0.3, inputs="gaussian", draws=50, points=3,
               p_max=1.0)
    assert (cols["noise"] == "gaussian").all()
    r, se = cols["robustness"], cols["robustness_stderr"]
    assert (r[:, 0] == 1).all()
    assert (r[:, 2] < r[:, 1] + 4 * np.hypot(se[:, 1], se[:, 2])).all()
    assert (r[:, 2] < 1).all()


@pytest.mark.parametrize("activation,K", [("sign", 3), ("relu", 2)])
def test_noisy_fields_are_the_flipped_patterns_times_the_weights(activation, K):
    """The fields summed in the noise's layout against the flipped patterns built
    explicitly (input i flipped where u < p) and multiplied in float64; a slice of the
    patterns reads the same numbers as the whole."""
    batch, sol, ids = solved(activation, K, 15, "continuous", 0.5)
    keys, S, p = keys_for(ids, "robustness"), 5, 0.2
    P, N = batch.y.shape[1], batch.xi_unique.shape[2]
    h = robustness.noisy_fields(batch, sol, keys, 3, S, p)
    u = random_block(keys, 3, (P, S, N), torch.device("cpu"))
    x = batch.xi_unique[batch.source].double()[:, :, None]
    flipped = torch.where(u < p, -x, x).unflatten(-1, (K, N // K))
    want = torch.einsum("bpski,bki->bspk", flipped, sol.double())
    assert 0.15 < float((u < p).double().mean()) < 0.25
    torch.testing.assert_close(h.double(), want, rtol=1e-5, atol=1e-4)
    part = robustness.noisy_fields(batch, sol, keys, 3, S, p, slice(2, 7))
    assert torch.equal(part, h[:, :, 2:7])
