"""lazyarr.array.linalg against NumPy: QR, SVD, LU, triangular solves, Cholesky, solve, inv,
lstsq and norm, on uneven and single-block chunkings."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr
import lazyarr.array as la
from lazyarr.array import linalg

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(20)


def close(a, b, tol=1e-8):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("split_every", [2, 8])
@pytest.mark.parametrize("shape, chunks", [
    ((20, 4), (3, 4)),             # tall, uneven last row block
    ((20, 4), (20, 4)),            # one block
    ((7, 5), (2, 5)),              # row blocks thinner than the matrix is wide
    ((9, 3), ((1, 0, 8), (3,))),   # an empty row block
    ((5, 8), (5, 3)),              # short and fat
    ((8, 5), (8, 2)),              # one row chunk, taller than wide
])
def test_qr_and_svd(shape, chunks, split_every, scheduler):
    a = RNG.random(shape)
    x = la.from_array(a, chunks=chunks)
    with lazyarr.config.set({"array.split-every": split_every}):
        q, r = linalg.qr(x)
        u, s, vh = linalg.svd(x)
    nq, nr = np.linalg.qr(a)
    Q = assert_eq(q, nq * np.sign(np.diag(nr)) * np.sign(np.diag(r.compute())), scheduler=scheduler, rtol=1e-8)
    R = r.compute(scheduler=scheduler)
    close(Q @ R, a)
    close(np.triu(R), R)
    close(np.abs(R), np.abs(nr))
    nu, ns, nvh = np.linalg.svd(a, full_matrices=False)
    assert_eq(s, ns, scheduler=scheduler, rtol=1e-8)
    U, V = u.compute(scheduler=scheduler), vh.compute(scheduler=scheduler)
    close(U * ns @ V, a)
    close(np.abs(U), np.abs(nu))
    close(V.sum(axis=1) >= 0, True)  # svd_flip's sign convention


def test_tsqr_svd_and_errors():
    a = RNG.random((12, 3)) + 1j * RNG.random((12, 3))
    u, s, vh = linalg.tsqr(la.from_array(a, chunks=(5, 3)), compute_svd=True)
    close((u * s @ vh).compute(), a)
    with pytest.raises(ValueError, match=r"tsqr needs the matrix in one chunk of columns.*rechunk\(\{1: -1\}\)"):
        linalg.tsqr(la.ones((6, 4), chunks=2))
    with pytest.raises(NotImplementedError, match="tall-and-skinny"):
        linalg.qr(la.ones((6, 6), chunks=3))
    with pytest.raises(NotImplementedError, match="svd_compressed"):
        linalg.svd(la.ones((6, 6), chunks=3))
    with pytest.raises(ValueError, match="2-d"):
        linalg.qr(la.ones(4))


def test_svd_compressed():
    a = RNG.random((60, 6)) @ RNG.random((6, 40))  # rank 6
    x = la.from_array(a, chunks=(15, 10))
    u, s, v = linalg.svd_compressed(x, k=6, seed=1)
    exact = np.linalg.svd(a, compute_uv=False)
    close(s.compute(), exact[:6], 1e-6)
    close((u * s @ v).compute(), a, 1e-6)
    u, s, v = linalg.svd_compressed(x, k=3, seed=2, n_power_iter=2, iterator="QR")
    close(s.compute(), exact[:3], 1e-3)
    again = linalg.svd_compressed(x, k=3, seed=2, n_power_iter=2, iterator="QR")[1]
    close(again.compute(), s.compute(), 0)


SQUARE = [(7, 3), (7, 7), (9, ((2, 3, 4), (4, 5))), (6, 1)]


@pytest.mark.parametrize("n, chunks", SQUARE)
def test_lu_solve_inv(n, chunks):
    a = RNG.random((n, n))
    x = la.from_array(a, chunks=chunks)
    p, lower, upper = linalg.lu(x)
    P, L, U = p.compute(), lower.compute(), upper.compute()
    close(P @ L @ U, a)
    close(np.tril(L), L)
    close(np.diag(L), 1)
    close(np.triu(U), U)
    assert sorted(P.sum(axis=0)) == [1] * n and np.abs(L).max() <= 1 + 1e-12  # partial pivoting
    b, b1 = RNG.random((n, 3)), RNG.random(n)
    assert_eq(linalg.solve(x, b), np.linalg.solve(a, b), rtol=1e-8)
    assert_eq(linalg.solve(x, b1), np.linalg.solve(a, b1), rtol=1e-8, scheduler="threads")
    assert_eq(linalg.inv(x), np.linalg.inv(a), rtol=1e-8)
    assert_eq(linalg.solve_triangular(x, b, lower=True), np.linalg.solve(np.tril(a), b), rtol=1e-8)
    assert_eq(linalg.solve_triangular(x, b1), np.linalg.solve(np.triu(a), b1), rtol=1e-8)


def test_lu_pivots_across_blocks():
    # the leading 2x2 block is singular: pivoting only inside it would fail
    a = np.array([[0., 0, 1, 2], [0, 0, 3, 1], [1, 2, 5, 1], [3, 1, 2, 7]])
    x = la.from_array(a, chunks=2)
    assert_eq(linalg.solve(x, np.ones(4)), np.linalg.solve(a, np.ones(4)), rtol=1e-8)
    assert_eq(linalg.inv(x), np.linalg.inv(a), rtol=1e-8)
    ints = la.from_array(np.array([[2, 1], [1, 3]]), chunks=1)
    assert_eq(linalg.inv(ints), np.linalg.inv(np.array([[2, 1], [1, 3]])))


@pytest.mark.parametrize("n, chunks", SQUARE)
def test_cholesky(n, chunks):
    a = RNG.random((n, n))
    spd = a @ a.T + n * np.eye(n)
    x = la.from_array(spd, chunks=chunks)
    assert_eq(linalg.cholesky(x, lower=True), np.linalg.cholesky(spd), rtol=1e-8)
    assert_eq(linalg.cholesky(x), np.linalg.cholesky(spd).T, rtol=1e-8)
    b = RNG.random((n, 2))
    assert_eq(linalg.solve(x, b, assume_a="pos"), np.linalg.solve(spd, b), rtol=1e-8)
    herm = spd + 1j * (a - a.T)
    assert_eq(linalg.cholesky(la.from_array(herm, chunks=chunks), lower=True), np.linalg.cholesky(herm), rtol=1e-8)


@pytest.mark.parametrize("chunks", [(5, 4), (20, 2), (20, 4)])
def test_lstsq(chunks):
    a = RNG.random((20, 4))
    x = la.from_array(a, chunks=chunks)
    for b in (RNG.random(20), RNG.random((20, 3))):
        sol, residuals, rank, s = linalg.lstsq(x, b)
        nsol, nres, nrank, ns = np.linalg.lstsq(a, b, rcond=None)
        assert_eq(sol, nsol, rtol=1e-8)
        close(residuals.compute(), nres)
        assert residuals.shape == nres.shape and int(rank.compute()) == nrank
        assert_eq(s, ns, rtol=1e-8)
    with pytest.raises(ValueError, match="at least as many rows"):
        linalg.lstsq(la.ones((3, 5), chunks=(3, 5)), np.ones(3))


@pytest.mark.parametrize("values", [
    RNG.random((6, 5)) - 0.5,
    (RNG.random((6, 5)) - 0.5) + 1j * RNG.random((6, 5)),
    (RNG.random((6, 5)) * 10).astype(int) + 1,
    (RNG.random((6, 5)) - 0.5).astype(np.float32),
])
def test_norm(values):
    x = la.from_array(values, chunks=(6, 2))
    for ord in (None, "fro", 1, -1, 2, -2, np.inf, -np.inf, "nuc"):
        for keepdims in (False, True):
            assert_eq(linalg.norm(x, ord, keepdims=keepdims), np.linalg.norm(values, ord, keepdims=keepdims),
                      rtol=1e-5)
    for ord in (None, 0, 1, 2, 3, 0.5, np.inf, -np.inf, -1):
        for axis in (0, -1):
            assert_eq(linalg.norm(x, ord, axis=axis), np.linalg.norm(values, ord, axis=axis), rtol=1e-5)


def test_norm_of_stacks_and_errors():
    t = RNG.random((3, 4, 5))
    x = la.from_array(t, chunks=2)
    assert_eq(linalg.norm(x), np.linalg.norm(t))
    assert_eq(linalg.norm(x, 1, axis=(2, 0)), np.linalg.norm(t, 1, axis=(2, 0)))
    assert_eq(linalg.norm(x, -np.inf, axis=(1, 2), keepdims=True),
              np.linalg.norm(t, -np.inf, axis=(1, 2), keepdims=True))
    assert_eq(np.linalg.norm(x, axis=1), np.linalg.norm(t, axis=1))  # NumPy's function dispatches here
    with pytest.raises(ValueError, match="improper number of dimensions"):
        linalg.norm(x, 1)
    with pytest.raises(ValueError, match="invalid norm order 'fro' for vectors"):
        linalg.norm(x, "fro", axis=0)
    with pytest.raises(NotImplementedError, match="2-d"):
        linalg.norm(x, 2, axis=(0, 1))


def test_square_inputs_are_checked():
    with pytest.raises(ValueError, match=r"square matrix, got shape \(4, 3\)"):
        linalg.lu(la.ones((4, 3), chunks=2))
    # different row and column chunks are made to match
    a = RNG.random((5, 5)) + 5 * np.eye(5)
    assert_eq(linalg.inv(la.from_array(a, chunks=((2, 3), (4, 1)))), np.linalg.inv(a), rtol=1e-8)
