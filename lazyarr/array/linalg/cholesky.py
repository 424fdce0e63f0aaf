"""Cholesky factorisation by blocks: cholesky.

The lower factor ``L`` of a Hermitian positive-definite matrix, one block at a time, column by
column: ``L_kk = chol(A_kk - sum_p L_kp L_kp^H)`` and, below it,
``L_ik = (A_ik - sum_p L_ip L_kp^H) L_kk^-H`` (a triangular solve). No pivoting is needed, so
every task reads only the blocks it combines; the sums are trees of block products. As NumPy,
only the lower triangle of ``a`` is read. The column chunks are made equal to the row chunks.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...tokenize import tokenize
from ..core import Array
from ..layers import quote
from ._graph import intermediates, output, square, tree_sum, zeros_block

__all__ = ["cholesky"]


def _outer_h(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x @ y.conj().T


def _minus(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    return a - s


def _below(lkk: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``rhs @ inv(lkk^H)``, as the solve ``lkk @ x^H = rhs^H``."""
    return np.linalg.solve(lkk, rhs.conj().T).conj().T


def _conj_t(x: np.ndarray) -> np.ndarray:
    return x.conj().T


def _factors(a: Array) -> tuple[Array, Array]:
    """The lower and upper Cholesky factors, sharing their tasks."""
    a = square(a, "cholesky")
    dtype = np.linalg.cholesky(np.array([[1, 2], [2, 5]], dtype=a.dtype)).dtype
    chunks, nb = a.chunks[0], a.numblocks[0]
    token = tokenize(a)
    inner = f"cholesky-{token}"
    tasks: dict = {}
    low: dict = {}
    for k in range(nb):
        parts = [(_outer_h, low[(k, p)], low[(k, p)]) for p in range(k)]
        diag: Any = (a.name, k, k)
        if parts:
            diag = (_minus, diag, tree_sum(tasks, (inner, "sum", k, k), parts))
        low[(k, k)] = (inner, "l", k, k)
        tasks[low[(k, k)]] = (np.linalg.cholesky, diag)
        for i in range(k + 1, nb):
            parts = [(_outer_h, low[(i, p)], low[(k, p)]) for p in range(k)]
            rhs: Any = (a.name, i, k)
            if parts:
                rhs = (_minus, rhs, tree_sum(tasks, (inner, "sum", i, k), parts))
            low[(i, k)] = (inner, "l", i, k)
            tasks[low[(i, k)]] = (_below, low[(k, k)], rhs)
    graph = intermediates(inner, tasks, [a])
    lname, uname = f"cholesky-lower-{token}", f"cholesky-upper-{token}"
    l_layer, u_layer = {}, {}
    for i in range(nb):
        for j in range(nb):
            zero = (zeros_block, quote((chunks[i], chunks[j])), dtype)
            l_layer[(lname, i, j)] = low[(i, j)] if i >= j else zero
            u_layer[(uname, i, j)] = (_conj_t, low[(j, i)]) if i <= j else zero
    return (output(lname, l_layer, graph, a.chunks, dtype), output(uname, u_layer, graph, a.chunks, dtype))


def cholesky(a: Any, lower: bool = False) -> Array:
    """The Cholesky factor of a Hermitian positive-definite matrix: upper ``u`` with
    ``a = u^H @ u`` by default (as Dask and SciPy), or lower ``l`` with ``a = l @ l^H``
    (NumPy's) when ``lower=True``.

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.array([[4., 2.], [2., 5.]]), chunks=1)
    >>> cholesky(a, lower=True).compute().tolist()
    [[2.0, 0.0], [1.0, 2.0]]
    """
    low, up = _factors(a)
    return low if lower else up
