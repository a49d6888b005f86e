"""lp: exact separability of the perceptron against Cover's theorem."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from relu_landscape import model
from relu_landscape.config import load_config
from relu_landscape.errors import InvalidConfigError
from relu_landscape.instances import InstanceId, make_batch, stream_key
from relu_landscape.params import LPParams
from relu_landscape.solvers import lp


def cover(P: int, N: int) -> float:
    """P(separable) of P points in general position in N dims, through the origin."""
    return 2.0 ** (1 - P) * sum(math.comb(P - 1, k) for k in range(N))


def test_lp_matches_cover_at_small_n():
    """Gaussian patterns are in general position, where Cover's count is exact.

    N = 10 and P = 16, 20, 24 (P(separable) = 0.849, 0.500, 0.151); 240 instances
    each, pooled over the three: the summed solved count has binomial standard
    deviation sqrt(sum p(1-p) 240) = 12.9 around its mean 360; we allow 4 sigma
    (52), a false alarm rate of 6e-5. Each point alone must be within 4 of its own
    sigmas (about 0.09). A solver that missed 10% of separable instances, or a
    margin of 0.05 (in units of |w|/sqrt(N)), would fail the pooled check.
    """
    N, seeds = 10, 240
    ids = [InstanceId(7, "gaussian", "sign", "continuous", 1, N, P / N, s)
           for P in (16, 20, 24) for s in range(seeds)]
    batch = model.to_torch(make_batch(ids))
    res = lp.solve(batch, "sign", LPParams(), [stream_key(i, "lp") for i in ids])
    solved = res.solved.reshape(3, seeds).sum(1).numpy()
    p = np.array([cover(P, N) for P in (16, 20, 24)])
    sigma = np.sqrt(p * (1 - p) * seeds)
    assert np.all(np.abs(solved - p * seeds) <= 4 * sigma), (solved, p * seeds)
    assert abs(solved.sum() - (p * seeds).sum()) <= 4 * np.sqrt((sigma**2).sum())
    # the model, not the LP, decides; and solutions lie on the sphere
    assert torch.equal(res.errors == 0, res.solved)
    norms = res.weights.pow(2).sum(-1)
    torch.testing.assert_close(norms, torch.full((len(ids), 1), N * 1.0))


def test_lp_is_rejected_outside_the_perceptron(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[grid]\nK = {sign = [1, 3]}\nweights = ["continuous"]\nn = [11]\n'
                    'alpha = [0.5]\n[solver.continuous]\nname = "lp"\n')
    message = "'lp' trains only sign K = 1, linear K = 1 \\(kappa = 0\\), not sign K = 3"
    with pytest.raises(InvalidConfigError, match=message):
        load_config(spec)
