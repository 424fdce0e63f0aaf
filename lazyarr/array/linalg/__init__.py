"""Linear algebra on lazy arrays, ``lazyarr.array.linalg``: the functions of ``dask.array.linalg``.

=====================  =========================================================================
function               chunking it needs / how it works
=====================  =========================================================================
``tsqr``               one chunk of columns; QR by a tree of block QRs (``compute_svd=`` for SVD)
``sfqr``               one chunk of rows
``qr``                 either of the two above
``svd``                chunked along one axis only (through ``tsqr``); thin SVD
``svd_compressed``     any; randomized rank-``k`` SVD
``lu``                 square; blocked LU with partial pivoting over whole block columns
``solve_triangular``   square ``a``; blocked forward/back substitution
``cholesky``           square, Hermitian positive definite; blocked, upper factor by default
``solve``, ``inv``     square; blocked LU (or Cholesky with ``assume_a='pos'``)
``lstsq``              as ``qr``, at least as tall as wide
``norm``               any, except ``ord=2, -2, 'nuc'`` for matrices (as ``svd``)
=====================  =========================================================================

Square-matrix routines make the column chunks equal to the row chunks when they differ.

>>> import numpy as np, lazyarr.array as la
>>> a = la.from_array(np.array([[4., 1.], [2., 3.]]), chunks=1)
>>> solve(a, np.array([1., 2.])).compute().round(6).tolist()
[0.1, 0.6]
"""
from __future__ import annotations

from .cholesky import cholesky
from .lu import lu
from .norm import norm
from .qr import qr, sfqr, tsqr
from .solve import inv, lstsq, solve
from .svd import compression_level, compression_matrix, svd, svd_compressed, svd_flip
from .triangular import solve_triangular

__all__ = [
    "tsqr", "sfqr", "qr", "svd", "svd_compressed", "svd_flip", "compression_level", "compression_matrix",
    "lu", "solve_triangular", "cholesky", "solve", "inv", "lstsq", "norm",
]
