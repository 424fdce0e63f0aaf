"""searchsorted, digitize and isin against NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr.array as la

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(100)
VALUES = RNG.normal(size=(13, 7))
SORTED = np.sort(RNG.normal(size=20))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("a_chunks", [6, 20, ((1, 19),)])
@pytest.mark.parametrize("v_chunks", [(4, 3), (13, 7)])
def test_searchsorted(a_chunks, v_chunks, scheduler):
    a = la.from_array(SORTED, chunks=a_chunks)
    v = la.from_array(VALUES, chunks=v_chunks)
    for side in ("left", "right"):
        assert_eq(la.searchsorted(a, v, side=side), np.searchsorted(SORTED, VALUES, side=side), scheduler=scheduler)
    assert_eq(la.searchsorted(a, SORTED[3], side="right"), np.searchsorted(SORTED, SORTED[3], side="right"))


def test_searchsorted_sorter_ties_and_errors():
    unsorted = RNG.permutation(SORTED)
    order = np.argsort(unsorted)
    assert_eq(la.searchsorted(la.from_array(unsorted, chunks=6), VALUES[0], sorter=order),
              np.searchsorted(unsorted, VALUES[0], sorter=order))
    ties = np.array([1, 2, 2, 2, 2, 3, 5])
    for side in ("left", "right"):
        assert_eq(la.searchsorted(la.from_array(ties, chunks=2), np.arange(7), side=side),
                  np.searchsorted(ties, np.arange(7), side=side))
    with pytest.raises(ValueError, match="1-d sorted array"):
        la.searchsorted(la.ones((2, 2)), 1)
    with pytest.raises(NotImplementedError, match="lazy sorter"):
        la.searchsorted(la.ones(3), 1, sorter=la.arange(3))


@pytest.mark.parametrize("chunks", [(4, 3), (13, 7), ((1, 12), (2, 5))])
def test_digitize(chunks):
    x = la.from_array(VALUES, chunks=chunks)
    for bins, right in (([-1, 0, 1], False), ([1., 0., -1.], True), (np.linspace(-2, 2, 9), False)):
        assert_eq(la.digitize(x, bins, right=right), np.digitize(VALUES, bins, right=right))
        lazy_bins = la.from_array(np.asarray(bins, dtype=float), chunks=2)
        assert_eq(la.digitize(x, lazy_bins, right=right), np.digitize(VALUES, bins, right=right))
    with pytest.raises(ValueError, match="monoton"):
        la.digitize(x, [0, 2, 1])


@pytest.mark.parametrize("chunks", [4, 13, ((1, 12),)])
def test_isin(chunks):
    values = RNG.integers(0, 9, size=13)
    x = la.from_array(values, chunks=chunks)
    tests = np.array([[1, 3], [8, 8]])
    for invert in (False, True):
        assert_eq(la.isin(x, [1, 3], invert=invert), np.isin(values, [1, 3], invert=invert))
        assert_eq(la.isin(x, la.from_array(tests, chunks=1), invert=invert), np.isin(values, tests, invert=invert))
        assert_eq(la.isin(x, la.from_array(np.int64(3)), invert=invert), np.isin(values, 3, invert=invert))
    grid = la.from_array(values[:12].reshape(3, 4), chunks=2)
    assert_eq(np.isin(grid, la.arange(5, chunks=2)), np.isin(values[:12].reshape(3, 4), np.arange(5)))
