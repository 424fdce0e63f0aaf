"""percentile, nanpercentile, quantile and nanquantile: exact along axes, approximate merge for
1-d arrays in several blocks (checked against NumPy within a tolerance)."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr.array as la

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(50)
NORMAL = RNG.normal(size=2000)
METHODS = ["linear", "lower", "higher", "midpoint", "nearest"]
QS = [50, [5, 25, 50, 75, 95.5], np.array([[1, 99], [40, 60]])]


@pytest.mark.parametrize("q", QS, ids=["scalar", "list", "2-d"])
@pytest.mark.parametrize("method", METHODS)
def test_percentile_one_block_is_exact(q, method):
    x = la.from_array(NORMAL, chunks=-1)
    assert_eq(la.percentile(x, q, method=method), np.percentile(NORMAL, q, method=method))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("chunks, tolerance", [(300, 0.1), (((1, 1999),), 0.1), (7, 0.3)])
def test_percentile_merge_is_close(chunks, tolerance, scheduler):
    x = la.from_array(NORMAL, chunks=chunks)
    for q in QS:
        for method in METHODS:
            result = la.percentile(x, q, method=method)
            expected = np.percentile(NORMAL, q, method=method)
            assert result.shape == expected.shape and result.dtype == expected.dtype
            error = np.abs(result.compute(scheduler=scheduler) - expected).max()
            assert error < tolerance, (q, method, error)  # the data's spread is about 7; tails are the worst


def test_percentile_of_integers_and_dtypes():
    values = RNG.integers(0, 1000, size=5000)
    x = la.from_array(values, chunks=600)
    result = la.percentile(x, [10, 50, 90])
    assert result.dtype == np.float64
    np.testing.assert_allclose(result.compute(), np.percentile(values, [10, 50, 90]), atol=5)
    lower = la.percentile(x, [10, 50], method="lower")
    assert lower.dtype == values.dtype
    single = la.from_array(NORMAL.astype(np.float32), chunks=500)
    assert la.percentile(single, 50).dtype == np.percentile(NORMAL.astype(np.float32), 50).dtype


def test_nanpercentile_one_dimensional():
    values = NORMAL.copy()
    values[RNG.random(2000) < 0.3] = np.nan
    x = la.from_array(values, chunks=150)
    result = la.nanpercentile(x, [10, 50, 90])
    np.testing.assert_allclose(result.compute(), np.nanpercentile(values, [10, 50, 90]), atol=0.05)
    assert_eq(la.nanpercentile(la.from_array(values, chunks=-1), [10, 50]), np.nanpercentile(values, [10, 50]))
    assert np.isnan(la.nanpercentile(la.from_array(np.full(5, np.nan), chunks=2), 50).compute())


MATRIX = RNG.random((9, 8))


@pytest.mark.parametrize("chunks", [(2, 3), (9, 8), ((1, 8), (5, 3))])
@pytest.mark.parametrize("axis", [0, 1, (0, 1), -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_quantile_along_axes(chunks, axis, keepdims):
    x = la.from_array(MATRIX, chunks=chunks)
    for q in (0.3, [0.1, 0.9]):
        assert_eq(la.quantile(x, q, axis=axis, keepdims=keepdims), np.quantile(MATRIX, q, axis=axis, keepdims=keepdims))
        percent = np.multiply(q, 100)
        assert_eq(la.percentile(x, percent, axis=axis, keepdims=keepdims),
                  np.percentile(MATRIX, percent, axis=axis, keepdims=keepdims))
    assert_eq(la.quantile(x, 0.5, axis=axis, method="nearest"), np.quantile(MATRIX, 0.5, axis=axis, method="nearest"))


def test_nanquantile_and_weights():
    values = MATRIX.copy()
    values[values < 0.2] = np.nan
    x = la.from_array(values, chunks=4)
    assert_eq(la.nanquantile(x, [0.5], axis=0), np.nanquantile(values, [0.5], axis=0))
    assert_eq(la.nanpercentile(x, 50, axis=1), np.nanpercentile(values, 50, axis=1))
    weights = RNG.random((9, 8))
    x = la.from_array(MATRIX, chunks=(2, 3))
    assert_eq(la.quantile(x, 0.5, axis=1, method="inverted_cdf", weights=la.from_array(weights, chunks=3)),
              np.quantile(MATRIX, 0.5, axis=1, method="inverted_cdf", weights=weights))
    row_weights = RNG.random(9)
    assert_eq(la.quantile(x, [0.2, 0.5], axis=0, method="inverted_cdf", weights=row_weights),
              np.quantile(MATRIX, [0.2, 0.5], axis=0, method="inverted_cdf", weights=row_weights))


def test_errors():
    x = la.from_array(MATRIX, chunks=3)
    with pytest.raises(NotImplementedError, match="over all axes of an array in 9 blocks"):
        la.quantile(x, 0.5)
    assert_eq(la.quantile(x.rechunk(-1), 0.5), np.quantile(MATRIX, 0.5))
    with pytest.raises(ValueError, match=r"range \[0, 100\]"):
        la.percentile(la.ones(5, chunks=2), 150)
    with pytest.raises(ValueError, match="methods linear, lower"):
        la.percentile(la.ones(5, chunks=2), 50, method="hazen")
    with pytest.raises(ValueError, match="empty"):
        la.percentile(la.ones(0), 50)
