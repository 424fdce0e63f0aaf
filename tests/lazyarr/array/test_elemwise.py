"""Elementwise operations: operators, ufuncs, broadcasting across chunkings, where/clip/astype, errors."""
from __future__ import annotations

import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyarr
import lazyarr.array as da

from _array_helpers import SCHEDULERS, arrays, assert_eq, chunkings, numpy_quiet

pytestmark = pytest.mark.timeout(60)

BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
          operator.pow, operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]
BITWISE = [operator.and_, operator.or_, operator.xor, operator.lshift, operator.rshift]


@st.composite
def broadcastable_pair(draw, dtype: str = "f8"):
    """Two arrays whose shapes broadcast (some axes of length 1 or missing), randomly chunked."""
    shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=3))
    other = [n if draw(st.booleans()) else 1 for n in shape]
    other = other[draw(st.integers(0, len(other))):]
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    a = rng.integers(1, 6, size=shape).astype(dtype)
    b = rng.integers(1, 6, size=other).astype(dtype)
    if draw(st.booleans()):
        a, b = b, a
    x = da.from_array(a, chunks=draw(chunkings(a.shape)))
    y = da.from_array(b, chunks=draw(chunkings(b.shape)))
    return a, b, x, y


@settings(max_examples=40, deadline=None)
@given(broadcastable_pair(), st.sampled_from(BINARY), st.sampled_from(SCHEDULERS))
def test_binary_operators_broadcast_across_chunkings(pair, op, scheduler):
    a, b, x, y = pair
    assert_eq(op(x, y), numpy_quiet(op, a, b), scheduler=scheduler)


@settings(max_examples=20, deadline=None)
@given(broadcastable_pair(dtype="i8"), st.sampled_from(BITWISE + [operator.add, operator.floordiv]))
def test_integer_operators(pair, op):
    a, b, x, y = pair
    if op in (operator.lshift, operator.rshift):
        b = b % 8
        y = y % 8
    assert_eq(op(x, y), numpy_quiet(op, a, b))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_scalars_numpy_arrays_and_reflected_operators(scheduler):
    values = np.arange(12.0).reshape(3, 4)
    x = da.from_array(values, chunks=(2, 3))
    for lazy, expected in [
        (x + 1, values + 1), (1 - x, 1 - values), (2 * x, 2 * values), (1 / (x + 1), 1 / (values + 1)),
        (2 ** x, 2 ** values), (x ** 2, values ** 2), (7 % (x + 1), 7 % (values + 1)),
        (x + np.arange(4.0), values + np.arange(4.0)), (np.arange(4.0) * x, np.arange(4.0) * values),
        (x - values, np.zeros((3, 4))), (values - x, np.zeros((3, 4))), (-x, -values), (+x, values),
        (abs(x - 5), abs(values - 5)), (x > 5, values > 5), (5 < x, 5 < values), (x == values, values == values),
        (x + [1, 2, 3, 4], values + [1, 2, 3, 4]), (x * np.float32(2), values * np.float32(2)),
    ]:
        assert_eq(lazy, expected, scheduler=scheduler)
    i = da.arange(6, chunks=4)
    assert_eq(~i, ~np.arange(6))
    assert_eq(i & 3, np.arange(6) & 3)
    assert_eq(3 | i, 3 | np.arange(6))
    q, r = divmod(i, 4)
    assert_eq(q, np.arange(6) // 4)
    assert_eq(r, np.arange(6) % 4)
    q, r = divmod(17, i + 1)
    assert_eq(r, 17 % (np.arange(6) + 1))


def test_numpy_scalar_dtype_promotion_follows_numpy():
    x = da.ones(4, dtype="f4", chunks=2)
    assert (x + 1).dtype == np.float32
    assert (x + 1.5).dtype == (np.ones(4, "f4") + 1.5).dtype
    assert (x + np.float64(1)).dtype == (np.ones(4, "f4") + np.float64(1)).dtype
    assert (da.ones(3, dtype="i1", chunks=2) + 1).dtype == np.int8
    assert (da.ones(3, dtype="i4") / 2).dtype == np.float64


@settings(max_examples=15, deadline=None)
@given(arrays(dtype="f8", min_ndim=1), st.sampled_from(["sin", "cos", "exp", "log1p", "sqrt", "abs", "floor",
                                                        "isnan", "negative", "square", "tanh", "sign"]))
def test_numpy_ufuncs_stay_lazy(pair, name):
    values, x = pair
    values = np.abs(values)
    x = abs(x)
    ufunc = getattr(np, name)
    lazy = ufunc(x)
    assert isinstance(lazy, da.Array)
    assert_eq(lazy, numpy_quiet(ufunc, values))
    assert_eq(getattr(da, name)(x), numpy_quiet(ufunc, values))


def test_ufunc_variants():
    values = np.arange(1.0, 7.0)
    x = da.from_array(values, chunks=4)
    assert_eq(np.add(x, 1, dtype="f4"), np.add(values, 1, dtype="f4"))
    assert_eq(np.maximum(x, 3), np.maximum(values, 3))
    assert_eq(np.arctan2(x, values[::-1].copy()), np.arctan2(values, values[::-1]))
    frac, whole = np.modf(x / 4)
    assert_eq(frac, np.modf(values / 4)[0])
    assert_eq(whole, np.modf(values / 4)[1])
    mant, exp = da.frexp(x)
    assert_eq(exp, np.frexp(values)[1])
    assert_eq(np.add.outer(x, da.arange(3, chunks=2)), np.add.outer(values, np.arange(3)))
    assert_eq(np.add.reduce(x), np.add.reduce(values))
    assert_eq(np.multiply.accumulate(x), np.multiply.accumulate(values))
    assert_eq(np.maximum.reduce(da.from_array(values.reshape(2, 3), chunks=1), axis=1),
              np.maximum.reduce(values.reshape(2, 3), axis=1))
    assert da.sin(values).dtype == np.float64  # NumPy input: plain NumPy result
    with pytest.raises(TypeError):
        np.add(x, 1, out=np.empty(6))
    assert isinstance(np.sin(x), da.Array)


def test_numpy_functions_dispatch_to_lazy_versions():
    values = np.arange(12.0).reshape(3, 4)
    x = da.from_array(values, chunks=2)
    for func in (np.sum, np.mean, np.std, np.var, np.min, np.max, np.prod, np.cumsum, np.argmax):
        lazy = func(x)
        assert isinstance(lazy, da.Array), func
        assert_eq(lazy, func(values))
    assert_eq(np.where(x > 3, x, 0), np.where(values > 3, values, 0))
    assert_eq(np.clip(x, 2, 8), np.clip(values, 2, 8))
    assert_eq(np.round(x / 7, 2), np.round(values / 7, 2))
    assert np.shape(x) == (3, 4) and np.ndim(x) == 2
    assert_eq(np.isclose(x, values), np.ones((3, 4), bool))
    with pytest.warns(UserWarning, match="no lazy version"):
        result = np.median(x)
    assert result == np.median(values)


@settings(max_examples=20, deadline=None)
@given(broadcastable_pair(), st.floats(-2, 8))
def test_where(pair, threshold):
    a, b, x, y = pair
    assert_eq(da.where(x > threshold, x, y), np.where(a > threshold, a, b))
    assert_eq(da.where(a > threshold, 1.0, y), np.where(a > threshold, 1.0, b))
    with pytest.raises(NotImplementedError, match="unknown count"):
        da.where(x > 0)


def test_clip_and_astype():
    values = np.linspace(-3, 3, 13)
    x = da.from_array(values, chunks=5)
    assert_eq(x.clip(-1, 2), values.clip(-1, 2))
    assert_eq(da.clip(x, None, 0), np.clip(values, None, 0))
    assert_eq(da.clip(x, min=0), np.clip(values, 0, None))
    assert da.clip(x) is x
    assert_eq(x.astype("i4"), values.astype("i4"))
    assert x.astype("f8") is x
    assert_eq(x.astype("f4") * 2, values.astype("f4") * 2)
    with pytest.raises(TypeError, match=r"cannot cast array from float64 to int32 under casting='safe'"):
        x.astype("i4", casting="safe")
    c = x + 1j * x
    assert_eq(c.real, values)
    assert_eq(c.imag, values)
    assert_eq(c.conj(), np.conj(values + 1j * values))
    assert_eq(x.round(1), values.round(1))


def test_broadcast_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"could not be broadcast together with shapes \(3, 4\) \(5,\)"):
        da.ones((3, 4)) + da.ones(5)
    with pytest.raises(ValueError, match=r"\(2,\) \(3,\)"):
        da.ones(2) * np.ones(3)
    with pytest.raises(ValueError, match=r"shapes \(3,\) \(2,\)$"):
        da.where(da.ones(3) > 0, np.ones(2), 1.0)


def test_dtype_errors_at_build_time():
    with pytest.raises(TypeError, match=r"and_ cannot be applied to operands of type float64"):
        da.ones(3) & 1
    with pytest.raises(TypeError, match="cannot be applied"):
        da.invert(da.ones(3))
    with pytest.raises(TypeError):
        da.ones(3) + "text"


def test_different_chunkings_are_aligned_once():
    a, b = np.arange(10.0), np.arange(10.0) * 3
    x = da.from_array(a, chunks=3)
    y = da.from_array(b, chunks=4)
    z = x + y
    assert z.chunks == ((3, 1, 2, 2, 1, 1),)
    assert_eq(z, a + b)
    x2 = da.from_array(a.reshape(2, 5), chunks=(1, 2))
    y2 = da.from_array(np.arange(5.0), chunks=5)
    assert (x2 * y2).chunks == ((1, 1), (2, 2, 1))


def test_other_collections_handle_mixed_arithmetic_themselves():
    result = da.ones(3, chunks=2) + lazyarr.delayed(1)
    assert not isinstance(result, da.Array)  # Array declined; Delayed took over
    np.testing.assert_array_equal(result.compute(), np.ones(3) + 1)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_zero_d_and_empty_arrays(scheduler):
    s = da.from_array(np.float64(3.0))
    assert_eq(s * 2 + 1, np.asarray(7.0), scheduler=scheduler)
    e = da.ones((0, 3), chunks=2)
    assert_eq(e + 1, np.ones((0, 3)) + 1, scheduler=scheduler)
    assert_eq(e + np.ones(3), np.ones((0, 3)) + np.ones(3), scheduler=scheduler)
    assert_eq(da.ones((1, 3)) + da.ones((0, 1)), np.ones((1, 3)) + np.ones((0, 1)), scheduler=scheduler)
