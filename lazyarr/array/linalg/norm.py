"""Vector and matrix norms: norm, from reductions.

Vector norms (one axis) and the matrix norms ``'fro'``/``None``, ``1``, ``-1``, ``inf`` and
``-inf`` (two axes) are sums, maxima and minima of absolute values, so they are tree reductions
over any chunking. The norms built on singular values (``2``, ``-2``, ``'nuc'``) use
:func:`~lazyarr.array.linalg.svd`, so as in Dask they need a 2-d array chunked along one axis.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..core import Array, asarray
from .svd import svd

__all__ = ["norm"]


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, numbers.Integral):
        return (int(axis),)
    return tuple(int(a) for a in axis)


def _matrix(x: Array, ord: Any, axes: tuple, keepdims: bool) -> Array:
    row, col = (a % x.ndim for a in axes)
    if row == col:
        raise ValueError(f"norm: duplicate axes {axes} for a matrix norm")
    if ord in (2, -2, "nuc"):
        if x.ndim != 2:
            raise NotImplementedError(f"norm: ord={ord!r} uses the SVD, which needs a 2-d array, not {x.ndim}-d")
        s = svd(x, coerce_signs=False)[1]
        result = s.sum() if ord == "nuc" else s.max() if ord == 2 else s.min()
        return result.reshape((1, 1)) if keepdims else result
    if ord in (None, "fro", "f"):
        return _vector(x, None, axes, keepdims)
    if ord in (1, -1):
        inner, outer = row, col
    elif ord in (np.inf, -np.inf):
        inner, outer = col, row
    else:
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    sums = abs(x).sum(axis=inner, keepdims=True)
    result = sums.max(axis=outer, keepdims=True) if ord > 0 else sums.min(axis=outer, keepdims=True)
    return result if keepdims else result.squeeze(axis=(row, col))


def _vector(x: Array, ord: Any, axes: tuple, keepdims: bool) -> Array:
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    if ord is None or ord == 2:
        return (abs(x) ** 2).sum(axis=axes, keepdims=keepdims) ** 0.5
    if ord == np.inf:
        return abs(x).max(axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return abs(x).min(axis=axes, keepdims=keepdims)
    if ord == 0:
        return (x != 0).astype(x.real.dtype).sum(axis=axes, keepdims=keepdims)
    if ord == 1:
        return abs(x).sum(axis=axes, keepdims=keepdims)
    powered = (abs(x) ** ord).sum(axis=axes, keepdims=keepdims)
    return powered ** (1.0 / ord)


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Array:
    """A vector or matrix norm, as ``np.linalg.norm`` (and Dask).

    With ``axis=None`` and ``ord=None`` it is the 2-norm of all elements, whatever the
    dimensions; otherwise one axis gives vector norms (any real ``ord``, ``inf``, ``-inf``, 0)
    and two axes give matrix norms (``None``/``'fro'``, ``'nuc'``, ``1``, ``-1``, ``2``, ``-2``,
    ``inf``, ``-inf``). Integers are converted to floats first.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.array([[3., -4.], [0., 1.]]), chunks=1)
    >>> float(norm(x[0]).compute()), float(norm(x, 1).compute()), float(norm(x, np.inf, axis=1)[0].compute())
    (5.0, 5.0, 4.0)
    """
    x = asarray(x)
    if x.dtype.kind not in "fc":
        x = x.astype(float)
    if axis is None and ord is None:
        return _vector(x, None, tuple(range(x.ndim)), keepdims)
    if axis is None and ord in ("fro", "f") and x.ndim == 2:
        return _vector(x, None, (0, 1), keepdims)
    axes = _axes(axis, x.ndim)
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"norm: axis {a} is out of range for an array of shape {x.shape}")
    if len(axes) == 1:
        return _vector(x, ord, axes, keepdims)
    if len(axes) == 2:
        return _matrix(x, ord, axes, keepdims)
    raise ValueError(f"norm: improper number of dimensions to norm: axes {axes} of an array of shape {x.shape}")
