"""einsum against np.einsum: contractions, diagonals, broadcasting with ..., sublists, dtypes."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr.array as la

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(60)
A, B, C = RNG.random((5, 6)), RNG.random((6, 4)), RNG.random((3, 5, 6))
V, S = RNG.random(6), RNG.random((5, 5))
CASES = [("ij,jk->ik", A, B), ("ij,jk", A, B), ("ij->ji", A), ("ij->", A), ("ii->i", S), ("ii", S), ("i,i", V, V),
         ("...j,j->...", C, V), ("bij,jk->bik", C, B), ("i,j->ij", V, V), ("...ij,...jk", C, B),
         ("ij,ij,ij->j", A, A, A), ("kij->", C), ("bij", C), ("b i j , j -> i b", C, V)]


def _chunked(values, kind):
    if kind == "whole":
        return la.from_array(values, chunks=-1)
    if kind == "uneven":  # a one-element block first, then the rest
        return la.from_array(values, chunks=tuple((1, n - 1) if n > 1 else (n,) for n in values.shape))
    return la.from_array(values, chunks=kind)


@pytest.mark.parametrize("chunks", [2, "whole", "uneven"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_einsum(case, chunks):
    spec, *operands = case
    lazy = [_chunked(o, chunks) for o in operands]
    assert_eq(la.einsum(spec, *lazy), np.einsum(spec, *operands))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_einsum_sublists_dtypes_and_dispatch(scheduler):
    a, b = la.from_array(A, chunks=2), la.from_array(B, chunks=3)
    assert_eq(la.einsum(a, [0, 1], b, [1, 2], [0, 2]), A @ B, scheduler=scheduler)
    diagonal = la.from_array(S, chunks=((1, 4), (2, 3)))  # the two axes are aligned first
    assert_eq(la.einsum("ii->i", diagonal), np.diag(S), scheduler=scheduler)
    ints = RNG.integers(0, 5, (4, 4)).astype(np.int32)
    assert_eq(la.einsum("ij,jk->ik", la.from_array(ints, chunks=3), ints), np.einsum("ij,jk->ik", ints, ints))
    assert_eq(la.einsum("ij->", a, dtype=np.float32, casting="unsafe"),
              np.einsum("ij->", A, dtype=np.float32, casting="unsafe"), rtol=1e-5)
    assert_eq(np.einsum("ij,jk->ik", a, b, optimize=True), A @ B, scheduler=scheduler)
    with pytest.raises(ValueError, match="name 2 axes but the operand has shape"):
        la.einsum("ij", la.ones(3))
    with pytest.raises(ValueError, match="different lengths"):
        la.einsum("i,i", la.ones(3), la.ones(4))
    with pytest.raises(ValueError, match="distinct letters"):
        la.einsum("i->ii", la.ones(3))
