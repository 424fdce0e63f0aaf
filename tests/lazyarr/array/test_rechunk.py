"""rechunk: values kept, chunks as asked, bounded memory per task, bounded graph size."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lazyarr
import lazyarr.array as la
from lazyarr.array.rechunk import axis_pieces, plan_rechunk, rechunk

from lazyarr.core import execute_task, get_dependencies, pack_results, toposort, validate_keys

from _array_helpers import SCHEDULERS, arrays, assert_eq, chunkings

def nbytes(value) -> int:
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    return 0


class MeasuringGet:
    """A synchronous ``get`` recording, per task whose name starts with ``prefix``, the bytes of
    its inputs plus its output: the memory that task needs at once."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.peak = 0
        self.tasks = 0

    def __call__(self, dsk, keys, **kwargs):
        dsk = dict(dsk)
        validate_keys(dsk, keys)
        deps = {k: get_dependencies(dsk, task=v) for k, v in dsk.items()}
        cache: dict = {}
        for key in toposort(dsk, deps):
            cache[key] = execute_task(dsk[key], cache)
            name = key[0] if isinstance(key, tuple) else key
            if isinstance(name, str) and name.startswith(self.prefix):
                self.tasks += 1
                used = nbytes(cache[key]) + sum(nbytes(cache[d]) for d in deps[key])
                self.peak = max(self.peak, used)
        return pack_results(keys, cache)


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=st.data(), pair=arrays(max_ndim=3, max_side=9))
def test_rechunk_to_random_chunks_keeps_values(data, pair):
    values, x = pair
    new = data.draw(chunkings(values.shape))
    y = rechunk(x, new)
    assert y.chunks == new
    assert_eq(y, values)


@SETTINGS
@given(pair=arrays(min_ndim=1, max_ndim=3, min_side=1, max_side=9), data=st.data())
def test_plan_never_builds_blocks_larger_than_old_or_new(pair, data):
    values, x = pair
    new = data.draw(chunkings(values.shape))
    biggest = max(math.prod(max(c) for c in x.chunks), math.prod(max(c) for c in new))
    plan = plan_rechunk(x.chunks, new)
    assert plan[-1:] == ([new] if new != x.chunks else [])
    for step in plan:
        assert math.prod(max(c) for c in step) <= biggest


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_long_thin_to_thin_long_is_staged(scheduler):
    n = 64
    values = np.arange(n * n, dtype=np.float64).reshape(n, n)
    x = la.from_array(values, chunks=(1, n))
    y = x.rechunk((n, 1))
    plan = plan_rechunk(x.chunks, y.chunks)
    assert len(plan) >= 2
    assert y.chunks == ((n,), (1,) * n)
    rechunk_layers = [name for name in y.dask.layers if name.startswith("rechunk-")]
    tasks = sum(len(y.dask.layers[name]) for name in rechunk_layers)
    assert tasks < n * n / 4  # a single step would cut every row into n pieces: n * n tasks
    assert_eq(y, values, scheduler)


def test_no_task_holds_more_than_two_blocks():
    n = 48
    block_bytes = n * 8
    x = la.ones((n, n), chunks=(1, n))
    for target in [(n, 1), (5, 7), (n, n // 2), (2, n)]:
        measure = MeasuringGet("rechunk-")
        result = x.rechunk(target).compute(get=measure)
        np.testing.assert_array_equal(result, np.ones((n, n)))
        new_block = 8 * math.prod(max(c) for c in la.ones((n, n), chunks=target).chunks)
        assert measure.tasks > 0
        # a task holds its inputs and its output; inputs are pieces of at most one old block or
        # pieces adding up to one new block
        assert measure.peak <= 2 * max(block_bytes, new_block), (target, measure.peak)


@pytest.mark.parametrize("spec, expected", [
    (3, ((3, 3, 1), (3, 3))),
    ((-1, 2), ((7,), (2, 2, 2))),
    ({1: 4}, ((2, 2, 2, 1), (4, 2))),
    ({-2: (3, 4)}, ((3, 4), (6,))),
    ((None, 1), ((2, 2, 2, 1), (1,) * 6)),
    (-1, ((7,), (6,))),
    ("auto", ((7,), (6,))),
    (((1, 6), (5, 1)), ((1, 6), (5, 1))),
])
def test_chunk_specifications(spec, expected):
    values = np.arange(42).reshape(7, 6)
    x = la.from_array(values, chunks=(2, 6))
    y = x.rechunk(spec)
    assert y.chunks == expected
    assert_eq(y, values)


def test_auto_follows_the_configured_chunk_size():
    x = la.ones((1000, 1000), chunks=(1000, 10))
    with lazyarr.config.set({"array.chunk-size": "80kB"}):
        y = x.rechunk("auto")
    assert max(y.chunks[0]) * max(y.chunks[1]) * 8 <= 80_000
    assert y.numblocks[0] > 1 and y.numblocks[1] < 100
    assert_eq(y, np.ones((1000, 1000)))


def test_same_chunks_return_the_same_array():
    x = la.ones((5, 5), chunks=2)
    assert x.rechunk(2) is x
    assert x.rechunk({0: (2, 2, 1)}) is x


@pytest.mark.parametrize("spec, message", [
    ((2, 2, 2), r"3 entries but the array of shape \(7, 6\) has 2 dimensions"),
    ({2: 3}, r"axis 2 .* out of range for an array with 2 dimensions"),
    (((3, 3), 2), r"add up to 6 .*length 7|shape \(7, 6\)"),
    ((0, 2), r"shape \(7, 6\)"),
    (("big", 2), r"shape \(7, 6\)"),
])
def test_bad_chunks_are_rejected(spec, message):
    x = la.ones((7, 6), chunks=2)
    with pytest.raises(ValueError, match=message):
        x.rechunk(spec)


def test_unknown_chunks_cannot_be_rechunked_along_their_axis():
    values = np.arange(12).reshape(3, 4)
    x = la.from_array(values, chunks=2)
    y = x[x[:, 0] > 0]
    with pytest.raises(ValueError, match="axis 0 has unknown chunk sizes"):
        y.rechunk((1, 2))
    z = y.rechunk({1: 4})  # the known axis can change
    assert z.chunks[1] == (4,)
    np.testing.assert_array_equal(z.compute(), values[values[:, 0] > 0])


def test_empty_and_zero_dimensional():
    e = la.ones((0, 5), chunks=2)
    assert_eq(e.rechunk((-1, 5)), np.ones((0, 5)))
    s = la.from_array(np.array(3.0))
    assert s.rechunk(()) is s


def test_axis_pieces():
    assert axis_pieces((3, 3), (2, 4)) == [[(0, slice(0, 2))], [(0, slice(2, 3)), (1, slice(0, 3))]]
    assert axis_pieces((2, 0, 2), (4,)) == [[(0, slice(0, 2)), (2, slice(0, 2))]]
    assert axis_pieces((0,), (0,)) == [[(0, slice(0, 0))]]
