"""QR factorisation: tsqr (tall-and-skinny), sfqr (short-and-fat) and qr, which picks one.

**TSQR** (Demmel et al., "Communication-avoiding parallel and sequential QR factorizations")
takes a matrix in one chunk of columns and any number of chunks of rows:

1. every row block is factored on its own: ``A_i = Q_i R_i``;
2. the small ``R_i`` are stacked in groups of ``array.split-every`` and factored again, level
   after level, until one ``R`` remains: the ``R`` of the whole matrix;
3. going back down the tree, each block gets the product of the pieces of the ``Q`` factors
   above it that belong to it, ``T_i``, and its block of ``Q`` is ``Q_i T_i``.

No task holds more than one row block plus a few ``n`` x ``n`` factors. With
``compute_svd=True`` the top ``R`` is also decomposed, ``R = U S V^H``, and ``U`` joins the
products of step 3, which gives the thin SVD of the whole matrix.

**SFQR** takes a matrix in one chunk of rows: the first column block (merged with its
neighbours until it is at least as wide as the matrix is tall) gives ``Q``, and the other
blocks of ``R`` are ``Q^H A_j``.
"""
from __future__ import annotations

from itertools import accumulate
from operator import getitem
from typing import Any

import numpy as np

from ... import config
from ...tokenize import tokenize
from ..core import Array
from ..rechunk import rechunk
from ._graph import intermediates, matrix, output

__all__ = ["tsqr", "sfqr", "qr"]


def _qr(block: np.ndarray) -> tuple:
    q, r = np.linalg.qr(block)
    return q, r


def _stacked_qr(parts: list) -> tuple:
    """QR of the children's ``R`` factors stacked, with each child's number of rows."""
    q, r = np.linalg.qr(np.concatenate(parts, axis=0))
    return q, r, [p.shape[0] for p in parts]


def _child_transform(parent: tuple, child: int, above: np.ndarray | None) -> np.ndarray:
    """The rows of the parent's ``Q`` that belong to ``child``, times what is above the parent."""
    q, _, rows = parent
    start = sum(rows[:child])
    piece = q[start:start + rows[child]]
    return piece if above is None else piece @ above


def _apply(factors: tuple, transform: np.ndarray | None) -> np.ndarray:
    return factors[0] if transform is None else factors[0] @ transform


def _svd(r: np.ndarray) -> tuple:
    u, s, vh = np.linalg.svd(r, full_matrices=False)
    return u, s, vh


def _dtypes(dtype: np.dtype) -> tuple[np.dtype, np.dtype, np.dtype]:
    """The dtypes of NumPy's ``Q`` (and ``R``, ``U``, ``V``) and of the singular values."""
    sample = np.ones((1, 1), dtype=dtype)
    q, _ = np.linalg.qr(sample)  # raises for dtypes NumPy's linear algebra can't handle
    return q.dtype, q.dtype, np.linalg.svd(sample, compute_uv=False).dtype


def tsqr(data: Any, compute_svd: bool = False, split_every: int | None = None) -> tuple[Array, ...]:
    """QR factorisation of a tall-and-skinny matrix by the TSQR tree (see the module docstring).

    ``data`` must be one chunk wide (any row chunks). Returns ``q, r`` with NumPy's reduced
    shapes (``(m, k)`` and ``(k, n)``, ``k = min(m, n)``); with ``compute_svd=True`` returns the
    thin SVD ``u, s, vh`` instead. ``split_every`` is the number of ``R`` factors stacked per
    task (the ``array.split-every`` setting by default).

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.arange(12.).reshape(6, 2) ** 2, chunks=(2, 2))
    >>> q, r = tsqr(a)
    >>> q.chunks, r.chunks
    (((2, 2, 2), (2,)), ((2,), (2,)))
    >>> bool(np.allclose((q @ r).compute(), a.compute()))
    True
    """
    data = matrix(data, "tsqr")
    if data.numblocks[1] != 1:
        raise ValueError(f"tsqr needs the matrix in one chunk of columns, got column chunks {data.chunks[1]}; "
                         "rechunk({1: -1}) first")
    fan = int(split_every or config.get("array.split-every", 8))
    if fan < 2:
        raise ValueError(f"tsqr: split_every must be at least 2, not {fan}")
    m, n = data.shape
    k = min(m, n)
    qdtype, rdtype, sdtype = _dtypes(data.dtype)
    token = tokenize(data, compute_svd, fan)
    inner = f"tsqr-{token}"
    tasks: dict = {}
    level = [(inner, "qr", 0, i) for i in range(data.numblocks[0])]
    for i, key in enumerate(level):
        tasks[key] = (_qr, (data.name, i, 0))
    levels = [level]
    while len(level) > 1:  # stack the R factors, ``fan`` at a time, up to a single R
        depth = len(levels)
        parents = []
        for g in range(0, len(level), fan):
            key = (inner, "qr", depth, g // fan)
            tasks[key] = (_stacked_qr, [(getitem, child, 1) for child in level[g:g + fan]])
            parents.append(key)
        level = parents
        levels.append(level)
    root = levels[-1][0]
    above: Any = None
    if compute_svd:  # R = U S V^H: U joins the products on the way down
        tasks[(inner, "svd")] = (_svd, (getitem, root, 1))
        tasks[(inner, "top")] = (getitem, (inner, "svd"), 0)
        above = (inner, "top")
    transforms = {root: above}
    for depth in range(len(levels) - 2, -1, -1):  # back down: each node's share of the Q above it
        for i, key in enumerate(levels[depth]):
            parent = levels[depth + 1][i // fan]
            tasks[(inner, "t", depth, i)] = (_child_transform, parent, i % fan, transforms[parent])
            transforms[key] = (inner, "t", depth, i)
    graph = intermediates(inner, tasks, [data])
    q_name = f"tsqr-{'u' if compute_svd else 'q'}-{token}"
    q_layer = {(q_name, i, 0): (_apply, key, transforms[key]) for i, key in enumerate(levels[0])}
    q = output(q_name, q_layer, graph, (data.chunks[0], (k,)), qdtype)
    if not compute_svd:
        r_name = f"tsqr-r-{token}"
        r = output(r_name, {(r_name, 0, 0): (getitem, root, 1)}, graph, ((k,), (n,)), rdtype)
        return q, r
    s_name, v_name = f"tsqr-s-{token}", f"tsqr-vh-{token}"
    s = output(s_name, {(s_name, 0): (getitem, (inner, "svd"), 1)}, graph, ((k,),), sdtype)
    vh = output(v_name, {(v_name, 0, 0): (getitem, (inner, "svd"), 2)}, graph, ((k,), (n,)), qdtype)
    return q, s, vh


def _leading_width(chunks: tuple, width: int) -> tuple:
    """Column chunks whose first chunk is at least ``width`` wide (leading chunks merged)."""
    total = list(accumulate(chunks))
    j = next((i for i, t in enumerate(total) if t >= width), len(chunks) - 1)
    return (total[j],) + tuple(chunks[j + 1:])


def _project(factors: tuple, block: np.ndarray) -> np.ndarray:
    return factors[0].conj().T @ block


def sfqr(data: Any) -> tuple[Array, Array]:
    """QR factorisation of a short-and-fat matrix (one chunk of rows; any column chunks).

    The leading column chunks are merged until the first is at least ``min(m, n)`` wide, so
    that its ``Q`` is the ``Q`` of the whole matrix. Shapes are NumPy's reduced ones.

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.arange(12.).reshape(2, 6) ** 2, chunks=(2, 2))
    >>> q, r = sfqr(a)
    >>> bool(np.allclose((q @ r).compute(), a.compute()))
    True
    """
    data = matrix(data, "sfqr")
    if data.numblocks[0] != 1:
        raise ValueError(f"sfqr needs the matrix in one chunk of rows, got row chunks {data.chunks[0]}; "
                         "rechunk({0: -1}) first")
    m, n = data.shape
    k = min(m, n)
    widths = _leading_width(data.chunks[1], k)
    if widths != data.chunks[1]:
        data = rechunk(data, {1: widths})
    qdtype, rdtype, _ = _dtypes(data.dtype)
    token = tokenize(data)
    inner = f"sfqr-{token}"
    graph = intermediates(inner, {(inner, "qr"): (_qr, (data.name, 0, 0))}, [data])
    q_name, r_name = f"sfqr-q-{token}", f"sfqr-r-{token}"
    q = output(q_name, {(q_name, 0, 0): (getitem, (inner, "qr"), 0)}, graph, ((m,), (k,)), qdtype)
    r_layer = {(r_name, 0, 0): (getitem, (inner, "qr"), 1)}
    for j in range(1, data.numblocks[1]):
        r_layer[(r_name, 0, j)] = (_project, (inner, "qr"), (data.name, 0, j))
    r = output(r_name, r_layer, graph, ((k,), data.chunks[1]), rdtype)
    return q, r


def qr(a: Any) -> tuple[Array, Array]:
    """QR factorisation ``a = q @ r`` (NumPy's reduced form), as in Dask: :func:`tsqr` for a
    matrix in one chunk of columns, :func:`sfqr` for one in one chunk of rows.

    >>> import numpy as np, lazyarr.array as la
    >>> q, r = qr(la.ones((6, 3), chunks=(2, 3)))
    >>> q.shape, r.shape
    ((6, 3), (3, 3))
    """
    a = matrix(a, "qr")
    if a.numblocks[1] == 1 and a.numblocks[0] > 1:
        return tsqr(a)
    if a.numblocks[0] == 1:
        return sfqr(a)
    raise NotImplementedError(
        f"qr supports tall-and-skinny matrices (one chunk of columns, see tsqr) and short-and-fat ones (one chunk "
        f"of rows, see sfqr); this one has chunks {a.chunks}. Rechunk the shorter axis into one chunk, e.g. "
        "a.rechunk({1: -1}) or a.rechunk({0: -1})")
