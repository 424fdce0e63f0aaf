"""Reshaping arrays block by block.

NumPy reshapes in C order, so a block can be reshaped on its own only if it is a contiguous run
of the flattened array *within each group of axes that reshape into each other*. The axes of the
old and new shapes are paired into such groups (e.g. ``(6, 4, 5) -> (24, 5)`` pairs ``(6, 4)``
with ``(24,)`` and ``(5,)`` with ``(5,)``). Within a group every axis but the first is made a
single chunk, and the first axis is cut at multiples of the rows that map to whole rows of the
new shape; rows are then chosen so the blocks stay about as large as before. After that rechunk,
each input block becomes exactly one output block through ``np.reshape``.
"""
from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from ..tokenize import tokenize
from .core import Array, asarray, new_array
from .rechunk import rechunk

__all__ = ["reshape", "ravel", "normalize_shape"]


def reshape(x: Any, shape: Any) -> Array:
    """``x`` with a new ``shape`` (an int or a tuple, with at most one ``-1``), like ``np.reshape``.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(12), chunks=4)
    >>> y = reshape(x, (3, -1))
    >>> y.shape, y.chunks
    ((3, 4), ((1, 1, 1), (4,)))
    >>> reshape(x, (5, 3))
    Traceback (most recent call last):
    ...
    ValueError: cannot reshape array of shape (12,) (size 12) into shape (5, 3)
    """
    x = x if isinstance(x, Array) else asarray(x)
    old = tuple(x.shape)
    if any(isinstance(s, float) and math.isnan(s) for s in old):
        raise ValueError(f"cannot reshape an array of unknown shape {old}; compute its chunk sizes first")
    new = normalize_shape(shape, old)
    if new == old:
        return x
    if math.prod(old) == 0 or not old:
        return _reshape_whole(x, new)
    groups = _pair_axes(old, new)
    in_chunks = list(x.chunks)
    out_chunks: list = [(1,)] * len(new)
    for ins, outs in groups:
        if len(ins) == 1 and len(outs) == 1:
            out_chunks[outs[0]] = tuple(x.chunks[ins[0]])
            continue
        lead, rest = ins[0], ins[1:]
        r_in = math.prod(old[a] for a in rest)
        r_out = math.prod(new[a] for a in outs[1:])
        unit = r_out // math.gcd(r_in, r_out)  # rows of the lead axis that fill whole new rows
        lead_chunks = tuple(x.chunks[lead])
        fits = all(c % unit == 0 for c in lead_chunks[:-1]) and all(len(x.chunks[a]) == 1 for a in rest)
        if not fits:
            block = math.prod(max(x.chunks[a]) for a in ins)
            rows = min(max(unit, block // r_in // unit * unit), old[lead])
            lead_chunks = _regular(old[lead], rows)
        in_chunks[lead] = lead_chunks
        for a in rest:
            in_chunks[a] = (old[a],)
        out_chunks[outs[0]] = tuple(c * r_in // r_out for c in lead_chunks)
        for a in outs[1:]:
            out_chunks[a] = (new[a],)
    x = rechunk(x, tuple(in_chunks))
    return _blockwise_reshape(x, new, groups, tuple(out_chunks))


def normalize_shape(shape: Any, old: Sequence[int]) -> tuple[int, ...]:
    """Resolve a requested shape (int or sequence, at most one ``-1``) against the old shape.

    >>> normalize_shape((2, -1), (3, 4))
    (2, 6)
    >>> normalize_shape(12, (3, 4))
    (12,)
    """
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    try:
        shape = tuple(int(s) if isinstance(s, numbers.Integral) else s for s in shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a sequence of ints, not {shape!r}") from None
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"shape must contain only integers, not {shape!r}")
    size = math.prod(old)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise ValueError(f"can only specify one unknown dimension (-1) in shape {shape}")
    if any(s < -1 for s in shape):
        raise ValueError(f"negative dimensions are not allowed in shape {shape}")
    if unknown:
        known = math.prod(s for s in shape if s != -1)
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of shape {tuple(old)} (size {size}) into shape {tuple(shape)}")
        shape = shape[:unknown[0]] + (size // known,) + shape[unknown[0] + 1:]
    if math.prod(shape) != size:
        raise ValueError(f"cannot reshape array of shape {tuple(old)} (size {size}) into shape {tuple(shape)}")
    return shape



def _pair_axes(old: Sequence[int], new: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """Group the axes (leaving out those of length 1) whose products match, left to right.

    >>> _pair_axes((6, 4, 5), (24, 1, 5))
    [([0, 1], [0]), ([2], [2])]
    """
    ia = [i for i, s in enumerate(old) if s != 1]
    oa = [j for j, s in enumerate(new) if s != 1]
    groups = []
    i = j = 0
    while i < len(ia):
        gi, go = [ia[i]], [oa[j]]
        pi, po = old[ia[i]], new[oa[j]]
        i += 1
        j += 1
        while pi != po:
            if pi < po:
                gi.append(ia[i])
                pi *= old[ia[i]]
                i += 1
            else:
                go.append(oa[j])
                po *= new[oa[j]]
                j += 1
        groups.append((gi, go))
    return groups


def _regular(length: int, size: int) -> tuple[int, ...]:
    full, last = divmod(length, size)
    return (size,) * full + ((last,) if last else ())


def _blockwise_reshape(x: Array, new: tuple[int, ...], groups: list, out_chunks: tuple) -> Array:
    name = f"reshape-{tokenize(x, new)}"
    lead_of = {outs[0]: ins[0] for ins, outs in groups}
    layer = {}
    for index in itertools.product(*(range(n) for n in x.numblocks)):
        out_index = tuple(index[lead_of[a]] if a in lead_of else 0 for a in range(len(new)))
        shape = tuple(out_chunks[a][i] for a, i in enumerate(out_index))
        layer[(name,) + out_index] = (partial(_reshape_block, shape=shape), (x.name,) + index)
    return new_array(name, layer, [x], out_chunks, x.dtype)


def _reshape_block(block: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return block.reshape(shape)


def _reshape_whole(x: Array, new: tuple[int, ...]) -> Array:
    """Reshape as a single block: for empty arrays and 0-d ones, where blocks are tiny."""
    if x.ndim:
        x = rechunk(x, tuple((s,) for s in x.shape))
    name = f"reshape-{tokenize(x, new)}"
    layer = {(name,) + (0,) * len(new): (partial(_reshape_block, shape=new), (x.name,) + (0,) * x.ndim)}
    return new_array(name, layer, [x], tuple((s,) for s in new), x.dtype)


def ravel(x: Any) -> Array:
    """The array flattened to one dimension in C order (``np.ravel``); ``flatten`` is the same.

    >>> import numpy as np, lazyarr.array as la
    >>> ravel(la.from_array(np.arange(6).reshape(2, 3), chunks=2)).compute().tolist()
    [0, 1, 2, 3, 4, 5]
    """
    return reshape(x, (-1,))


#: Lazy arrays are never views, so ``flatten`` and ``ravel`` are the same.
flatten = ravel
