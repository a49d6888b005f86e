"""Local energy: 0 at zero perturbation, rising, about 1/2 for very large perturbations."""

from __future__ import annotations

import numpy as np
import pytest

from relu_landscape.params import LocalEnergyParams
from relu_landscape.probes import local_energy
from tests.probes.conftest import keys_for, solved

# (activation, K, n, weights, alpha)
CASES = [("sign", 3, 15, "binary", 0.3), ("relu", 4, 15, "continuous", 0.5),
         ("sign", 3, 15, "continuous", 0.5)]


def run(case, **params):
    activation, K, n, weights, alpha = case
    batch, sol, ids = solved(activation, K, n, weights, alpha)
    rows = local_energy.probe(batch, sol, activation=activation, weights=weights,
                              params=LocalEnergyParams(**params),
                              keys=keys_for(ids, "local_energy"))
    G = len(rows.instance) // len(ids)
    return {k: v.reshape(len(ids), G) for k, v in rows.columns.items()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[3]}-K{c[1]}")
def test_zero_then_rising(case):
    cols = run(case, draws=200, points=5, s_max=1.0, d_max=0.2)
    E, se = cols["local_energy"], cols["local_energy_stderr"]
    assert (E[:, 0] == 0).all() and (cols["d"][:, 0] < 1e-6).all()
    assert (E[:, 1:] > 0).all()
    # non-decreasing along the grid, within 4 standard errors of each difference
    step_se = np.sqrt(se[:, 1:] ** 2 + se[:, :-1] ** 2)
    assert (np.diff(E, axis=1) > -4 * step_se).all()
    assert (E[:, -1] - E[:, 1] > 4 * step_se[:, 0]).all()
    assert (np.diff(cols["d"], axis=1) > 0).all()  # larger noise, farther away
    np.testing.assert_allclose(cols["overlap"], 1 - 2 * cols["d"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[3]}-K{c[1]}")
def test_about_half_for_huge_perturbations(case):
    activation, K = case[0], case[1]
    cols = run(case, draws=400, points=2, s_max=1e4, d_max=0.5)
    E, se = cols["local_energy"][:, -1], cols["local_energy_stderr"][:, -1]
    # far away the network is unrelated to the labels: error 1/2, plus half of the
    # ties, which for ReLU units (continuous weights) are the all-inactive patterns,
    # probability 2^-K. Pooled over instances, within 4 standard errors.
    expected = 0.5 + (2.0 ** -(K + 1) if activation == "relu" else 0.0)
    pooled_se = np.sqrt((se**2).sum()) / len(se)
    assert abs(E.mean() - expected) < 4 * pooled_se
    assert abs(cols["overlap"][:, -1]).max() < 0.2
