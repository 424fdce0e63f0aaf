"""x[index] and x[mask] = value, compared with NumPy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lazyarr.array as la
from lazyarr.array.slicing import getitem, setitem, slice_axis, take
from lazyarr.core import get_dependencies

from lazyarr.array.layers import materialize_layer

from _array_helpers import SCHEDULERS, arrays, assert_eq

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _has_nan(chunks) -> bool:
    return any(isinstance(c, float) and math.isnan(c) for axis in chunks for c in axis)


def assert_masked_eq(lazy, expected, scheduler: str = "sync") -> None:
    """For results of lazy masks, whose chunk sizes are unknown (nan): compare values and dtype."""
    assert _has_nan(lazy.chunks)
    result = np.asarray(lazy.compute(scheduler=scheduler))
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


def layer_tasks(x) -> dict:
    """The tasks of ``x``'s own layer."""
    return materialize_layer(x.dask.layers[x.name])


@st.composite
def basic_indices(draw, shape):
    """A random basic index for ``shape``: ints, slices (any step), None and maybe an Ellipsis."""
    entries = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "slice", "full"] if n else ["slice", "full"]))
        if kind == "int":
            entries.append(draw(st.integers(-n, n - 1)))
        elif kind == "full":
            entries.append(slice(None))
        else:
            bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
            step = draw(st.one_of(st.none(), st.integers(-4, 4).filter(bool)))
            entries.append(slice(draw(bound), draw(bound), step))
    for _ in range(draw(st.integers(0, 2))):
        entries.insert(draw(st.integers(0, len(entries))), None)
    if entries and draw(st.booleans()):
        # replace a run of full slices by an Ellipsis, or drop trailing entries
        start = draw(st.integers(0, len(entries) - 1))
        stop = draw(st.integers(start, len(entries)))
        if all(e == slice(None) for e in entries[start:stop]):
            entries[start:stop] = [Ellipsis]
    return tuple(entries)


@SETTINGS
@given(data=st.data(), pair=arrays(max_ndim=3))
def test_basic_indexing_matches_numpy(data, pair):
    values, x = pair
    index = data.draw(basic_indices(values.shape))
    assert_eq(x[index], values[index])


@SETTINGS
@given(data=st.data(), pair=arrays(min_ndim=1, max_ndim=3, min_side=1))
def test_integer_array_indexing_matches_numpy(data, pair):
    values, x = pair
    axis = data.draw(st.integers(0, values.ndim - 1))
    n = values.shape[axis]
    positions = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=12)), dtype=np.intp)
    index = [slice(None)] * values.ndim
    index[axis] = positions
    if values.ndim > 1 and data.draw(st.booleans()):
        other = data.draw(st.sampled_from([a for a in range(values.ndim) if a != axis]))
        index[other] = data.draw(st.integers(0, values.shape[other] - 1))
    index = tuple(index)
    assert_eq(x[index], values[index])


@SETTINGS
@given(data=st.data(), pair=arrays(min_ndim=1, max_ndim=3, min_side=1))
def test_numpy_boolean_masks_give_known_chunks(data, pair):
    values, x = pair
    k = data.draw(st.integers(1, values.ndim))
    axis = data.draw(st.integers(0, values.ndim - k))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=math.prod(values.shape[axis:axis + k]),
                                       max_size=math.prod(values.shape[axis:axis + k]))),
                    dtype=bool).reshape(values.shape[axis:axis + k])
    index = (slice(None),) * axis + (mask,)
    result = x[index]
    assert not _has_nan(result.chunks)
    assert_eq(result, values[index])


@SETTINGS
@given(data=st.data(), pair=arrays(min_ndim=1, max_ndim=3))
def test_lazy_boolean_masks_give_unknown_chunks(data, pair):
    values, x = pair
    k = data.draw(st.integers(1, values.ndim))
    axis = data.draw(st.integers(0, values.ndim - k))
    threshold = data.draw(st.integers(-4, 8))
    mask_values = (values > threshold).sum(axis=tuple(range(axis)) + tuple(range(axis + k, values.ndim))) > 0 \
        if values.size else np.zeros(values.shape[axis:axis + k], dtype=bool)
    mask_chunks = data.draw(st.sampled_from([x.chunks[axis:axis + k], -1]))
    mask = la.from_array(mask_values, chunks=mask_chunks)
    index = (slice(None),) * axis + (mask,)
    assert_masked_eq(x[index], values[(slice(None),) * axis + (mask_values,)])


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_mask_from_the_array_itself(scheduler):
    values = np.arange(30).reshape(5, 6) * 7 % 10
    x = la.from_array(values, chunks=(2, 4))
    assert_masked_eq(x[x > 4], values[values > 4], scheduler)
    assert_masked_eq(x[x[:, 0] > 4], values[values[:, 0] > 4], scheduler)
    assert_masked_eq(x[1:, x[0] > 4], values[1:, values[0] > 4], scheduler)
    y = x[x > 4]
    assert_masked_eq(y[y > 6], values[values > 4][values[values > 4] > 6], scheduler)


def test_advanced_indices_apart_put_their_dimension_first():
    values = np.arange(60).reshape(3, 4, 5)
    x = la.from_array(values, chunks=2)
    for index in [(0, slice(None), [1, 3]), ([2, 0], slice(1, 3), 4), (1, None, [0, 2])]:
        assert_eq(x[index], values[index])
    for index in [(0, [1, 3]), (slice(None), [3, 0], 1)]:
        assert_eq(x[index], values[index])


def test_take_with_nd_indices_and_unsorted_positions():
    values = np.arange(40).reshape(8, 5)
    x = la.from_array(values, chunks=(3, 2))
    idx = np.array([[7, 0], [3, 3], [-1, 5]])
    assert_eq(x[idx], values[idx])
    assert_eq(take(x, [4, 0, 2, 2], axis=1), np.take(values, [4, 0, 2, 2], axis=1))


def test_sorted_repeated_positions_are_cut_into_bounded_chunks():
    x = la.from_array(np.arange(10), chunks=3)
    y = x[np.zeros(10, dtype=int)]
    assert max(y.chunks[0]) <= 3
    assert_eq(y, np.zeros(10, dtype=np.int64))
    # sorted positions: one output chunk per input block touched
    z = x[[0, 1, 4, 5, 9]]
    assert z.chunks == ((2, 2, 1),)


def test_unsorted_positions_never_load_many_blocks_in_one_task():
    values = np.arange(1000)
    x = la.from_array(values, chunks=10)
    perm = np.random.default_rng(1).permutation(1000)
    y = x[perm]
    take_layers = [layer for name, layer in y.dask.layers.items() if name.startswith("take")]
    assert len(take_layers) == 2  # the per-block splits and the ordered merges
    for layer in take_layers:
        for task in materialize_layer(layer).values():
            reads = [k for k in get_dependencies(y.dask, task=task) if k[0] == x.name]
            assert len(reads) <= 1
    assert_eq(y, values[perm])


def test_only_needed_blocks_are_in_the_graph():
    x = la.from_array(np.arange(10_000).reshape(100, 100), chunks=10)
    y = x[15, 31:33]
    tasks = layer_tasks(y)
    assert len(tasks) == 1
    (task,) = tasks.values()
    assert (x.name, 1, 3) in task
    z = x[::50, 95:]
    assert z.numblocks == (2, 1) and len(layer_tasks(z)) == 2
    w = x[[5, 95], :10]
    needed = {k for task in layer_tasks(w).values() for k in task if isinstance(k, tuple) and k[:1] == (x.name,)}
    assert len(layer_tasks(w)) == 2 and len(needed) <= 2


def test_slice_axis_plans():
    assert slice_axis((3, 3, 3), slice(2, 7)) == [(0, slice(2, 3, 1), 1), (1, slice(0, 3, 1), 3),
                                                  (2, slice(0, 1, 1), 1)]
    assert slice_axis((3, 3), slice(None, None, -2)) == [(1, slice(2, None, -2), 2), (0, slice(1, 0, -2), 1)]
    assert slice_axis((3, 3), slice(5, 5)) == [(0, slice(0, 0, 1), 0)]
    assert slice_axis((2, 0, 2), slice(1, 3)) == [(0, slice(1, 2, 1), 1), (2, slice(0, 1, 1), 1)]


def test_empty_and_zero_dimensional_arrays():
    empty = np.zeros((0, 4))
    x = la.from_array(empty, chunks=2)
    for index in [(slice(None), 1), (slice(0, 0),), ([],), (Ellipsis, None), (slice(None), [0, 3])]:
        assert_eq(x[index], empty[index])
    scalar = la.from_array(np.array(5.0))
    assert_eq(scalar[()], np.array(5.0))
    assert_eq(scalar[None], np.array([5.0]))
    assert_eq(scalar[...], np.array(5.0))


@pytest.mark.parametrize("index, message", [
    ((5,), "index 5 is out of bounds for axis 0 with length 4"),
    ((0, -7), "index -7 is out of bounds for axis 1 with length 6"),
    ((slice(None), [1, 6]), "index 6 is out of bounds for axis 1 with length 6"),
    ((0, 0, 0), "too many indices"),
    ((np.ones(3, dtype=bool),), r"boolean index of shape \(3,\) does not match .* \(4,\) at axis 0"),
    ((1.5,), "only integers, slices"),
    ((Ellipsis, Ellipsis), "single ellipsis"),
    (([0.5, 1.0],), "integer or boolean type"),
])
def test_bad_indices_fail_at_build_time(index, message):
    x = la.from_array(np.zeros((4, 6)), chunks=2)
    with pytest.raises(IndexError, match=message):
        x[index]


def test_unsupported_indices_say_so():
    x = la.from_array(np.zeros((4, 6)), chunks=2)
    with pytest.raises(NotImplementedError, match="more than one array"):
        x[[0, 1], [2, 3]]
    with pytest.raises(NotImplementedError, match="lazy integer array"):
        x[la.from_array(np.array([0, 1]))]
    y = x[x[:, 0] > 0]
    with pytest.raises(IndexError, match="unknown"):
        y[0]
    with pytest.raises(ValueError, match="step cannot be zero"):
        x[::0]


def test_lazy_mask_of_the_wrong_shape():
    x = la.from_array(np.zeros((4, 6)), chunks=2)
    with pytest.raises(IndexError, match=r"\(5,\) does not match"):
        x[la.from_array(np.ones(5, dtype=bool))]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_setitem_with_lazy_and_numpy_masks(scheduler):
    values = np.arange(24, dtype=float).reshape(4, 6)
    x = la.from_array(values, chunks=(3, 4))
    name = x.name
    x[x > 10] = -1.5
    expected = values.copy()
    expected[expected > 10] = -1.5
    assert x.name != name
    assert_eq(x, expected, scheduler)
    mask = np.zeros((4, 6), dtype=bool)
    mask[::2, 1::3] = True
    x[mask] = 7
    expected[mask] = 7
    assert_eq(x, expected, scheduler)
    # the mask is rechunked to the array's chunks
    x[la.from_array(expected < 0, chunks=1)] = 0
    expected[expected < 0] = 0
    assert_eq(x, expected, scheduler)


def test_setitem_errors():
    x = la.from_array(np.zeros((4, 6), dtype=np.uint8), chunks=2)
    with pytest.raises(IndexError, match=r"mask of shape \(6, 4\) does not match the array's shape \(4, 6\)"):
        x[np.zeros((6, 4), dtype=bool)] = 1
    with pytest.raises(NotImplementedError, match="scalar"):
        x[x > 0] = np.arange(3)
    with pytest.raises(ValueError, match="cannot assign 'text' to an array of dtype uint8"):
        x[x > 0] = "text"
    with pytest.raises(NotImplementedError, match="boolean mask"):
        x[0] = 1
    assert getitem(x, ()) is x
    y = setitem(x, x == 0, 3)
    assert_eq(y, np.full((4, 6), 3, dtype=np.uint8))
