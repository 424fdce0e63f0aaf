"""Reversing and rotating the order of elements: flip, fliplr, flipud, roll.

All of them are slicing and joining, so they keep the blocks as they are: a flip reverses
the order of the blocks and each block (a negative-step slice), and a roll cuts the array at
one place and joins the two parts the other way round (:func:`concatenate`).
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .core import Array, asarray
from .reductions import normalize_axes
from .routines import concatenate

__all__ = ["flip", "fliplr", "flipud", "roll"]


def _along(ndim: int, axis: int, sl: slice) -> tuple:
    return tuple(sl if d == axis else slice(None) for d in range(ndim))


def flip(m: Any, axis: int | Sequence[int] | None = None) -> Array:
    """Reverse the order of the elements along ``axis`` (all axes by default), like ``np.flip``.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(6).reshape(2, 3), chunks=2)
    >>> flip(x, 1).compute().tolist()
    [[2, 1, 0], [5, 4, 3]]
    >>> flip(x).compute().tolist()
    [[5, 4, 3], [2, 1, 0]]
    """
    m = asarray(m)
    axes = normalize_axes(axis, m.ndim, m.shape)
    if not axes:
        return m
    return m[tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(m.ndim))]


def fliplr(m: Any) -> Array:
    """Reverse the columns (axis 1) of an array with at least two dimensions (``np.fliplr``)."""
    m = asarray(m)
    if m.ndim < 2:
        raise ValueError(f"fliplr needs an array with at least 2 dimensions, got shape {m.shape}")
    return flip(m, 1)


def flipud(m: Any) -> Array:
    """Reverse the rows (axis 0) of an array with at least one dimension (``np.flipud``)."""
    m = asarray(m)
    if m.ndim < 1:
        raise ValueError("flipud needs an array with at least 1 dimension, got a 0-d array")
    return flip(m, 0)


def roll(array: Any, shift: int | Sequence[int], axis: int | Sequence[int] | None = None) -> Array:
    """Shift the elements cyclically by ``shift`` along ``axis`` (of the flattened array if None).

    ``shift`` and ``axis`` may be sequences that broadcast against each other, as in ``np.roll``;
    shifts along the same axis add up.

    >>> import numpy as np, lazyarr.array as la
    >>> roll(la.arange(5, chunks=2), 2).compute().tolist()
    [3, 4, 0, 1, 2]
    >>> roll(la.from_array(np.arange(6).reshape(2, 3), chunks=1), (1, -1), axis=(0, 1)).compute().tolist()
    [[4, 5, 3], [1, 2, 0]]
    """
    a = asarray(array)
    if axis is None:
        return roll(a.ravel(), shift, 0).reshape(a.shape)
    try:
        pairs = np.broadcast(shift, axis)
    except ValueError:
        raise ValueError(f"roll: shift {shift!r} and axis {axis!r} do not broadcast against each other") from None
    if pairs.ndim > 1:
        raise ValueError("roll: 'shift' and 'axis' should be scalars or 1-d sequences")
    total = dict.fromkeys(range(a.ndim), 0)
    for sh, ax in pairs:
        if not isinstance(sh, numbers.Integral):
            raise TypeError(f"roll: shifts must be integers, got {sh!r}")
        total[normalize_axes(int(ax), a.ndim, a.shape)[0]] += int(sh)
    result = a
    for ax, sh in total.items():
        n = a.shape[ax]
        if n == 0 or sh % n == 0:
            continue
        cut = n - sh % n  # the last ``sh % n`` elements move to the front
        result = concatenate([result[_along(a.ndim, ax, slice(cut, None))],
                              result[_along(a.ndim, ax, slice(None, cut))]], axis=ax)
    return result
