"""Discrete differences: diff, ediff1d, gradient.

``diff`` and ``ediff1d`` subtract two shifted slices, as Dask does; the two slices' blocks
are cut at different places, so the result is blocked at the boundaries of both (up to twice
as many blocks along the axis, per order of difference). ``gradient`` is a stencil: every
block sees one neighbouring cell on each side (:func:`~lazyarr.array.map_overlap`) and
``np.gradient`` runs on the grown block, so the result keeps the input's blocks.
"""
from __future__ import annotations

import numbers
from functools import partial
from typing import Any

import numpy as np

from .core import Array, asarray, map_blocks
from .overlap import _merge_small, overlap, trim_internal
from .rechunk import rechunk
from .reductions import normalize_axes
from .routines import broadcast_to, concatenate, expand_dims

__all__ = ["diff", "ediff1d", "gradient"]


def _slice_along(ndim: int, axis: int, sl: slice) -> tuple:
    return tuple(sl if d == axis else slice(None) for d in range(ndim))


def _edge_values(value: Any, a: Array, axis: int) -> Array:
    """``prepend``/``append`` of :func:`diff` as an array that joins ``a`` along ``axis``."""
    value = asarray(value)
    if value.ndim == 0:
        shape = list(a.shape)
        shape[axis] = 1
        value = broadcast_to(value, tuple(shape))
    return value


def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = None, append: Any = None) -> Array:
    """The ``n``-th discrete difference along ``axis`` (``np.diff``; booleans use ``!=``).

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.array([1, 2, 4, 7, 0]), chunks=2)
    >>> diff(x).compute().tolist()
    [1, 2, 3, -7]
    >>> diff(x, n=2, prepend=0).compute().tolist()
    [0, 1, 1, -10]
    """
    a = asarray(a)
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"diff: the order n must be an integer, not {n!r}")
    if n < 0:
        raise ValueError(f"diff: the order n must be non-negative, got {n}")
    if a.ndim == 0:
        raise ValueError("diff requires an input with at least one dimension, got a 0-d array")
    axis = normalize_axes(axis, a.ndim, a.shape)[0]
    if n == 0:
        return a
    parts = [_edge_values(prepend, a, axis)] if prepend is not None else []
    parts.append(a)
    if append is not None:
        parts.append(_edge_values(append, a, axis))
    if len(parts) > 1:
        a = concatenate(parts, axis=axis)
    later, earlier = _slice_along(a.ndim, axis, slice(1, None)), _slice_along(a.ndim, axis, slice(None, -1))
    for _ in range(int(n)):
        a = (a[later] != a[earlier]) if a.dtype == bool else a[later] - a[earlier]
    return a


def _flat_cast(value: Any, dtype: np.dtype, what: str) -> Array:
    value = asarray(value)
    if not np.can_cast(value.dtype, dtype, casting="same_kind"):
        raise TypeError(f"ediff1d: dtype of `{what}` ({value.dtype}) must be compatible with the input's "
                        f"dtype ({dtype}) under the 'same_kind' rule")
    return value.ravel().astype(dtype)


def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Array:
    """Differences between consecutive elements of the flattened array, with values put before
    and after (``np.ediff1d``); the result has the input's dtype.

    >>> import numpy as np, lazyarr.array as la
    >>> ediff1d(la.from_array(np.array([[1, 2], [4, 7]]), chunks=1), to_begin=-99).compute().tolist()
    [-99, 1, 2, 3]
    """
    ary = asarray(ary).ravel()
    if ary.dtype == bool:
        raise TypeError("ediff1d: subtracting booleans is not supported; use diff, which compares them with !=")
    dtype = ary.dtype
    parts = [] if to_begin is None else [_flat_cast(to_begin, dtype, "to_begin")]
    parts.append((ary[1:] - ary[:-1]).astype(dtype))
    if to_end is not None:
        parts.append(_flat_cast(to_end, dtype, "to_end"))
    return concatenate(parts) if len(parts) > 1 else parts[0]


def _gradient_block(block: np.ndarray, spacing: Any, axis: int, edge_order: int) -> np.ndarray:
    return np.gradient(block, spacing, axis=axis, edge_order=edge_order)


def _gradient_coords_block(block: np.ndarray, coords: np.ndarray, axis: int, edge_order: int) -> np.ndarray:
    return np.gradient(block, coords.ravel(), axis=axis, edge_order=edge_order)


def _spacings(varargs: tuple, f: Array, axes: tuple) -> list:
    """One spacing per axis: a scalar or a 1-d array of coordinates, checked as NumPy does."""
    if not varargs:
        return [1.0] * len(axes)
    if len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        return list(varargs) * len(axes)
    if len(varargs) != len(axes):
        raise TypeError(f"gradient: give one spacing for all axes or one per axis ({len(axes)}), "
                        f"not {len(varargs)}")
    out = []
    for ax, spacing in zip(axes, varargs):
        if np.ndim(spacing) not in (0, 1):
            raise ValueError(f"gradient: spacings must be scalars or 1-d coordinates, got shape {np.shape(spacing)}")
        if np.ndim(spacing) == 1 and np.shape(spacing)[0] != f.shape[ax]:
            raise ValueError(f"gradient: the coordinates for axis {ax} have length {np.shape(spacing)[0]}, but "
                             f"the axis has length {f.shape[ax]}")
        out.append(spacing)
    return out


def _gradient_along(f: Array, ax: int, spacing: Any, edge_order: int) -> Array:
    """``np.gradient`` along one axis: blocks grown by one cell on each side, then trimmed."""
    depth = {ax: 1}
    grown = overlap(f, depth, "none")
    if np.ndim(spacing) == 0:
        fn = partial(_gradient_block, spacing=spacing, axis=ax, edge_order=edge_order)
        out = map_blocks(fn, grown, dtype=f.dtype)
    else:
        coords = rechunk(asarray(spacing), (f.chunks[ax],))
        coords = expand_dims(overlap(coords, 1, "none"), [d for d in range(f.ndim) if d != ax])
        fn = partial(_gradient_coords_block, axis=ax, edge_order=edge_order)
        out = map_blocks(fn, grown, coords, dtype=f.dtype)
    return trim_internal(out, depth, "none")


def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Array | tuple[Array, ...]:
    """The gradient by second-order central differences inside, one-sided at the ends (``np.gradient``).

    ``varargs`` are the spacings: one scalar for every axis, or one scalar or 1-d array of
    coordinates per axis. Like NumPy, one axis gives one array and several give a tuple (Dask
    returns a list). Blocks shorter than ``edge_order + 1`` are merged with a neighbour first,
    since each block is differentiated with one ghost cell from each neighbour.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.array([1., 2., 4., 7., 11.]), chunks=2)
    >>> gradient(x).compute().tolist()
    [1.0, 1.5, 2.5, 3.5, 4.0]
    >>> [g.shape for g in gradient(la.ones((3, 4), chunks=2))]
    [(3, 4), (3, 4)]
    """
    f = asarray(f)
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, not {edge_order!r}")
    axes = normalize_axes(axis, f.ndim, f.shape)
    if isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axes(a, f.ndim, f.shape)[0] for a in axis)  # NumPy keeps the order given
    spacings = _spacings(varargs, f, axes)
    if f.dtype.kind in "biu":
        f = f.astype(np.float64)  # as NumPy: the differences of integers are floats
    elif f.dtype.kind not in "fc":
        raise TypeError(f"gradient of an array of dtype {f.dtype} is not supported")
    results = []
    for ax, spacing in zip(axes, spacings):
        if f.shape[ax] < edge_order + 1:
            raise ValueError(f"gradient: axis {ax} has length {f.shape[ax]}, but at least edge_order + 1 = "
                             f"{edge_order + 1} elements are needed")
        merged = _merge_small(f.chunks[ax], edge_order + 1)
        g = f if merged == f.chunks[ax] else rechunk(f, {ax: merged})
        results.append(_gradient_along(g, ax, spacing, edge_order))
    return results[0] if len(results) == 1 else tuple(results)
