"""histogram, histogram2d, histogramdd and bincount against NumPy."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lazyarr.array as la

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(40)
VALUES = RNG.normal(size=(13, 7))
WEIGHTS = RNG.random((13, 7))
CHUNKS = [(4, 3), (13, 7), ((1, 12), (2, 5))]


@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("kwargs", [
    dict(bins=7, range=(-2, 2)),
    dict(bins=np.array([-3, -1, 0, 0.5, 4])),
    dict(bins=5, range=(-1, 1), density=True),
    dict(bins=4, range=(0, 1), weights=WEIGHTS),
    dict(bins=[-1, 0, 1], weights=WEIGHTS, density=True),
])
def test_histogram(chunks, kwargs):
    x = la.from_array(VALUES, chunks=chunks)
    lazy_kwargs = dict(kwargs)
    if "weights" in kwargs:
        lazy_kwargs["weights"] = la.from_array(kwargs["weights"], chunks=5)  # aligned with x's chunks
    hist, edges = la.histogram(x, **lazy_kwargs)
    expected, expected_edges = np.histogram(VALUES, **kwargs)
    assert_eq(hist, expected)
    np.testing.assert_array_equal(edges, expected_edges)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_histogram_with_lazy_edges_or_range(scheduler):
    x = la.from_array(VALUES, chunks=(5, 3))
    hist, edges = la.histogram(x, bins=6, range=(x.min(), x.max()))
    expected, expected_edges = np.histogram(VALUES, bins=6)
    assert_eq(hist, expected, scheduler=scheduler)
    assert_eq(edges, expected_edges, scheduler=scheduler)
    hist, edges = la.histogram(x, bins=la.from_array(expected_edges, chunks=2), density=True)
    assert_eq(hist, np.histogram(VALUES, bins=expected_edges, density=True)[0], scheduler=scheduler)


def test_histogram_errors():
    x = la.ones(5, chunks=2)
    with pytest.raises(ValueError, match="int number of bins together with range="):
        la.histogram(x, bins=5)
    with pytest.raises(ValueError, match="monotonically"):
        la.histogram(x, bins=[1, 0, 2])
    with pytest.raises(ValueError, match="weights of shape"):
        la.histogram(x, bins=2, range=(0, 1), weights=np.ones(4))


@pytest.mark.parametrize("chunks", [4, 13, (1, 12)])
def test_histogram2d_and_dd(chunks):
    a = la.from_array(VALUES[:, 0], chunks=(chunks,))
    b = la.from_array(VALUES[:, 1], chunks=5)
    kwargs = dict(bins=[3, np.array([-1, 0, 2.])], range=[(-1, 1), None], weights=WEIGHTS[:, 0], density=True)
    hist, xe, ye = la.histogram2d(a, b, **kwargs)
    expected, exe, eye_ = np.histogram2d(VALUES[:, 0], VALUES[:, 1], **kwargs)
    assert_eq(hist, expected)
    np.testing.assert_array_equal(xe, exe)
    np.testing.assert_array_equal(ye, eye_)
    sample = la.from_array(VALUES[:, :3], chunks=(chunks, 2))  # the columns are joined into one chunk
    hist, edges = la.histogramdd(sample, bins=(2, 3, 4), range=[(-1, 1)] * 3)
    expected, expected_edges = np.histogramdd(VALUES[:, :3], bins=(2, 3, 4), range=[(-1, 1)] * 3)
    assert_eq(hist, expected)
    for e, ne in zip(edges, expected_edges):
        np.testing.assert_array_equal(e, ne)
    with pytest.raises(ValueError, match="needs range"):
        la.histogramdd(sample, bins=3)


@pytest.mark.parametrize("chunks", [4, 13, ((1, 12),)])
@pytest.mark.parametrize("split_every", [2, None])
def test_bincount(chunks, split_every):
    values = RNG.integers(0, 9, size=13)
    x = la.from_array(values, chunks=chunks)
    counts = la.bincount(x, split_every=split_every)
    assert math.isnan(counts.shape[0])
    np.testing.assert_array_equal(counts.compute(), np.bincount(values))
    weighted = la.bincount(x, weights=WEIGHTS[:, 0], minlength=12, split_every=split_every)
    assert_eq(weighted, np.bincount(values, WEIGHTS[:, 0], minlength=12))
    with pytest.raises(ValueError, match="minlength=3 fixed the length"):
        la.bincount(x, minlength=3).compute()
    with pytest.raises(TypeError):
        la.bincount(la.ones(3))
