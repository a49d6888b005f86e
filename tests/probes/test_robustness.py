"""Input robustness: every pattern correct without noise, 1/2 of them for random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from relu_landscape.params import RobustnessParams
from relu_landscape.probes import robustness
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
