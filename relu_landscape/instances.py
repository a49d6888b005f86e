"""Counter-based, device-independent generation of instances (docs/science.md §1).

Seed scheme (documented in the README, binding for reproducibility):

    key(stream, *ids) = int(blake2b("relu-landscape/v1|" + "|".join([stream, *ids])), 128 bit)

and a stream is numpy's Philox-4x64 counter-based generator keyed by that value, so a
draw depends only on its key, never on batch size, order, device or node.

- patterns xi [P, N] int8 +-1:  key("xi", seed, N, inputs, s), bits taken row-major from
  the raw 64-bit stream (each row uses 4*ceil(N/256) words). Row mu never depends on P,
  so the patterns at alpha < alpha' are a prefix of those at alpha' (alpha grid =
  prefixes; one pattern matrix serves all of an instance's alpha values).
- gaussian patterns [P, N] float32: the same key, ``standard_normal`` drawn row-major.
- labels sigma [P] int8 +-1:     key("labels", seed, N, s), one bit per pattern.
- initial weights [K, n]:        key("w0", seed, N, weights, s): +-1 bits (binary) or
  standard normals rescaled to |W_l|^2 = n (continuous).
- solver / probe randomness:     ``stream_key(instance, tag)``, per instance, in blocks.

Here ``seed`` is the spec's base seed and ``s`` the seed index (0 .. seeds-1). The
patterns and labels do not depend on activation or K: sign and ReLU networks at the
same N see the same data, which makes paired comparisons possible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


def derive_key(stream: str, *ids: object) -> int:
    """128-bit Philox key for a named stream and its identifiers (see module doc)."""
    text = "|".join(["relu-landscape/v1", stream, *map(str, ids)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "little")


def philox(key: int) -> np.random.Generator:
    """A numpy Generator on a Philox-4x64 stream with this 128-bit key, counter 0."""
    return np.random.Generator(np.random.Philox(key=key))


def _pm1_bits(key: int, rows: int, cols: int) -> np.ndarray:
    words = 4 * -(-cols // 256)
    raw = philox(key).bit_generator.random_raw(rows * words)
    bits = np.unpackbits(raw.astype("<u8").view(np.uint8), bitorder="little")
    bits = bits.reshape(rows, words * 64)[:, :cols]
    return (bits.astype(np.int8) * 2 - 1).astype(np.int8)


@dataclass(frozen=True)
class InstanceId:
    """Identity of one instance: everything its data and randomness derive from.

    ``alpha`` and ``P = round(alpha N)`` select the prefix of the patterns used.
    """

    seed: int
    inputs: str
    activation: str
    weights: str
    K: int
    N: int
    alpha: float
    s: int

    @property
    def n(self) -> int:
        return self.N // self.K

    @property
    def P(self) -> int:
        return max(1, round(self.alpha * self.N))

    @property
    def run_id(self) -> str:
        """Stable 16-hex id joining the runs table to the probe tables."""
        text = "|".join(map(str, (self.seed, self.inputs, self.activation, self.weights,
                                  self.K, self.N, repr(self.alpha), self.s)))
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def patterns(inst: InstanceId, P: int | None = None) -> np.ndarray:
    """Patterns xi^mu, int8 +-1 [P, N] (or float32 N(0,1) entries for gaussian inputs)."""
    P = inst.P if P is None else P
    key = derive_key("xi", inst.seed, inst.N, inst.inputs, inst.s)
    if inst.inputs == "gaussian":
        return philox(key).standard_normal((P, inst.N), dtype=np.float32)
    return _pm1_bits(key, P, inst.N)


def labels(inst: InstanceId, P: int | None = None) -> np.ndarray:
    """Labels sigma^mu, int8 +-1 [P], i.i.d. uniform."""
    P = inst.P if P is None else P
    return _pm1_bits(derive_key("labels", inst.seed, inst.N, inst.s), 1, P)[0]


def initial_weights(inst: InstanceId) -> np.ndarray:
    """Initial weights [K, n]: +-1 int8 (binary) or float32 on the per-unit spheres."""
    key = derive_key("w0", inst.seed, inst.N, inst.weights, inst.s)
    if inst.weights == "binary":
        return _pm1_bits(key, 1, inst.N)[0].reshape(inst.K, inst.n)
    w = philox(key).standard_normal(inst.N).reshape(inst.K, inst.n)
    w *= np.sqrt(inst.n) / np.linalg.norm(w, axis=1, keepdims=True)
    return w.astype(np.float32)


def stream_key(inst: InstanceId, tag: str) -> int:
    """Key of a per-instance random stream for a solver or probe named ``tag``."""
    return derive_key(tag, inst.run_id)


def uniform_block(keys: list[int], block: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniforms in [0, 1), float64 [B, *shape]: block ``block`` of each key's stream.

    Each (key, block) pair is its own Philox stream, so a long run draws block by block
    with results independent of how instances are batched. ``rng.block_uniforms`` makes
    the same bits with torch on any device.
    """
    return np.stack([philox(derive_key("block", k, block)).random(shape) for k in keys])


@dataclass(frozen=True)
class Batch:
    """B instances padded to a common P, as numpy arrays ready for ``to_torch``.

    Instances that differ only in alpha share one pattern matrix (prefix property):
    xi_unique: int8 [S, P, N] (float32 for gaussian inputs), one per distinct
    (seed, s); source: int64 [B], the row of xi_unique instance b uses; slot: int64
    [B], b's rank among the instances sharing that row. xi = xi_unique[source] is the
    per-instance view [B, P, N]; y: int8 [B, P] labels (shared the same way);
    mask: bool [B, P] (True for the instance's own P patterns); w0: [B, K, n].
    """

    ids: tuple[InstanceId, ...]
    xi_unique: np.ndarray
    source: np.ndarray
    slot: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    w0: np.ndarray

    @property
    def xi(self) -> np.ndarray:
        return self.xi_unique[self.source]


def make_batch(ids: list[InstanceId]) -> Batch:
    """Generate and pad a batch. All ids must share activation, weights, K and N.

    Each distinct (seed, N, inputs, s) pattern matrix is generated once at the largest P
    it is needed for; smaller alphas use its prefix.
    """
    shapes = {(i.activation, i.weights, i.K, i.N, i.inputs) for i in ids}
    if len(shapes) != 1:
        raise ValueError(f"a batch needs one (activation, weights, K, N, inputs); got {shapes}")
    Pmax = max(i.P for i in ids)
    need: dict[tuple[int, int], InstanceId] = {}
    for i in ids:
        k = (i.seed, i.s)
        if k not in need or i.P > need[k].P:
            need[k] = i
    row = {k: r for r, k in enumerate(need)}
    first = patterns(next(iter(need.values())), 1)
    xi_unique = np.zeros((len(need), Pmax, ids[0].N), dtype=first.dtype)
    y_unique = np.ones((len(need), Pmax), dtype=np.int8)
    for k, i in need.items():
        xi_unique[row[k], : i.P], y_unique[row[k], : i.P] = patterns(i), labels(i)
    source = np.array([row[(i.seed, i.s)] for i in ids], dtype=np.int64)
    slot = np.zeros(len(ids), dtype=np.int64)
    seen: dict[int, int] = {}
    for b, r in enumerate(source):
        slot[b] = seen.get(r, 0)
        seen[r] = slot[b] + 1
    mask = np.arange(Pmax)[None, :] < np.array([i.P for i in ids])[:, None]
    w0 = np.stack([initial_weights(i) for i in ids])
    return Batch(tuple(ids), xi_unique, source, slot, y_unique[source], mask, w0)
