"""Triangular masks and parts of matrices: tri, tril, triu.

``tri`` makes every block from its offsets alone (like :func:`~lazyarr.array.eye`), and
``tril``/``triu`` keep the matching part of the last two axes with ``where``, so they are
elementwise and fuse with the work around them.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from ..tokenize import tokenize
from .chunks import normalize_chunks
from .core import Array, asarray
from .creation import OffsetShapeTable, _generated, _normalize_shape
from .ufunc import where

__all__ = ["tri", "tril", "triu"]


def _tri_block(spec: tuple, k: int, dtype: np.dtype) -> np.ndarray:
    (r0, c0), (nr, nc) = spec
    # element (r0 + i, c0 + j) is one where c0 + j <= r0 + i + k
    return np.tri(nr, nc, k=k + r0 - c0, dtype=dtype)


def tri(N: int, M: int | None = None, k: int = 0, dtype: Any = float, chunks: Any = "auto") -> Array:
    """An ``N`` x ``M`` array with ones at and below the ``k``-th diagonal, zeros above (``np.tri``).

    >>> tri(3, chunks=2, dtype=int).compute().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    """
    M = N if M is None else M
    shape = _normalize_shape((N, M))
    dtype = np.dtype(dtype)
    chunks = normalize_chunks(chunks, shape, dtype=dtype)
    name = f"tri-{tokenize(shape, int(k), repr(chunks), dtype)}"
    return _generated(name, chunks, partial(_tri_block, k=int(k), dtype=dtype), OffsetShapeTable(chunks), dtype)


def _mask(m: Array, k: int) -> Array:
    """``tri`` over the last two axes of ``m``, chunked like them (a 1-d ``m`` acts as a row)."""
    if m.ndim == 0:
        raise ValueError("tril and triu need an array with at least 1 dimension, got a 0-d array")
    chunks = m.chunks[-2:] if m.ndim >= 2 else (m.chunks[0], m.chunks[0])
    return tri(*(sum(c) for c in chunks), k=k, dtype=bool, chunks=chunks)


def tril(m: Any, k: int = 0) -> Array:
    """The lower triangle of the last two axes: zeros above the ``k``-th diagonal (``np.tril``).

    >>> import numpy as np, lazyarr.array as la
    >>> tril(la.from_array(np.arange(1, 10).reshape(3, 3), chunks=2), -1).compute().tolist()
    [[0, 0, 0], [4, 0, 0], [7, 8, 0]]
    """
    m = asarray(m)
    return where(_mask(m, k), m, np.zeros((), dtype=m.dtype))


def triu(m: Any, k: int = 0) -> Array:
    """The upper triangle of the last two axes: zeros below the ``k``-th diagonal (``np.triu``).

    >>> import numpy as np, lazyarr.array as la
    >>> triu(la.from_array(np.arange(1, 10).reshape(3, 3), chunks=2)).compute().tolist()
    [[1, 2, 3], [0, 5, 6], [0, 0, 9]]
    """
    m = asarray(m)
    return where(_mask(m, k - 1), np.zeros((), dtype=m.dtype), m)
