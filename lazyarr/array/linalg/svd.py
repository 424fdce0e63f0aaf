"""Singular value decompositions: svd (exact, through TSQR), svd_compressed (randomized) and
svd_flip (deterministic signs).

``svd`` follows Dask: a matrix chunked along one axis only is decomposed exactly through
:func:`~lazyarr.array.linalg.tsqr` (of the matrix, or of its transpose when it is one chunk of
rows); a matrix chunked along both axes is refused, with a pointer to ``svd_compressed``.
``svd_compressed`` is the randomized algorithm of Halko, Martinsson and Tropp ("Finding
structure with randomness", 2011): project onto ``k`` plus a few random directions, orthonormalise
with TSQR, and decompose the small projected matrix. It works for any chunking.
"""
from __future__ import annotations

from operator import getitem
from typing import Any

import numpy as np

from ...tokenize import tokenize
from .. import random as lrandom
from ..core import Array
from ._graph import intermediates, matrix, output
from .qr import _dtypes, tsqr

__all__ = ["svd", "svd_flip", "svd_compressed", "compression_level", "compression_matrix"]


def svd_flip(u: Any, v: Any, u_based_decision: bool = False) -> tuple[Any, Any]:
    """Flip the signs of singular vector pairs so results are deterministic (as Dask and
    scikit-learn): the rows of ``v`` (or the columns of ``u``) then sum to a non-negative value.

    Works on lazy and NumPy arrays alike.

    >>> u, v = svd_flip(np.array([[1., -2.]]), np.array([[-1.], [3.]]))
    >>> u.tolist(), v.tolist()
    ([[-1.0, -2.0]], [[1.0], [3.0]])
    """
    if u_based_decision:
        dtype, signs = u.dtype, np.sum(u, axis=0, keepdims=True)
    else:
        dtype, signs = v.dtype, np.sum(v, axis=1, keepdims=True).T
    signs = 2.0 * ((signs >= 0) - 0.5)
    signs = signs.astype(dtype)
    return u * signs, v * signs.T


def _single_svd(block: np.ndarray) -> tuple:
    u, s, vh = np.linalg.svd(block, full_matrices=False)
    return u, s, vh


def _svd_one_block(a: Array) -> tuple[Array, Array, Array]:
    m, n = a.shape
    k = min(m, n)
    udtype, _, sdtype = _dtypes(a.dtype)
    token = tokenize(a)
    inner = f"svd-{token}"
    graph = intermediates(inner, {(inner, 0): (_single_svd, (a.name, 0, 0))}, [a])
    names = [f"svd-{part}-{token}" for part in ("u", "s", "vh")]
    u = output(names[0], {(names[0], 0, 0): (getitem, (inner, 0), 0)}, graph, ((m,), (k,)), udtype)
    s = output(names[1], {(names[1], 0): (getitem, (inner, 0), 1)}, graph, ((k,),), sdtype)
    vh = output(names[2], {(names[2], 0, 0): (getitem, (inner, 0), 2)}, graph, ((k,), (n,)), udtype)
    return u, s, vh


def svd(a: Any, coerce_signs: bool = True, full_matrices: bool = False) -> tuple[Array, Array, Array]:
    """The thin singular value decomposition ``a = u @ diag(s) @ vh``, as Dask's.

    ``a`` must be chunked along one axis only (one chunk of columns, or one of rows). The
    singular values come largest first; ``coerce_signs`` applies :func:`svd_flip`. Only the
    reduced decomposition exists (``full_matrices=True`` raises).

    >>> import numpy as np, lazyarr.array as la
    >>> u, s, vh = svd(la.from_array(np.diag([3., 1., 2.]), chunks=(1, 3)))
    >>> s.compute().tolist()
    [3.0, 2.0, 1.0]
    """
    if full_matrices:
        raise NotImplementedError("svd: full_matrices=True is not supported; the reduced SVD is computed")
    a = matrix(a, "svd")
    rows, cols = a.numblocks
    if rows > 1 and cols > 1:
        raise NotImplementedError(
            f"svd needs a matrix chunked along one axis only (tall-and-skinny or short-and-fat), but this one has "
            f"{rows} x {cols} blocks (shape {a.shape}, chunks {a.chunks}); rechunk one axis into a single chunk, "
            "or use svd_compressed for an approximate decomposition of any chunking")
    if rows == cols == 1:
        u, s, vh = _svd_one_block(a)
    elif rows > 1:
        u, s, vh = tsqr(a, compute_svd=True)
    else:
        vt, s, ut = tsqr(a.T, compute_svd=True)
        u, vh = ut.T, vt.T
    if coerce_signs:
        u, vh = svd_flip(u, vh)
    return u, s, vh


def compression_level(n: int, q: int, n_oversamples: int = 10, min_subspace_size: int = 20) -> int:
    """The dimension :func:`svd_compressed` projects onto: ``q + n_oversamples``, at least
    ``min_subspace_size`` and at most ``n``.

    >>> compression_level(100, 10)
    20
    """
    return min(max(min_subspace_size, q + n_oversamples), n)


def compression_matrix(data: Any, q: int, iterator: str = "power", n_power_iter: int = 0, n_oversamples: int = 10,
                       seed: Any = None, compute: bool = False) -> Array:
    """An orthonormal basis (as rows) for the dominant ``q``-dimensional column space of ``data``.

    ``data`` times a random Gaussian matrix, refined by ``n_power_iter`` power iterations
    (``iterator='power'``) or QR-orthonormalised iterations (``'QR'``), then orthonormalised by
    TSQR. ``compute=True`` persists the intermediate results of every iteration.
    """
    if iterator not in ("power", "QR"):
        raise ValueError(f"compression_matrix: iterator must be 'power' or 'QR', not {iterator!r}")
    data = matrix(data, "compression_matrix")
    m, n = data.shape
    level = compression_level(min(m, n), q, n_oversamples=n_oversamples)
    rng = seed if isinstance(seed, lrandom.Generator) else lrandom.default_rng(seed)
    single = data.dtype.type in (np.float32, np.complex64)
    omega = rng.standard_normal(size=(n, level), chunks=(data.chunks[1], (level,)),
                                dtype=np.float32 if single else np.float64)

    def settle(x: Array) -> Array:
        return x.persist() if compute else x

    projected = settle(data @ omega)
    if iterator == "power":
        for _ in range(n_power_iter):
            projected = settle(data @ settle(data.T @ projected))
        basis, _ = tsqr(projected)
    else:
        basis, _ = tsqr(projected)
        for _ in range(n_power_iter):
            basis, _ = tsqr(settle(data.T @ settle(basis)))
            basis, _ = tsqr(settle(data @ basis))
    return basis.T


def svd_compressed(a: Any, k: int, iterator: str = "power", n_power_iter: int = 0, n_oversamples: int = 10,
                   seed: Any = None, compute: bool = False, coerce_signs: bool = True
                   ) -> tuple[Array, Array, Array]:
    """An approximate rank-``k`` thin SVD by random projection (see the module docstring).

    Exact for matrices of rank at most ``k + n_oversamples``; otherwise more accurate with
    more ``n_power_iter`` (error falls exponentially with them) when the singular values decay
    slowly. ``seed`` (an int or a ``lazyarr.array.random`` generator) makes it reproducible.

    >>> import numpy as np, lazyarr.array as la
    >>> x = np.outer(np.arange(1., 41.), np.arange(1., 31.))     # rank one
    >>> u, s, v = svd_compressed(la.from_array(x, chunks=10), k=1, seed=0)
    >>> bool(np.allclose(s.compute(), np.linalg.svd(x, compute_uv=False)[:1]))
    True
    """
    comp = compression_matrix(a, k, iterator=iterator, n_power_iter=n_power_iter, n_oversamples=n_oversamples,
                              seed=seed, compute=compute)
    if compute:
        comp = comp.persist()
    a = matrix(a, "svd_compressed")
    compressed = comp @ a
    v, s, u = tsqr(compressed.T, compute_svd=True)
    u = comp.T @ u.T
    v = v.T
    u, s, v = u[:, :k], s[:k], v[:k, :]
    if coerce_signs:
        u, v = svd_flip(u, v)
    return u, s, v
