"""Creation functions against their NumPy counterparts, on random shapes and chunkings."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyarr
import lazyarr.array as da

from _array_helpers import SCHEDULERS, assert_eq, chunkings, shapes

pytestmark = pytest.mark.timeout(60)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_fills_match_numpy(data):
    shape = data.draw(shapes())
    chunks = data.draw(chunkings(shape))
    dtype = data.draw(st.sampled_from(["f8", "i4", "?", "c16", "f4"]))
    assert_eq(da.ones(shape, dtype=dtype, chunks=chunks), np.ones(shape, dtype=dtype))
    assert_eq(da.zeros(shape, dtype=dtype, chunks=chunks), np.zeros(shape, dtype=dtype))
    assert_eq(da.full(shape, 3, dtype=dtype, chunks=chunks), np.full(shape, 3, dtype=dtype))
    e = da.empty(shape, dtype=dtype, chunks=chunks)
    assert e.shape == shape and e.dtype == np.dtype(dtype) and e.compute().shape == shape


def test_full_infers_dtype_and_rejects_arrays():
    assert da.full(3, 7).dtype == np.full(3, 7).dtype
    assert da.full(3, 2.5).dtype == np.float64
    with pytest.raises(ValueError, match="scalar"):
        da.full(3, [1, 2, 3])


def test_like_functions():
    x = da.from_array(np.arange(12).reshape(3, 4), chunks=(2, 3))
    for func, npfunc in [(da.ones_like, np.ones_like), (da.zeros_like, np.zeros_like)]:
        y = func(x)
        assert y.chunks == x.chunks
        assert_eq(y, npfunc(np.arange(12).reshape(3, 4)))
    assert_eq(da.full_like(x, 9, dtype="f4"), np.full((3, 4), 9, dtype="f4"))
    assert da.empty_like(x).shape == (3, 4)
    assert_eq(da.ones_like(np.arange(3)), np.ones(3, dtype=int))
    assert da.zeros_like(x, shape=(5,), chunks=2).chunks == ((2, 2, 1),)


@settings(max_examples=30, deadline=None)
@given(st.integers(-20, 20), st.integers(-20, 40), st.sampled_from([1, 2, 3, -1, -3]), st.integers(1, 7))
def test_arange_integers(start, stop, step, chunk):
    assert_eq(da.arange(start, stop, step, chunks=chunk), np.arange(start, stop, step))


@settings(max_examples=30, deadline=None)
@given(st.floats(-10, 10), st.floats(-10, 30), st.sampled_from([0.1, 0.25, 0.7, 1.5, -0.3]), st.integers(1, 9))
def test_arange_floats(start, stop, step, chunk):
    expected = np.arange(start, stop, step)
    assert_eq(da.arange(start, stop, step, chunks=chunk), expected, rtol=1e-12)


def test_arange_forms_and_errors():
    assert_eq(da.arange(5), np.arange(5))
    assert_eq(da.arange(2, 5), np.arange(2, 5))
    assert_eq(da.arange(5, dtype="f4", chunks=2), np.arange(5, dtype="f4"))
    assert_eq(da.arange(start=1, stop=4), np.arange(1, 4))
    with pytest.raises(ValueError, match="step must not be zero"):
        da.arange(0, 5, 0)
    with pytest.raises(TypeError, match="1 to 3"):
        da.arange(1, 2, 3, 4)


@settings(max_examples=30, deadline=None)
@given(st.floats(-5, 5), st.floats(-5, 5), st.integers(0, 30), st.booleans(), st.integers(1, 8))
def test_linspace(start, stop, num, endpoint, chunk):
    expected = np.linspace(start, stop, num, endpoint=endpoint)
    assert_eq(da.linspace(start, stop, num, endpoint=endpoint, chunks=chunk), expected, rtol=1e-12)


def test_linspace_retstep_and_int_dtype():
    x, step = da.linspace(0, 10, 5, retstep=True, chunks=2)
    assert step == 2.5
    assert_eq(x, np.linspace(0, 10, 5))
    assert_eq(da.linspace(0, 10, 7, dtype=int, chunks=3), np.linspace(0, 10, 7, dtype=int))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 7), st.integers(0, 7), st.integers(-8, 8), st.integers(1, 4), st.integers(1, 4))
def test_eye(n, m, k, c0, c1):
    assert_eq(da.eye(n, M=m, k=k, chunks=(c0, c1)), np.eye(n, m, k=k))


def test_fromfunction():
    assert_eq(da.fromfunction(lambda i, j: i * 10 + j, (4, 5), dtype=int, chunks=(3, 2)),
              np.fromfunction(lambda i, j: i * 10 + j, (4, 5), dtype=int))
    assert_eq(da.fromfunction(lambda i: np.sin(i), (7,), chunks=3), np.sin(np.arange(7.0)))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_from_delayed(scheduler):
    value = lazyarr.delayed(np.arange)(6)
    x = da.from_delayed(value, shape=(6,), dtype=int)
    assert x.chunks == ((6,),)
    assert_eq(x * 2, np.arange(6) * 2, scheduler=scheduler)
    wrong = da.from_delayed(value, shape=(5,), dtype=int)
    with pytest.raises(ValueError, match=r"shape \(6,\), not the declared \(5,\)"):
        wrong.compute(scheduler=scheduler)
    with pytest.raises(TypeError, match="Delayed"):
        da.from_delayed(np.arange(3), shape=(3,), dtype=int)


def test_shape_errors():
    with pytest.raises(ValueError, match="negative"):
        da.zeros((2, -2))
    with pytest.raises(TypeError, match="integers"):
        da.ones((2.5,))
