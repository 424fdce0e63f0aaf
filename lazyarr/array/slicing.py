"""Indexing arrays: ``x[index]`` and ``x[mask] = value``.

An index is applied in two passes. The *basic* pass handles integers, slices (any step),
``None`` and ``Ellipsis``: every output block is one ``getitem`` of one input block, and only the
input blocks that hold selected elements appear in the graph. The *advanced* pass then applies
at most one array index to the result:

* a NumPy integer array (or list) along one axis, gathered block by block
  (:func:`take`), giving known chunk sizes;
* a NumPy boolean array, turned into integer positions (1-d) or handled like a lazy mask with
  chunk sizes counted up front (n-d);
* a lazy boolean Array, applied block by block (:func:`boolean_mask`); how many elements each
  block keeps is known only after computing, so those chunk sizes are ``nan``, as in Dask.

Positions are checked while the graph is built: an out-of-bounds index raises ``IndexError``
naming the index, the axis and its length. The result follows NumPy, including its rule that
advanced indices separated by a slice put the indexed dimension first.
"""
from __future__ import annotations

import itertools
import math
import numbers
from bisect import bisect_right
from collections.abc import Sequence
from functools import partial
from operator import getitem as _getitem
from typing import Any

import numpy as np

from ..tokenize import tokenize
from .chunks import validate_axis
from .core import Array, blockwise, from_array, new_array
from .layers import quote
from .rechunk import array_with_intermediates, chunks_equal, rechunk
from .reshape import reshape
from .routines import transpose

__all__ = ["getitem", "setitem", "take", "boolean_mask", "normalize_index"]


def _is_lazy(obj: Any) -> bool:
    return isinstance(obj, Array)


def getitem(x: Array, index: Any) -> Array:
    """``x[index]`` for a lazy array ``x``, with NumPy's semantics.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(12).reshape(3, 4), chunks=2)
    >>> x[1:, ::-2].compute().tolist()
    [[7, 5], [11, 9]]
    >>> x[[2, 0], 1].compute().tolist()
    [9, 1]
    >>> x[5]
    Traceback (most recent call last):
    ...
    IndexError: index 5 is out of bounds for axis 0 with length 3
    """
    entries = normalize_index(index, x.shape)
    arrays = [i for i, e in enumerate(entries) if isinstance(e, np.ndarray) or _is_lazy(e)]
    if len(arrays) > 1:
        raise NotImplementedError(
            f"indexing with more than one array at once ({len(arrays)} arrays in the index) is not "
            f"supported; index one axis at a time")
    basic: list = []
    out_axis = 0
    array_axis = None
    for entry in entries:
        if isinstance(entry, np.ndarray) or _is_lazy(entry):
            array_axis = out_axis
            width = entry.ndim if entry.dtype == bool else 1
            basic.extend([slice(None)] * width)
            out_axis += width
        else:
            basic.append(entry)
            out_axis += 0 if isinstance(entry, numbers.Integral) else 1
    result = basic_getitem(x, tuple(basic))
    if not arrays:
        return result
    position = arrays[0]
    entry = entries[position]
    if _is_lazy(entry):
        if entry.dtype != bool:
            raise NotImplementedError(
                "indexing with a lazy integer array is not supported; compute it first "
                "(e.g. x[np.asarray(index)])")
        result = boolean_mask(result, entry, array_axis)
        width = 1
    elif entry.dtype == bool:
        if entry.ndim == 1:
            result = take(result, np.flatnonzero(entry), array_axis)
        else:
            result = boolean_mask(result, entry, array_axis)
        width = 1
    else:
        result = take(result, entry, array_axis)
        width = entry.ndim
    if _advanced_apart(entries, position) and array_axis != 0:
        order = list(range(array_axis, array_axis + width))
        rest = [a for a in range(result.ndim) if a not in order]
        result = transpose(result, order + rest)
    return result


def _advanced_apart(entries: list, position: int) -> bool:
    """NumPy puts the indexed dimensions first when integer indices and the array index are
    separated by a slice or ``None``."""
    advanced = [i for i, e in enumerate(entries) if isinstance(e, numbers.Integral) or i == position]
    return advanced[-1] - advanced[0] + 1 != len(advanced)


# --- normalising the index -----------------------------------------------------------------------

def normalize_index(index: Any, shape: Sequence) -> list:
    """The index as a list with one entry per indexed axis (plus ``None`` entries).

    Ellipsis is expanded, missing trailing axes become ``slice(None)``, negative and NumPy
    integers become Python ints, lists become NumPy arrays; every position is bounds-checked.

    >>> normalize_index((Ellipsis, -1), (3, 4))
    [slice(None, None, None), 3]
    >>> normalize_index([0, 2], (3,))[0].tolist()
    [0, 2]
    """
    if not isinstance(index, tuple):
        index = (index,)
    converted = [_convert_entry(e) for e in index]
    consumed = sum(_width(e) for e in converted if e is not None and e is not Ellipsis)
    ellipses = sum(1 for e in converted if e is Ellipsis)
    if ellipses > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    ndim = len(shape)
    if consumed > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but {consumed} were indexed")
    fill = [slice(None)] * (ndim - consumed)
    if ellipses:
        at = next(i for i, e in enumerate(converted) if e is Ellipsis)
        converted = converted[:at] + fill + converted[at + 1:]
    else:
        converted = converted + fill
    result = []
    axis = 0
    for entry in converted:
        if entry is None:
            result.append(None)
            continue
        result.append(_check_entry(entry, axis, shape))
        axis += _width(entry)
    return result


def _convert_entry(entry: Any) -> Any:
    if entry is None or entry is Ellipsis or isinstance(entry, slice) or _is_lazy(entry):
        if isinstance(entry, slice):
            return slice(*(_as_int_or_none(v) for v in (entry.start, entry.stop, entry.step)))
        return entry
    if isinstance(entry, (bool, np.bool_)):
        raise IndexError("indexing with a single boolean (x[True]) is not supported; use x[None] for a new axis")
    if isinstance(entry, numbers.Integral):
        return int(entry)
    if isinstance(entry, (list, np.ndarray)) or hasattr(entry, "__array__"):
        arr = np.asarray(entry)
        if arr.size == 0 and arr.dtype != bool:
            arr = arr.astype(np.intp)
        if arr.dtype != bool and not np.issubdtype(arr.dtype, np.integer):
            raise IndexError(f"arrays used as indices must be of integer or boolean type, not {arr.dtype}")
        if arr.ndim == 0:
            if arr.dtype == bool:
                raise IndexError("indexing with a 0-d boolean array is not supported")
            return int(arr)
        return arr
    raise IndexError(
        f"only integers, slices (`:`), ellipsis (`...`), None (`np.newaxis`) and integer or boolean "
        f"arrays are valid indices, not {type(entry).__name__} {entry!r}")


def _as_int_or_none(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
        return int(v)
    if hasattr(v, "__index__"):
        return v.__index__()
    raise IndexError(f"slice indices must be integers or None, not {type(v).__name__} {v!r}")


def _width(entry: Any) -> int:
    """How many axes of the array an index entry consumes."""
    if (isinstance(entry, np.ndarray) or _is_lazy(entry)) and entry.dtype == bool:
        return entry.ndim
    return 1


def _check_entry(entry: Any, axis: int, shape: Sequence) -> Any:
    length = shape[axis]
    if isinstance(entry, int):
        if math.isnan(length):
            raise IndexError(f"cannot index axis {axis} with {entry}: its length is unknown (nan)")
        if not -length <= entry < length:
            raise IndexError(f"index {entry} is out of bounds for axis {axis} with length {length}")
        return entry + length if entry < 0 else entry
    if isinstance(entry, slice):
        if math.isnan(length) and entry != slice(None):
            raise IndexError(f"cannot slice axis {axis} with {entry}: its length is unknown (nan)")
        if entry.step == 0:
            raise ValueError("slice step cannot be zero")
        return entry
    covered = tuple(shape[axis:axis + _width(entry)])
    if entry.dtype == bool:
        if any(isinstance(s, float) and math.isnan(s) for s in covered + tuple(entry.shape)):
            return entry  # checked block by block when the chunks line up
        if tuple(entry.shape) != covered:
            raise IndexError(f"boolean index of shape {tuple(entry.shape)} does not match the indexed "
                             f"array's shape {covered} at axis {axis}")
        return entry
    if _is_lazy(entry):
        return entry
    return _positions(entry, axis, length)


def _positions(indices: np.ndarray, axis: int, length: Any) -> np.ndarray:
    """Integer positions along an axis, bounds-checked, negatives counted from the end."""
    if math.isnan(length):
        raise IndexError(f"cannot index axis {axis} with an integer array: its length is unknown (nan)")
    if indices.size:
        low, high = int(indices.min()), int(indices.max())
        bad = low if low < -length else high if high >= length else None
        if bad is not None:
            raise IndexError(f"index {bad} is out of bounds for axis {axis} with length {length}")
    return np.where(indices < 0, indices + length, indices).astype(np.intp)


# --- basic indexing ------------------------------------------------------------------------------

def basic_getitem(x: Array, index: tuple) -> Array:
    """Apply a normalised index of ints, slices and ``None`` (one entry per axis plus ``None``s)."""
    if all(e == slice(None) for e in index if e is not None) and None not in index:
        return x
    token = tokenize(x, [_token_part(e) for e in index])
    name = f"getitem-{token}"
    # per output axis: list of (input block, local index) and the sizes
    plans = []  # for each index entry: ("int", block, local) | ("slice", [(block, local, size)]) | ("new",)
    axis = 0
    for entry in index:
        if entry is None:
            plans.append(("new",))
            continue
        chunks = x.chunks[axis]
        if isinstance(entry, int):
            bounds = list(itertools.accumulate(chunks, initial=0))
            block = bisect_right(bounds, entry) - 1
            plans.append(("int", block, entry - bounds[block]))
        else:
            plans.append(("slice", slice_axis(chunks, entry)))
        axis += 1
    out_chunks = []
    for plan in plans:
        if plan[0] == "new":
            out_chunks.append((1,))
        elif plan[0] == "slice":
            out_chunks.append(tuple(size for _, _, size in plan[1]))
    ranges = [range(len(p[1])) if p[0] == "slice" else range(1) for p in plans]
    layer = {}
    for combo in itertools.product(*ranges):
        in_block, local, out_index = [], [], []
        for plan, i in zip(plans, combo):
            if plan[0] == "new":
                local.append(None)
                out_index.append(0)
            elif plan[0] == "int":
                in_block.append(plan[1])
                local.append(plan[2])
            else:
                block, piece, _ = plan[1][i]
                in_block.append(block)
                local.append(piece)
                out_index.append(i)
        layer[(name,) + tuple(out_index)] = (_getitem, (x.name,) + tuple(in_block), quote(tuple(local)))
    return new_array(name, layer, [x], tuple(out_chunks), x.dtype)


def _token_part(entry: Any) -> Any:
    if isinstance(entry, slice):
        return ("slice", entry.start, entry.stop, entry.step)
    return entry


def slice_axis(chunks: Sequence, sl: slice) -> list[tuple[int, Any, Any]]:
    """For one axis: ``(input block, local slice, output size)`` for each output chunk of ``sl``.

    Blocks holding no selected element are left out; an empty selection keeps one empty chunk.

    >>> slice_axis((3, 3, 3), slice(2, 7))
    [(0, slice(2, 3, 1), 1), (1, slice(0, 3, 1), 3), (2, slice(0, 1, 1), 1)]
    >>> slice_axis((3, 3), slice(None, None, -2))
    [(1, slice(2, None, -2), 2), (0, slice(1, 0, -2), 1)]
    """
    if sl == slice(None):
        return [(b, slice(None), c) for b, c in enumerate(chunks)]
    dim = sum(chunks)
    selected = range(*sl.indices(dim))
    step = selected.step
    if not selected:
        return [(0, slice(0, 0, 1), 0)]
    bounds = list(itertools.accumulate(chunks, initial=0))
    first_block = bisect_right(bounds, selected[0]) - 1
    last_block = bisect_right(bounds, selected[-1]) - 1
    blocks = range(first_block, last_block + 1) if step > 0 else range(first_block, last_block - 1, -1)
    out = []
    for block in blocks:
        lo, hi = bounds[block], bounds[block + 1]
        if step > 0:
            k_lo = max(0, -((selected.start - lo) // step))
            k_hi = max(0, -((selected.start - hi) // step))
        else:
            k_lo = max(0, (selected.start - hi) // -step + 1)
            k_hi = max(0, (selected.start - lo) // -step + 1)
        part = selected[k_lo:k_hi]
        if not part:
            continue
        stop = part[-1] - lo + (1 if step > 0 else -1)
        out.append((block, slice(part[0] - lo, stop if stop >= 0 else None, step), len(part)))
    return out


# --- integer arrays ------------------------------------------------------------------------------

def take(x: Array, indices: Any, axis: int = 0) -> Array:
    """Elements of ``x`` at integer positions ``indices`` along ``axis`` (like ``np.take``).

    The output is cut into chunks no longer than the longest input chunk along ``axis``. Sorted
    positions give one output chunk per input block touched. Otherwise each input block hands
    its positions to an output chunk in a small task of its own, and the output chunk puts them
    in order, so no task holds more than one input block or one output block (with its parts).
    An n-d ``indices`` array replaces ``axis`` by its dimensions.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(10) * 10, chunks=3)
    >>> take(x, [9, 0, 4]).compute().tolist()
    [90, 0, 40]
    """
    indices = np.asarray(indices)
    if indices.dtype == bool or not (np.issubdtype(indices.dtype, np.integer) or indices.size == 0):
        raise IndexError(f"take: indices must be integers, not {indices.dtype}")
    axis = validate_axis(axis, x.ndim, x.shape)
    result = _take_flat(x, _positions(indices, axis, x.shape[axis]).ravel(), axis)
    if indices.ndim != 1:
        result = reshape(result, x.shape[:axis] + indices.shape + x.shape[axis + 1:])
    return result


def _take_flat(x: Array, idx: np.ndarray, axis: int) -> Array:
    chunks = x.chunks[axis]
    bounds = np.array(list(itertools.accumulate(chunks, initial=0)))
    blocks = np.searchsorted(bounds, idx, side="right") - 1
    limit = max(max(chunks, default=1), 1)
    pieces = _cut_positions(blocks, limit)
    name = f"take-{tokenize(x, idx, axis)}"
    out_chunks = list(x.chunks)
    out_chunks[axis] = tuple(stop - start for start, stop in pieces) or (0,)
    if not pieces:
        pieces = [(0, 0)]
    other = [range(n) for n in x.numblocks]
    split_name = f"take-split-{name.split('-', 1)[1]}"
    layer: dict = {}
    splits: dict = {}
    for j, (start, stop) in enumerate(pieces):
        sel = idx[start:stop]
        sel_blocks = blocks[start:stop]
        used = np.unique(sel_blocks) if len(sel) else np.array([0])
        takes = [partial(np.take, indices=sel[sel_blocks == b] - bounds[b], axis=axis) for b in used]
        if len(used) > 1:
            # each block gives its positions in a task of its own (so no task holds more than
            # one input block); the merge puts them back in the requested order
            merge = partial(_reorder, order=np.argsort(np.argsort(sel_blocks, kind="stable"), kind="stable"),
                            axis=axis)
        for rest in itertools.product(*(other[:axis] + other[axis + 1:])):
            keys = [(x.name,) + rest[:axis] + (int(b),) + rest[axis:] for b in used]
            out_key = (name,) + rest[:axis] + (j,) + rest[axis:]
            if len(used) == 1:
                layer[out_key] = (takes[0], keys[0])
                continue
            parts = []
            for b, key, task in zip(used, keys, takes):
                split_key = (split_name, j, int(b)) + rest
                splits[split_key] = (task, key)
                parts.append(split_key)
            layer[out_key] = (merge, parts)
    return array_with_intermediates(name, layer, split_name, splits, [x], tuple(out_chunks), x.dtype)


def _cut_positions(blocks: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Cut the positions into output pieces: at most ``limit`` long and, when the positions are
    sorted, one block's run at a time."""
    n = len(blocks)
    if n == 0:
        return []
    if np.all(blocks[1:] >= blocks[:-1]):
        starts = np.flatnonzero(np.diff(blocks)) + 1
        runs = zip(np.concatenate([[0], starts]), np.concatenate([starts, [n]]))
    else:
        runs = [(0, n)]
    out = []
    for lo, hi in runs:
        out.extend((int(s), int(min(s + limit, hi))) for s in range(int(lo), int(hi), limit))
    return out


def _reorder(parts: list, order: np.ndarray, axis: int) -> np.ndarray:
    return np.take(np.concatenate(parts, axis=axis), order, axis=axis)


# --- boolean masks -------------------------------------------------------------------------------

def boolean_mask(x: Array, mask: Any, axis: int = 0) -> Array:
    """The elements of ``x`` where ``mask`` is true, ``mask`` covering axes ``axis`` onwards.

    ``mask`` (a lazy or NumPy boolean array) replaces the ``mask.ndim`` axes it covers by one
    axis. A multi-dimensional mask first collapses those axes of ``x`` and of the mask (a
    reshape, rechunking as needed) so that blocks stay contiguous in C order. With a lazy mask the
    resulting chunk sizes are unknown (``nan``); with a NumPy mask they are counted now.
    """
    known = None if _is_lazy(mask) else np.asarray(mask, dtype=bool)
    k = mask.ndim
    covered = tuple(x.shape[axis:axis + k])
    if not any(isinstance(s, float) and math.isnan(s) for s in covered + tuple(mask.shape)) \
            and tuple(mask.shape) != covered:
        raise IndexError(f"boolean index of shape {tuple(mask.shape)} does not match the indexed array's "
                         f"shape {covered} at axis {axis}")
    lazy = mask if known is None else from_array(known, chunks=x.chunks[axis:axis + k])
    if not chunks_equal(lazy.chunks, x.chunks[axis:axis + k]):
        lazy = rechunk(lazy, x.chunks[axis:axis + k])
    if k != 1:
        flat = math.prod(covered)
        x = reshape(x, x.shape[:axis] + (flat,) + x.shape[axis + k:])
        lazy = reshape(lazy, (flat,))
        if known is not None:
            known = known.ravel()
        if not chunks_equal(lazy.chunks, (x.chunks[axis],)):
            lazy = rechunk(lazy, (x.chunks[axis],))
    if known is not None:
        bounds = list(itertools.accumulate(x.chunks[axis], initial=0))
        counts = tuple(int(known[a:b].sum()) for a, b in zip(bounds[:-1], bounds[1:]))
    else:
        counts = (math.nan,) * len(x.chunks[axis])
    name = f"getitem-mask-{tokenize(x, lazy, axis)}"
    layer = {}
    for index in itertools.product(*(range(n) for n in x.numblocks)):
        layer[(name,) + index] = (partial(_compress, axis=axis), (lazy.name, index[axis]), (x.name,) + index)
    chunks = list(x.chunks)
    chunks[axis] = counts
    return new_array(name, layer, [x, lazy], tuple(chunks), x.dtype)


def _compress(mask: np.ndarray, block: np.ndarray, axis: int) -> np.ndarray:
    if mask.shape[0] != block.shape[axis]:
        raise IndexError(f"boolean index of length {mask.shape[0]} does not match a block of length "
                         f"{block.shape[axis]} along axis {axis}")
    return np.compress(mask, block, axis=axis)


# --- assignment ----------------------------------------------------------------------------------

def setitem(x: Array, key: Any, value: Any) -> Array:
    """A new array equal to ``x`` with ``value`` written where the boolean ``key`` is true.

    ``key`` is a boolean array (lazy or NumPy) of ``x``'s shape and ``value`` a scalar (or a
    0-d array) that fits ``x``'s dtype. ``Array.__setitem__`` uses this and then takes over the
    new graph, so ``x[mask] = 0`` works as in NumPy and Dask.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(6), chunks=4)
    >>> x[x > 3] = -1
    >>> x.compute().tolist()
    [0, 1, 2, 3, -1, -1]
    """
    lazy = _is_lazy(key)
    if not lazy and not (isinstance(key, np.ndarray) and key.dtype == bool):
        raise NotImplementedError(
            f"item assignment supports a boolean mask of the array's shape (x[mask] = value), "
            f"not an index of type {type(key).__name__}")
    if key.dtype != bool:
        raise NotImplementedError(f"item assignment needs a boolean mask, not an array of dtype {key.dtype}")
    if not chunks_equal((key.shape,), (x.shape,)):
        raise IndexError(f"boolean mask of shape {tuple(key.shape)} does not match the array's shape "
                         f"{tuple(x.shape)}")
    if _is_lazy(value) or (np.ndim(value) != 0):
        raise NotImplementedError(f"item assignment supports a scalar value, not a value of shape {np.shape(value)}")
    given, value = value, np.asarray(value)[()]
    try:
        np.empty(1, dtype=x.dtype)[0] = value
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueError(f"cannot assign {given!r} to an array of dtype {x.dtype}: {err}") from None
    mask = key if lazy else from_array(key, chunks=x.chunks)
    if not chunks_equal(mask.chunks, x.chunks):
        mask = rechunk(mask, x.chunks)
    labels = tuple(range(x.ndim))
    return blockwise(_where_set, labels, x, labels, mask, labels, value, None, dtype=x.dtype,
                     name=f"setitem-{tokenize(x, mask, value)}")


def _where_set(block: np.ndarray, mask: np.ndarray, value: Any) -> np.ndarray:
    out = np.array(block, copy=True)
    out[mask] = value
    return out
