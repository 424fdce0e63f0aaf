"""Reductions and cumulative operations against NumPy, on random shapes, chunkings and axes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyarr.array as da
from lazyarr import config

from _array_helpers import SCHEDULERS, arrays, assert_eq, numpy_quiet

pytestmark = pytest.mark.timeout(90)

SIMPLE = ["sum", "prod", "mean", "var", "std", "any", "all", "nansum", "nanprod", "nanmean", "nanvar", "nanstd",
          "count_nonzero"]
NEEDS_ELEMENTS = ["min", "max", "nanmin", "nanmax"]


@st.composite
def axes_for(draw, ndim: int):
    """None, an int (maybe negative) or a tuple of distinct axes."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none" or ndim == 0:
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.permutations(range(ndim)))[: draw(st.integers(0, ndim))])


@settings(max_examples=60, deadline=None)
@given(st.data(), st.sampled_from(SIMPLE), st.booleans(), st.sampled_from([2, 3, 8, None]),
       st.sampled_from(SCHEDULERS))
def test_reductions_match_numpy(data, name, keepdims, split_every, scheduler):
    values, x = data.draw(arrays(dtype=data.draw(st.sampled_from(["f8", "i8", "f4"])), nans=True))
    axis = data.draw(axes_for(values.ndim))
    expected = numpy_quiet(getattr(np, name), values, axis=axis, keepdims=keepdims)
    lazy = getattr(da, name)(x, axis=axis, keepdims=keepdims, split_every=split_every)
    assert_eq(lazy, expected, rtol=1e-4 if values.dtype == np.float32 else None, scheduler=scheduler)


@settings(max_examples=30, deadline=None)
@given(st.data(), st.sampled_from(NEEDS_ELEMENTS), st.booleans())
def test_min_max_match_numpy(data, name, keepdims):
    values, x = data.draw(arrays(dtype=data.draw(st.sampled_from(["f8", "i4", "?"])), min_side=1, nans=True))
    axis = data.draw(axes_for(values.ndim))
    expected = numpy_quiet(getattr(np, name), values, axis=axis, keepdims=keepdims)
    assert_eq(getattr(da, name)(x, axis=axis, keepdims=keepdims, split_every=2), expected)


@settings(max_examples=30, deadline=None)
@given(st.data(), st.sampled_from(["argmin", "argmax", "nanargmin", "nanargmax"]), st.booleans())
def test_arg_reductions_match_numpy(data, name, keepdims):
    values, x = data.draw(arrays(dtype="f8", min_ndim=1, min_side=1, nans=name.startswith("arg")))
    values = np.round(values)  # ties: the first occurrence must win
    x = da.from_array(values, chunks=x.chunks)
    axis = data.draw(st.one_of(st.none(), st.integers(-values.ndim, values.ndim - 1)))
    expected = getattr(np, name)(values, axis=axis, keepdims=keepdims)
    assert_eq(getattr(da, name)(x, axis=axis, keepdims=keepdims, split_every=2), expected)


def test_nanargmin_all_nan_slice_raises_when_computed():
    x = da.from_array(np.array([[np.nan, 1.0], [np.nan, np.nan]]), chunks=1)
    assert_eq(da.nanargmin(da.from_array(np.array([[np.nan, 1.0]]), chunks=1), axis=1), np.array([1]))
    with pytest.raises(ValueError, match="All-NaN"):
        da.nanargmin(x, axis=1).compute()
    assert_eq(da.nanargmax(x), np.nanargmax(np.array([[np.nan, 1.0], [np.nan, np.nan]])))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_dtype_and_ddof(scheduler):
    values = np.arange(24, dtype="i2").reshape(4, 6)
    x = da.from_array(values, chunks=(3, 4))
    assert_eq(x.sum(dtype="i8"), values.sum(dtype="i8"), scheduler=scheduler)
    assert_eq(x.sum(), values.sum(), scheduler=scheduler)
    assert_eq(x.prod(axis=0, dtype="f8"), values.prod(axis=0, dtype="f8"), scheduler=scheduler)
    assert_eq(x.mean(axis=1, dtype="f4"), values.mean(axis=1, dtype="f4"), scheduler=scheduler)
    assert_eq(x.var(ddof=1), values.var(ddof=1), scheduler=scheduler)
    assert_eq(x.std(axis=0, ddof=2), values.std(axis=0, ddof=2), scheduler=scheduler)
    assert_eq(da.var(x, ddof=30), numpy_quiet(np.var, values, ddof=30), scheduler=scheduler)
    b = da.from_array(values % 2 == 0, chunks=2)
    assert_eq(b.sum(), (values % 2 == 0).sum(), scheduler=scheduler)
    assert_eq(b.mean(), (values % 2 == 0).mean(), scheduler=scheduler)
    c = da.from_array(values + 1j * values, chunks=3)
    assert_eq(c.var(), (values + 1j * values).var(), scheduler=scheduler)
    assert_eq(c.mean(axis=0), (values + 1j * values).mean(axis=0), scheduler=scheduler)


def test_variance_is_numerically_stable():
    rng = np.random.default_rng(0)
    values = 1e9 + rng.standard_normal(100_000)
    x = da.from_array(values, chunks=1_000)
    result = float(x.var().compute())
    assert abs(result - values.var()) / values.var() < 1e-6
    # naive E[x^2] - E[x]^2 in float64 would be off by orders of magnitude here
    naive = float((x ** 2).mean().compute() - x.mean().compute() ** 2)
    assert abs(naive - values.var()) > abs(result - values.var())


def test_zero_d_results_and_zero_d_inputs():
    s = da.from_array(np.float64(4.0))
    assert_eq(s.sum(), np.float64(4.0))
    assert_eq(da.ones(5, chunks=2).sum(), np.float64(5.0))
    result = da.ones((2, 3), chunks=1).sum().compute()
    assert np.ndim(result) == 0 and result == 6
    assert_eq(da.ones((2, 3), chunks=1).sum(axis=()), np.ones((2, 3)).sum(axis=()))


def test_empty_reductions():
    e = da.ones((0, 4), chunks=2)
    assert_eq(e.sum(), np.float64(0.0))
    assert_eq(e.sum(axis=0), np.zeros(4))
    assert_eq(e.mean(axis=1), np.ones((0, 4)).mean(axis=1))
    assert_eq(e.max(axis=1), np.ones((0, 4)).max(axis=1))
    with pytest.raises(ValueError, match=r"axis 0 of shape \(0, 4\) has length 0"):
        e.max(axis=0)
    with pytest.raises(ValueError, match="empty sequence"):
        e.argmin()
    # blocks of length zero among non-empty ones
    x = da.Array({("z", 0): np.array([]), ("z", 1): np.array([3.0, 1.0])}, "z", ((0, 2),), "f8")
    assert_eq(x.min(), np.float64(1.0))
    assert_eq(x.argmin(), np.intp(1))
    assert_eq(x.cumsum(), np.array([3.0, 4.0]))
    assert_eq(x.var(), np.array([3.0, 1.0]).var())


def test_axis_errors_at_build_time():
    x = da.ones((3, 4), chunks=2)
    with pytest.raises(ValueError, match=r"axis 2 is out of range for an array of shape \(3, 4\)"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match=r"axis -3 is out of range"):
        x.mean(axis=-3)
    with pytest.raises(ValueError, match="duplicate"):
        x.sum(axis=(0, -2))
    with pytest.raises(TypeError, match="one integer axis"):
        x.argmin(axis=(0, 1))
    with pytest.raises(TypeError, match="integer"):
        x.sum(axis=1.5)
    with pytest.raises(ValueError, match="split_every"):
        x.sum(split_every=1)
    with pytest.raises(TypeError, match="dtype <U1"):
        da.from_array(np.array(["a", "b"])).sum()


def test_tree_reduction_shape_follows_split_every():
    x = da.ones(1000, chunks=1)
    graph = x.sum(split_every=10).__lazyarr_optimize__(x.sum(split_every=10).dask, x.sum(split_every=10).__lazyarr_keys__())
    assert len(graph) == 1000 + 100 + 10 + 1
    with config.set({"array.split-every": 4}):
        y = x.sum()
    graph = y.__lazyarr_optimize__(y.dask, y.__lazyarr_keys__())
    assert len(graph) == 1000 + 250 + 63 + 16 + 4 + 1
    # per-axis fan-in
    z = da.ones((16, 16), chunks=1).sum(split_every={0: 4, 1: 16})
    assert int(z.compute()) == 256
    assert len(z.dask.layers) == 4  # ones, chunk, one combine level, aggregate


@settings(max_examples=30, deadline=None)
@given(st.data(), st.sampled_from(["cumsum", "cumprod", "nancumsum", "nancumprod"]))
def test_cumulative_match_numpy(data, name):
    values, x = data.draw(arrays(dtype=data.draw(st.sampled_from(["f8", "i8"])), nans=True))
    values = np.clip(values, -2, 2)
    x = da.from_array(values, chunks=x.chunks)
    if values.ndim == 0:
        axis = None
    else:
        axis = data.draw(st.one_of(st.none(), st.integers(-values.ndim, values.ndim - 1)))
    if axis is None and values.ndim > 1 and not hasattr(da, "ravel"):
        return
    assert_eq(getattr(da, name)(x, axis=axis), getattr(np, name)(values, axis=axis), rtol=1e-9)


def test_cumsum_dtype_and_long_chains():
    x = da.arange(1000, chunks=1)
    assert_eq(x.cumsum(), np.arange(1000).cumsum(), scheduler="threads")
    assert_eq(x.cumsum(dtype="f4"), np.arange(1000).cumsum(dtype="f4"), check_blocks=False)
    b = da.from_array(np.array([True, False, True]), chunks=1)
    assert_eq(b.cumsum(), np.array([True, False, True]).cumsum())
    with pytest.raises(ValueError, match="out of range"):
        x.cumsum(axis=1)


def test_methods_and_functions_agree():
    values = np.arange(12.0).reshape(3, 4)
    x = da.from_array(values, chunks=2)
    for name in ["sum", "mean", "std", "var", "min", "max", "prod", "any", "all", "argmin", "argmax"]:
        assert_eq(getattr(x, name)(axis=0), getattr(np, name)(values, axis=0))
    assert_eq(da.amax(x, axis=1), values.max(axis=1))
