"""Instances are a function of (config, seed) alone: batch size, order and prefixes."""

from __future__ import annotations

import numpy as np
import pytest

from relu_landscape import instances
from relu_landscape.instances import InstanceId, make_batch


def ids(inputs="binary", weights="binary", alphas=(0.2, 0.5, 1.0), seeds=range(4)):
    return [InstanceId(3, inputs, "sign", weights, 3, 33, a, s) for s in seeds for a in alphas]


@pytest.mark.parametrize("inputs", ["binary", "gaussian"])
@pytest.mark.parametrize("weights", ["binary", "continuous"])
def test_same_instance_in_any_batch_and_order(inputs, weights):
    all_ids = ids(inputs, weights)
    full = make_batch(all_ids)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(all_ids))
    shuffled = make_batch([all_ids[i] for i in order])
    for pos, b in enumerate(order):
        i = all_ids[b]
        single = make_batch([i])
        for batch, row in ((full, b), (shuffled, pos)):
            P = i.P
            np.testing.assert_array_equal(batch.xi[row, :P], single.xi[0])
            np.testing.assert_array_equal(batch.y[row, :P], single.y[0])
            np.testing.assert_array_equal(batch.w0[row], single.w0[0])
            assert batch.mask[row].sum() == P and not batch.mask[row, P:].any()


@pytest.mark.parametrize("inputs", ["binary", "gaussian"])
def test_alpha_grid_is_prefixes(inputs):
    small = InstanceId(0, inputs, "relu", "binary", 2, 40, 0.3, 1)
    large = InstanceId(0, inputs, "relu", "binary", 2, 40, 2.0, 1)
    np.testing.assert_array_equal(instances.patterns(large)[: small.P], instances.patterns(small))
    np.testing.assert_array_equal(instances.labels(large)[: small.P], instances.labels(small))


def test_statistics_and_independence():
    i = InstanceId(0, "binary", "sign", "binary", 1, 501, 2.0, 0)
    xi = instances.patterns(i)
    assert xi.dtype == np.int8 and set(np.unique(xi)) == {-1, 1}
    # 1002 x 501 fair +-1 entries: mean within 5 standard errors of 0
    assert abs(xi.mean()) < 5 / np.sqrt(xi.size)
    other = instances.patterns(InstanceId(0, "binary", "sign", "binary", 1, 501, 2.0, 1))
    assert abs((xi * other.astype(np.int32)).mean()) < 5 / np.sqrt(xi.size)
    # patterns are shared across activation and K at the same N (paired comparisons)
    relu = InstanceId(0, "binary", "relu", "binary", 3, 501, 2.0, 0)
    np.testing.assert_array_equal(instances.patterns(relu), xi)


def test_continuous_initial_weights_on_spheres():
    i = InstanceId(0, "binary", "relu", "continuous", 4, 40, 0.5, 2)
    w = instances.initial_weights(i)
    np.testing.assert_allclose((w.astype(np.float64) ** 2).sum(-1), 10.0, rtol=1e-5)


def test_mixed_shapes_rejected():
    with pytest.raises(ValueError, match="one"):
        make_batch([ids()[0], InstanceId(3, "binary", "sign", "binary", 1, 33, 0.2, 0)])
