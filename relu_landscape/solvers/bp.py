"""Reinforced belief propagation for binary weights, in its TAP / AMP form
(docs/science.md §3): the perceptron and tree committees of sign or ReLU units.

Braunstein & Zecchina, PRL 96, 030201 (2006) (reinforcement); the committee's factor
graph as in Baldassi et al., PNAS 113, E7655 (2016). For N large the cavity messages
m_{li -> mu} differ from the marginals m_li by O(1/sqrt n); expanding them to that
order (generalised AMP, Rangan 2011) turns the O(P N) message work of one sweep into
two matrix products over the shared pattern layout (``model.dot_shared`` and its
transpose), with the usual Onsager reaction terms:

- unit fields: omega_mu,l = sum_i xi_mu,li m_li / sqrt n - V_l g_mu,l (previous g),
  cavity variance V_l = sum_i (1 - m_li^2) / n;
- output factor: g = d log Z_mu / d omega_l, dg = d^2 log Z_mu / d omega_l^2, with
  Z_mu the probability that pattern mu is stored, sigma_mu Delta > kappa s_g, when
  lambda_k ~ N(omega_k, V_k) independently (``sign_channel``: the margin sets the vote
  needed, ``model.sign_votes``; ``relu_channel``: a threshold on sum_k c_k relu);
- weight fields: H_li = sum_mu xi_mu,li g_mu,l / sqrt n + A_l m_li + ext_li, with
  A_l = -sum_mu dg_mu,l / n; m_li = tanh(H_li) (damped);
- reinforcement: ext = gamma_t H, gamma_t = 1 - exp(-rate t), a growing external field
  along the current marginals that polarises them (soft decimation).

After every sweep the weights W = sign(H) (sign(0) = +1) are judged with the true
activation; the first zero-error W of an instance is kept. Everything is float32 but
the output factor (float64, it works with probabilities far in the tails). The run is
deterministic: it starts from m = init_scale W0, so the keys are not used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from relu_landscape import model
from relu_landscape.model import TorchBatch
from relu_landscape.params import BPParams
from relu_landscape.solvers.base import (
    SolveResult,
    back_shared,
    check_due,
    compaction,
    finish,
    shared_rows,
)

# above this K the 2^(K-1)-component mixture of the ReLU factor is replaced by one
# Gaussian for the sum of all the other units (memory: B P 2^(K-1) Q)
MAX_MIXTURE_K = 6
_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _phi_ratio(u: Tensor) -> Tensor:
    """phi(u) / Phi(u), stable in both tails (erfcx)."""
    return _SQRT_2_OVER_PI / torch.special.erfcx(-u / _SQRT2)


def _count_pmf(p: Tensor) -> Tensor:
    """For each unit l, the law of the number of +1 units among the others.

    p: [..., K] probabilities of +1; returns [..., K, K] (last axis: count 0 .. K-1).
    """
    K = p.shape[-1]
    out = []
    for l in range(K):  # noqa: E741 (unit index l, as in c_l and lambda_l)
        pmf = torch.zeros(*p.shape[:-1], K, dtype=p.dtype, device=p.device)
        pmf[..., 0] = 1
        for k in range(K):
            if k == l:
                continue
            pk = p[..., k : k + 1]
            pmf = pmf * (1 - pk) + torch.nn.functional.pad(pmf[..., :-1], (1, 0)) * pk
        out.append(pmf)
    return torch.stack(out, -2)


def sign_channel(omega: Tensor, V: Tensor, y: Tensor,
                 need: int | None = None) -> tuple[Tensor, Tensor]:
    """(g, dg) [B, P, K] of a vote of K sign units that needs ``need`` of them on the
    side of the label (``model.sign_votes``: the majority (K + 1)/2 at kappa = 0, more
    or fewer with a margin).

    omega: [B, P, K]; V: [B, K]; y: [B, P] labels. Unit l is +1 with probability
    Phi(u_l), u_l = omega_l / sqrt V_l; given its sign, the pattern is right with
    probability A_+ or A_- from the other units' count c (exact, Poisson-binomial):
    sigma = +1 needs c + [l is +1] >= need, sigma = -1 needs c + [l is +1] <= K - need.
    Z = Phi(u) A_+ + Phi(-u) A_-, Z' = phi(u) (A_+ - A_-) / sqrt V, Z'' = -u Z'/sqrt V;
    written with erfcx so that no tail underflows.
    """
    K = omega.shape[-1]
    need = (K + 1) // 2 if need is None else need
    sv = V.sqrt()[:, None, :]
    u = omega / sv
    cdf = _count_pmf(torch.special.ndtr(u)).cumsum(-1)  # [B, P, K, K]: P(c <= k)

    def at_most(k: int) -> Tensor:  # P(c <= k), c in 0 .. K - 1
        if k < 0:
            return torch.zeros_like(cdf[..., 0])
        return cdf[..., k] if k < K - 1 else torch.ones_like(cdf[..., 0])

    pos = y[..., None] > 0
    a_up = torch.where(pos, 1 - at_most(need - 2), at_most(K - need - 1))
    a_dn = torch.where(pos, 1 - at_most(need - 1), at_most(K - need))
    e = torch.special.erfcx(-u / _SQRT2) * a_up + torch.special.erfcx(u / _SQRT2) * a_dn
    g = (a_up - a_dn) * _SQRT_2_OVER_PI / (sv * e.clamp(min=1e-300))
    return g, -(u / sv) * g - g * g


def relu_channel(
    omega: Tensor, V: Tensor, y: Tensor, nodes: Tensor, weights: Tensor,
    threshold: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """(g, dg) [B, P, K] of sigma * sum_k c_k relu(lambda_k) > threshold (a tie is
    wrong); threshold = kappa s_g sqrt(K) puts the margin on Delta
    (``model.margin_threshold``).

    For unit l the others' sum R_l = sum_{k != l} c_k relu(lambda_k) is a mixture over
    which of them are active (a small convolution: 2^(K-1) components). Inactive
    units contribute exactly 0 (probability Phi(-u_k)). With every other unit
    inactive the pattern is right iff sigma c_l > 0 and lambda_l > 0 (closed form);
    with exactly one active, its truncated normal is used exactly (so K = 2 is exact);
    with two or more, their sum is replaced by a Gaussian with the truncated normals'
    mean and variance (the central-limit step). For K > ``MAX_MIXTURE_K`` the whole of
    R_l is that Gaussian (no tie term). The expectation over
    lambda_l ~ N(omega_l, V_l) is a Gauss-Hermite sum (``nodes``, ``weights``:
    probabilists'), its omega-derivatives come from Stein's identity on the same
    nodes. Measured against a fine-grid integral at K = 2, replacing the one active
    unit by a Gaussian too gave errors up to 25% in g and 4x in dg.
    """
    T = threshold
    B, P, K = omega.shape
    c = model.readout("relu", K, device=omega.device, dtype=omega.dtype)
    sv = V.sqrt()[:, None, :]
    u = omega / sv
    r = _phi_ratio(u)
    p_on = torch.special.ndtr(u)
    mu_on = omega + sv * r  # truncated normal mean and variance of active units
    var_on = (sv * sv * (1 - r * (u + r))).clamp(min=0)
    sig = y[..., None]  # [B, P, 1]
    # the active sets among the others given a Gaussian sum: two or more units (a lone
    # active unit is integrated exactly below), or, beyond MAX_MIXTURE_K, all of them
    sets = ([[(s >> j) & 1 for j in range(K - 1)]
             for s in range(1, 2 ** (K - 1)) if s & (s - 1)]
            if K <= MAX_MIXTURE_K else [[1] * (K - 1)])
    subsets = torch.tensor(sets, dtype=omega.dtype, device=omega.device).reshape(-1, K - 1)
    act = torch.addcmul(omega[..., None], sv[..., None], nodes).relu_()  # relu(lambda) [B, P, K, Q]
    # E f, and by Stein's identity d/d omega E f and d^2/d omega^2 E f (times V, V^2)
    stein = torch.stack((weights, weights * nodes, weights * (nodes * nodes - 1)), -1)
    Z = torch.zeros_like(omega)
    Z1 = torch.zeros_like(omega)
    Z2 = torch.zeros_like(omega)
    for l in range(K):  # noqa: E741 (unit index l, as in c_l and lambda_l)
        others = [k for k in range(K) if k != l]
        po, mo, vo = (x[..., others] for x in (p_on, mu_on, var_on))
        co = c[others]
        # gap = sigma c_l relu(lambda_l) - T [B, P, Q]: right iff sigma R_l > -gap
        gap = sig * c[l] * act[:, :, l, :]
        gap = gap - T if T else gap
        if K > MAX_MIXTURE_K:  # central limit over all the others, no mixture
            mo, vo = po * mo, po * (vo + mo * mo) - (po * mo) ** 2
            po = torch.ones_like(po)
        # f [B, P, Q]: P(right and some other unit active | lambda_l); first the sets
        # of two or more (Gaussian sum), then each lone active unit (exact)
        if len(sets):
            # weight, mean and variance of every such active set: [B, P, C]
            logw = torch.log(po.clamp(min=1e-300)) @ subsets.T + torch.log(
                (1 - po).clamp(min=1e-300)
            ) @ (1 - subsets).T
            mean = (mo * co) @ subsets.T
            sd = (vo @ subsets.T).clamp(min=1e-12).sqrt()
            arg = (gap[:, :, None, :] + sig[..., None] * mean[..., None]) / sd[..., None]
            f = (torch.special.ndtr(arg) * logw.exp()[..., None]).sum(-2)  # [B, P, Q]
        else:
            f = torch.zeros_like(gap)
        off = (1 - po).clamp(min=0)
        alone = others if K <= MAX_MIXTURE_K else []  # beyond: in the one Gaussian
        gap_neg = gap.clamp(max=0) if alone else None
        for j, k in enumerate(alone):
            # only unit k active, exactly: P(lambda_k > 0 and right | lambda_l) times
            # prod_{i != k} (1 - p_i) for the rest being off. With sigma c_k > 0 right
            # iff lambda_k > -min(gap, 0), else iff 0 < lambda_k < gap. Phi(x) =
            # erfc(-x / sqrt 2) / 2 (no cancellation in the lower tail), the affine map
            # to the erfc's argument in one pass over [B, P, Q]
            up = sig * c[k] > 0
            r = 1 / (_SQRT2 * sv[:, :, k, None])
            ok = omega[..., k, None]
            z = torch.addcmul(torch.where(up, -ok, ok) * r, torch.where(up, gap_neg, gap), -r)
            below = torch.where(up, 0.0, torch.special.erfc(ok * r))  # 2 Phi(-omega_k / sd_k)
            rest = torch.cat([off[..., :j], off[..., j + 1:]], -1).prod(-1)
            f = f.addcmul((torch.special.erfc(z) - below).clamp(min=0), rest[..., None] / 2)
        Z[..., l], z1, z2 = (f @ stein).unbind(-1)
        Z1[..., l] = z1 / sv[:, :, l]
        Z2[..., l] = z2 / sv[:, :, l] ** 2
        # every other unit inactive: right iff s relu(lambda_l) > T, s = sigma c_l:
        # T >= 0: s > 0 and lambda_l > T; T < 0: s > 0 always, s < 0 iff
        # lambda_l < -T. Each a one-sided P(d lambda_l > d b) = Phi(v), with
        # v = d (omega_l - b) / sqrt V_l; "always" is v = 50, where Phi = 1, phi = 0
        w_none = off.prod(-1)
        side = sig[..., 0] * c[l]
        if T >= 0:
            d, ok = 1.0, (side > 0).to(omega.dtype) * w_none
            ul = u[..., l] if T == 0 else (omega[..., l] - T) / sv[:, :, l]
        else:
            d, ok = side, w_none
            ul = torch.where(side > 0, 50.0, (-T - omega[..., l]) / sv[:, :, l])
        d1 = ok * d * torch.exp(-0.5 * ul * ul) / math.sqrt(2 * math.pi) / sv[:, :, l]
        Z[..., l] += ok * torch.special.ndtr(ul)
        Z1[..., l] += d1
        Z2[..., l] += -ul / sv[:, :, l] * d * d1
    Z = Z.clamp(min=1e-300)
    g = Z1 / Z
    return g, Z2 / Z - g * g


def solve(
    batch: TorchBatch,
    activation: str,
    params: BPParams,
    keys: list[int],
    *,
    progress=None,
    on_step: Callable[[int], None] | None = None,
) -> SolveResult:
    """Iterate until sign(H) has zero errors or ``max_steps`` sweeps have passed.

    steps: sweeps until solved (or the budget). ``on_step(t)`` is called after every
    sweep (the benchmarks time sweeps with it).
    """
    started = time.perf_counter()
    B, K, n = batch.w0.shape
    dev = batch.w0.device
    xu, source, slot = batch.shared_patterns()
    xu = model.unit_major(xu, K)
    y = batch.y.to(torch.float64)
    mask = batch.mask[..., None]
    nodes, weights = (
        torch.from_numpy(a).to(dev)
        for a in np.polynomial.hermite_e.hermegauss(params.quadrature)
    )
    weights = weights / math.sqrt(2 * math.pi)
    root_n = math.sqrt(n)
    # the margin: the vote a sign committee needs, or the ReLU threshold on
    # sum_l c_l relu(lambda_l) = sqrt(K) Delta; and the same margin judging sign(H)
    need = model.sign_votes(K, batch.kappa)
    relu_threshold = model.margin_threshold(activation, batch.kappa) * math.sqrt(K)
    threshold = model.margin_threshold(activation, batch.kappa, n, K)
    m = params.init_scale * batch.w0
    H = torch.zeros_like(m)
    ext = torch.zeros_like(m)
    g = torch.zeros(B, y.shape[1], K, dtype=torch.float64, device=dev)
    best = batch.w0.clone()
    solved = torch.zeros(B, dtype=torch.bool, device=dev)
    steps = torch.full((B,), params.max_steps, dtype=torch.int64, device=dev)
    label, valid = batch.y, batch.mask
    # the results of all B instances; the state above holds the rows ``index`` only
    # once finished instances are dropped (``base.compaction``)
    index = torch.arange(B, device=dev)
    out_w, out_steps = best.clone(), steps.clone()
    for t in range(params.max_steps):
        V = (1 - m * m).mean(-1).to(torch.float64).clamp(min=1e-10)  # [B, K]
        h = model.dot_shared(m, xu, source, slot).to(torch.float64) / root_n
        omega = h - V[:, None, :] * g
        if activation == "sign":
            g, dg = sign_channel(omega, V, y, need)
        else:
            g, dg = relu_channel(omega, V, y, nodes, weights, relu_threshold)
        # where, not a product: a pattern outside the instance (padding, or a larger
        # alpha's patterns on a shared matrix) may give inf or NaN, and 0 * inf = NaN
        # leaked into the instance (measured: K = 2, N = 1000, alpha = 0.45 solved
        # alone, 283 errors when batched with alpha = 0.6 on the same patterns)
        g = torch.where(mask, g, 0.0)
        dg = torch.where(mask, dg, 0.0)
        A = (-dg.sum(1) / n).to(m.dtype)  # [B, K]
        H = back_shared(g.to(m.dtype), xu, source, slot) / root_n
        H = H + A[..., None] * m + ext
        ext = (1 - math.exp(-params.rate * (t + 1))) * H
        m = params.damping * m + (1 - params.damping) * torch.tanh(H)
        w = torch.where(H >= 0, 1.0, -1.0).to(m.dtype)
        hw = model.dot_shared(w, xu, source, slot)
        stab = label * model.output_sum(hw, activation)
        wrong = model.is_wrong(stab, threshold) & valid
        newly = (wrong.sum(-1) == 0) & ~solved
        best = torch.where(newly[:, None, None], w, best)
        steps = torch.where(newly, t + 1, steps)
        solved |= newly
        done, keep = compaction(solved) if check_due(t, 1) else (False, None)
        if done:
            break
        if keep is not None:
            gone = index[solved]  # finished: their result is final
            out_w[gone], out_steps[gone] = best[solved], steps[solved]
            index = index[keep]
            state = (m, H, ext, g, best, steps, solved, y, mask, label, valid)
            m, H, ext, g, best, steps, solved, y, mask, label, valid = (
                a[keep] for a in state)
            xu, source, slot = shared_rows(xu, source, slot, keep)
        if on_step is not None:
            on_step(t)
        if progress is not None and t % 50 == 0:
            progress(t / params.max_steps)
    last = torch.where(H >= 0, 1.0, -1.0)
    out_w[index] = torch.where(solved[:, None, None], best, last)
    out_steps[index] = steps
    return finish(batch, activation, out_w, out_steps, started)
