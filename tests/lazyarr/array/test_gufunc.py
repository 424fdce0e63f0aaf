"""apply_gufunc, gufunc and as_gufunc: core dimensions, axes/axis/keepdims, several outputs,
vectorize, output_sizes, broadcasting of loop dimensions, and the one-chunk rule."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr.array as la

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(70)
A, B, V = RNG.random((6, 4, 3)), RNG.random((3, 2)), RNG.random(3)


def mean_last(block):
    return block.mean(axis=-1)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_core_dimensions_and_axes(scheduler):
    x = la.from_array(A, chunks=(4, 4, 2))
    assert_eq(la.apply_gufunc(np.matmul, "(m,n),(n,p)->(m,p)", x.rechunk({2: -1}), B), A @ B, scheduler=scheduler)
    assert_eq(la.apply_gufunc(mean_last, "(i)->()", x, axis=1, output_dtypes=float), A.mean(1), scheduler=scheduler)
    assert_eq(la.apply_gufunc(mean_last, "(i)->()", x, axis=1, keepdims=True), A.mean(1, keepdims=True))
    outer = la.apply_gufunc(np.outer, "(i),(j)->(i,j)", la.from_array(V, chunks=3), la.from_array(B[:, 0], chunks=3),
                            vectorize=True, axes=[(0,), (0,), (1, 0)])
    assert_eq(outer, np.outer(V, B[:, 0]).T)
    moved = la.apply_gufunc(lambda b: b * 2, "(i)->(i)", x.rechunk({0: -1}), axes=[(0,), (0,)])
    assert_eq(moved, A * 2)


def test_several_outputs_vectorize_and_sizes():
    x = la.from_array(A, chunks=(4, 3, 3))
    low, high = la.apply_gufunc(lambda b: (b.min(-1), b.max(-1)), "(i)->(),()", x)
    assert_eq(low, A.min(-1))
    assert_eq(high, A.max(-1))
    stacked = la.apply_gufunc(lambda a: np.stack([a, -a], -1), "()->(k)", x, output_sizes={"k": 2},
                              output_dtypes=float)
    assert_eq(stacked, np.stack([A, -A], -1))
    assert_eq(la.apply_gufunc(lambda a, b: a @ b, "(i),(i)->()", x, V, vectorize=True), A @ V)
    (single,) = la.apply_gufunc(lambda b: (b.mean(-1),), "(i)->(),", x)  # a trailing comma: a tuple of one
    assert_eq(single, A.mean(-1))
    with pytest.raises(ValueError, match="output_sizes"):
        la.apply_gufunc(lambda a: a, "()->(k)", x, output_dtypes=float)


def test_loop_dimensions_broadcast():
    left = la.from_array(A[:, :1, :], chunks=(2, 1, 3))
    right = la.from_array(A[0], chunks=(3, 3))
    result = la.apply_gufunc(lambda a, b: (a * b).sum(-1), "(i),(i)->()", left, right)
    assert_eq(result, (A[:, :1, :] * A[0]).sum(-1))
    with pytest.raises(ValueError, match="different lengths"):
        la.apply_gufunc(lambda a, b: a + b, "(),()->()", la.ones(3), la.ones(4))


def test_core_dimension_in_several_chunks():
    x = la.from_array(A, chunks=(4, 3, 2))
    with pytest.raises(ValueError, match=r"core dimension 'i' of argument 0 is in several chunks \(2, 1\).*"
                                         "allow_rechunk=True"):
        la.apply_gufunc(mean_last, "(i)->()", x)
    assert_eq(la.apply_gufunc(mean_last, "(i)->()", x, allow_rechunk=True), A.mean(-1))


def test_gufunc_and_decorator():
    det = la.gufunc(np.linalg.det, signature="(m,m)->()", output_dtypes=float)
    stack = RNG.random((5, 3, 3))
    assert_eq(det(la.from_array(stack, chunks=(2, 3, 3))), np.linalg.det(stack))
    assert "det" in repr(det)

    @la.as_gufunc(signature="(i)->(i),()", vectorize=True)
    def doubled_and_sum(v):
        return v * 2, v.sum()

    doubled, total = doubled_and_sum(la.from_array(A, chunks=(4, 3, 3)))
    assert_eq(doubled, A * 2)
    assert_eq(total, A.sum(-1))
    with pytest.raises(TypeError, match="unsupported keyword"):
        la.as_gufunc("()->()", bogus=1)
    with pytest.raises(ValueError, match="not a valid gufunc signature"):
        la.apply_gufunc(mean_last, "(i->)", la.ones(3))
