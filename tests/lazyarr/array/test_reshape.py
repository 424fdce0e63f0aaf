"""reshape and ravel, compared with NumPy; reshape must be one task per block after rechunking."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lazyarr.array as la
from lazyarr.array.reshape import normalize_shape, ravel, reshape
from lazyarr.core import get_dependencies

from lazyarr.array.layers import materialize_layer

from _array_helpers import SCHEDULERS, arrays, assert_eq

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def shapes_of_size(draw, size: int):
    """A random shape holding ``size`` elements, with some axes of length one."""
    if size == 0:
        dims = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))
        return tuple(dims) if 0 in dims else tuple(dims) + (0,)
    dims = []
    remaining = size
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, remaining + 1) if remaining % d == 0]
        d = draw(st.sampled_from(divisors))
        dims.append(d)
        remaining //= d
    dims.append(remaining)
    return tuple(draw(st.permutations(dims)))


@SETTINGS
@given(data=st.data(), pair=arrays(max_ndim=4, max_side=6))
def test_reshape_matches_numpy(data, pair):
    values, x = pair
    shape = data.draw(shapes_of_size(values.size))
    if data.draw(st.booleans()) and values.size and shape:
        # ask for one axis with -1
        i = data.draw(st.integers(0, len(shape) - 1))
        shape = shape[:i] + (-1,) + shape[i + 1:]
    y = reshape(x, shape)
    assert_eq(y, values.reshape(shape))
    if values.size and tuple(y.shape) != values.shape:
        # blockwise: every reshape task reads exactly one block
        for task in materialize_layer(y.dask.layers[y.name]).values():
            assert len(get_dependencies(y.dask, task=task)) == 1


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_reshape_methods_and_ravel(scheduler):
    values = np.arange(120).reshape(4, 5, 6)
    x = la.from_array(values, chunks=(3, 2, 4))
    assert_eq(x.reshape(20, 6), values.reshape(20, 6), scheduler)
    assert_eq(x.reshape((6, -1)), values.reshape(6, -1), scheduler)
    assert_eq(x.reshape(2, 2, 1, 30), values.reshape(2, 2, 1, 30), scheduler)
    assert_eq(x.ravel(), values.ravel(), scheduler)
    assert_eq(ravel(x), values.ravel(), scheduler)
    assert_eq(x.flatten(), values.ravel(), scheduler)
    assert_eq(reshape(values, (10, 12)), values.reshape(10, 12), scheduler)


def test_rechunking_keeps_blocks_about_as_large():
    x = la.ones((1000, 1000), chunks=(100, 100))
    y = x.ravel()
    # the rows are rechunked to whole rows; the block count is kept close to 100 blocks
    assert y.chunks[0][0] % 1000 == 0
    assert max(y.chunks[0]) <= 100 * 100
    assert 50 <= y.numblocks[0] <= 200
    z = la.ones((24,), chunks=5).reshape(4, 6)  # blocks of 5 elements are not whole rows of 6
    assert z.chunks[1] == (6,) and sum(z.chunks[0]) == 4
    assert_eq(z, np.ones((4, 6)))


def test_chunks_already_compatible_are_not_rechunked():
    x = la.ones((6, 4), chunks=(2, 4))
    y = x.reshape(24)
    assert y.chunks == ((8, 8, 8),)
    assert not any(name.startswith("rechunk") for name in y.dask.layers)
    z = la.ones((24,), chunks=8).reshape(6, 4)
    assert z.chunks == ((2, 2, 2), (4,))
    assert not any(name.startswith("rechunk") for name in z.dask.layers)


def test_empty_and_zero_dimensional():
    assert_eq(la.ones((0, 4), chunks=2).reshape(2, 0, 3), np.ones((2, 0, 3)))
    assert_eq(la.ones((3, 0), chunks=2).reshape(-1), np.ones(0))
    assert_eq(la.from_array(np.array(7)).reshape(1, 1), np.array([[7]]))
    assert_eq(la.ones((1, 1), chunks=1).reshape(()), np.array(1.0))


def test_same_shape_is_the_same_array():
    x = la.ones((3, 4), chunks=2)
    assert x.reshape(3, 4) is x
    assert x.reshape(-1, 4) is x


@pytest.mark.parametrize("shape, message", [
    ((5, 3), r"cannot reshape array of shape \(3, 4\) \(size 12\) into shape \(5, 3\)"),
    ((-1, 5), r"cannot reshape array of shape \(3, 4\) \(size 12\) into shape \(-1, 5\)"),
    ((-1, -1), "only specify one unknown dimension"),
    ((2, -3), "negative dimensions"),
])
def test_bad_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        la.ones((3, 4), chunks=2).reshape(shape)


def test_bad_shape_types_and_unknown_shapes():
    with pytest.raises(TypeError, match="only integers"):
        normalize_shape((2.5, 2), (5,))
    values = np.arange(6)
    x = la.from_array(values, chunks=2)
    with pytest.raises(ValueError, match="unknown shape"):
        x[x > 2].reshape(1, -1)


def test_normalize_shape():
    assert normalize_shape(12, (3, 4)) == (12,)
    assert normalize_shape((np.int64(2), -1), (3, 4)) == (2, 6)
    assert normalize_shape((4, -1, 3), (6, 6)) == (4, 3, 3)
    with pytest.raises(ValueError, match="size 0"):
        normalize_shape((0, -1), (0, 5))  # ambiguous, as in NumPy
