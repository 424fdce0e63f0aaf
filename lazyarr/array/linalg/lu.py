"""LU factorisation with partial pivoting, by blocks: ``a = p @ l @ u`` (SciPy's and Dask's form).

The matrix is taken in square diagonal blocks (the column chunks are made equal to the row
chunks). For each block column ``k`` in turn (a right-looking blocked algorithm, as in LAPACK):

1. the *panel* (the blocks of column ``k`` on and below the diagonal, one task) is factored
   with partial pivoting over all of its rows, so the pivots are those of the unblocked
   algorithm and the factorisation is as stable as NumPy's/LAPACK's (Dask pivots only inside
   the diagonal block, which fails when that block is singular);
2. the panel's row exchanges are applied to the other blocks of those rows. Pivoting only
   exchanges rows of the diagonal block with rows below it, so a block below the diagonal
   reads just itself and the diagonal block of its column; the diagonal block reads the column;
3. the blocks right of the diagonal become blocks of ``u`` (a triangular solve with the
   panel's unit lower triangle), and the trailing blocks are updated, ``A_ij -= L_ik U_kj``.

A task holds at most one block column (the panel) or a few blocks. The permutation ``p`` is
assembled from the panels' row orders at the end.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...tokenize import tokenize
from ..chunks import chunk_offsets
from ..core import Array
from ..layers import quote
from ._graph import inexact, intermediates, output, square, zeros_block

__all__ = ["lu"]


def _lu_inplace(m: np.ndarray) -> np.ndarray:
    """Factor ``m`` (at least as many rows as columns) in place with partial pivoting: afterwards
    it holds ``L`` (unit, below the diagonal) and ``U``, of the rows ``m[perm]``; returns ``perm``.

    Recursive on the columns (the left half, then the right half updated), so most of the work
    is matrix products; the row exchanges are exactly those of the column-by-column algorithm.
    """
    rows, cols = m.shape
    if cols <= 16:
        perm = np.arange(rows)
        for r in range(min(rows, cols)):
            p = r + int(np.argmax(np.abs(m[r:, r])))
            if p != r:
                m[[r, p]] = m[[p, r]]
                perm[[r, p]] = perm[[p, r]]
            if m[r, r] != 0:  # a zero pivot means a zero column: nothing to eliminate
                m[r + 1:, r] /= m[r, r]
            m[r + 1:, r + 1:] -= np.outer(m[r + 1:, r], m[r, r + 1:])
        return perm
    half = cols // 2
    perm = _lu_inplace(m[:, :half])
    m[:, half:] = m[perm, half:]
    unit = np.tril(m[:half, :half], -1) + np.eye(half, dtype=m.dtype)
    m[:half, half:] = np.linalg.solve(unit, m[:half, half:])
    m[half:, half:] -= m[half:, :half] @ m[:half, half:]
    below = _lu_inplace(m[half:, half:])
    m[half:, :half] = m[half:, :half][below]
    perm[half:] = perm[half:][below]
    return perm


def _panel(blocks: list, dtype: np.dtype) -> tuple:
    """Factor a panel: its row order, its ``L`` (unit lower in the top square) and the ``U`` block."""
    m = np.concatenate(blocks, axis=0).astype(dtype, copy=True)
    perm = _lu_inplace(m)
    width = m.shape[1]
    lower = np.tril(m, -1)
    lower[np.arange(width), np.arange(width)] = 1
    return perm, lower, np.triu(m[:width])


def _rows(panel: tuple, start: int, stop: int) -> np.ndarray:
    return panel[1][start:stop]


def _upper(panel: tuple) -> np.ndarray:
    return panel[2]


def _gather(panel: tuple, start: int, stop: int, offsets: tuple, blocks: list) -> np.ndarray:
    """Rows ``start:stop`` of a block column after the panel's row exchanges, from the blocks
    (at row ``offsets`` within the column) where they come from."""
    wanted = panel[0][start:stop]
    out = np.empty((stop - start,) + blocks[0].shape[1:], dtype=np.result_type(*blocks))
    found = np.zeros(len(wanted), dtype=bool)
    for offset, block in zip(offsets, blocks):
        hit = (wanted >= offset) & (wanted < offset + block.shape[0])
        out[hit] = block[wanted[hit] - offset]
        found |= hit
    if not found.all():  # pivoting never moves rows between two blocks below the diagonal
        raise RuntimeError("lu: a pivot row came from a block the task did not read")
    return out


def _solve_unit_lower(panel: tuple, block: np.ndarray) -> np.ndarray:
    width = panel[2].shape[0]
    return np.linalg.solve(panel[1][:width], block)


def _update(block: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    return block - lower @ upper


def _compose(panels: list, n: int, offsets: tuple) -> np.ndarray:
    """The overall row order: each panel reorders the rows from its diagonal block down."""
    order = np.arange(n)
    for panel, start in zip(panels, offsets):
        order[start:] = order[start:][panel[0]]
    return order


def _permutation_block(order: np.ndarray, r0: int, nr: int, c0: int, nc: int, dtype: np.dtype) -> np.ndarray:
    """Block of ``p`` with ``p[order[t], t] = 1``, so that ``a = p @ l @ u``."""
    out = np.zeros((nr, nc), dtype=dtype)
    cols = order[c0:c0 + nc]
    hit = (cols >= r0) & (cols < r0 + nr)
    out[cols[hit] - r0, np.nonzero(hit)[0]] = 1
    return out


def lu(a: Any) -> tuple[Array, Array, Array]:
    """The LU factorisation with partial pivoting ``a = p @ l @ u`` of a square matrix (as
    ``scipy.linalg.lu`` and Dask): ``p`` a permutation matrix, ``l`` unit lower triangular,
    ``u`` upper triangular; blocked as described in the module docstring.

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.array([[0., 1.], [2., 3.]]), chunks=1)
    >>> p, l, u = lu(a)
    >>> u.compute().tolist()
    [[2.0, 3.0], [0.0, 1.0]]
    >>> bool(np.allclose((p @ l @ u).compute(), a.compute()))
    True
    """
    a = square(a, "lu")
    dtype = inexact(a.dtype)
    pdtype = np.empty(0, dtype=dtype).real.dtype
    chunks = a.chunks[0]
    starts = chunk_offsets((chunks,))[0]
    nb, n = len(chunks), a.shape[0]
    token = tokenize(a)
    inner = f"lu-{token}"
    tasks: dict = {}
    current = {(i, j): (a.name, i, j) for i in range(nb) for j in range(nb)}
    lower: dict = {}
    upper: dict = {}
    panels = []
    for k in range(nb):
        panel = (inner, "panel", k)
        panels.append(panel)
        tasks[panel] = (_panel, [current[(i, k)] for i in range(k, nb)], dtype)
        rel = [starts[i] - starts[k] for i in range(k, nb)]
        for i in range(k, nb):
            lower[(i, k)] = (inner, "l", k, i, k)
            tasks[lower[(i, k)]] = (_rows, panel, rel[i - k], rel[i - k] + chunks[i])
        upper[(k, k)] = (inner, "u", k, k)
        tasks[upper[(k, k)]] = (_upper, panel)
        for j in range(nb):
            if j == k:
                continue
            source = lower if j < k else current
            before = {i: source[(i, j)] for i in range(k, nb)}
            for i in range(k, nb):
                readers = range(k, nb) if i == k else (k, i)
                key = (inner, "swap", k, i, j)
                tasks[key] = (_gather, panel, rel[i - k], rel[i - k] + chunks[i],
                              quote(tuple(rel[r - k] for r in readers)), [before[r] for r in readers])
                source[(i, j)] = key
        for j in range(k + 1, nb):
            upper[(k, j)] = (inner, "u", k, j)
            tasks[upper[(k, j)]] = (_solve_unit_lower, panel, current[(k, j)])
        for i in range(k + 1, nb):
            for j in range(k + 1, nb):
                key = (inner, "a", k, i, j)
                tasks[key] = (_update, current[(i, j)], lower[(i, k)], upper[(k, j)])
                current[(i, j)] = key
    tasks[(inner, "order")] = (_compose, panels, n, quote(tuple(starts)))
    graph = intermediates(inner, tasks, [a])
    names = {part: f"lu-{part}-{token}" for part in "plu"}
    p_layer, l_layer, u_layer = {}, {}, {}
    for i in range(nb):
        for j in range(nb):
            zero = (zeros_block, quote((chunks[i], chunks[j])), dtype)
            p_layer[(names["p"], i, j)] = (_permutation_block, (inner, "order"), starts[i], chunks[i], starts[j],
                                           chunks[j], pdtype)
            l_layer[(names["l"], i, j)] = lower[(i, j)] if i >= j else zero
            u_layer[(names["u"], i, j)] = upper[(i, j)] if i <= j else zero
    square_chunks = (chunks, chunks)
    return (output(names["p"], p_layer, graph, square_chunks, pdtype),
            output(names["l"], l_layer, graph, square_chunks, dtype),
            output(names["u"], u_layer, graph, square_chunks, dtype))
