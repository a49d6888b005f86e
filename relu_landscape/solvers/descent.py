"""Surrogate-loss descent on R coupled replicas: the loop behind gd, clipped_sgd and
their replicated forms (docs/science.md §3).

Latent parameters v [B, R, K, n] become weights through a ``Parametrisation`` (the
per-unit sphere for continuous weights, straight-through signs for binary ones). The
loss is a hinge or cross-entropy of surrogate stabilities, averaged over the patterns
(all of them, or a random fraction per step: SGD), plus, when R > 1, an elastic pull
of every replica towards the replicas' centre whose strength gamma grows during the
run (robust ensemble; Baldassi et al., PNAS 113, E7655 (2016)). The centre is what is
reported and judged; with R = 1 it is the single replica. Errors are always judged
with the true activation by ``model``; Adam acts elementwise, so instances never mix.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from relu_landscape import activations, model
from relu_landscape.model import TorchBatch
from relu_landscape.params import DescentParams
from relu_landscape.solvers.base import (
    SolveResult,
    back_shared,
    check_due,
    compaction,
    finish,
    random_block,
    shared_rows,
)

# A linear leak keeps a gradient on sign units that are confidently wrong, where tanh
# has saturated; errors are still judged with the true sign.
_LEAK = 0.1


@dataclass(frozen=True)
class Parametrisation:
    """How latent parameters [..., K, n] become weights.

    init: (w0 [B, K, n], replica noise z [B, R, K, n] or None) -> latent v [B, R, K, n];
    train: differentiable weights used by the loss (forward values equal ``exact``'s);
    coupled: the quantity pulled towards the centre; exact: weights judged by the model
    (no grad); after_step: in-place constraint on v after each optimiser step, or None.
    The centre's weights are exact(mean_r coupled(v_r)).
    """

    init: Callable[[Tensor, Tensor | None], Tensor]
    train: Callable[[Tensor], Tensor]
    coupled: Callable[[Tensor], Tensor]
    exact: Callable[[Tensor], Tensor]
    after_step: Callable[[Tensor], None] | None = None


@dataclass(frozen=True)
class Coupling:
    """R replicas (R = 1: none) and the geometric schedule of gamma."""

    replicas: int = 1
    gamma_start: float = 0.0
    gamma_end: float = 0.0

    def gamma(self, t: int, steps: int) -> float:
        if self.replicas == 1:
            return 0.0
        return self.gamma_start * (self.gamma_end / self.gamma_start) ** (
            t / max(steps - 1, 1)
        )


def surrogate_stability(
    h: Tensor, y: Tensor, activation: str, n: int, slope: float
) -> Tensor:
    """Smooth sigma*Delta [B, R, P] from unnormalised preactivations h [B, R, P, K].

    Sign, K > 1: straight-through, the forward value is the true sign(lambda) (so the
    loss is satisfied only by patterns the committee really classifies with the
    margin) and the gradient is that of tanh(slope lambda) + 0.1 lambda. A purely
    smooth forward let near-zero wrong units pass the hinge and stalled instances even
    at alpha = 0.2. Sign, K = 1, the perceptron: the prediction is monotone in lambda
    and g = lambda makes the hinge loss convex. ReLU: softplus(slope lambda)/slope,
    whose gradient survives on patterns where every unit is inactive (a tie to be
    fixed); it overstates sigma*Delta by at most ``relu_floor``, which is why the
    annealed margin stops there for ReLU units. Any other g (tanh, erf, gelu,
    quadratic, linear): g itself, with the registry's derivative g' as its gradient
    (``activations.Activation.derivative``; slope unused).
    """
    K = h.shape[-1]
    if activation == "relu":  # the slope folded into the scale: one pass over h fewer
        g = _Softplus.apply(h * (slope / math.sqrt(n))) / slope
    elif activation == "sign" and K == 1:
        g = h / math.sqrt(n)
    elif activation == "sign":
        lam = h / math.sqrt(n)
        smooth = torch.tanh(slope * lam) + _LEAK * lam
        g = torch.sign(lam) + smooth - smooth.detach()
    else:
        g = _RegistryG.apply(h / math.sqrt(n), activation)
    c = model.readout(activation, K, device=h.device, dtype=h.dtype)
    return y[:, None] * (g @ c) / math.sqrt(K)


class _RegistryG(torch.autograd.Function):
    """g(x) of a registered activation, differentiated by its declared g'."""

    @staticmethod
    def forward(ctx, x, activation):
        ctx.save_for_backward(x)
        ctx.act = activations.get(activation)
        return ctx.act.g(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.act.derivative(x), None


class _Softplus(torch.autograd.Function):
    """softplus(x) differentiated as sigmoid(x): the same values and gradients as
    torch's (within 1 ulp), without softplus_backward, a slow path on the unit-major
    strides of h (12 ms of a 137 ms step in a profile at B = 64, N = 1000, one CPU
    thread; sigmoid does it in about 1)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.nn.functional.softplus(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


def target_offset(activation: str, K: int, kappa: float) -> float:
    """What the model's margin adds to the hinge target, in units of Delta: kappa s_g
    (``model.margin_threshold``), except for the perceptron of sign units, whose
    surrogate is lambda while its Delta = +-1 clears any kappa < 1 once right."""
    return 0.0 if activation == "sign" and K == 1 else model.margin_threshold(activation, kappa)


def margin_at(params: DescentParams, t: int, activation: str, K: int) -> float:
    """The hinge margin at step t: geometric from ``margin`` to ``margin_end``, and for
    ReLU units never below ``relu_floor``.

    A fixed margin kappa makes descent solve the kappa problem, whose capacity is
    below the network's (perceptron: alpha_c(0.1) = 1.71 against 2); annealing it
    towards 0+ keeps the early steps robust and lets the late ones reach capacity.
    """
    ratio = params.margin_end / params.margin if params.margin > 0 else 1.0
    m = params.margin * ratio ** (t / max(params.max_steps - 1, 1))
    return max(m, relu_floor(params, K)) if activation == "relu" else m


def relu_floor(params: DescentParams, K: int) -> float:
    """The most the ReLU surrogate can overstate sigma*Delta at the final slope:
    softplus(s x)/s - relu(x) lies in (0, log 2 / s], on at most K/2 units of one sign.

    A hinge margin below it can be met by a tie (every unit inactive, true Delta = 0):
    annealed to 0.005, ReLU K = 2 and 4 at N = 200 solved 0 of 12 even at alpha = 0.9.
    The straight-through alternative (true relu forward, softplus gradient) removes
    the bias but trains worse (K = 2, N = 200, alpha = 0.9: 2 to 3 of 8 solved, against
    7 of 8 with softplus).
    """
    return (K // 2) * math.log(2) / (params.slope_end * math.sqrt(K))


def pattern_loss(stab: Tensor, params: DescentParams, margin: float) -> Tensor:
    """Per-pattern loss of the surrogate stabilities (hinge at ``margin``, or
    cross-entropy)."""
    if params.loss == "hinge":
        return torch.relu(margin - stab)
    return torch.nn.functional.softplus(-params.beta * stab) / params.beta


def _centre(param: Parametrisation, v: Tensor) -> Tensor:
    """Centre weights [B, K, n]; with one replica exactly the weights the loss saw."""
    if v.shape[1] == 1:
        return param.exact(v[:, 0])
    return param.exact(param.coupled(v).mean(1))


class _SharedDot(torch.autograd.Function):
    """``model.dot_shared`` with the weight gradient ``base.back_shared``, whose numbers
    per instance do not depend on the batch's size (autograd's own do), so dropping
    finished instances (``base.compaction``) changes no kept instance's trajectory."""

    @staticmethod
    def forward(ctx, w, xu, source, slot):
        ctx.save_for_backward(xu, source, slot)
        return model.dot_shared(w, xu, source, slot)

    @staticmethod
    def backward(ctx, grad):
        xu, source, slot = ctx.saved_tensors
        return back_shared(grad, xu, source, slot), None, None, None


def _replica_dot(xu: Tensor, source: Tensor,
                 slot: Tensor) -> Callable[[Tensor], Tensor]:
    """h [B, R, P, K] of weights [B, R, K, n] (any R) on the shared layout (unit-major
    xu [S, K, n, P], source, slot [B]): every replica of every instance that shares a
    pattern matrix (the alphas of a seed) is served by one matmul."""

    def dot(w: Tensor) -> Tensor:
        B, R, K, n = w.shape
        reps = torch.arange(R, device=xu.device)
        rep_slot = (slot[:, None] * R + reps).reshape(-1)
        h = _SharedDot.apply(w.reshape(B * R, K, n), xu, source.repeat_interleave(R),
                             rep_slot)
        return h.reshape(B, R, -1, K)

    return dot


def _objective(
    v, dot, y, weight, counts, solved, slope, margin, gamma, param, activation, params,
    offset=0.0,
):
    """Summed loss over instances still training; returns (loss, h of the replicas).

    offset: the model's margin (``target_offset``), subtracted from the stabilities so
    that both losses aim past it."""
    B, R, K, n = v.shape
    h = dot(param.train(v))
    stab = surrogate_stability(h, y, activation, n, slope)
    if offset:
        stab = stab - offset
    per = pattern_loss(stab, params, margin) * weight[:, None]
    per = per.sum(-1) / counts[:, None]
    if R > 1:
        u = param.coupled(v)
        per = per + gamma * (u - u.mean(1, keepdim=True)).pow(2).sum((-2, -1)) / (K * n)
    return (per.mean(1) * (~solved)).sum(), h


def descend(
    batch: TorchBatch,
    activation: str,
    params: DescentParams,
    keys: list[int],
    param: Parametrisation,
    coupling: Coupling,
    *,
    progress=None,
    on_step: Callable[[int], None] | None = None,
) -> SolveResult:
    """Train the centre of every instance until it has zero errors or ``max_steps``.

    keys seed the replicas' initial noise and the SGD pattern subsets (block t).
    ``on_step(t)`` is called after every optimiser step (the benchmarks time steps
    with it).
    """
    started = time.perf_counter()
    B, K, n = batch.w0.shape
    dev, R = batch.w0.device, coupling.replicas
    xu, source, slot = batch.shared_patterns()
    xu = model.unit_major(xu, K)
    y, mask = batch.y.to(torch.float32), batch.mask
    z = random_block(keys, 0, (R, K, n, 2), dev) if R > 1 else None
    z = _box_muller(z).to(torch.float32) if z is not None else None
    v = param.init(batch.w0, z).requires_grad_(True)
    opt = _Adam(v, params.lr)
    best = batch.w0.clone()
    solved = torch.zeros(B, dtype=torch.bool, device=dev)
    steps = torch.full((B,), params.max_steps, dtype=torch.int64, device=dev)
    # the results of all B instances; the state above holds the rows ``index`` only
    # once finished instances are dropped (``base.compaction``)
    index = torch.arange(B, device=dev)
    out_w, out_steps = best.clone(), steps.clone()
    dot = _replica_dot(xu, source, slot)
    growth = math.log(params.slope_end) / max(params.max_steps - 1, 1)
    offset = target_offset(activation, K, batch.kappa)
    threshold = model.margin_threshold(activation, batch.kappa, n, K)
    # the full-batch weights and counts, made once (and at each compaction), not per step
    full = mask.to(torch.float32)
    full_counts = full.sum(-1).clamp(min=1)
    for t in range(params.max_steps):
        weight, counts = full, full_counts
        if params.batch_fraction < 1:
            u = random_block(keys, t + 1, (y.shape[1],), dev)
            weight = full * (u < params.batch_fraction)
            counts = weight.sum(-1).clamp(min=1)
        loss, h = _objective(
            v,
            dot,
            y,
            weight,
            counts,
            solved,
            math.exp(growth * t),
            margin_at(params, t, activation, K),
            coupling.gamma(t, params.max_steps),
            param,
            activation,
            params,
            offset,
        )
        with torch.no_grad():
            centre = _centre(param, v)
            ch = h[:, 0] if R == 1 else dot(centre[:, None])[:, 0]
            stab = y * model.output_sum(ch, activation, n)
            wrong = (model.is_wrong(stab, threshold) & mask).sum(-1)
            newly = (wrong == 0) & ~solved
            best = torch.where(newly[:, None, None], centre, best)
            steps = torch.where(newly, t, steps)
            solved |= newly
        done, keep = compaction(solved) if check_due(t, 1) else (False, None)
        if done:
            break
        loss.backward()
        opt.step()
        if param.after_step is not None:
            with torch.no_grad():
                param.after_step(v)
        if on_step is not None:
            on_step(t)
        if progress is not None and t % 100 == 0:
            progress(t / params.max_steps)
        if keep is not None:
            gone = index[solved]  # finished: their result is final
            out_w[gone], out_steps[gone] = best[solved], steps[solved]
            index, keys = index[keep], [keys[i] for i in keep.tolist()]
            y, mask, full, full_counts, best, steps, solved = (
                a[keep] for a in (y, mask, full, full_counts, best, steps, solved))
            xu, source, slot = shared_rows(xu, source, slot, keep)
            dot = _replica_dot(xu, source, slot)
            opt = opt.rows(keep)
            v = opt.v
    with torch.no_grad():
        out_w[index] = torch.where(solved[:, None, None], best, _centre(param, v))
    out_steps[index] = steps
    return finish(batch, activation, out_w, out_steps, started)


class _Adam:
    """Adam on one parameter tensor, written out: torch.optim.Adam's single-tensor
    arithmetic (defaults betas (0.9, 0.999), eps 1e-8; equal bit for bit on CPU,
    tests/solvers/test_descent.py) without its per-step dispatch, and without the
    torch._dynamo import its constructor triggers (about 5 s in every fresh worker
    process). Adam acts elementwise, so the rows of v never mix."""

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, v: Tensor, lr: float, state: tuple[Tensor, Tensor, int] | None = None):
        self.v, self.lr = v, lr
        self.m, self.s, self.t = state or (torch.zeros_like(v), torch.zeros_like(v), 0)

    def step(self) -> None:
        """One update from v.grad, which it then clears."""
        (b1, b2), g = self.BETAS, self.v.grad
        self.t += 1
        with torch.no_grad():
            self.m.lerp_(g, 1 - b1)
            self.s.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (self.s.sqrt() / (1 - b2**self.t) ** 0.5).add_(self.EPS)
            self.v.addcdiv_(self.m, denom, value=-self.lr / (1 - b1**self.t))
        self.v.grad = None

    def rows(self, keep: Tensor) -> _Adam:
        """Rows ``keep`` of v with their moments, continuing at the same step count."""
        v = self.v.detach()[keep].requires_grad_(True)
        return _Adam(v, self.lr, (self.m[keep], self.s[keep], self.t))


def _box_muller(u: Tensor) -> Tensor:
    """Standard normals [...] from uniform pairs [..., 2] (per-instance streams)."""
    r = torch.sqrt(-2 * torch.log1p(-u[..., 0]))
    return r * torch.cos(2 * math.pi * u[..., 1])
