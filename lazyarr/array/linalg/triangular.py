"""Triangular systems by blocks: solve_triangular.

For a lower triangular ``a`` the block rows of ``x`` are found in order:
``x_i = solve(a_ii, b_i - sum_{k<i} a_ik x_k)`` (backwards for an upper triangular ``a``), one
task per block of ``x``, with the sums added as a tree of block products. As SciPy, only the
triangle of ``a`` that is named is read.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...tokenize import tokenize
from ..core import Array, asarray
from ..rechunk import rechunk
from ._graph import inexact, intermediates, output, square, tree_sum

__all__ = ["solve_triangular"]


def _solve_block(t: np.ndarray, rhs: np.ndarray, lower: bool, dtype: np.dtype) -> np.ndarray:
    t = np.tril(t) if lower else np.triu(t)
    return np.linalg.solve(t.astype(dtype, copy=False), rhs.astype(dtype, copy=False))


def _product(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    return a @ x


def _minus(b: np.ndarray, s: np.ndarray) -> np.ndarray:
    return b - s


def solve_triangular(a: Any, b: Any, lower: bool = False) -> Array:
    """Solve ``a @ x = b`` for a triangular ``a`` (upper by default), as ``scipy.linalg.solve_triangular``.

    ``b`` is 1-d or 2-d; its rows are rechunked like ``a``'s, its columns keep their chunks.

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.array([[2., 0.], [1., 1.]]), chunks=1)
    >>> solve_triangular(a, np.array([4., 3.]), lower=True).compute().tolist()
    [2.0, 1.0]
    """
    a = square(a, "solve_triangular")
    b = asarray(b)
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise ValueError(f"solve_triangular: b of shape {b.shape} does not match a of shape {a.shape} (b must be "
                         f"1-d or 2-d with {a.shape[0]} rows)")
    if b.chunks[0] != a.chunks[0]:
        b = rechunk(b, {0: a.chunks[0]})
    dtype = inexact(a.dtype, b.dtype)
    nb = a.numblocks[0]
    token = tokenize(a, b, lower)
    inner = f"solve_triangular-steps-{token}"
    tasks: dict = {}
    columns = range(b.numblocks[1]) if b.ndim == 2 else [None]
    solved: dict = {}
    for j in columns:
        tail = () if j is None else (j,)
        for i in (range(nb) if lower else range(nb - 1, -1, -1)):
            known = range(i) if lower else range(i + 1, nb)
            rhs: Any = (b.name, i) + tail
            parts = [(_product, (a.name, i, k), solved[(k, j)]) for k in known]
            if parts:
                rhs = (_minus, rhs, tree_sum(tasks, (inner, "sum", i, j), parts))
            solved[(i, j)] = (inner, "x", i, j)
            tasks[solved[(i, j)]] = (_solve_block, (a.name, i, i), rhs, lower, dtype)
    graph = intermediates(inner, tasks, [a, b])
    name = f"solve_triangular-{token}"
    layer = {(name, i) + (() if j is None else (j,)): key for (i, j), key in solved.items()}
    return output(name, layer, graph, b.chunks, dtype)
