"""Philox-4x64-10 in torch, bit-identical to numpy's ``np.random.Philox`` (the seed
scheme of ``instances``), so per-instance streams are generated on the batch's device.

numpy's conventions, reproduced here (numpy/random/src/philox/philox.h, _philox.pyx):

- the 128-bit key int is split little-endian into two 64-bit key words
  (k0 = key mod 2**64, k1 = key >> 64); the counter (4 x 64-bit words) starts at 0 and
  is incremented *before* each block, so block j (j = 0, 1, ...) encrypts counter j + 1;
- each block yields 4 words, emitted in order v[0], v[1], v[2], v[3]; word i of the
  stream is word i % 4 of block i // 4 (no other buffering);
- 10 rounds; a round maps (x0, x1, x2, x3) to (hi(M1 x2) ^ x1 ^ k0, lo(M1 x2),
  hi(M0 x0) ^ x3 ^ k1, lo(M0 x0)), and the key is bumped by the Weyl constants W0, W1
  (mod 2**64) between rounds;
- ``Generator.random`` maps a word u to (u >> 11) * 2**-53.

torch has no full uint64 arithmetic and no 64x64 -> 128-bit multiply, so a 64-bit word
is held as two 32-bit limbs (little-endian) in int64 tensors, and products are formed
from 16-bit limbs: every intermediate stays below 2**51, far from int64 overflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from relu_landscape.instances import derive_key

_M = (0xD2E7470EE14C6C93, 0xCA5A826395121157)  # multipliers of words 0 and 2
_W = (0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B)  # Weyl increments of key words 0 and 1
_ROUNDS = 10
_MASK16 = 0xFFFF
_MASK32 = 0xFFFFFFFF
# Philox blocks per chunk (all instances together): bounds the limb temporaries (a few
# dozen int64 a block, ~100 MB) while leaving each of the ~300 small kernels of a chunk
# enough work to hide its launch on a GPU.
_CHUNK_BLOCKS = 1 << 18


def key_limbs(keys: Sequence[int], device: torch.device | str | None = None) -> Tensor:
    """128-bit keys as int64 [B, 4]: 32-bit limbs, least significant first."""
    rows = [[(k >> s) & _MASK32 for s in (0, 32, 64, 96)] for k in keys]
    return torch.tensor(rows, dtype=torch.int64, device=device).reshape(len(rows), 4)


def _round_keys(keys: Tensor) -> Tensor:
    """Key of every round, int64 [ROUNDS, 2 words, 2 limbs, B, 1], from keys [B, 4]."""
    r = torch.arange(_ROUNDS, dtype=torch.int64, device=keys.device)[:, None, None]
    w_lo = keys.new_tensor([w & _MASK32 for w in _W])
    w_hi = keys.new_tensor([w >> 32 for w in _W])
    lo = keys[None, :, 0::2] + r * w_lo  # [R, B, 2 words], < 10 * 2**32
    hi = (keys[None, :, 1::2] + r * w_hi + (lo >> 32)) & _MASK32
    return torch.stack((lo & _MASK32, hi), dim=-1).permute(0, 2, 3, 1)[..., None]


def _mul_coefficients(device: torch.device) -> Tensor:
    """G [2, 4, 4, 1, 1] int64 with m x = sum_j 2**(32 j) sum_i G[j, i] x16_i for each
    multiplier m, x16_i being the 16-bit limbs of x: G[j, i] = m16[2j - i] +
    2**16 m16[2j + 1 - i] < 2**32, m16 the 16-bit limbs of m (zero outside 0..3)."""
    def limb(m: int, k: int) -> int:
        return (m >> (16 * k)) & _MASK16 if 0 <= k < 4 else 0

    g = [[[limb(m, 2 * j - i) + (limb(m, 2 * j + 1 - i) << 16) for i in range(4)]
          for j in range(4)] for m in _M]
    return torch.tensor(g, dtype=torch.int64, device=device)[..., None, None]


def _mulhilo(x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
    """Full 128-bit products m * x for the two multiplied words.

    x: int64 [2, 2 limbs, B, C] (words 0 and 2 of the state, 32-bit limbs);
    g: ``_mul_coefficients`` of M0, M1. Returns (lo, hi), each [2, 2 limbs, B, C].
    """
    x16 = torch.stack((x & _MASK16, x >> 16), dim=2).flatten(1, 2)  # [2, 4, B, C]
    # 32-bit column j of the product: 4 terms < 2**48 each, so < 2**50 (no overflow)
    wide = g[:, :, 0] * x16[:, None, 0]  # [2, 4, B, C]
    for i in range(1, 4):
        wide.addcmul_(g[:, :, i], x16[:, None, i])
    out = torch.empty_like(wide)
    v = wide[:, 0]
    for j in range(4):  # exact carry propagation, least significant column first
        torch.bitwise_and(v, _MASK32, out=out[:, j])
        if j < 3:
            v = wide[:, j + 1] + (v >> 32)
    return out[:, :2], out[:, 2:]


def _blocks(keys: Tensor, first: int, count: int) -> Tensor:
    """Philox blocks ``first`` .. ``first + count - 1`` of each key's stream.

    keys: int64 [B, 4] (``key_limbs``). Returns int64 [4 words, 2 limbs, B, count];
    block j encrypts the counter (j + 1, 0, 0, 0), as numpy does.
    """
    dev = keys.device
    ctr = torch.arange(first + 1, first + 1 + count, dtype=torch.int64, device=dev)
    x = keys.new_zeros((4, 2, keys.shape[0], count))
    x[0, 0] = ctr & _MASK32
    x[0, 1] = ctr >> 32
    g = _mul_coefficients(dev)
    for k in _round_keys(keys):  # k: [2 words, 2 limbs, B, 1]
        lo, hi = _mulhilo(x[0::2], g)  # index 0: M0 x0, index 1: M1 x2
        x = torch.stack((hi[1] ^ x[1] ^ k[0], lo[1], hi[0] ^ x[3] ^ k[1], lo[0]))
    return x


def _stream(keys: Tensor, n: int, finish: Callable[[Tensor, Tensor], Tensor],
            start: int = 0) -> Tensor:
    """Words start .. start+n-1 of each key's stream [B, n], each mapped by ``finish``
    from its (hi, lo) 32-bit limbs."""
    B = keys.shape[0]
    skip = start % 4
    end = -(-(skip + n) // 4) + start // 4
    parts = []
    step = max(1, _CHUNK_BLOCKS // max(B, 1))
    for first in range(start // 4, end, step):
        x = _blocks(keys, first, min(step, end - first))  # [4, 2, B, C]
        parts.append(finish(x[:, 1], x[:, 0]).permute(1, 2, 0).reshape(B, -1))
    if not parts:
        return finish(keys.new_zeros((B, 0)), keys.new_zeros((B, 0)))
    return torch.cat(parts, dim=1)[:, skip:skip + n]


def philox4x64_raw(keys: Tensor, n: int) -> Tensor:
    """The first n 64-bit words of each stream, int64 [B, n], equal bit for bit to
    ``np.random.Philox(key).random_raw(n)`` viewed as int64 (two's complement).

    keys: int64 [B, 4] from ``key_limbs``; the words are made on ``keys.device``.
    """
    # hi - 2**32 [hi >= 2**31] is the signed top half; times 2**32, plus lo, stays in
    # the int64 range, so no step overflows
    return _stream(keys, n, lambda hi, lo: (hi - ((hi >> 31) << 32)) * (1 << 32) + lo)


def philox4x64_uniforms(keys: Tensor, n: int, start: int = 0) -> Tensor:
    """Uniforms in [0, 1), float64 [B, n]: ``Generator(Philox(key)).random(start + n)``
    per key, without its first ``start``.

    keys: int64 [B, 4] from ``key_limbs``; computed on ``keys.device``. u >> 11 < 2**53
    is an integer that float64 holds exactly, and the scaling by 2**-53 is exact.
    """
    return _stream(keys, n, lambda hi, lo: ((hi << 21) + (lo >> 11)).double() * 2**-53,
                   start)


def block_uniforms(keys: Sequence[int], block: int, shape: tuple[int, ...],
                   device: torch.device | str, start: int = 0) -> Tensor:
    """Torch twin of ``instances.uniform_block``, bit for bit, made on ``device``.

    keys: B stream keys (``instances.stream_key``). Returns float64 [B, *shape]; the
    per-(key, block) keys are derived on the host (one blake2b each), the uniforms on
    the device. ``start``: skip that many uniforms of each stream first.
    """
    block_keys = key_limbs([derive_key("block", k, block) for k in keys], device)
    u = philox4x64_uniforms(block_keys, math.prod(shape), start)
    return u.reshape(len(keys), *shape)
