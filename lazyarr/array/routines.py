"""Rearranging, joining and multiplying arrays: transpose, moveaxis, swapaxes, rollaxis,
broadcast_to, concatenate, stack, squeeze, expand_dims, ravel, tensordot, dot, matmul, outer.

All of these work block by block. Joins rechunk the other inputs to the first input's chunks
along the axes they share, then use the input blocks as they are. Products contract block by
block: each output block is the sum, over the blocks of the contracted axes, of the products
of one block of each input, added up as a tree (``array.split-every`` partial products per
task) so no task holds more than a few output-sized blocks.
"""
from __future__ import annotations

import functools
import itertools
import numbers
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import config
from ..tokenize import tokenize
from .chunks import validate_axis
from .chunks import normalize_chunks
from .core import Array, asarray, blockwise, new_array
from .creation import ShapeTable
from .layers import Blockwise, LayeredGraph, quote
from .rechunk import array_with_intermediates, chunks_equal, rechunk
from .reshape import flatten, ravel

__all__ = [
    "transpose",
    "moveaxis",
    "swapaxes",
    "rollaxis",
    "broadcast_to",
    "squeeze",
    "expand_dims",
    "ravel",
    "flatten",
    "concatenate",
    "stack",
    "tensordot",
    "dot",
    "matmul",
    "outer",
]


def _asarray(x: Any) -> Array:
    return x if isinstance(x, Array) else asarray(x)


def _axis(axis: Any, ndim: int, shape: Sequence | None = None) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer, not {type(axis).__name__} {axis!r}")
    return validate_axis(int(axis), ndim, tuple(shape) if shape is not None else None)



def _blocks(x: Any):
    return itertools.product(*(range(n) for n in x.numblocks))


# --- rearranging ---------------------------------------------------------------------------------

def transpose(x: Any, axes: Sequence[int] | None = None) -> Array:
    """Permute the axes of ``x`` (reverse them by default), like ``np.transpose``.

    >>> import lazyarr.array as la
    >>> transpose(la.ones((2, 3, 4), chunks=2), (1, 0, 2)).shape
    (3, 2, 4)
    """
    x = _asarray(x)
    if axes is None:
        axes = tuple(range(x.ndim))[::-1]
    axes = tuple(axes)
    if len(axes) != x.ndim:
        raise ValueError(f"axes {axes} don't match an array of shape {tuple(x.shape)} ({x.ndim} dimensions)")
    axes = tuple(_axis(a, x.ndim, x.shape) for a in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"repeated axis in transpose: {axes}")
    if axes == tuple(range(x.ndim)):
        return x
    return blockwise(functools.partial(np.transpose, axes=axes), axes, x, tuple(range(x.ndim)), dtype=x.dtype,
                     name=f"transpose-{tokenize(x, axes)}")


def moveaxis(x: Any, source: int | Sequence[int], destination: int | Sequence[int]) -> Array:
    """Move axes of ``x`` to new positions, the others keeping their order (``np.moveaxis``).

    >>> import lazyarr.array as la
    >>> moveaxis(la.ones((2, 3, 4), chunks=2), 0, -1).shape
    (3, 4, 2)
    """
    x = _asarray(x)
    source = [_axis(a, x.ndim, x.shape) for a in _as_tuple(source)]
    destination = [_axis(a, x.ndim, x.shape) for a in _as_tuple(destination)]
    if len(source) != len(destination):
        raise ValueError(f"moveaxis: source {source} and destination {destination} must have the same number "
                         f"of elements")
    order = [a for a in range(x.ndim) if a not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return transpose(x, order)


def swapaxes(x: Any, axis1: int, axis2: int) -> Array:
    """Interchange two axes of ``x`` (``np.swapaxes``)."""
    x = _asarray(x)
    order = list(range(x.ndim))
    a, b = _axis(axis1, x.ndim, x.shape), _axis(axis2, x.ndim, x.shape)
    order[a], order[b] = order[b], order[a]
    return transpose(x, order)


def rollaxis(a: Any, axis: int, start: int = 0) -> Array:
    """Move ``axis`` so that it comes before position ``start`` (``np.rollaxis``).

    >>> import lazyarr.array as la
    >>> rollaxis(la.ones((2, 3, 4), chunks=2), 2).shape
    (4, 2, 3)
    """
    a = _asarray(a)
    n = a.ndim
    axis = _axis(axis, n, a.shape)
    if isinstance(start, (bool, np.bool_)) or not isinstance(start, numbers.Integral):
        raise TypeError(f"rollaxis: start must be an integer, not {start!r}")
    given = int(start)
    start = given + n if given < 0 else given
    if not 0 <= start <= n:
        raise ValueError(f"rollaxis: start must satisfy {-n} <= start < {n + 1}, got {given}")
    if axis < start:
        start -= 1  # the axis leaves its place before ``start``
    order = [d for d in range(n) if d != axis]
    order.insert(start, axis)
    return transpose(a, order)


def _broadcast_block(block: np.ndarray, shape: tuple) -> np.ndarray:
    return np.broadcast_to(block, shape)


def broadcast_to(x: Any, shape: Sequence[int], chunks: Any = None) -> Array:
    """``x`` broadcast to ``shape`` with NumPy's rules (``np.broadcast_to``); blocks are read-only views.

    New leading axes and axes stretched from length one are one chunk unless ``chunks`` says
    otherwise; the other axes keep ``x``'s chunks (``chunks`` may not change them).

    >>> import numpy as np, lazyarr.array as la
    >>> y = broadcast_to(la.from_array(np.arange(3), chunks=2), (2, 3))
    >>> y.chunks
    ((2,), (2, 1))
    >>> y.compute().tolist()
    [[0, 1, 2], [0, 1, 2]]
    """
    x = _asarray(x)
    shape = tuple(int(n) for n in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    lead = len(shape) - x.ndim
    if lead < 0 or any(old not in (1, new) for old, new in zip(x.shape, shape[lead:])) or min(shape, default=0) < 0:
        raise ValueError(f"cannot broadcast an array of shape {tuple(x.shape)} to shape {shape}")
    kept = [x.chunks[d] if x.shape[d] == shape[lead + d] else None for d in range(x.ndim)]
    default = tuple((n,) for n in shape[:lead]) + tuple(c if c is not None else (shape[lead + d],)
                                                         for d, c in enumerate(kept))
    if chunks is None:
        out_chunks = default
    else:
        out_chunks = normalize_chunks(chunks, shape, dtype=x.dtype, previous_chunks=default)
        for d, c in enumerate(kept):
            if c is not None and not chunks_equal((out_chunks[lead + d],), (c,)) and len(c) > 1:
                raise ValueError(f"broadcast_to cannot change the chunks {c} of axis {lead + d}, which is not "
                                 f"broadcast (asked for {out_chunks[lead + d]}); rechunk the input instead")
    if shape == tuple(x.shape) and chunks_equal(out_chunks, x.chunks):
        return x
    name = f"broadcast_to-{tokenize(x, shape, out_chunks)}"
    out_ind = tuple(range(len(shape)))
    numblocks = tuple(len(c) for c in out_chunks)
    in_blocks = tuple(1 if kept[d] is None else len(kept[d]) for d in range(x.ndim))
    args = [("key", x.name, out_ind[lead:], in_blocks), ("index", ShapeTable(out_chunks), out_ind)]
    layer = Blockwise(name, out_ind, numblocks, _broadcast_block, args)
    graph = LayeredGraph.from_collections(name, layer, [x])
    return Array(graph, name, out_chunks, x.dtype)


def _as_tuple(axis: Any) -> tuple:
    return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)


def squeeze(x: Any, axis: int | Sequence[int] | None = None) -> Array:
    """Remove axes of length one (all of them, or those named by ``axis``).

    >>> import lazyarr.array as la
    >>> squeeze(la.ones((1, 3, 1), chunks=2)).shape
    (3,)
    >>> squeeze(la.ones((2, 3), chunks=2), 0)
    Traceback (most recent call last):
    ...
    ValueError: cannot squeeze axis 0 of an array of shape (2, 3): its length is 2, not 1
    """
    x = _asarray(x)
    if axis is None:
        axes = [a for a, s in enumerate(x.shape) if s == 1]
    else:
        axes = sorted({_axis(a, x.ndim, x.shape) for a in _as_tuple(axis)})
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of an array of shape {tuple(x.shape)}: its length is "
                                 f"{x.shape[a]}, not 1")
    if not axes:
        return x
    name = f"squeeze-{tokenize(x, axes)}"
    index_in_block = quote(tuple(0 if a in axes else slice(None) for a in range(x.ndim)))
    layer = {(name,) + tuple(i for a, i in enumerate(index) if a not in axes):
             (operator.getitem, (x.name,) + index, index_in_block) for index in _blocks(x)}
    chunks = tuple(c for a, c in enumerate(x.chunks) if a not in axes)
    return new_array(name, layer, [x], chunks, x.dtype)


def expand_dims(x: Any, axis: int | Sequence[int]) -> Array:
    """Insert axes of length one at the positions ``axis`` of the result (``np.expand_dims``).

    >>> import lazyarr.array as la
    >>> expand_dims(la.ones((3, 4), chunks=2), (0, -1)).chunks
    ((1,), (2, 1), (2, 2), (1,))
    """
    x = _asarray(x)
    ndim = x.ndim + len(_as_tuple(axis))
    axes = [_axis(a, ndim) for a in _as_tuple(axis)]
    if len(set(axes)) != len(axes):
        raise ValueError(f"repeated axis in expand_dims: {_as_tuple(axis)}")
    name = f"expand_dims-{tokenize(x, axes)}"
    in_block = quote(tuple(None if a in axes else slice(None) for a in range(ndim)))
    layer = {}
    for index in _blocks(x):
        it = iter(index)
        out_index = tuple(0 if a in axes else next(it) for a in range(ndim))
        layer[(name,) + out_index] = (operator.getitem, (x.name,) + index, in_block)
    it = iter(x.chunks)
    chunks = tuple((1,) if a in axes else next(it) for a in range(ndim))
    return new_array(name, layer, [x], chunks, x.dtype)


# --- joining -------------------------------------------------------------------------------------

def _aligned(arrays: list, skip: int | None, dtype: np.dtype) -> list:
    """``arrays`` cast to ``dtype``, with chunks matching the first array's along every axis but
    ``skip``."""
    first = arrays[0]
    out = []
    for arr in arrays:
        target = {a: first.chunks[a] for a in range(first.ndim) if a != skip}
        if not all(chunks_equal((arr.chunks[a],), (c,)) for a, c in target.items()):
            arr = rechunk(arr, target)
        out.append(arr.astype(dtype))
    return out


def concatenate(seq: Sequence[Any], axis: int = 0) -> Array:
    """Join arrays along an existing axis (``np.concatenate``).

    Inputs are cast to the common dtype and rechunked to the first array's chunks along the
    other axes; the result's chunks along ``axis`` are the inputs' chunks one after another.

    >>> import lazyarr.array as la
    >>> concatenate([la.ones((2, 3), chunks=2), la.zeros((1, 3), chunks=2)]).chunks
    ((2, 1), (2, 1))
    """
    arrays = [_asarray(a) for a in seq]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    ndim = arrays[0].ndim
    if ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
    if any(a.ndim != ndim for a in arrays):
        raise ValueError(f"all the input arrays must have the same number of dimensions; got shapes {shapes}")
    axis = _axis(axis, ndim)
    for d in range(ndim):
        if d != axis and len({a.shape[d] for a in arrays}) > 1:
            raise ValueError(f"all the input array dimensions except for the concatenation axis {axis} must "
                             f"match exactly, but dimension {d} differs among shapes {shapes}")
    dtype = np.result_type(*[a.dtype for a in arrays])
    arrays = _aligned(arrays, axis, dtype)
    if len(arrays) == 1:
        return arrays[0]
    name = f"concatenate-{tokenize(arrays, axis)}"
    layer = {}
    offset = 0
    for arr in arrays:
        for index in _blocks(arr):
            out = index[:axis] + (index[axis] + offset,) + index[axis + 1:]
            layer[(name,) + out] = (arr.name,) + index
        offset += arr.numblocks[axis]
    chunks = list(arrays[0].chunks)
    chunks[axis] = tuple(c for a in arrays for c in a.chunks[axis])
    return new_array(name, layer, arrays, tuple(chunks), dtype)


def stack(seq: Sequence[Any], axis: int = 0) -> Array:
    """Join arrays of the same shape along a new axis (``np.stack``).

    >>> import lazyarr.array as la
    >>> stack([la.ones((2, 3), chunks=2)] * 4, axis=1).chunks
    ((2,), (1, 1, 1, 1), (2, 1))
    """
    arrays = [_asarray(a) for a in seq]
    if not arrays:
        raise ValueError("need at least one array to stack")
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"all input arrays must have the same shape; got shapes "
                         f"{', '.join(str(tuple(a.shape)) for a in arrays)}")
    ndim = arrays[0].ndim + 1
    axis = _axis(axis, ndim)
    dtype = np.result_type(*[a.dtype for a in arrays])
    arrays = _aligned(arrays, None, dtype)
    name = f"stack-{tokenize(arrays, axis)}"
    new_axis = quote(tuple(None if a == axis else slice(None) for a in range(ndim)))
    layer = {}
    for position, arr in enumerate(arrays):
        for index in _blocks(arr):
            out = index[:axis] + (position,) + index[axis:]
            layer[(name,) + out] = (operator.getitem, (arr.name,) + index, new_axis)
    chunks = list(arrays[0].chunks)
    chunks.insert(axis, (1,) * len(arrays))
    return new_array(name, layer, arrays, tuple(chunks), dtype)


# --- products ------------------------------------------------------------------------------------

def _sum_all(parts: list) -> Any:
    # ``+`` keeps the dtype of the partial products (bool stays bool, as in np.dot)
    return functools.reduce(operator.add, parts)


def _tree_sum(layer: dict, inner: dict, name: str, out_index: tuple, partials: list, split_every: int) -> None:
    """Add up the ``partials`` (tasks) into ``layer[(name, *out_index)]``, ``split_every`` at a
    time; the products and partial sums go into ``inner`` under keys ``(name + '-partial', ...)``."""
    if len(partials) == 1:
        layer[(name,) + out_index] = partials[0]
        return
    inner_name = f"{name}-partial"
    keys = []
    for k, task in enumerate(partials):
        key = (inner_name, 0) + out_index + (k,)
        inner[key] = task
        keys.append(key)
    level = 1
    while len(keys) > split_every:
        grouped = []
        for g in range(0, len(keys), split_every):
            key = (inner_name, level) + out_index + (g // split_every,)
            inner[key] = (_sum_all, keys[g:g + split_every])
            grouped.append(key)
        keys = grouped
        level += 1
    layer[(name,) + out_index] = (_sum_all, keys)


def _split_every() -> int:
    value = int(config.get("array.split-every", 8))
    if value < 2:
        raise ValueError(f"array.split-every must be at least 2, not {value}")
    return value


def _tensordot_axes(axes: Any, a: Any, b: Any) -> tuple[list[int], list[int]]:
    if isinstance(axes, numbers.Integral):
        n = int(axes)
        if n < 0 or n > a.ndim or n > b.ndim:
            raise ValueError(f"tensordot: cannot contract {n} axes of arrays of shapes {tuple(a.shape)} and "
                             f"{tuple(b.shape)}")
        return list(range(a.ndim - n, a.ndim)), list(range(n))
    try:
        axes_a, axes_b = axes
    except (TypeError, ValueError):
        raise ValueError(f"tensordot: axes must be an int or a pair of sequences of axes, not {axes!r}") from None
    axes_a = [_axis(i, a.ndim, a.shape) for i in _as_tuple(axes_a)]
    axes_b = [_axis(i, b.ndim, b.shape) for i in _as_tuple(axes_b)]
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot: {len(axes_a)} axes {axes_a} of a but {len(axes_b)} axes {axes_b} of b")
    if len(set(axes_a)) != len(axes_a) or len(set(axes_b)) != len(axes_b):
        raise ValueError(f"tensordot: repeated axis in axes {axes!r}")
    return axes_a, axes_b


def tensordot(a: Any, b: Any, axes: Any = 2) -> Array:
    """Sum products over the given axes of ``a`` and ``b`` (``np.tensordot``).

    ``axes`` is an int ``n`` (the last ``n`` axes of ``a`` with the first ``n`` of ``b``) or a
    pair of axis sequences. ``b`` is rechunked along the contracted axes to match ``a``.

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.arange(6.).reshape(2, 3), chunks=2)
    >>> tensordot(a, a, axes=([1], [1])).compute().tolist()
    [[5.0, 14.0], [14.0, 50.0]]
    """
    a, b = _asarray(a), _asarray(b)
    axes_a, axes_b = _tensordot_axes(axes, a, b)
    for i, j in zip(axes_a, axes_b):
        if a.shape[i] != b.shape[j]:
            raise ValueError(f"shape mismatch for sum: shapes {tuple(a.shape)} and {tuple(b.shape)}: axis {i} "
                             f"of a has length {a.shape[i]} but axis {j} of b has length {b.shape[j]}")
    wanted = {j: a.chunks[i] for i, j in zip(axes_a, axes_b)}
    if not all(chunks_equal((b.chunks[j],), (c,)) for j, c in wanted.items()):
        b = rechunk(b, wanted)
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [j for j in range(b.ndim) if j not in axes_b]
    dtype = np.result_type(a.dtype, b.dtype)
    name = f"tensordot-{tokenize(a, b, axes_a, axes_b)}"
    split_every = _split_every()
    contracted = [range(a.numblocks[i]) for i in axes_a]
    product = functools.partial(np.tensordot, axes=(axes_a, axes_b))
    layer: dict = {}
    inner: dict = {}
    for fa in itertools.product(*(range(a.numblocks[i]) for i in free_a)):
        for fb in itertools.product(*(range(b.numblocks[j]) for j in free_b)):
            partials = []
            for ks in itertools.product(*contracted):
                ia = dict(zip(free_a, fa)) | dict(zip(axes_a, ks))
                ib = dict(zip(free_b, fb)) | dict(zip(axes_b, ks))
                partials.append((product, (a.name,) + tuple(ia[d] for d in range(a.ndim)),
                                 (b.name,) + tuple(ib[d] for d in range(b.ndim))))
            _tree_sum(layer, inner, name, fa + fb, partials, split_every)
    chunks = tuple(a.chunks[i] for i in free_a) + tuple(b.chunks[j] for j in free_b)
    return array_with_intermediates(name, layer, f"{name}-partial", inner, [a, b], chunks, dtype)


def dot(a: Any, b: Any) -> Array:
    """Dot product with ``np.dot``'s rules: scalars multiply, 1-d is an inner product, otherwise
    the last axis of ``a`` meets the second-to-last axis of ``b`` (the only one if ``b`` is 1-d).

    >>> import numpy as np, lazyarr.array as la
    >>> dot(la.ones((2, 3), chunks=2), la.ones((4,), chunks=2))
    Traceback (most recent call last):
    ...
    ValueError: shapes (2, 3) and (4,) not aligned: 3 (dim 1) != 4 (dim 0)
    """
    a, b = _asarray(a), _asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        return tensordot(a, b, axes=0)
    jb = 0 if b.ndim == 1 else b.ndim - 2
    if a.shape[-1] != b.shape[jb]:
        raise ValueError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} not aligned: {a.shape[-1]} "
                         f"(dim {a.ndim - 1}) != {b.shape[jb]} (dim {jb})")
    return tensordot(a, b, axes=([a.ndim - 1], [jb]))


def matmul(a: Any, b: Any) -> Array:
    """Matrix product with ``np.matmul``'s rules (``a @ b``): the last two axes are matrices,
    leading axes broadcast, a 1-d operand is a vector.

    >>> import lazyarr.array as la
    >>> matmul(la.ones((5, 2, 3), chunks=2), la.ones((3, 4), chunks=2)).shape
    (5, 2, 4)
    """
    a, b = _asarray(a), _asarray(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one dimension, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}; use * to multiply by a scalar")
    shapes = f"{tuple(a.shape)} and {tuple(b.shape)}"
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {shapes} do not match: {a.shape[-1]} (last dim of a) != "
                         f"{b.shape[-2 if b.ndim > 1 else 0]} ({'second-to-last' if b.ndim > 1 else 'only'} dim of b)")
    vector_a, vector_b = a.ndim == 1, b.ndim == 1
    if vector_a:
        a = expand_dims(a, 0)
    if vector_b:
        b = expand_dims(b, -1)
    try:
        batch = np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    except ValueError:
        raise ValueError(f"matmul: the leading (batch) dimensions of shapes {shapes} do not broadcast") from None
    nb = len(batch)
    if a.ndim - 2 < nb:
        a = expand_dims(a, tuple(range(nb - (a.ndim - 2))))
    if b.ndim - 2 < nb:
        b = expand_dims(b, tuple(range(nb - (b.ndim - 2))))
    # line up b with a along the contracted axis and the batch axes both have in full
    wanted = {nb: a.chunks[-1]}
    wanted |= {d: a.chunks[d] for d in range(nb) if a.shape[d] == b.shape[d]}
    if not all(chunks_equal((b.chunks[d],), (c,)) for d, c in wanted.items()):
        b = rechunk(b, wanted)
    batch_chunks = [a.chunks[d] if a.shape[d] == batch[d] else b.chunks[d] for d in range(nb)]
    dtype = np.result_type(a.dtype, b.dtype)
    name = f"matmul-{tokenize(a, b)}"
    split_every = _split_every()
    layer: dict = {}
    inner: dict = {}
    for bi in itertools.product(*(range(len(c)) for c in batch_chunks)):
        ia = tuple(i if a.shape[d] == batch[d] else 0 for d, i in enumerate(bi))
        ib = tuple(i if b.shape[d] == batch[d] else 0 for d, i in enumerate(bi))
        for i in range(a.numblocks[-2]):
            for j in range(b.numblocks[-1]):
                partials = [(np.matmul, (a.name,) + ia + (i, k), (b.name,) + ib + (k, j))
                            for k in range(a.numblocks[-1])]
                _tree_sum(layer, inner, name, bi + (i, j), partials, split_every)
    chunks = tuple(batch_chunks) + (a.chunks[-2], b.chunks[-1])
    result = array_with_intermediates(name, layer, f"{name}-partial", inner, [a, b], chunks, dtype)
    drop = ([result.ndim - 2] if vector_a else []) + ([result.ndim - 1] if vector_b else [])
    return squeeze(result, drop) if drop else result


def outer(a: Any, b: Any) -> Array:
    """The outer product of two arrays, flattened first (``np.outer``).

    >>> import numpy as np, lazyarr.array as la
    >>> outer(la.from_array(np.arange(3), chunks=2), np.arange(2)).compute().tolist()
    [[0, 0], [0, 1], [0, 2]]
    """
    return tensordot(ravel(a), ravel(b), axes=0)
