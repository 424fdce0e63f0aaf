"""Linear systems: solve, inv and lstsq, built on the block factorisations.

* ``solve(a, b)``: ``a = p l u`` by blocked LU (:func:`~lazyarr.array.linalg.lu`), then two
  blocked triangular solves; with ``assume_a='pos'`` a blocked Cholesky factorisation instead.
* ``inv(a)``: ``solve(a, I)``.
* ``lstsq(a, b)``: ``a = q r`` by TSQR, then ``x = r^-1 q^H b``, as Dask; ``a`` must be at
  least as tall as it is wide and in one chunk of columns (or one of rows).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ...tokenize import tokenize
from ..core import Array, asarray, new_array
from ..creation import eye
from .cholesky import _factors
from .lu import lu
from ._graph import inexact, matrix, square
from .qr import qr
from .triangular import solve_triangular

__all__ = ["solve", "inv", "lstsq"]


def solve(a: Any, b: Any, sym_pos: bool | None = None, assume_a: str = "gen") -> Array:
    """Solve ``a @ x = b`` for a square ``a`` (``b`` 1-d or 2-d), as Dask: LU with partial
    pivoting, or Cholesky for ``assume_a='pos'`` (symmetric/Hermitian positive definite).

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.array([[0., 2.], [1., 1.]]), chunks=1)
    >>> solve(a, np.array([4., 3.])).compute().tolist()
    [1.0, 2.0]
    """
    if sym_pos is not None:
        warnings.warn("solve: sym_pos is deprecated; use assume_a='pos'", FutureWarning, stacklevel=2)
        if sym_pos:
            assume_a = "pos"
    a, b = square(a, "solve"), asarray(b)
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise ValueError(f"solve: b of shape {b.shape} does not match a of shape {a.shape} (b must be 1-d or 2-d "
                         f"with {a.shape[0]} rows)")
    if assume_a == "pos":
        low, up = _factors(a)
        return solve_triangular(up, solve_triangular(low, b, lower=True))
    if assume_a != "gen":
        raise ValueError(f"solve: assume_a must be 'gen' or 'pos', not {assume_a!r}")
    p, low, up = lu(a)
    return solve_triangular(up, solve_triangular(low, p.T @ b, lower=True))


def inv(a: Any) -> Array:
    """The inverse of a square matrix, by :func:`solve` with the identity.

    >>> import numpy as np, lazyarr.array as la
    >>> inv(la.from_array(np.array([[2., 0.], [0., 4.]]), chunks=1)).compute().tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    """
    a = square(a, "inv")
    identity = eye(a.shape[0], chunks=(a.chunks[0], a.chunks[0]), dtype=inexact(a.dtype))
    return solve(a, identity)


def _rank(r: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.matrix_rank(r))


def _singular_values(r: np.ndarray) -> np.ndarray:
    return np.linalg.svd(r, compute_uv=False)


def lstsq(a: Any, b: Any) -> tuple[Array, Array, Array, Array]:
    """The least-squares solution of ``a @ x = b`` by QR (Dask's method): ``x, residuals, rank, s``.

    ``a`` (M x N, M >= N) must be in one chunk of columns or one of rows (see
    :func:`~lazyarr.array.linalg.qr`). As in Dask, ``residuals`` (the squared 2-norm of each
    column of ``b - a @ x``, shape ``(1,)`` for a 1-d ``b``) is always returned, where NumPy
    leaves it empty for rank-deficient ``a``; ``s`` are the singular values of ``a``.

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.array([[1., 0.], [1., 1.], [1., 2.]]), chunks=(2, 2))
    >>> x, res, rank, s = lstsq(a, np.array([1., 2., 3.]))
    >>> np.round(x.compute(), 6).tolist(), int(rank.compute())
    ([1.0, 1.0], 2)
    """
    a, b = matrix(a, "lstsq"), asarray(b)
    m, n = a.shape
    if m < n:
        raise ValueError(f"lstsq needs at least as many rows as columns (shape {a.shape}); the QR method does not "
                         "handle underdetermined systems")
    if b.ndim not in (1, 2) or b.shape[0] != m:
        raise ValueError(f"lstsq: b of shape {b.shape} does not match a of shape {a.shape}")
    q, r = qr(a)
    x = solve_triangular(r, q.T.conj() @ b)
    residuals = (abs(b - a @ x) ** 2).sum(axis=0, keepdims=b.ndim == 1)
    whole = r.rechunk(-1)
    token = tokenize(a, b)
    rank_name, s_name = f"lstsq-rank-{token}", f"lstsq-singular-{token}"
    rank = new_array(rank_name, {(rank_name,): (_rank, (whole.name, 0, 0))}, [whole], (), np.intp)
    sdtype = np.linalg.svd(np.ones((1, 1), dtype=r.dtype), compute_uv=False).dtype
    s = new_array(s_name, {(s_name, 0): (_singular_values, (whole.name, 0, 0))}, [whole], ((n,),), sdtype)
    return x, residuals, rank, s
