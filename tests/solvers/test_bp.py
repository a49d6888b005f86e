"""Reinforced BP (AMP form): its output factors against brute force, and the
binary-perceptron anchor."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from relu_landscape import model
from relu_landscape.instances import make_batch
from relu_landscape.solvers import SOLVERS, bp
from tests.solvers.conftest import batch_of, instances, small_params

Y = torch.tensor([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0]], dtype=torch.float64)


def _hermite(q: int):
    """Probabilists' Gauss-Hermite nodes and weights normalised to N(0, 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(q)
    return torch.from_numpy(nodes), torch.from_numpy(weights / math.sqrt(2 * math.pi))


def _derivatives(log_z, omega, unit, eps=1e-4):
    """Central differences of log Z in omega_unit (error O(eps^2) ~ 1e-8 relative)."""
    e = torch.zeros_like(omega)
    e[..., unit] = eps
    up, mid, down = log_z(omega + e), log_z(omega), log_z(omega - e)
    return (up - down) / (2 * eps), (up - 2 * mid + down) / eps**2


@pytest.mark.parametrize("kappa", [0.0, 0.6, -0.6, 2.0])
def test_sign_channel_matches_enumeration_of_unit_signs(kappa):
    """Z = sum over the 2^K unit signs of prod Phi(s_k u_k) [sigma Delta > kappa],
    Delta = sum s / sqrt(K): exact. kappa = 0.6 asks for all 3 votes at K = 3 (4 of
    5 at K = 5), -0.6 for 1 (2 of 5; still 1 of 1 at K = 1), 2.0 for 5 of 5 (none
    at K = 1, 3: Z = 0 there, no solution to integrate over, so those are skipped)."""
    g0 = torch.Generator().manual_seed(1)
    for K in (1, 3, 5):
        if kappa >= math.sqrt(K):
            continue
        omega = torch.randn(1, 6, K, generator=g0, dtype=torch.float64)
        V = torch.rand(1, K, generator=g0, dtype=torch.float64) + 0.2

        def log_z(o, V=V, K=K):
            uu = o / V.sqrt()[:, None, :]
            z = 0
            for s in itertools.product((-1.0, 1.0), repeat=K):
                s = torch.tensor(s, dtype=torch.float64)
                z = z + torch.special.ndtr(s * uu).prod(-1) * (
                    Y * s.sum() / math.sqrt(K) > kappa)
            return torch.log(z)

        g, dg = bp.sign_channel(omega, V, Y, model.sign_votes(K, kappa))
        for unit in range(K):
            want_g, want_dg = _derivatives(log_z, omega, unit)
            torch.testing.assert_close(g[..., unit], want_g, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(dg[..., unit], want_dg, rtol=1e-4, atol=1e-4)


def test_relu_channel_is_exact_when_the_other_unit_is_off():
    """K = 2 with the other unit far inactive (omega = -12 sd): Delta is
    c_l relu(lambda_l) alone, the pattern is right iff sigma c_l > 0 and lambda_l > 0,
    so Z = Phi(u_l) or 0 (made finite by the other unit's 1e-33 chance of being on)."""
    nodes, weights = _hermite(16)
    omega = torch.tensor([[[0.3, -12.0], [-0.5, -12.0]]], dtype=torch.float64)
    V = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    g, dg = bp.relu_channel(omega, V, y, nodes, weights)
    sv = math.sqrt(0.5)
    u = omega[0, :, 0] / sv
    r = torch.exp(-u * u / 2) / math.sqrt(2 * math.pi) / torch.special.ndtr(u)
    torch.testing.assert_close(g[0, :, 0], r / sv, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(dg[0, :, 0], -(r / 0.5) * (u + r), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("T", [0.0, 0.3, -0.2])
def test_relu_channel_k4_with_two_units_off_is_the_k2_channel(T):
    """K = 4 (readout +1, +1, -1, -1) with units 1 and 3 far inactive (omega = -40 sd):
    Delta is that of the K = 2 pair (0, 2), so their g and dg must be the K = 2
    channel's, which is exact up to quadrature. The K = 4 factor reaches that pair
    only through its "one other unit active" term (the sets of two or more active
    units carry weight ~Phi(-40)), so this pins that term at K > 2."""
    nodes, weights = _hermite(16)
    g0 = torch.Generator().manual_seed(1)
    pair = torch.randn(1, 6, 2, generator=g0, dtype=torch.float64)
    V = torch.rand(1, 4, generator=g0, dtype=torch.float64) + 0.2
    omega = torch.full((1, 6, 4), -40.0, dtype=torch.float64) * V.sqrt()[:, None, :]
    omega[..., [0, 2]] = pair
    g4, dg4 = bp.relu_channel(omega, V, Y, nodes, weights, T)
    g2, dg2 = bp.relu_channel(pair, V[:, [0, 2]], Y, nodes, weights, T)
    torch.testing.assert_close(g4[..., [0, 2]], g2, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(dg4[..., [0, 2]], dg2, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("omega", [(-0.31, -3.37), (0.5, -4.5)])
def test_relu_channel_k2_in_the_far_lower_tail(omega):
    """A pattern almost surely wrong (sigma = -1, the other unit ~9-12 sd off, Z ~ 1e-19
    and 1e-34): g of unit 0 against an adaptive quadrature of Z and dZ/d omega_0
    (scipy, rtol 1e-12). Phi written as (1 + erf) / 2 cancels to 0 there, and g read
    0 instead of -0.78 and -2.28; the tolerance is the 16-node rule's error on the kink
    of relu (measured up to 0.15 at 16 and 40 nodes on such cells)."""
    from scipy import integrate, special

    o0, o1 = omega
    V = torch.tensor([[0.354, 0.141]], dtype=torch.float64)
    s0, s1 = V[0].sqrt().tolist()

    def f(t: float) -> float:  # phi(t) P(right | lambda_0 = o0 + s0 t)
        return math.exp(-t * t / 2) * special.ndtr((o1 - max(o0 + s0 * t, 0.0)) / s1)

    def integral(h) -> float:
        return integrate.quad(h, -12, 12, epsabs=0, epsrel=1e-12, points=[-o0 / s0],
                              limit=200)[0]

    want = integral(lambda t: f(t) * t / s0) / integral(f)
    g, _ = bp.relu_channel(torch.tensor([[omega]], dtype=torch.float64), V,
                           torch.tensor([[-1.0]], dtype=torch.float64), *_hermite(16))
    assert abs(float(g[0, 0, 0]) - want) < 0.2


def test_bp_solves_binary_perceptron_at_alpha_0_7_n_1001():
    """Reinforced BP reaches alpha ~ 0.75 at N ~ 1000 (Braunstein & Zecchina 2006;
    measured here: alpha_50 = 0.743, 7 of 8 solved at 0.72). With 8 instances at
    alpha = 0.7 we demand at least 7: were the solve rate only 1/2 there
    (alpha_50 <= 0.7), that would happen with probability P(>= 7 of 8) = 0.035."""
    torch.set_num_threads(1)
    ids = instances("sign", "binary", 1, (0.7,), seeds=range(8), n=1001)
    batch, keys = batch_of(ids, "bp")
    res = SOLVERS["bp"](batch, "sign", small_params("bp", max_steps=1000), keys)
    assert int(res.solved.sum()) >= 7


@pytest.mark.parametrize("kappa", [0.0, 0.4, -0.4])
def test_relu_channel_k2_matches_a_grid_integral(kappa):
    """K = 2 is exact up to quadrature, at any margin: the pattern is right iff
    sigma (c_1 relu(lambda_1) + c_2 relu(lambda_2)) > kappa s_g sqrt(2). Brute force:
    the indicator on a 1200 x 1200 midpoint grid of (lambda_l, lambda_k) over +-12 sd
    (step 0.02: the threshold's jump costs O(step) ~ 0.005), derivatives by Stein's
    identity. Gauss-Hermite with 40 nodes on an integrand with kinks errs by O(1/Q):
    measured at most 0.008 in g and dg at the three margins, where the channel without
    its threshold (T = 0) errs by 0.15 to 2.6; a Gaussian stand-in for the other
    unit's truncated normal erred by up to 0.45 in g and 1.0 in dg at kappa = 0."""
    nodes, weights = _hermite(40)
    g0 = torch.Generator().manual_seed(0)
    omega = torch.randn(1, 6, 2, generator=g0, dtype=torch.float64)
    V = torch.rand(1, 2, generator=g0, dtype=torch.float64) + 0.2
    T = model.margin_threshold("relu", kappa) * math.sqrt(2)
    g, dg = bp.relu_channel(omega, V, Y, nodes, weights, T)
    c = (1.0, -1.0)
    sd = V[0].sqrt()
    t = torch.linspace(-12, 12, 1201, dtype=torch.float64)
    t = (t[1:] + t[:-1]) / 2  # midpoints
    w = torch.exp(-t * t / 2) / math.sqrt(2 * math.pi) * (t[1] - t[0])
    for j in range(2):
        k = 1 - j
        for mu in range(Y.shape[1]):
            lam_j = omega[0, mu, j] + sd[j] * t  # rows
            lam_k = omega[0, mu, k] + sd[k] * t  # columns
            total = c[j] * torch.relu(lam_j)[:, None] + c[k] * torch.relu(lam_k)[None, :]
            f = ((Y[0, mu] * total > T).to(w.dtype) @ w)  # P(right | lambda_j)
            z = (f * w).sum()
            want_g = (f * w * t).sum() / sd[j] / z
            want_dg = (f * w * (t * t - 1)).sum() / sd[j] ** 2 / z - want_g**2
            torch.testing.assert_close(g[0, mu, j], want_g, rtol=0, atol=0.02)
            torch.testing.assert_close(dg[0, mu, j], want_dg, rtol=0, atol=0.02)


def test_relu_factor_beyond_the_mixture_limit_solves_easy_instances():
    """K = 8 > MAX_MIXTURE_K takes the one-Gaussian factor; alpha = 0.2 is easy."""
    K = 8
    assert K > bp.MAX_MIXTURE_K
    ids = instances("relu", "binary", K, (0.2,), seeds=(0, 1))
    batch, keys = batch_of(ids, "bp")
    res = SOLVERS["bp"](batch, "relu", small_params("bp"), keys)
    assert res.solved.all()


def test_mixed_alpha_batch_gives_each_instance_its_result_alone():
    """Regression: the patterns of a larger alpha are padding for a smaller one on the
    shared pattern matrix, and their output factor underflows (Z = 0, g = inf) once
    the marginals polarise; masking them by a product (0 * inf = NaN) poisoned the
    smaller instance. ReLU K = 2, N = 50, alpha 0.5 batched with 2.0, reinforcement
    rate 0.02 (fast polarisation) and 100 sweeps reproduce it: with the product, seed
    0 ends with 17 errors of 25 in the batch (1 alone) and seed 3 is left with 14
    (solved alone). Each instance at alpha 0.5 must match its run without padding:
    the same solved flag and at most one error more (the longer pattern sums may round
    differently; measured: identical on seeds 0-3)."""
    torch.set_num_threads(1)
    mixed_ids = instances("relu", "binary", 2, (0.5, 2.0), seeds=(0, 3), n=25)
    small = [i for i in mixed_ids if i.alpha == 0.5]
    params = small_params("bp", max_steps=100, rate=0.02)
    runs = []
    for ids in (mixed_ids, small):
        batch, keys = batch_of(ids, "bp")
        res = SOLVERS["bp"](batch, "relu", params, keys)
        runs.append({i: (bool(ok), int(e)) for i, ok, e in
                     zip(ids, res.solved, res.errors, strict=True)})
    mixed, alone = runs
    for i in small:
        assert mixed[i][0] == alone[i][0], i
        assert mixed[i][1] <= alone[i][1] + 1, i


@pytest.mark.parametrize("activation,K,kappa", [("sign", 3, 0.6), ("relu", 2, 0.3)])
def test_bp_trains_with_a_margin(activation, K, kappa):
    """N = 25 K. sign K = 3 at kappa = 0.6 needs all 3 votes (``model.sign_votes``), so
    each unit must store every pattern alone: alpha = 0.1 is 0.3 patterns per weight
    of a unit, easy; ReLU K = 2 at kappa = 0.3 (Delta > 0.175) at alpha = 0.1 too.
    alpha = 2 cannot be stored at either margin: a pattern is stored by a random w with
    probability <= 1/2, so the expected number of solutions is <= 2^(N - P) (ReLU:
    2^(50 - 100); sign: already per unit, 2^(25 - 150)). Every instance bp calls solved
    is judged by
    the model at the margin; with rate 0.03 the easy ones take at most 6 sweeps
    (measured, seeds 0-3). BP at kappa = 0 on the same sign instances solves them all,
    and none of its solutions has the unanimous vote (measured: 0 of 4), so the
    margin is what the messages were trained on."""
    torch.set_num_threads(1)
    ids = instances(activation, "binary", K, (0.1,), seeds=range(4), n=25)
    ids += instances(activation, "binary", K, (2.0,), seeds=(0,), n=25)
    batch, keys = batch_of(ids, "bp")
    params = small_params("bp", max_steps=100, rate=0.03)
    margin = model.to_torch(make_batch(ids), kappa=kappa)
    res = SOLVERS["bp"](margin, activation, params, keys)
    assert res.solved.tolist() == [True] * 4 + [False]
    assert torch.equal(res.errors, margin.errors(res.weights, activation))
    if activation == "sign":
        plain = SOLVERS["bp"](batch, activation, params, keys)
        assert plain.solved[:4].all()
        assert (margin.errors(plain.weights, activation)[:4] > 0).all()
