"""transpose, squeeze, expand_dims, concatenate, stack, tensordot, dot, matmul, outer vs NumPy."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lazyarr
import lazyarr.array as la
from lazyarr.array.routines import (
    concatenate,
    dot,
    expand_dims,
    flatten,
    matmul,
    moveaxis,
    outer,
    ravel,
    squeeze,
    stack,
    swapaxes,
    tensordot,
    transpose,
)

from _array_helpers import SCHEDULERS, arrays, assert_eq, chunkings

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), pair=arrays(max_ndim=4, max_side=5))
def test_transpose_moveaxis_swapaxes(data, pair):
    values, x = pair
    axes = tuple(data.draw(st.permutations(range(values.ndim))))
    assert_eq(transpose(x, axes), np.transpose(values, axes))
    assert_eq(x.T, values.T)
    if values.ndim:
        a, b = data.draw(st.integers(-values.ndim, values.ndim - 1)), data.draw(st.integers(0, values.ndim - 1))
        assert_eq(moveaxis(x, a, b), np.moveaxis(values, a, b))
        assert_eq(swapaxes(x, a, b), np.swapaxes(values, a, b))


@SETTINGS
@given(data=st.data(), pair=arrays(max_ndim=3, max_side=4))
def test_expand_dims_then_squeeze(data, pair):
    values, x = pair
    count = data.draw(st.integers(1, 2))
    axes = tuple(data.draw(st.lists(st.integers(-values.ndim - count, values.ndim + count - 1), min_size=count,
                                    max_size=count, unique_by=lambda a: a % (values.ndim + count))))
    grown = expand_dims(x, axes)
    assert_eq(grown, np.expand_dims(values, axes))
    assert_eq(squeeze(grown), np.squeeze(np.expand_dims(values, axes)))
    assert_eq(squeeze(grown, axis=axes), values)


@SETTINGS
@given(data=st.data(), first=arrays(min_ndim=1, max_ndim=3, max_side=5))
def test_concatenate_and_stack(data, first):
    values, x = first
    axis = data.draw(st.integers(-values.ndim, values.ndim - 1))
    others, expected = [x], [values]
    for _ in range(data.draw(st.integers(0, 2))):
        shape = list(values.shape)
        shape[axis] = data.draw(st.integers(0, 4))
        dtype = data.draw(st.sampled_from(["i8", "f4", "i2"]))
        v = (np.arange(np.prod(shape)).reshape(shape) * 3).astype(dtype)
        others.append(la.from_array(v, chunks=data.draw(chunkings(tuple(shape)))))
        expected.append(v)
    assert_eq(concatenate(others, axis=axis), np.concatenate(expected, axis=axis))
    same = [la.from_array(values + i, chunks=data.draw(chunkings(values.shape))) for i in range(3)]
    new_axis = data.draw(st.integers(-values.ndim - 1, values.ndim))
    assert_eq(stack(same, axis=new_axis), np.stack([values + i for i in range(3)], axis=new_axis))


@SETTINGS
@given(data=st.data())
def test_tensordot_matches_numpy(data):
    n_contract = data.draw(st.integers(0, 2))
    shared = tuple(data.draw(st.lists(st.integers(0, 5), min_size=n_contract, max_size=n_contract)))
    free_a = tuple(data.draw(st.lists(st.integers(1, 4), max_size=2)))
    free_b = tuple(data.draw(st.lists(st.integers(1, 4), max_size=2)))
    a_values = np.arange(np.prod(free_a + shared), dtype=float).reshape(free_a + shared) % 7 - 2
    b_values = np.arange(np.prod(shared + free_b), dtype=float).reshape(shared + free_b) % 5 - 1
    a = la.from_array(a_values, chunks=data.draw(chunkings(a_values.shape)))
    b = la.from_array(b_values, chunks=data.draw(chunkings(b_values.shape)))
    result = tensordot(a, b, axes=n_contract)
    np.testing.assert_allclose(result.compute(scheduler="sync"), np.tensordot(a_values, b_values, axes=n_contract))
    assert result.shape == free_a + free_b
    # the same contraction with explicit, permuted axes
    if n_contract == 2:
        axes = ([len(free_a) + 1, len(free_a)], [1, 0])
        np.testing.assert_allclose(tensordot(a, b, axes=axes).compute(scheduler="sync"),
                                   np.tensordot(a_values, b_values, axes=axes))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("shape_a, shape_b", [
    ((5,), (5,)), ((4, 5), (5,)), ((5,), (5, 3)), ((4, 5), (5, 3)), ((2, 4, 5), (5, 3)),
    ((2, 4, 5), (3, 5, 2)), ((), (3, 2)), ((4, 0), (0, 3)),
])
def test_dot_matches_numpy(scheduler, shape_a, shape_b):
    a_values = np.arange(np.prod(shape_a), dtype=float).reshape(shape_a) - 3
    b_values = np.arange(np.prod(shape_b), dtype=float).reshape(shape_b) % 4
    a = la.from_array(a_values, chunks=2)
    b = la.from_array(b_values, chunks=3)
    np.testing.assert_allclose(dot(a, b).compute(scheduler=scheduler), np.dot(a_values, b_values))
    np.testing.assert_allclose(a.dot(b_values).compute(scheduler=scheduler), np.dot(a_values, b_values))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("shape_a, shape_b", [
    ((5,), (5,)), ((4, 5), (5,)), ((5,), (5, 3)), ((4, 5), (5, 3)), ((2, 4, 5), (5, 3)),
    ((3, 1, 4, 5), (2, 5, 3)), ((1, 4, 5), (3, 5, 2)), ((6,), (2, 6, 3)), ((0, 5), (5, 2)),
])
def test_matmul_matches_numpy(scheduler, shape_a, shape_b):
    a_values = np.arange(np.prod(shape_a), dtype=float).reshape(shape_a) % 6
    b_values = np.arange(np.prod(shape_b), dtype=float).reshape(shape_b) - 2
    a = la.from_array(a_values, chunks=2)
    b = la.from_array(b_values, chunks=(3,) * len(shape_b))
    result = a @ b
    np.testing.assert_allclose(result.compute(scheduler=scheduler), a_values @ b_values)
    assert result.shape == (a_values @ b_values).shape
    np.testing.assert_allclose((a_values @ b).compute(scheduler=scheduler), a_values @ b_values)


def test_contraction_is_a_tree_of_bounded_width():
    a_values = np.arange(2 * 40, dtype=float).reshape(2, 40)
    a = la.from_array(a_values, chunks=(2, 1))  # 40 blocks along the contracted axis
    with lazyarr.config.set({"array.split-every": 3}):
        result = a @ a.T
    partial_layer = result.dask.layers[f"{result.name}-partial"]
    sums = [task for task in partial_layer.values() if task[0].__name__ == "_sum_all"]
    assert sums and all(len(task[1]) <= 3 for task in sums)
    assert len(result.dask.layers[result.name][(result.name, 0, 0)][1]) <= 3
    np.testing.assert_allclose(result.compute(), a_values @ a_values.T)


def test_dtypes_follow_numpy():
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    bools = np.array([[True, False], [False, False], [True, True]])
    x = la.from_array(ints, chunks=1)
    y = la.from_array(bools, chunks=1)
    assert_eq(x @ y, ints @ bools)
    assert_eq(y.T @ y, bools.T @ bools)
    assert_eq(concatenate([x, la.from_array(ints.astype(np.float32), chunks=2)]),
          np.concatenate([ints, ints.astype(np.float32)]))


def test_outer_and_ravel_aliases():
    a_values, b_values = np.arange(6).reshape(2, 3), np.arange(4) - 1
    a, b = la.from_array(a_values, chunks=2), la.from_array(b_values, chunks=3)
    assert_eq(outer(a, b), np.outer(a_values, b_values))
    assert_eq(ravel(a), a_values.ravel())
    assert_eq(flatten(a), a_values.ravel())


@pytest.mark.parametrize("call, message", [
    (lambda a, b: dot(a, b), r"shapes \(2, 3\) and \(4, 5\) not aligned: 3 \(dim 1\) != 4 \(dim 0\)"),
    (lambda a, b: a @ b, r"shapes \(2, 3\) and \(4, 5\) do not match"),
    (lambda a, b: tensordot(a, b, axes=([0], [1])), r"shapes \(2, 3\) and \(4, 5\).*axis 0 of a has length 2"),
    (lambda a, b: tensordot(a, b, axes=([0, 1], [0])), "2 axes .* of a but 1 axes"),
    (lambda a, b: concatenate([a, b]), r"dimension 1 differs among shapes \(2, 3\), \(4, 5\)"),
    (lambda a, b: stack([a, b]), r"same shape; got shapes \(2, 3\), \(4, 5\)"),
    (lambda a, b: concatenate([a, b[0]]), r"same number of dimensions; got shapes \(2, 3\), \(5,\)"),
    (lambda a, b: matmul(a[0, 0], b), "at least one dimension"),
    (lambda a, b: matmul(la.ones((2, 3, 4), chunks=2), la.ones((5, 4, 2), chunks=2)), "batch"),
    (lambda a, b: squeeze(a, 0), r"cannot squeeze axis 0 of an array of shape \(2, 3\)"),
    (lambda a, b: transpose(a, (0,)), r"axes \(0,\) don't match an array of shape \(2, 3\)"),
    (lambda a, b: transpose(a, (0, 0)), "repeated axis"),
    (lambda a, b: concatenate([]), "at least one array"),
    (lambda a, b: concatenate([a[0, 0], a[0, 0]]), "zero-dimensional"),
])
def test_shape_errors_name_the_shapes(call, message):
    a, b = la.ones((2, 3), chunks=2), la.ones((4, 5), chunks=2)
    with pytest.raises(ValueError, match=message):
        call(a, b)


@pytest.mark.parametrize("call", [
    lambda a: transpose(a, (0, 2)),
    lambda a: concatenate([a, a], axis=2),
    lambda a: stack([a, a], axis=-4),
    lambda a: expand_dims(a, 3),
    lambda a: moveaxis(a, 0, 5),
])
def test_axis_out_of_range(call):
    with pytest.raises(ValueError, match="out of range"):
        call(la.ones((2, 3), chunks=2))


def test_transpose_fuses_with_elementwise_operations():
    values = np.arange(12.0).reshape(3, 4)
    x = la.from_array(values, chunks=2)
    y = (x.T + 1) * 2
    assert_eq(y, (values.T + 1) * 2)
    graph = y.__lazyarr_optimize__(y.dask, y.__lazyarr_keys__())
    assert len([k for k in graph if isinstance(k, tuple) and k[0] == y.name]) == 4
    assert not any(isinstance(k, tuple) and k[0].startswith("transpose") for k in graph)
