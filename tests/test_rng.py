"""Torch Philox-4x64-10 (relu_landscape.rng) against numpy's own Philox, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relu_landscape import rng
from relu_landscape.instances import uniform_block
from relu_landscape.solvers.base import random_block

# Random 128-bit keys plus the edges of the little-endian split into two 64-bit words
# and of the Weyl key bumps (a carry out of the low 32-bit limb, wrap at 2**64).
_WORDS = np.random.default_rng(14).integers(0, 2**64, (40, 2), dtype=np.uint64)
_KEYS = [int(lo) | int(hi) << 64 for lo, hi in _WORDS]
_KEYS += [0, 1, 2**32 - 1, 2**63, 2**64 - 1, 2**64, 2**127, 2**128 - 1]
# numpy's stream in blocks of 4 words: lengths below, at and across block boundaries
_LENGTHS = [0, 1, 2, 3, 4, 5, 7, 8, 13, 257, 1001]


def _numpy_raw(n: int, keys: list[int] = _KEYS) -> np.ndarray:
    raw = [np.random.Philox(key=k).random_raw(n) for k in keys]
    return np.stack(raw).reshape(len(keys), n)


@pytest.mark.parametrize("n", _LENGTHS)
def test_raw_words_equal_numpy(n):
    raw = rng.philox4x64_raw(rng.key_limbs(_KEYS), n)
    assert raw.dtype == torch.int64 and raw.shape == (len(_KEYS), n)
    np.testing.assert_array_equal(raw.numpy().view(np.uint64), _numpy_raw(n))


@pytest.mark.parametrize("n", _LENGTHS)
def test_uniforms_equal_numpy(n):
    u = rng.philox4x64_uniforms(rng.key_limbs(_KEYS), n)
    ref = [np.random.Generator(np.random.Philox(key=k)).random(n) for k in _KEYS]
    ref = np.stack(ref).reshape(len(_KEYS), n)
    assert u.dtype == torch.float64 and u.shape == (len(_KEYS), n)
    # exact: the same float64 bits, not merely close
    np.testing.assert_array_equal(u.numpy().view(np.uint64), ref.view(np.uint64))


def test_mulhilo_equals_python_integers():
    """The limb product against Python's exact 128-bit product, extremes included."""
    xs = np.random.default_rng(3).integers(0, 2**64, 200, dtype=np.uint64).tolist()
    xs += [0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
    limbs = torch.tensor([[x & 0xFFFFFFFF, x >> 32] for x in xs], dtype=torch.int64)
    x = limbs.T[None, :, None, :].expand(2, 2, 1, len(xs))  # both multipliers, same x
    lo, hi = rng._mulhilo(x, rng._mul_coefficients(torch.device("cpu")))
    for w, m in enumerate(rng._M):
        got_lo = (lo[w, 0, 0] + (lo[w, 1, 0] << 32)).numpy().view(np.uint64)
        got_hi = (hi[w, 0, 0] + (hi[w, 1, 0] << 32)).numpy().view(np.uint64)
        assert [int(v) for v in got_lo] == [(m * x) % 2**64 for x in xs]
        assert [int(v) for v in got_hi] == [(m * x) >> 64 for x in xs]


def test_counter_carries_past_32_bits():
    """Blocks straddling counter 2**32 (the carry between the counter's 32-bit limbs),
    against numpy started at that counter (numpy increments before each block)."""
    first = 2**32 - 2
    x = rng._blocks(rng.key_limbs(_KEYS[:5]), first, 4)  # [4 words, 2 limbs, B, 4]
    words = (x[:, 0] + (x[:, 1] << 32)).permute(1, 2, 0).reshape(5, 16)
    ref = [np.random.Philox(key=k, counter=first).random_raw(16) for k in _KEYS[:5]]
    np.testing.assert_array_equal(words.numpy().view(np.uint64), np.stack(ref))


def test_chunks_do_not_change_the_stream(monkeypatch):
    # 3 keys: chunks of 7 // 3 = 2 blocks; 41 words = 11 blocks, the last chunk ragged
    monkeypatch.setattr(rng, "_CHUNK_BLOCKS", 7)
    np.testing.assert_array_equal(rng.philox4x64_raw(rng.key_limbs(_KEYS[:3]), 41)
                                  .numpy().view(np.uint64), _numpy_raw(41, _KEYS[:3]))


def test_block_uniforms_equal_uniform_block():
    keys, shape = _KEYS[:6], (5, 3, 2)
    u = rng.block_uniforms(keys, 7, shape, "cpu")
    assert u.shape == (6, *shape)
    np.testing.assert_array_equal(u.numpy(), uniform_block(keys, 7, shape))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_random_block_on_cuda_equals_cpu():
    keys, shape = _KEYS[:16], (3, 1001)
    u = random_block(keys, 5, shape, torch.device("cuda"))
    assert u.device.type == "cuda"
    np.testing.assert_array_equal(u.cpu().numpy(), uniform_block(keys, 5, shape))
