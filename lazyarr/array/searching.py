"""Looking values up in other values: searchsorted, digitize, isin.

``searchsorted(a, v)`` counts, for every value of ``v``, the elements of the sorted ``a`` that
come before it. That count is a sum over the blocks of ``a``, each block being sorted too, so
every pair (block of ``a``, block of ``v``) is one task and the counts are added up with a
tree reduction: no task ever holds more than one block of each. ``isin`` with a lazy set of test
values works the same way with "any" in place of the sum.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .core import Array, asarray, blockwise, map_blocks

__all__ = ["searchsorted", "digitize", "isin"]


def _count_before(a_block: np.ndarray, v_block: np.ndarray, side: str) -> np.ndarray:
    return np.searchsorted(a_block, v_block, side=side)[np.newaxis]


def searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None) -> Array:
    """Positions at which to insert ``v`` into the sorted 1-d ``a`` to keep it sorted (``np.searchsorted``).

    ``sorter`` may be a NumPy array of the positions that sort ``a``; ``a`` is then gathered in
    that order first (a lazy ``sorter`` is not supported: compute it first).

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.array([1, 2, 2, 3, 5]), chunks=2)
    >>> searchsorted(a, np.array([2, 4, 9])).compute().tolist()
    [1, 4, 5]
    >>> searchsorted(a, 2, side='right').compute()
    np.int64(3)
    """
    a, v = asarray(a), asarray(v)
    if a.ndim != 1:
        raise ValueError(f"searchsorted needs a 1-d sorted array a, got shape {a.shape}")
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', not {side!r}")
    if sorter is not None:
        if isinstance(sorter, Array):
            raise NotImplementedError("searchsorted with a lazy sorter is not supported; compute the sorter first")
        a = a[np.asarray(sorter)]
    v_ind = tuple(range(1, v.ndim + 1))
    counts = blockwise(partial(_count_before, side=side), (0,) + v_ind, a, (0,), v, v_ind,
                       adjust_chunks={0: 1}, dtype=np.intp)
    return counts.sum(axis=0, dtype=np.intp)


def digitize(x: Any, bins: Any, right: bool = False) -> Array:
    """The index of the bin each value of ``x`` falls in (``np.digitize``); ``bins`` is 1-d and monotonic.

    >>> import numpy as np, lazyarr.array as la
    >>> digitize(la.from_array(np.array([0.5, 1.5, 3.0]), chunks=2), [1, 2, 3]).compute().tolist()
    [0, 1, 3]
    """
    x = asarray(x)
    if isinstance(bins, Array):
        if bins.ndim != 1:
            raise ValueError(f"digitize: bins must be 1-d, got shape {bins.shape}")
        ind = tuple(range(x.ndim))
        whole = bins.rechunk(-1)
        return blockwise(partial(_digitize_block, right=right), ind, x, ind, whole, ("bins",), dtype=np.intp,
                         concatenate=True)
    bins = np.asarray(bins)
    if bins.ndim != 1:
        raise ValueError(f"digitize: bins must be 1-d, got shape {bins.shape}")
    np.digitize(np.empty(0, dtype=x.dtype), bins, right=right)  # NumPy checks that bins are monotonic
    return map_blocks(_digitize_block, x, bins=bins, right=right, dtype=np.intp)


def _digitize_block(block: np.ndarray, bins: np.ndarray, right: bool) -> np.ndarray:
    return np.digitize(block, bins, right=right)


def _isin_pair(element: np.ndarray, test: np.ndarray, assume_unique: bool) -> np.ndarray:
    found = np.isin(element, test, assume_unique=assume_unique)
    return found.reshape(element.shape + (1,) * test.ndim)


def _isin_block(element: np.ndarray, test: np.ndarray, assume_unique: bool, invert: bool) -> np.ndarray:
    return np.isin(element, test, assume_unique=assume_unique, invert=invert)


def isin(element: Any, test_elements: Any, assume_unique: bool = False, invert: bool = False) -> Array:
    """Whether each element of ``element`` is one of ``test_elements`` (``np.isin``); the result has
    ``element``'s shape and blocks.

    A NumPy ``test_elements`` is handed whole to every block; a lazy one is compared block
    against block and the answers are combined with a tree of "any".

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(6), chunks=4)
    >>> isin(x, [1, 4, 9]).compute().tolist()
    [False, True, False, False, True, False]
    >>> isin(x, la.from_array(np.array([5, 0]), chunks=1), invert=True).compute().tolist()
    [False, True, True, True, True, False]
    """
    element = asarray(element)
    if not isinstance(test_elements, Array):
        fn = partial(_isin_block, test=np.asarray(test_elements), assume_unique=assume_unique, invert=invert)
        return map_blocks(fn, element, dtype=bool)
    e_ind = tuple(range(element.ndim))
    t_ind = tuple(range(element.ndim, element.ndim + test_elements.ndim))
    pairs = blockwise(partial(_isin_pair, assume_unique=assume_unique), e_ind + t_ind, element, e_ind,
                      test_elements, t_ind, adjust_chunks=dict.fromkeys(t_ind, 1), dtype=bool)
    found = pairs.any(axis=t_ind) if t_ind else pairs
    return ~found if invert else found
