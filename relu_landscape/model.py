"""The tree committee machine of docs/science.md §1, batched over B independent instances.

Shapes: B instances, P patterns, K hidden units, n inputs per unit, N = K n.

Conventions that bite:
- preactivation lambda_l = W_l . xi_l / sqrt(n); hidden unit l sees inputs l*n .. l*n+n-1;
- output field Delta = (1/sqrt(K)) sum_l c_l g(lambda_l), prediction sign(Delta);
- g, the readout c and the valid K come from the registry ``activations.ACTIVATIONS``
  (any name there is accepted): sign units g = sign (g(0) = 0), c_l = +1, K odd; ReLU
  units g = max(0, .), K even, c_l = +1 for the first K/2 units and -1 for the rest
  (fixed, not learned); odd g (tanh, erf, linear) c_l = +1, the others as ReLU;
- a pattern is stored when sigma Delta > kappa s_g (``margin_threshold``; kappa = 0:
  Delta > 0), so a tie, Delta = 0, is an error;
- continuous weights live on per-unit spheres |W_l|^2 = n.

Internally the unnormalised sums h_l = W_l . xi_l are used: for a positively
homogeneous g (sign, relu, linear, quadratic) sum_l c_l g(h_l) is Delta up to the
positive factor ``field_scale``. With +-1 weights and inputs every h_l is an integer
held exactly in float32 (|h| <= n < 2^24), so errors and ties are computed exactly for
them; any other g is applied to lambda_l = h_l / sqrt(n) (``hidden``). Nothing here
draws random numbers or mutates its inputs, except ``apply_flip`` which says so.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from relu_landscape import activations
from relu_landscape.instances import Batch


def readout(activation: str, K: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Readout c [K] of the registry (``activations.Activation.readout``): all +1 for
    odd g (sign, tanh, ...), else +1 on the first K/2 units and -1 after (relu, ...).

    Shared and cached per (activation, K, device, dtype): do not modify it. The cache
    keeps the hot loops (a flip proposal, a descent step) free of a host-to-device copy,
    which would wait for the GPU stream."""
    return _readout(activation, K, torch.device(device or "cpu"), dtype)


@functools.cache
def _readout(activation: str, K: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    return torch.as_tensor(activations.get(activation).readout(K), dtype=dtype,
                           device=device)


def hidden(h: Tensor, activation: str, n: int | None = None) -> Tensor:
    """g applied elementwise to unnormalised sums h = sqrt(n) lambda.

    Positively homogeneous g (sign with g(0) = 0, relu, linear, quadratic) take h as
    it is: sign(Delta) does not depend on the scale, and +-1 sums stay exact
    integers. Any other g (tanh, erf, gelu) needs lambda = h / sqrt(n), so ``n``.
    """
    act = activations.get(activation)
    if act.degree is None:
        if n is None:
            raise ValueError(f"activation {activation!r} is not homogeneous: give n")
        h = h / math.sqrt(n)
    return act.g(h)


def field_scale(activation: str, n: int, K: int) -> float:
    """Factor turning ``output_sum`` into Delta: 1/sqrt(n^p K) for g homogeneous of
    degree p (sign 1/sqrt(K), relu and linear 1/sqrt(nK)), else 1/sqrt(K)."""
    p = activations.get(activation).degree
    return 1 / math.sqrt(K) if p is None else 1 / math.sqrt(n**p * K)


def margin_threshold(activation: str, kappa: float, n: int | None = None,
                     K: int | None = None) -> float:
    """The stability a stored pattern must exceed: kappa * s_g in units of Delta
    (n, K None), or in units of ``output_sum`` (n, K given). s_g =
    ``Activation.field_std``, the std of Delta over random patterns and weights
    (docs/science.md §1); exactly 0.0 at kappa = 0, today's test sigma Delta > 0."""
    if kappa == 0:
        return 0.0
    t = kappa * activations.get(activation).field_std
    return t if n is None else t / field_scale(activation, n, K)


def _as_float(x: Tensor, like: Tensor) -> Tensor:
    dtype = like.dtype if like.is_floating_point() else torch.float32
    return x.to(dtype)


WORK_BYTES = 1 << 26
"""Bytes of temporaries (float copies of patterns, noisy patterns, their uniforms) a
chunked kernel holds at once: 64 MiB, large enough to keep a GPU busy, small beside
any device's memory. Kernels on many instances loop over chunks of this size, so their
peak memory does not grow with the batch beyond their [B, P, K]-sized outputs."""


def chunk_rows(rows: int, row_bytes: int) -> list[slice]:
    """Consecutive slices of ``range(rows)`` whose temporaries of ``row_bytes`` each fit
    in ``WORK_BYTES`` (at least one row per slice)."""
    step = max(1, WORK_BYTES // max(row_bytes, 1))
    return [slice(a, min(a + step, rows)) for a in range(0, rows, step)]


def dot(w: Tensor, xi: Tensor) -> Tensor:
    """Unnormalised preactivations h = W_l . xi_l, [B, P, K].

    w: [B, K, n] (float, or int8 +-1); xi: [B, P, N] int8 +-1 or float.
    """
    B, K, n = w.shape
    P = xi.shape[1]
    wf = _as_float(w, w)
    if xi.shape[0] != B:  # a batch of 1 broadcast against the other
        x = _as_float(xi, w).reshape(xi.shape[0], P, K, n)
        return torch.einsum("bpkn,bkn->bpk", x, wf)
    # the batched product einsum("bpkn,bkn->bpk") makes, bit for bit, with the patterns
    # converted while permuted to unit-major (one pass over them; einsum's conversion
    # and permuted copy took 2-7x longer, measured on CPU)
    x = torch.empty(B, K, P, n, dtype=wf.dtype, device=w.device)
    x.copy_(xi.reshape(B, P, K, n).transpose(1, 2))
    return torch.bmm(x.view(B * K, P, n), wf.reshape(B * K, n, 1)).view(B, K, P).transpose(1, 2)


def dot_rows(w: Tensor, xi: Tensor, source: Tensor | None = None) -> Tensor:
    """``dot(w, xi[source])`` [B, P, K] without the per-instance copy of the patterns.

    xi: [S, P, N] shared pattern matrices, instance b uses xi[source[b]] (source None:
    S = B, one each). Shared: each matrix is converted to float once and its instances
    are one batched matvec per unit on that copy (``_products``); one each: the float
    patterns of a chunk of instances (``chunk_rows``) exist at a time. Every product
    has at least two rows, because a one-row bmm (one instance at K = 1) takes another
    BLAS path whose rounding differs: so an instance's numbers do not depend on the
    batch around it.
    """
    B, P, N = w.shape[0], xi.shape[1], xi.shape[2]
    K, n = w.shape[1], w.shape[2]
    wf = _as_float(w, w)
    x = torch.empty(K, P, n, dtype=wf.dtype, device=w.device)
    if source is None:
        row_bytes = (xi.element_size() + 4) * P * N  # gathered rows and their float copy
        parts = []
        for r in chunk_rows(B, row_bytes):
            if r.stop - r.start > 1:
                parts.append(dot(w[r], xi[r]))
            else:
                x.copy_(xi[r.start].reshape(P, K, n).transpose(0, 1))
                parts.append(_products(x, wf[r]))
        return torch.cat(parts) if parts else w.new_zeros(0, P, K)
    out = wf.new_empty(B, P, K)
    for s in torch.unique(source).tolist():
        rows = torch.nonzero(source == s).flatten()
        x.copy_(xi[s].reshape(P, K, n).transpose(0, 1))
        out[rows] = _products(x, wf[rows])
    return out


def _products(x: Tensor, wf: Tensor) -> Tensor:
    """h [r, P, K] of float weights wf [r, K, n] on one float unit-major pattern matrix
    x [K, P, n]: per unit a bmm of r rows on x expanded (not copied), a lone row paired
    with itself; bit for bit the numbers ``dot`` makes for a batch of >= 2 rows."""
    r, K, n = wf.shape
    m = max(r, 2)
    return torch.stack(
        [torch.bmm(x[u].expand(m, *x.shape[1:]), wf[:, u, :, None].expand(m, n, 1))[:r, :, 0]
         for u in range(K)],
        dim=-1,
    )


def preact(w: Tensor, xi: Tensor) -> Tensor:
    """Preactivations lambda = W_l . xi_l / sqrt(n), [B, P, K]."""
    return dot(w, xi) / math.sqrt(w.shape[-1])


def output_sum(h: Tensor, activation: str, n: int | None = None) -> Tensor:
    """sum_l c_l g(.) of unnormalised sums h [..., K] (``hidden``; n needed for g not
    homogeneous); times ``field_scale`` it is Delta, so sign(Delta) is its sign."""
    c = readout(activation, h.shape[-1], device=h.device, dtype=h.dtype)
    return hidden(h, activation, n) @ c


def field(w: Tensor, xi: Tensor, activation: str,
          source: Tensor | None = None) -> Tensor:
    """Output field Delta [B, P] (docs/science.md §1); xi, source as in ``dot_rows``
    (source None and xi [B, P, N]: per-instance patterns)."""
    B, K, n = w.shape
    return output_sum(dot_rows(w, xi, source), activation, n) * field_scale(activation, n, K)


def finite_or_nan(stab: Tensor, w: Tensor) -> Tensor:
    """``stab`` [B, ...] with every entry of an instance whose weights w [B, ...] hold a
    non-finite number set to NaN. Needed because sign(NaN) = 0 in torch: a sign unit
    with a NaN weight would silently drop out of the vote instead of spoiling the
    network."""
    ok = torch.isfinite(w).flatten(1).all(-1)
    return torch.where(ok.view(-1, *[1] * (stab.dim() - 1)), stab, torch.nan)


def stability(w: Tensor, xi: Tensor, y: Tensor, activation: str,
              source: Tensor | None = None) -> Tensor:
    """Stabilities sigma^mu Delta^mu [B, P]; pattern mu is stored iff > kappa s_g
    (``margin_threshold``; > 0 at kappa = 0).

    xi: [B, P, N], or shared [S, P, N] with ``source`` (``dot_rows``). NaN for every
    pattern of an instance with a non-finite weight (``finite_or_nan``).
    """
    return finite_or_nan(field(w, xi, activation, source) * _as_float(y, w), w)


def is_wrong(stab: Tensor, threshold: float = 0.0) -> Tensor:
    """True where a pattern is not stored: stab <= threshold (a tie counts) or not finite.

    threshold: ``margin_threshold`` in the units of stab (0 at kappa = 0). Written as
    ``not (threshold < stab < inf)`` so that NaN, which fails every comparison, is an
    error and never a stored pattern, and +inf is one too; two comparisons, where
    isfinite costs three passes (it sits in every flip proposal). Every error count in
    the package goes through here.
    """
    return ~((stab > threshold) & (stab < math.inf))


def errors(w: Tensor, xi: Tensor, y: Tensor, activation: str,
           mask: Tensor | None = None, source: Tensor | None = None,
           kappa: float = 0.0) -> Tensor:
    """Training errors per instance, int64 [B]: patterns with sigma*Delta <= kappa s_g
    (ties count; s_g: ``margin_threshold``), or a non-finite sigma*Delta (NaN or inf
    weights solve nothing).

    mask: bool [B, P], True for patterns that belong to the instance (padding is False);
    xi, source as in ``stability``.
    """
    wrong = is_wrong(stability(w, xi, y, activation, source),
                     margin_threshold(activation, kappa))
    if mask is not None:
        wrong &= mask
    return wrong.sum(-1)


def project_sphere(w: Tensor) -> Tensor:
    """Rescale every hidden unit onto its sphere |W_l|^2 = n. w: [B, K, n] float."""
    n = w.shape[-1]
    return w * (math.sqrt(n) / w.norm(dim=-1, keepdim=True))


class TorchBatch:
    """A ``instances.Batch`` on a torch device. Patterns int8 (+-1 inputs) or float32.

    Stored on the shared layout: xi_unique [S, P, N] the distinct pattern matrices,
    source/slot int64 [B] (instance b uses xi_unique[source[b]] and is the slot[b]-th
    instance doing so); y: [B, P]; mask: bool [B, P]; w0: float32 [B, K, n]; kappa:
    the margin every pattern must clear (``errors``), part of the instances' cell.
    ``TorchBatch(xi, y, mask, w0)`` with per-instance patterns xi [B, P, N] makes each
    instance its own source. There is no per-instance copy of the patterns: kernels
    read xi_unique through source (``dot_rows``, ``dot_shared``) in bounded chunks.
    """

    def __init__(self, xi: Tensor | None, y: Tensor, mask: Tensor, w0: Tensor,
                 xi_unique: Tensor | None = None, source: Tensor | None = None,
                 slot: Tensor | None = None, kappa: float = 0.0):
        if xi_unique is None:
            xi_unique = xi
            source = torch.arange(xi.shape[0], device=xi.device)
            slot = torch.zeros_like(source)
        self.xi_unique, self.source, self.slot = xi_unique, source, slot
        self.y, self.mask, self.w0, self.kappa = y, mask, w0, kappa

    @property
    def xi(self) -> Tensor:
        """Per-instance patterns [B, P, N]: a copy made at every access, so only for a
        chunk of rows (``rows``, ``chunk_rows``), tests and single instances (at
        B = 1024, N = P = 1000 the whole batch's is 1 GB of int8)."""
        return self.xi_unique[self.source]

    @property
    def K(self) -> int:
        return self.w0.shape[1]

    @property
    def n(self) -> int:
        return self.w0.shape[2]

    def shared_patterns(self) -> tuple[Tensor, Tensor, Tensor]:
        """(xi_unique [S, P, N], source [B], slot [B])."""
        return self.xi_unique, self.source, self.slot

    def rows(self, pick: Tensor | slice) -> TorchBatch:
        """The instances ``pick`` as a batch of their own, on the same shared patterns
        (slots keep their gaps; ``dot_shared`` only needs them distinct per source)."""
        return TorchBatch(None, self.y[pick], self.mask[pick], self.w0[pick],
                          self.xi_unique, self.source[pick], self.slot[pick], self.kappa)

    def stability(self, w: Tensor, activation: str) -> Tensor:
        """``stability`` [B, P] of weights w [B, K, n] on this batch's patterns."""
        return stability(w, self.xi_unique, self.y, activation, self.source)

    def errors(self, w: Tensor, activation: str) -> Tensor:
        """``errors`` int64 [B] of weights w [B, K, n] on this batch's own patterns, at
        the batch's margin kappa."""
        return errors(w, self.xi_unique, self.y, activation, self.mask, self.source,
                      self.kappa)


def to_torch(batch: Batch, device: str | torch.device = "cpu",
             kappa: float = 0.0) -> TorchBatch:
    """Move a generated batch to ``device``; binary weights become float32 +-1; kappa:
    the margin of its cell (``TorchBatch``)."""
    return TorchBatch(
        None,
        y=torch.from_numpy(batch.y).to(device),
        mask=torch.from_numpy(batch.mask).to(device),
        w0=torch.from_numpy(np.ascontiguousarray(batch.w0)).to(device, torch.float32),
        xi_unique=torch.from_numpy(batch.xi_unique).to(device),
        source=torch.from_numpy(batch.source).to(device),
        slot=torch.from_numpy(batch.slot).to(device),
        kappa=kappa,
    )


def unit_major(xi: Tensor, K: int, dtype=torch.float32) -> Tensor:
    """Patterns [S, P, N] -> [S, K, n, P] contiguous in ``dtype``.

    The layout the training kernels read at every step: each unit's inputs form one
    matrix with the patterns along the fast axis, so W.xi is a batched matmul whose
    long dimension is P (measured on CPU: 4-5x faster forward and backward than the
    [P, n] layout, whose weight gradient is a skinny matmul).
    """
    S, P, N = xi.shape
    # one copy, converted while permuted: to(dtype) first would hold two float copies
    out = torch.empty(S, K, N // K, P, dtype=dtype, device=xi.device)
    return out.copy_(xi.reshape(S, P, K, N // K).permute(0, 2, 3, 1))


def dot_shared(w: Tensor, xu: Tensor, source: Tensor, slot: Tensor) -> Tensor:
    """Unnormalised preactivations h [B, P, K] on shared pattern matrices.

    w: [B, K, n]; xu: unit-major patterns [S, K, n, P] (``unit_major``); instance b
    uses xu[source[b]] and occupies row slot[b] of its matrix's weight block. One
    matmul per (matrix, unit) serves every instance on that matrix (e.g. all alphas of
    a seed, or all replicas), which raises the arithmetic intensity of the step by
    that count. Differentiable in w.
    """
    B, K, n = w.shape
    S = xu.shape[0]
    A = int(slot.max()) + 1
    blocks = w.new_zeros(S, A, K, n).index_put((source, slot), w)
    h = blocks.transpose(1, 2) @ xu  # [S, K, A, P]
    return h[source, :, slot].transpose(1, 2)


# ----------------------------------------------------------- incremental flip cache


@dataclass
class FlipCache:
    """State for single-weight flips of binary weights (SA, walks, local entropy, enumeration).

    w: float32 +-1 [B, K, n] (owned: mutated by ``apply_flip``); xi_t: [S, N, P] the
    shared patterns transposed so a weight's column is contiguous, instance b reading
    xi_t[source[b]]; y: float [B, P]; mask: bool [B, P]; h: unnormalised preactivations
    [B, P, K]; out: sum_l c_l g(h_l) [B, P] (``output_sum``); wrong: training errors
    [B]; threshold: the margin in units of out (``margin_threshold``).
    """

    activation: str
    w: Tensor
    xi_t: Tensor
    source: Tensor
    y: Tensor
    mask: Tensor
    h: Tensor
    out: Tensor
    wrong: Tensor
    threshold: float = 0.0


@dataclass
class FlipProposal:
    """What flipping weight (unit[b], index[b]) of every instance b would give.

    h_unit: new h of that unit [B, P]; out: new output sums [B, P]; wrong: new errors [B];
    h_old: that unit's h before the flip [B, P] (``apply_flip`` keeps it where refused).
    """

    unit: Tensor
    index: Tensor
    h_unit: Tensor
    out: Tensor
    wrong: Tensor
    h_old: Tensor


def flip_cache(w: Tensor, xi: Tensor, y: Tensor, activation: str,
               mask: Tensor | None = None, source: Tensor | None = None,
               kappa: float = 0.0) -> FlipCache:
    """Build the cache from scratch (one full forward pass). w is cloned, not aliased.

    xi: [B, P, N], or shared [S, P, N] with ``source`` [B] (``dot_rows``); the cache
    holds one transposed copy per pattern matrix, not per instance.
    """
    w = w.to(torch.float32).clone()
    h = dot_rows(w, xi, source)
    B, K, n = w.shape
    out = output_sum(h, activation, n)
    yf = y.to(h.dtype)
    mask = torch.ones_like(yf, dtype=torch.bool) if mask is None else mask
    threshold = margin_threshold(activation, kappa, n, K)
    wrong = (is_wrong(finite_or_nan(yf * out, w), threshold) & mask).sum(-1)
    if source is None:
        source = torch.arange(w.shape[0], device=w.device)
    xi_t = xi.transpose(1, 2).contiguous()
    return FlipCache(activation, w, xi_t, source, yf, mask, h, out, wrong, threshold)


def flip_delta(cache: FlipCache, unit: Tensor, index: Tensor) -> FlipProposal:
    """Effect of flipping W[b, unit[b], index[b]] in every instance; O(P) work, pure.

    A flip changes unit l's h of every pattern by -2 W_li xi_i (docs/science.md §3).
    unit, index: int64 [B]. For g not homogeneous (tanh, ...) ``out`` is updated by
    float differences and drifts by rounding (~1e-7 per accepted flip); the solvers'
    results are judged afresh by ``errors``.
    """
    B, K, n = cache.w.shape
    rows = torch.arange(B, device=cache.w.device)
    x = cache.xi_t[cache.source, unit * n + index].to(cache.h.dtype)
    w_li = cache.w[rows, unit, index]
    h_old = cache.h[rows, :, unit]
    h_new = h_old - 2 * w_li[:, None] * x
    c = readout(cache.activation, K, device=x.device, dtype=x.dtype)[unit]
    g_old, g_new = hidden(h_old, cache.activation, n), hidden(h_new, cache.activation, n)
    out = cache.out + c[:, None] * (g_new - g_old)
    wrong = (is_wrong(cache.y * out, cache.threshold) & cache.mask).sum(-1)
    return FlipProposal(unit, index, h_new, out, wrong, h_old)


def apply_flip(cache: FlipCache, prop: FlipProposal, accept: Tensor) -> None:
    """Apply the proposed flips where ``accept`` (bool [B]) holds. Mutates ``cache``.

    Written with ``where`` and ``lerp`` rather than boolean indexing so that it never
    synchronises a GPU stream. lerp by a 0/1 weight returns either end exactly (finite
    values, as every h and output sum of +-1 weights is); on [B, P] it is ~5x faster
    than where on CPU.
    """
    rows = torch.arange(cache.w.shape[0], device=cache.w.device)
    u, i = prop.unit, prop.index
    w_li = cache.w[rows, u, i]
    cache.w[rows, u, i] = torch.where(accept, -w_li, w_li)
    take = accept.to(cache.out.dtype)[:, None]
    cache.h[rows, :, u] = torch.lerp(prop.h_old, prop.h_unit, take)
    cache.out = torch.lerp(cache.out, prop.out, take)
    cache.wrong = torch.where(accept, prop.wrong, cache.wrong)


def proposed_preact(cache: FlipCache, prop: FlipProposal) -> Tensor:
    """Unnormalised preactivations h [B, P, K] after the proposed flips; pure, O(P K)."""
    rows = torch.arange(cache.h.shape[0], device=cache.h.device)
    h = cache.h.clone()
    h[rows, :, prop.unit] = prop.h_unit
    return h


def sign_votes(K: int, kappa: float) -> int:
    """Fewest positive sign units p with Delta = (2p - K)/sqrt(K) > kappa (the vote a
    margin asks for; (K + 1)/2 at kappa = 0), clamped to [0, K]."""
    return min(max(math.floor((K + kappa * math.sqrt(K)) / 2) + 1, 0), K)


def violation(h: Tensor, y: Tensor, mask: Tensor, activation: str, n: int,
              margin: float, kappa: float = 0.0) -> Tensor:
    """Stability-based energy per instance [B]: the summed violation of the margins.

    h: unnormalised preactivations [B, P, K]; y: float +-1 [B, P]; mask: bool [B, P];
    n inputs per unit; kappa: the model's margin (``errors``). Sign units: per
    pattern, the sum of the ``sign_votes`` smallest relu(margin - sigma lambda_l), the
    least-action cost of putting the needed vote at the margin (lambda units). Other
    g: relu(kappa s_g + margin - sigma Delta) (Delta units). With margin > 0 a zero
    energy implies zero errors (sign: where the vote is possible, sign_votes <= K).
    Pure; valid on any h (a cache's, or ``proposed_preact``'s).
    """
    K = h.shape[-1]
    if activation != "sign":
        return output_violation(output_sum(h, activation, n), y, mask, activation, n, K,
                                margin, kappa)
    cost = [torch.relu(margin - y * h[..., k] / math.sqrt(n)) for k in range(K)]
    return (_sum_smallest(cost, sign_votes(K, kappa)) * mask).sum(-1)


def _sum_smallest(cols: list[Tensor], v: int) -> Tensor:
    """Elementwise sum of the v smallest of K same-shaped tensors, added in ascending
    order. A selection network of minimum / maximum: on CPU, topk over a short last
    axis of [B, P, K] runs per row, ~4x slower at K = 3 to 7 (the same sums to
    K = 7; at K = 9 they differ in the last bit, from topk's summation order)."""
    cols = list(cols)
    total = torch.zeros_like(cols[0])  # v = 0 (a margin that needs no vote)
    for j in range(v):
        for i in range(len(cols) - 1, j, -1):  # bubble the j-th smallest down to j
            a, b = cols[i - 1], cols[i]
            cols[i - 1], cols[i] = torch.minimum(a, b), torch.maximum(a, b)
        total = total + cols[j]
    return total


def output_violation(out: Tensor, y: Tensor, mask: Tensor, activation: str, n: int,
                     K: int, margin: float, kappa: float = 0.0) -> Tensor:
    """``violation`` for g other than sign, from the output sums out [B, P]
    (``output_sum``, or a flip proposal's) instead of h."""
    stab = y * out * field_scale(activation, n, K)
    per_pattern = torch.relu(margin_threshold(activation, kappa) + margin - stab)
    return (per_pattern * mask).sum(-1)
