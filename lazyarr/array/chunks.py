"""Chunk bookkeeping: normalising user chunk specifications, offsets, block slices.

A normalised ``chunks`` value is a tuple with one tuple of block lengths per dimension, e.g.
``((2, 2, 1), (3,))`` for a 5 x 3 array in two-row blocks. Every dimension has at least one block
(an empty dimension has the single block ``(0,)``). Unknown lengths (after boolean indexing) are
``nan``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import accumulate, product
from typing import Any

from .. import config
from ..utils import parse_bytes

__all__ = [
    "normalize_chunks",
    "auto_chunks",
    "blockdims_from_blockshape",
    "chunk_offsets",
    "slices_from_chunks",
    "block_shape",
    "common_refinement",
    "validate_axis",
]


def _isnan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def blockdims_from_blockshape(shape: Sequence[int], blockshape: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Block lengths for regular blocks of ``blockshape`` covering ``shape`` (last block shorter).

    >>> blockdims_from_blockshape((10, 4), (4, 4))
    ((4, 4, 2), (4,))
    >>> blockdims_from_blockshape((0,), (3,))
    ((0,),)
    """
    out = []
    for axis, (n, b) in enumerate(zip(shape, blockshape)):
        if _isnan(n):
            out.append((math.nan,))
            continue
        if b <= 0 and n > 0:
            raise ValueError(f"chunk size must be positive, got {b} for axis {axis} of shape {tuple(shape)}")
        if n == 0:
            out.append((0,))
            continue
        full, rest = divmod(int(n), int(b))
        out.append((int(b),) * full + ((rest,) if rest else ()))
    return tuple(out)


def _auto_limit(limit: Any) -> int:
    if limit is None:
        limit = config.get("array.chunk-size", "128MiB")
    return parse_bytes(limit)


def auto_chunks(shape: Sequence[int], chunks: Sequence[Any], itemsize: int, limit: Any = None) -> tuple[int, ...]:
    """Chunk lengths for the ``'auto'`` entries of ``chunks`` so a block holds about ``limit`` bytes.

    Fixed entries (ints) are kept; auto dimensions share the remaining budget evenly (roughly cubic
    blocks), and a dimension smaller than its share is taken whole. Lengths are balanced so that the
    last block is not a sliver.

    >>> auto_chunks((1000, 1000), ('auto', 'auto'), 8, limit=80_000)
    (100, 100)
    >>> auto_chunks((10, 10**6), (10, 'auto'), 8, limit=800)
    (10, 10)
    """
    budget = _auto_limit(limit) / max(int(itemsize), 1)
    fixed = [c for c in chunks if c != "auto"]
    for c in fixed:
        budget /= max(int(c), 1)
    auto_axes = [i for i, c in enumerate(chunks) if c == "auto"]
    result = list(chunks)
    remaining = list(auto_axes)
    while remaining:
        ideal = max(budget, 1) ** (1.0 / len(remaining))
        small = [i for i in remaining if shape[i] <= ideal]
        if not small:
            break
        for i in small:
            result[i] = max(int(shape[i]), 1)
            budget /= max(int(shape[i]), 1)
            remaining.remove(i)
    if remaining:
        ideal = max(int(max(budget, 1) ** (1.0 / len(remaining))), 1)
        for i in remaining:
            n = int(shape[i])
            nblocks = max(math.ceil(n / ideal), 1)
            result[i] = max(math.ceil(n / nblocks), 1)
    return tuple(int(c) for c in result)


def normalize_chunks(chunks: Any, shape: Sequence[int] | None = None, limit: Any = None,
                     dtype: Any = None, previous_chunks: Sequence[Sequence[int]] | None = None
                     ) -> tuple[tuple[int, ...], ...]:
    """Turn any user chunk specification into explicit block lengths per dimension.

    Accepted: an int (the same block length on every axis), a tuple with one entry per axis (an
    int, ``-1``/``None`` for the whole axis, ``'auto'``, or an explicit tuple of lengths), a dict
    ``{axis: entry}`` (missing axes keep ``previous_chunks`` or are taken whole), ``'auto'`` or a
    byte size such as ``'64MiB'`` (automatic blocks of that many bytes; ``'auto'`` uses the
    ``array.chunk-size`` setting, 128 MiB by default).

    >>> normalize_chunks(2, (5,))
    ((2, 2, 1),)
    >>> normalize_chunks((2, -1), (3, 4))
    ((2, 1), (4,))
    >>> normalize_chunks(((1, 2), (4,)), (3, 4))
    ((1, 2), (4,))
    >>> normalize_chunks({0: 3}, (5, 2))
    ((3, 2), (2,))
    >>> normalize_chunks('auto', (1000,), limit='800B', dtype='f8')
    ((100, 100, 100, 100, 100, 100, 100, 100, 100, 100),)
    """
    if shape is not None:
        shape = tuple(shape)
        for axis, n in enumerate(shape):
            if not _isnan(n) and (not isinstance(n, (int,)) and not hasattr(n, "__index__")):
                raise TypeError(f"shape {shape} must hold integers, got {n!r} on axis {axis}")
            if not _isnan(n) and n < 0:
                raise ValueError(f"negative dimension in shape {shape} (axis {axis})")
        shape = tuple(n if _isnan(n) else int(n) for n in shape)
    if chunks is None:
        raise ValueError("chunks must be given (an int, a tuple, 'auto', ...), not None")
    if isinstance(chunks, Mapping):
        if shape is None:
            raise ValueError("a dict of chunks needs the array's shape")
        for axis in chunks:
            if not isinstance(axis, int) or not -len(shape) <= axis < len(shape):
                raise ValueError(f"chunks refer to axis {axis!r}, out of range for shape {shape}")
        by_axis = {a % len(shape): c for a, c in chunks.items()}
        chunks = tuple(
            by_axis[i] if i in by_axis else (tuple(previous_chunks[i]) if previous_chunks is not None else -1)
            for i in range(len(shape))
        )
    if isinstance(chunks, str):
        if chunks != "auto":
            limit = parse_bytes(chunks)
        if shape is None:
            raise ValueError("'auto' chunks need the array's shape")
        chunks = ("auto",) * len(shape)
    if isinstance(chunks, (int, float)) and not isinstance(chunks, bool):
        if shape is None:
            raise ValueError("an integer chunk size needs the array's shape")
        chunks = (int(chunks),) * len(shape)
    if not isinstance(chunks, (tuple, list)):
        raise TypeError(f"cannot understand chunks={chunks!r}; give an int, a tuple, a dict or 'auto'")
    chunks = tuple(chunks)
    if shape is None:
        if all(isinstance(c, (tuple, list)) for c in chunks):
            return tuple(_check_lengths(tuple(c), i) for i, c in enumerate(chunks))
        raise ValueError(f"chunks={chunks!r} need the array's shape to be normalised")
    if len(chunks) != len(shape):
        raise ValueError(
            f"chunks {chunks!r} have {len(chunks)} dimension(s) but the shape {shape} has {len(shape)}"
        )
    entries = []
    for axis, (c, n) in enumerate(zip(chunks, shape)):
        if c is None or (isinstance(c, int) and not isinstance(c, bool) and c == -1):
            c = n
        elif isinstance(c, str) and c != "auto":
            raise ValueError(f"cannot understand chunk entry {c!r} for axis {axis}; use an int, -1, 'auto' or a tuple")
        entries.append(c)
    if any(c == "auto" for c in entries if isinstance(c, str)):
        if dtype is None:
            raise ValueError("'auto' chunks need a dtype to know the item size")
        import numpy as np

        itemsize = np.dtype(dtype).itemsize or 1
        plain = [c if isinstance(c, str) else (max(c) if isinstance(c, (tuple, list)) and c else c)
                 for c in entries]
        sizes = auto_chunks(shape, plain, itemsize, limit)
        entries = [sizes[i] if isinstance(c, str) else c for i, c in enumerate(entries)]
    out = []
    for axis, (c, n) in enumerate(zip(entries, shape)):
        if isinstance(c, (tuple, list)):
            lengths = _check_lengths(tuple(c), axis)
            total = sum(lengths)
            if not _isnan(n) and not any(map(_isnan, lengths)) and total != n:
                raise ValueError(
                    f"chunks {lengths} along axis {axis} add up to {total}, not to the length {n} of shape {shape}"
                )
            if not lengths:
                raise ValueError(f"axis {axis} needs at least one block (use (0,) for an empty axis)")
            out.append(lengths)
        else:
            try:
                size = int(c)
            except (TypeError, ValueError):
                raise TypeError(f"cannot understand chunk entry {c!r} for axis {axis}") from None
            if size < 0:
                raise ValueError(f"negative chunk size {size} for axis {axis} of shape {shape}")
            if size == 0 and not _isnan(n) and n > 0:
                raise ValueError(f"chunk size 0 for axis {axis} of non-empty shape {shape}")
            out.append(blockdims_from_blockshape((n,), (size,))[0])
    return tuple(out)


def _check_lengths(lengths: tuple, axis: int) -> tuple:
    for length in lengths:
        if _isnan(length):
            continue
        if not isinstance(length, int) and not hasattr(length, "__index__"):
            raise TypeError(f"chunk lengths must be integers, got {length!r} on axis {axis}")
        if length < 0:
            raise ValueError(f"negative chunk length {length} on axis {axis} in {lengths}")
    return tuple(length if _isnan(length) else int(length) for length in lengths)


def chunk_offsets(chunks: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """Start offset of every block along each axis.

    >>> chunk_offsets(((2, 2, 1), (3,)))
    ((0, 2, 4), (0,))
    """
    return tuple((0,) + tuple(accumulate(c))[:-1] for c in chunks)


def slices_from_chunks(chunks: tuple[tuple[int, ...], ...]) -> list[tuple[slice, ...]]:
    """The slices of every block, in C order of block index.

    >>> slices_from_chunks(((2, 1), (3,)))
    [(slice(0, 2, None), slice(0, 3, None)), (slice(2, 3, None), slice(0, 3, None))]
    """
    per_axis = [
        [slice(start, start + length) for start, length in zip(offsets, lengths)]
        for offsets, lengths in zip(chunk_offsets(chunks), chunks)
    ]
    return [tuple(s) for s in product(*per_axis)]


def block_shape(chunks: tuple[tuple[int, ...], ...], index: Sequence[int]) -> tuple[int, ...]:
    """Shape of the block at ``index``.

    >>> block_shape(((2, 1), (3,)), (1, 0))
    (1, 3)
    """
    return tuple(c[i] for c, i in zip(chunks, index))


def common_refinement(*dims: tuple[int, ...]) -> tuple[int, ...]:
    """The coarsest block lengths whose boundaries include the boundaries of all ``dims``.

    >>> common_refinement((2, 2), (1, 3))
    (1, 1, 2)
    """
    total = {sum(d) for d in dims}
    if len(total) > 1:
        raise ValueError(f"cannot align chunks {dims}: they cover different lengths {sorted(total)}")
    bounds = sorted({b for d in dims for b in accumulate(d)} | {0})
    out = tuple(b - a for a, b in zip(bounds, bounds[1:]))
    return out or (0,)


def validate_axis(axis: Any, ndim: int, shape: tuple | None = None) -> int:
    """Normalise one axis (negative counts from the end), raising a clear error when out of range.

    >>> validate_axis(-1, 3)
    2
    """
    if not isinstance(axis, int) and not hasattr(axis, "__index__"):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        where = f"shape {shape}" if shape is not None else f"{ndim} dimension(s)"
        raise ValueError(f"axis {axis} is out of range for an array of {where} (ndim={ndim})")
    return axis % ndim if ndim else 0
