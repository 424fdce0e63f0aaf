"""diff, ediff1d and gradient against NumPy, on uneven and tiny chunks."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr.array as la

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(90)
VALUES = RNG.random((7, 5))
CHUNKS = [(2, 3), (7, 5), ((1, 1, 5), (4, 1)), 1]


@pytest.mark.parametrize("chunks", CHUNKS)
def test_diff(chunks):
    x = la.from_array(VALUES, chunks=chunks)
    for n in (0, 1, 2, 4):
        for axis in (0, -1):
            assert_eq(la.diff(x, n, axis=axis), np.diff(VALUES, n, axis=axis))
    assert_eq(la.diff(x, prepend=0, append=VALUES[:, :2]), np.diff(VALUES, prepend=0, append=VALUES[:, :2]))
    assert_eq(la.diff(x, axis=0, prepend=la.zeros((1, 5)), append=-1.0),
              np.diff(VALUES, axis=0, prepend=np.zeros((1, 5)), append=-1.0))
    flags = VALUES > 0.5
    assert_eq(la.diff(la.from_array(flags, chunks=chunks)), np.diff(flags))


def test_diff_errors_and_ediff1d():
    with pytest.raises(ValueError, match="non-negative"):
        la.diff(la.ones(3), -1)
    with pytest.raises(ValueError, match="at least one dimension"):
        la.diff(la.ones(()))
    ints = RNG.integers(0, 100, (4, 3)).astype(np.uint8)
    x = la.from_array(ints, chunks=2)
    assert_eq(la.ediff1d(x), np.ediff1d(ints))
    ends = dict(to_end=np.array([1, 2], dtype=np.uint8), to_begin=np.uint8(7))
    assert_eq(la.ediff1d(x, **ends), np.ediff1d(ints, **ends))
    with pytest.raises(TypeError, match="same_kind"):
        la.ediff1d(x, to_begin=7)  # int64 into uint8, refused as NumPy does


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("chunks", CHUNKS)
@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient(chunks, edge_order, scheduler):
    x = la.from_array(VALUES, chunks=chunks)
    for got, want in zip(la.gradient(x, edge_order=edge_order), np.gradient(VALUES, edge_order=edge_order)):
        assert_eq(got, want, scheduler=scheduler)
    coords = np.cumsum(RNG.random(7) + 0.1)
    for got, want in zip(la.gradient(x, coords, 2.0, edge_order=edge_order),
                         np.gradient(VALUES, coords, 2.0, edge_order=edge_order)):
        assert_eq(got, want, scheduler=scheduler)
    assert_eq(la.gradient(x, 0.5, axis=1, edge_order=edge_order),
              np.gradient(VALUES, 0.5, axis=1, edge_order=edge_order))
    lazy_coords = la.from_array(coords, chunks=3)
    assert_eq(la.gradient(x, lazy_coords, axis=0), np.gradient(VALUES, coords, axis=0))


def test_gradient_dtypes_and_errors():
    ints = la.from_array(np.array([1, 4, 9, 16]), chunks=2)
    assert_eq(la.gradient(ints), np.gradient(np.array([1, 4, 9, 16])))
    single = la.from_array(VALUES.astype(np.float32), chunks=3)
    assert la.gradient(single, axis=0).dtype == np.float32
    assert isinstance(np.gradient(la.ones((3, 4), chunks=2)), tuple)  # NumPy's function dispatches here
    with pytest.raises(ValueError, match="at least edge_order"):
        la.gradient(la.ones(2), edge_order=2)
    with pytest.raises(ValueError, match="coordinates for axis 0 have length 3"):
        la.gradient(la.ones(4), np.arange(3.))
    with pytest.raises(TypeError, match="one spacing for all axes or one per axis"):
        la.gradient(la.ones((3, 3)), 1.0, 2.0, 3.0)
