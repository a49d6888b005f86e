"""lp: exact separability of the perceptron against Cover's theorem."""

from __future__ import annotations

import itertools
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
    message = "'lp' trains only sign K = 1, linear K = 1 \\(kappa >= 0\\), not sign K = 3"
    with pytest.raises(InvalidConfigError, match=message):
        load_config(spec)


def test_gardner_margin_on_a_rank_deficient_instance():
    """Four +-1 patterns at N = 3, all labelled +1: (1, 1, 1), (1, -1, -1), (1, 1, -1),
    (1, -1, 1) average to (1, 0, 0), which is on every pattern's side, so the largest
    margin is 1 at u = (1, 0, 0). scipy 1.17's optimize.nnls returns a non-optimal point on
    this matrix (rank 3 with 4 columns), giving a margin of -0.35."""
    xi = np.array([[1, 1, 1], [1, -1, -1], [1, 1, -1], [1, -1, 1]], dtype=float)
    u, m = lp.gardner_margin(xi, np.ones(4))
    assert math.isclose(m, 1.0, rel_tol=1e-12)
    np.testing.assert_allclose(u, [1.0, 0.0, 0.0], atol=1e-12)


def _margin_by_active_sets(g: np.ndarray) -> float:
    """Largest margin max_{|u| = 1} min_mu g_mu . u by enumeration (0 if not positive).

    The optimum u is z / |z|, z the point of least norm in the convex hull of the rows
    g_mu, and z is the least-norm point of the affine hull of some <= N of them. For
    every such subset: that point (a KKT system), kept iff inside the subset's hull
    (weights >= 0) and every row has g . z >= |z|^2, which certifies it as the hull's
    least-norm point."""
    P, N = g.shape
    for size in range(1, min(P, N) + 1):
        for rows in itertools.combinations(range(P), size):
            gs = g[list(rows)]
            kkt = np.block([[gs @ gs.T, np.ones((size, 1))], [np.ones((1, size)), 0.0]])
            rhs = np.zeros(size + 1)
            rhs[-1] = 1.0
            lam = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:size]
            z = lam @ gs
            norm2 = z @ z
            if np.all(lam >= -1e-12) and norm2 > 1e-18 and np.all(g @ z >= norm2 - 1e-9):
                return math.sqrt(norm2)
    return 0.0


def test_gardner_margin_against_enumeration_of_active_sets():
    """N = 3 .. 5, P = 1 .. 2N + 1 random +-1 patterns (duplicates included), 60
    instances: separability (margin > 0) agrees with the LP (HiGHS), and on the
    separable ones the NNLS margin equals the enumeration's to 1e-9."""
    rng = np.random.default_rng(0)
    separable = 0
    for _ in range(60):
        N = int(rng.integers(3, 6))
        P = int(rng.integers(1, 2 * N + 2))
        xi = rng.choice([-1.0, 1.0], size=(P, N))
        y = rng.choice([-1.0, 1.0], size=P)
        u, m = lp.gardner_margin(xi, y)
        assert (m > 0) == (lp.max_margin(xi, y)[1] > 1e-9)
        if m > 0:  # (the enumeration of a non-separable instance tries every subset)
            separable += 1
            assert math.isclose(m, _margin_by_active_sets(y[:, None] * xi), abs_tol=1e-9)
            assert math.isclose(np.linalg.norm(u), 1.0)
    assert 10 <= separable <= 50  # both kinds of instance were tested


def _solved_at_margin(N: int, alpha: float, seeds: int, kappa: float = 0.5):
    ids = [InstanceId(5, "binary", "linear", "continuous", 1, N, alpha, s)
           for s in range(seeds)]
    batch = model.to_torch(make_batch(ids), kappa=kappa)
    res = lp.solve(batch, "linear", LPParams(), [stream_key(i, "lp") for i in ids])
    # the model judges at the margin; solutions lie on the sphere
    assert torch.equal(res.errors == 0, res.solved)
    torch.testing.assert_close(res.weights.pow(2).sum(-1), torch.full((seeds, 1), N * 1.0))
    return int(res.solved.sum())


def test_lp_at_a_margin_brackets_gardner_capacity():
    """Linear unit, K = 1, kappa = 0.5: solvable iff the largest margin exceeds 0.5, up
    to Gardner's alpha_c(0.5) = 1 / int_{-0.5}^inf Dt (t + 0.5)^2 = 0.9612. At N = 100
    the crossing's width is ~ alpha_c sqrt(2 / (alpha_c N)) ~ 0.14 (Cover's
    binomial at kappa = 0, scaled), so alpha_c -/+ 0.22 lies 1.5 widths out: measured
    40/40 solved at 0.75 and 0/40 at 1.2 (25/40 at 0.96). Ignoring the margin
    (capacity 2) would solve every instance at 1.2; a margin twice too large
    (alpha_c(1.0) = 0.52) none at 0.75."""
    assert _solved_at_margin(100, 0.75, 10) == 10
    assert _solved_at_margin(100, 1.2, 10) == 0


def test_lp_refuses_negative_margins_and_sign_units_ignore_small_ones():
    """kappa < 0: non-convex, refused with the reason. Sign units: Delta = +-1, so at
    kappa = 0.5 the instances and solutions are those of kappa = 0; at kappa = 1 no
    pattern can be stored."""
    ids = [InstanceId(7, "gaussian", "sign", "continuous", 1, 10, 2.0, s) for s in range(8)]
    keys = [stream_key(i, "lp") for i in ids]
    runs = {k: lp.solve(model.to_torch(make_batch(ids), kappa=k), "sign", LPParams(), keys)
            for k in (0.0, 0.5, 1.0)}
    assert 0 < int(runs[0.0].solved.sum()) < 8
    assert torch.equal(runs[0.5].solved, runs[0.0].solved)
    assert torch.equal(runs[0.5].weights, runs[0.0].weights)
    assert not runs[1.0].solved.any()
    with pytest.raises(ValueError, match=r"kappa >= 0\); got sign K = 1, kappa = -0.5"):
        lp.solve(model.to_torch(make_batch(ids), kappa=-0.5), "sign", LPParams(), keys)


@pytest.mark.slow
def test_lp_at_a_margin_is_solvable_half_the_time_at_gardner_capacity():
    """N = 200, kappa = 0.5, 40 instances at alpha = 0.96 ~ alpha_c(0.5) = 0.9612: the
    solvable fraction is 1/2 up to finite-size effects (measured 20/40, and 33/40 at
    0.9, 5/40 at 1.03). We accept 10 .. 30: 3.2 binomial standard deviations (sd 3.16) around 20.
    14 to 50 s on the shared 2-core machine, depending on its load."""
    assert 10 <= _solved_at_margin(200, 0.96, 40) <= 30
