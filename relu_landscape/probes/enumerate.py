"""Exact enumeration of small binary instances: every one of the 2^N weight vectors.

docs/science.md §2 and §5. Vector ``x`` (an int in [0, 2^N)) has W_j = +1 where bit j is set,
with j = l n + i for weight i of unit l, so the Hamming distance between two vectors
is popcount(x XOR x'). The tree structure factorises the work: each unit has a table
of c_l g(h) for its 2^n weight vectors and every pattern, [B, K, 2^n, P], and the output
sum of vector x is the sum over units of the table rows its bits pick, so the sweep
costs K gathers per (vector, pattern) instead of a forward pass.

Per instance this gives the number of solutions, the histogram of Hamming distances
between pairs of solutions (a Walsh-Hadamard autocorrelation of the solution indicator,
O(N 2^N) whatever the number of solutions), and around a reference (the solver's
solution) the exact number of solutions and the exact local energy at every distance
D, the oracle for the sampled probes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from relu_landscape import activations, model
from relu_landscape.model import TorchBatch
from relu_landscape.params import EnumerateParams
from relu_landscape.probes.base import ProbeResult, grid_rows

# Entries of the [B, K, Q, chunk, P] gathered partial sums held at once.
_WORK = 1 << 22
# A part table holds 2^_PART_BITS weight vectors of one slice of a unit's inputs: a
# perceptron at N = 24 takes two tables of 4096 rows instead of one of 2^24.
_PART_BITS = 12
# Patterns every vector is first screened on in ``solvable``.
_SCREEN = 6
_BYTE_BITS = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int64)


def popcount(x: Tensor) -> Tensor:
    """Number of set bits of every entry of a non-negative int64 tensor below 2^40."""
    table = _BYTE_BITS.to(x.device)
    return sum(table[(x >> shift) & 255] for shift in range(0, 40, 8))


def weight_index(w: Tensor) -> Tensor:
    """Index x of +-1 weights w [B, K, n]: bit l n + i set where W_li = +1, int64 [B]."""
    bits = (w.flatten(1) > 0).long()
    return (bits << torch.arange(bits.shape[1], device=w.device)).sum(-1)


@dataclass(frozen=True)
class PartTables:
    """Unnormalised partial preactivations of every slice of every unit's inputs.

    Unit l's n inputs are cut into Q slices of at most b = ceil(n / Q) <= 12 inputs;
    h: [B, K, Q, 2^b, P], entry v of slice q the sum over its inputs i of
    (2 bit_i(v) - 1) xi_i. The preactivation of vector x is the sum over q of the rows
    its bits pick. With +-1 inputs every sum is an integer of size at most N <= 40, so
    h is int8 (exact, and a quarter of float32's memory traffic in the sweep); float32
    for Gaussian inputs.
    """

    h: Tensor
    n: int
    b: int

    @staticmethod
    def of(batch: TorchBatch) -> PartTables:
        B, K, n = batch.w0.shape
        Q = -(-n // _PART_BITS)
        b = -(-n // Q)
        xi = batch.xi_unique
        v = torch.arange(1 << b, device=xi.device)
        w = (((v[:, None] >> torch.arange(b, device=xi.device)) & 1) * 2 - 1).float()
        x = torch.nn.functional.pad(xi.float().unflatten(-1, (K, n)), (0, Q * b - n))
        h = torch.einsum("vi,bpkqi->bkqvp", w, x.unflatten(-1, (Q, b)))  # per matrix
        h = h if xi.is_floating_point() else h.to(torch.int8)
        return PartTables(h[batch.source], n, b)

    def rows(self, pick: Tensor) -> PartTables:
        return PartTables(self.h[pick], self.n, self.b)

    def output(self, x: Tensor, activation: str, patterns: slice = slice(None),
               rows: Tensor | None = None) -> Tensor:
        """Output sums sum_l c_l g(h_l), in ``h``'s dtype, on ``patterns``: of every
        vector x (int64 [C]) for every instance, [B, C, P'], or with ``rows`` (int64
        [C]) of vector x[m] for instance rows[m] only, [C, P']."""
        _, K, Q, _, _ = self.h.shape
        dev = x.device
        units = torch.arange(K, device=dev)[:, None, None]
        parts = torch.arange(Q, device=dev)[None, :, None]
        width = (self.n - parts * self.b).clamp(max=self.b)
        idx = (x >> (units * self.n + parts * self.b)) & ((1 << width) - 1)  # [K, Q, C]
        h = self.h[..., patterns]
        if rows is None:
            h = h[:, units, parts, idx].sum(2, dtype=h.dtype).movedim(1, 0)  # [K, B, C, P']
        else:
            h = h[rows, units, parts, idx].sum(1, dtype=h.dtype)  # [K, C, P']
        if activations.get(activation).degree not in (0, 1):  # g(h) leaves int8 (x^2, tanh)
            h = h.float()
        c = model.readout(activation, K, device=dev, dtype=h.dtype)
        c = c.view(K, *[1] * (h.dim() - 1))
        return (model.hidden(h, activation, self.n) * c).sum(0, dtype=h.dtype)

    def errors(self, x: Tensor, y: Tensor, mask: Tensor, activation: str,
               threshold: float = 0.0) -> Tensor:
        """Training errors [B, C] of the vectors x (int64 [C]); y: [B, P]; mask: [B, P];
        threshold: the margin in units of the output sums (``model.margin_threshold``)."""
        return _wrong(self.output(x, activation), y, mask, threshold).sum(-1)


def _wrong(out: Tensor, y: Tensor, mask: Tensor, threshold: float = 0.0) -> Tensor:
    """Not stored [B, C, P] from output sums [B, C, P]; y, mask: [B, P]."""
    return model.is_wrong(y[:, None].to(out.dtype) * out, threshold) & mask[:, None]


def _chunk(tables: PartTables) -> int:
    B, K, Q, _, P = tables.h.shape
    return max(1, _WORK // (B * K * Q * P))


def solvable(batch: TorchBatch, activation: str) -> Tensor:
    """Whether each instance has a solution at all, bool [B], by sweeping its 2^N vectors.

    An instance leaves the sweep at its first solution, so the cost is set by the
    instances without one. Each chunk is first screened on its first ``_SCREEN``
    patterns, which about 2^-_SCREEN of the vectors pass; only the pairs (instance,
    vector) that do are checked on the rest: 7x faster than checking every vector on
    every pattern, measured at N = 24, P = 36 on one CPU core.
    """
    B, K, n = batch.w0.shape
    tables = PartTables.of(batch)
    threshold = model.margin_threshold(activation, batch.kappa, n, K)
    found = torch.zeros(B, dtype=torch.bool, device=batch.w0.device)
    active = torch.arange(B, device=batch.w0.device)
    head = slice(None, _SCREEN)
    start = 0
    while start < 1 << (K * n) and len(active):
        part = tables.rows(active)
        y, mask = batch.y[active], batch.mask[active]
        x = torch.arange(start, min(start + _chunk(part), 1 << (K * n)), device=active.device)
        survive = ~_wrong(part.output(x, activation, head), y[:, head], mask[:, head],
                          threshold).any(-1)
        b, c = torch.nonzero(survive, as_tuple=True)
        if len(b):
            tail = slice(_SCREEN, None)
            out = part.output(x[c], activation, tail, rows=b)  # [M, P - _SCREEN]
            ok = ~(model.is_wrong(y[b, tail].to(out.dtype) * out, threshold)
                   & mask[b, tail]).any(-1)
            hit = torch.zeros(len(active), dtype=torch.bool, device=ok.device)
            hit[b[ok]] = True
            found[active[hit]] = True
            active = active[~hit]
        start += len(x)
    return found


@dataclass(frozen=True)
class Landscape:
    """Exact results per instance (B instances, N weights).

    solutions: int64 [B]; pairs: int64 [B, N + 1] unordered pairs of distinct solutions
    at Hamming distance D; neighbours: int64 [B, N + 1] solutions at distance D from
    the reference; local_energy: float64 [B, N + 1] mean error fraction over all vectors
    at distance D from the reference; solution_index: one int64 tensor per instance
    with the indices of its solutions (see ``weight_index``).
    """

    solutions: Tensor
    pairs: Tensor
    neighbours: Tensor
    local_energy: Tensor
    solution_index: list[Tensor]


def _walsh_hadamard(f: Tensor) -> Tensor:
    """Unnormalised Walsh-Hadamard transform of f [2^N] (float64)."""
    M, h = f.shape[0], 1
    while h < M:
        g = f.view(-1, 2, h)
        f = torch.stack((g[:, 0] + g[:, 1], g[:, 0] - g[:, 1]), 1).reshape(M)
        h *= 2
    return f


def pair_histogram(index: Tensor, N: int) -> Tensor:
    """Unordered pairs of distinct vectors among ``index`` at each distance, int64 [N + 1].

    Autocorrelation A(x) = #{(a, b): a XOR b = x} = WHT(WHT(f)^2) / 2^N for the
    indicator f; exact in float64 while the count of ordered pairs stays below 2^53.
    """
    f = torch.zeros(1 << N, dtype=torch.float64, device=index.device)
    f[index] = 1
    auto = _walsh_hadamard(_walsh_hadamard(f) ** 2) / (1 << N)
    dist = popcount(torch.arange(1 << N, device=index.device))
    hist = torch.zeros(N + 1, dtype=torch.float64, device=index.device)
    hist.scatter_add_(0, dist, auto)
    hist[0] = 0  # a vector paired with itself
    return (hist.round() / 2).long()


def landscape(batch: TorchBatch, reference: Tensor, activation: str) -> Landscape:
    """Enumerate all 2^N vectors of every instance; ``reference``: +-1 [B, K, n]."""
    B, K, n = batch.w0.shape
    N, dev = K * n, batch.w0.device
    tables = PartTables.of(batch)
    threshold = model.margin_threshold(activation, batch.kappa, n, K)
    ref = weight_index(reference)
    P = batch.mask.sum(-1).double()
    neighbours = torch.zeros(B, N + 1, dtype=torch.int64, device=dev)
    err_sum = torch.zeros(B, N + 1, dtype=torch.float64, device=dev)
    found = []
    chunk = _chunk(tables)
    for start in range(0, 1 << N, chunk):
        x = torch.arange(start, min(start + chunk, 1 << N), device=dev)
        wrong = tables.errors(x, batch.y, batch.mask, activation, threshold)  # [B, C]
        dist = popcount(x[None, :] ^ ref[:, None])
        neighbours.scatter_add_(1, dist, (wrong == 0).long())
        err_sum.scatter_add_(1, dist, wrong.double())
        found.append(torch.nonzero(wrong == 0) + torch.tensor([0, start], device=dev))
    hits = torch.cat(found)
    index = [hits[hits[:, 0] == b, 1] for b in range(B)]
    shell = torch.tensor([math.comb(N, D) for D in range(N + 1)], dtype=torch.float64,
                         device=dev)
    return Landscape(
        solutions=torch.tensor([len(i) for i in index], device=dev),
        pairs=torch.stack([pair_histogram(i, N) for i in index]),
        neighbours=neighbours,
        local_energy=err_sum / (shell * P[:, None]),
        solution_index=index,
    )


def neighbour_counts(solution_index: Tensor, refs: Tensor, N: int) -> Tensor:
    """Exact local entropy curves: solutions at each distance D from each reference.

    solution_index: int64 [S] (one instance's ``Landscape.solution_index``);
    refs: int64 [R] vector indices. Returns int64 [R, N + 1]; (1/N) ln of a row is the
    local entropy around that reference (docs/science.md §5).
    """
    counts = torch.zeros(len(refs), N + 1, dtype=torch.int64, device=refs.device)
    step = max(1, _WORK // max(1, len(solution_index)))
    for start in range(0, len(refs), step):
        dist = popcount(refs[start:start + step, None] ^ solution_index[None, :])
        counts[start:start + step].scatter_add_(1, dist, torch.ones_like(dist))
    return counts


def probe(batch: TorchBatch, solution: Tensor, *, activation: str, weights: str,
          params: EnumerateParams, keys: list[int]) -> ProbeResult:
    """Rows (instance, D = 0 .. N), only for N <= max_N: D, d, overlap, solutions,
    pairs, neighbours, solution_frac (neighbours / C(N, D)), local_entropy
    ((1/N) ln neighbours; null where 0), local_energy (exact). Deterministic."""
    B, K, n = solution.shape
    N = K * n
    if N > params.max_N:
        return ProbeResult(np.zeros(0, dtype=np.int64), {})
    land = landscape(batch, solution, activation)
    Ds = np.arange(N + 1)
    counts = land.neighbours.cpu().numpy()
    shell = np.array([math.comb(N, int(D)) for D in Ds], dtype=float)
    with np.errstate(divide="ignore"):
        entropy = np.where(counts > 0, np.log(np.maximum(counts, 1)) / N, np.nan)
    return grid_rows({
        "D": Ds, "d": Ds / N, "overlap": 1 - 2 * Ds / N,
        "solutions": land.solutions[:, None].expand(B, N + 1), "pairs": land.pairs,
        "neighbours": counts, "solution_frac": counts / shell, "local_entropy": entropy,
        "local_energy": land.local_energy,
    })
