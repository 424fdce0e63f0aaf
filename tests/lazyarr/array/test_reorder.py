"""flip, fliplr, flipud, roll, rollaxis, broadcast_to, tri, tril, triu against NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr.array as la

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(110)
VALUES = RNG.random((7, 5, 3))
CHUNKS = [(2, 3, 1), (7, 5, 3), ((1, 6), (4, 1), (2, 1))]


@pytest.mark.parametrize("chunks", CHUNKS)
def test_flips(chunks):
    x = la.from_array(VALUES, chunks=chunks)
    for axis in (None, 0, -1, (0, 2)):
        assert_eq(la.flip(x, axis), np.flip(VALUES, axis))
    assert_eq(la.fliplr(x), np.fliplr(VALUES))
    assert_eq(la.flipud(x), np.flipud(VALUES))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        la.fliplr(la.ones(3))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("chunks", CHUNKS)
def test_roll(chunks, scheduler):
    x = la.from_array(VALUES, chunks=chunks)
    for shift, axis in ((3, None), (-11, None), (2, 0), ((3, -8), (0, 1)), ((1, 1), (2, 2)), (7, 0), (0, 1)):
        assert_eq(la.roll(x, shift, axis), np.roll(VALUES, shift, axis), scheduler=scheduler)
    with pytest.raises(ValueError, match="broadcast"):
        la.roll(x, (1, 2, 3), (0, 1))


def test_rollaxis_and_broadcast_to():
    x = la.from_array(VALUES, chunks=2)
    for axis, start in ((2, 0), (0, 3), (1, -1), (-1, 1), (0, 0)):
        assert_eq(la.rollaxis(x, axis, start), np.rollaxis(VALUES, axis, start))
    with pytest.raises(ValueError, match="start must satisfy"):
        la.rollaxis(x, 0, 5)
    small = RNG.random((2, 1, 3))
    y = la.from_array(small, chunks=(1, 1, 2))
    assert_eq(la.broadcast_to(y, (4, 2, 5, 3)), np.broadcast_to(small, (4, 2, 5, 3)))
    assert_eq(la.broadcast_to(y, (4, 2, 5, 3), chunks=(2, 1, 3, 2)), np.broadcast_to(small, (4, 2, 5, 3)))
    assert la.broadcast_to(y, (2, 6, 3), chunks=(1, 4, 2)).chunks == ((1, 1), (4, 2), (2, 1))
    with pytest.raises(ValueError, match=r"cannot broadcast an array of shape \(2, 1, 3\) to shape \(2, 2, 2\)"):
        la.broadcast_to(y, (2, 2, 2))
    with pytest.raises(ValueError, match="cannot change the chunks"):
        la.broadcast_to(y, (2, 4, 3), chunks=(2, 4, 3))


@pytest.mark.parametrize("chunks", [2, (6, 4), ((1, 5), (3, 1))])
def test_triangles(chunks):
    square = RNG.random((6, 4))
    x = la.from_array(square, chunks=chunks)
    for k in (-7, -1, 0, 2, 5):
        assert_eq(la.tril(x, k), np.tril(square, k))
        assert_eq(la.triu(x, k), np.triu(square, k))
        assert_eq(la.tri(6, 4, k, dtype=int, chunks=chunks), np.tri(6, 4, k, dtype=int))
    stack = la.from_array(VALUES, chunks=(2, 2, 2))
    assert_eq(la.tril(stack), np.tril(VALUES))
    assert_eq(np.triu(la.from_array(VALUES[0, :, 0], chunks=2)), np.triu(VALUES[0, :, 0]))  # 1-d as NumPy
