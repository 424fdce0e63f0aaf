"""Creating arrays: constant fills, ranges, identity, from a function of the index, from delayed values.

Every block is produced by its own small task, so creating a 50,000-block array costs no memory
and, because creation layers are :class:`~lazyarr.array.layers.Blockwise`, the block is usually
generated inside the task that consumes it (see :mod:`lazyarr.array.optimization`).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from functools import partial
from itertools import product
from typing import Any

import numpy as np

from ..base import is_lazyarr_collection
from ..tokenize import tokenize
from .chunks import chunk_offsets, normalize_chunks
from .core import Array
from .layers import Blockwise, LayeredGraph, quote

__all__ = [
    "ones",
    "zeros",
    "empty",
    "full",
    "ones_like",
    "zeros_like",
    "empty_like",
    "full_like",
    "arange",
    "linspace",
    "eye",
    "fromfunction",
    "from_delayed",
]


def _normalize_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    for n in shape:
        if not isinstance(n, numbers.Integral):
            raise TypeError(f"shape {shape} must hold integers, got {n!r}")
        if n < 0:
            raise ValueError(f"negative dimensions are not allowed: shape {shape}")
    return tuple(int(n) for n in shape)


class ShapeTable:
    """``table[idx]`` is the shape of block ``idx``."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: tuple):
        self.chunks = chunks

    def __getitem__(self, idx: tuple) -> tuple:
        return tuple(c[i] for c, i in zip(self.chunks, idx))

    def in_order(self):
        """Every block's value, blocks in C order."""
        return product(*self.chunks)


class OffsetShapeTable:
    """``table[idx]`` is ``(offsets, shape)`` of block ``idx``."""

    __slots__ = ("chunks", "offsets")

    def __init__(self, chunks: tuple):
        self.chunks = chunks
        self.offsets = chunk_offsets(chunks)

    def __getitem__(self, idx: tuple) -> tuple:
        return (tuple(o[i] for o, i in zip(self.offsets, idx)), tuple(c[i] for c, i in zip(self.chunks, idx)))

    def in_order(self):
        """Every block's value, blocks in C order."""
        return zip(product(*self.offsets), product(*self.chunks))


def _generated(name: str, chunks: tuple, func: Callable, table: Any, dtype: Any, extra: Sequence = ()) -> Array:
    """An array whose block ``idx`` is ``func(table[idx], *extra)``."""
    labels = tuple(range(len(chunks)))
    args = [("index", table, labels)] + [("lit", e) for e in extra]
    layer = Blockwise(name, labels, tuple(len(c) for c in chunks), func, args)
    return Array(LayeredGraph({name: layer}, {name: set()}), name, chunks, dtype)


def _fill_block(shape: tuple, fill_value: Any, dtype: np.dtype) -> np.ndarray:
    return np.full(shape, fill_value, dtype=dtype)


def _empty_block(shape: tuple, dtype: np.dtype) -> np.ndarray:
    return np.empty(shape, dtype=dtype)


def _make_filled(kind: str, shape: Any, fill_value: Any, dtype: Any, chunks: Any, name: str | None) -> Array:
    shape = _normalize_shape(shape)
    dtype = np.dtype(dtype if dtype is not None else np.result_type(fill_value) if kind == "full" else float)
    chunks = normalize_chunks(chunks, shape, dtype=dtype)
    if name is None:
        name = f"{kind}-{tokenize(shape, repr(chunks), dtype, fill_value)}"
    if kind == "empty":
        return _generated(name, chunks, partial(_empty_block, dtype=dtype), ShapeTable(chunks), dtype)
    return _generated(name, chunks, partial(_fill_block, fill_value=fill_value, dtype=dtype), ShapeTable(chunks), dtype)


def ones(shape: Any, dtype: Any = float, chunks: Any = "auto", name: str | None = None, **kwargs: Any) -> Array:
    """An array of ones.

    >>> ones((2, 3), chunks=2).compute().tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    return _make_filled("ones", shape, 1, dtype, chunks, name)


def zeros(shape: Any, dtype: Any = float, chunks: Any = "auto", name: str | None = None, **kwargs: Any) -> Array:
    """An array of zeros.

    >>> zeros(3, dtype=int, chunks=2).compute().tolist()
    [0, 0, 0]
    """
    return _make_filled("zeros", shape, 0, dtype, chunks, name)


def empty(shape: Any, dtype: Any = float, chunks: Any = "auto", name: str | None = None, **kwargs: Any) -> Array:
    """An array whose values are whatever the fresh blocks hold (fastest to create)."""
    return _make_filled("empty", shape, None, dtype, chunks, name)


def full(shape: Any, fill_value: Any, dtype: Any = None, chunks: Any = "auto", name: str | None = None,
         **kwargs: Any) -> Array:
    """An array filled with ``fill_value`` (dtype inferred from it unless given).

    >>> full(3, 7, chunks=2).compute().tolist()
    [7, 7, 7]
    """
    if np.ndim(fill_value) != 0:
        raise ValueError(f"fill_value must be a scalar, got an array of shape {np.shape(fill_value)}")
    return _make_filled("full", shape, fill_value, dtype, chunks, name)


def _like(a: Any, dtype: Any, chunks: Any, shape: Any) -> tuple:
    if not hasattr(a, "shape"):
        a = np.asarray(a)
    dtype = a.dtype if dtype is None else dtype
    if shape is None:
        shape = a.shape
        if chunks is None:
            chunks = a.chunks if isinstance(a, Array) else "auto"
    elif chunks is None:
        chunks = "auto"
    return shape, dtype, chunks


def ones_like(a: Any, dtype: Any = None, chunks: Any = None, shape: Any = None, **kwargs: Any) -> Array:
    """Ones with the shape, dtype and chunks of ``a`` (each may be overridden)."""
    shape, dtype, chunks = _like(a, dtype, chunks, shape)
    return ones(shape, dtype=dtype, chunks=chunks)


def zeros_like(a: Any, dtype: Any = None, chunks: Any = None, shape: Any = None, **kwargs: Any) -> Array:
    """Zeros with the shape, dtype and chunks of ``a``."""
    shape, dtype, chunks = _like(a, dtype, chunks, shape)
    return zeros(shape, dtype=dtype, chunks=chunks)


def empty_like(a: Any, dtype: Any = None, chunks: Any = None, shape: Any = None, **kwargs: Any) -> Array:
    """An uninitialised array with the shape, dtype and chunks of ``a``."""
    shape, dtype, chunks = _like(a, dtype, chunks, shape)
    return empty(shape, dtype=dtype, chunks=chunks)


def full_like(a: Any, fill_value: Any, dtype: Any = None, chunks: Any = None, shape: Any = None,
              **kwargs: Any) -> Array:
    """``fill_value`` everywhere, with the shape, dtype and chunks of ``a``."""
    shape, dtype, chunks = _like(a, dtype, chunks, shape)
    return full(shape, fill_value, dtype=dtype, chunks=chunks)


# --------------------------------------------------------------------------------------------
# ranges
# --------------------------------------------------------------------------------------------

def _arange_block(spec: tuple, start: Any, step: Any, delta: Any, dtype: np.dtype) -> np.ndarray:
    (offset,), (n,) = spec
    if dtype.kind in "iu":
        return np.arange(start + offset * step, start + (offset + n) * step, step, dtype=dtype)[:n]
    i = np.arange(offset, offset + n, dtype=np.float64 if dtype.kind == "f" else dtype)
    return (start + i * delta).astype(dtype, copy=False)


def arange(*args: Any, chunks: Any = "auto", dtype: Any = None, name: str | None = None, **kwargs: Any) -> Array:
    """Evenly spaced values ``[start, stop)`` by ``step``, like ``numpy.arange`` (same values).

    >>> arange(5, chunks=2).compute().tolist()
    [0, 1, 2, 3, 4]
    >>> arange(1, 2, 0.25, chunks=3).compute().tolist()
    [1.0, 1.25, 1.5, 1.75]
    """
    if "start" in kwargs or "stop" in kwargs or "step" in kwargs:
        start = kwargs.pop("start", 0)
        stop = kwargs.pop("stop")
        step = kwargs.pop("step", 1)
        args = (start, stop, step)
    if kwargs:
        raise TypeError(f"arange got unexpected keyword arguments {sorted(kwargs)}")
    if len(args) == 1:
        start, stop, step = 0, args[0], 1
    elif len(args) == 2:
        (start, stop), step = args, 1
    elif len(args) == 3:
        start, stop, step = args
    else:
        raise TypeError(f"arange takes 1 to 3 positional arguments (start, stop, step), got {len(args)}")
    if step == 0:
        raise ValueError("arange: step must not be zero")
    n = max(int(math.ceil((stop - start) / step)), 0)
    if dtype is None:
        dtype = np.arange(start, start + step, step).dtype
    dtype = np.dtype(dtype)
    chunks = normalize_chunks(chunks, (n,), dtype=dtype)
    delta = (start + step) - start
    if name is None:
        name = f"arange-{tokenize(start, stop, step, repr(chunks), dtype)}"
    func = partial(_arange_block, start=start, step=step, delta=delta, dtype=dtype)
    return _generated(name, chunks, func, OffsetShapeTable(chunks), dtype)


def _linspace_block(spec: tuple, start: float, stop: float, num: int, div: float, step: float,
                    endpoint: bool, dtype: np.dtype) -> np.ndarray:
    (offset,), (n,) = spec
    delta = stop - start
    y = np.arange(offset, offset + n, dtype=np.result_type(start, stop, float))
    if div > 0:
        if step == 0:
            y = y / div * delta
        else:
            y = y * step
    else:
        y = y * delta
    y += start
    if endpoint and num > 1 and offset + n == num and n:
        y[-1] = stop
    if dtype.kind in "iu":
        y = np.floor(y)
    return y.astype(dtype, copy=False)


def linspace(start: float, stop: float, num: int = 50, endpoint: bool = True, retstep: bool = False,
             chunks: Any = "auto", dtype: Any = None, name: str | None = None) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop`` (inclusive if ``endpoint``).

    >>> linspace(0, 1, 5, chunks=2).compute().tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    num = int(num)
    if num < 0:
        raise ValueError(f"linspace: number of samples {num} must be non-negative")
    div = (num - 1) if endpoint else num
    delta = stop - start
    step = delta / div if div > 0 else math.nan
    dtype = np.dtype(dtype if dtype is not None else np.result_type(start, stop, float))
    chunks = normalize_chunks(chunks, (num,), dtype=dtype)
    if name is None:
        name = f"linspace-{tokenize(start, stop, num, endpoint, repr(chunks), dtype)}"
    func = partial(_linspace_block, start=start, stop=stop, num=num, div=div, step=step if div > 0 else 0.0,
                   endpoint=endpoint, dtype=dtype)
    out = _generated(name, chunks, func, OffsetShapeTable(chunks), dtype)
    return (out, step) if retstep else out


def _eye_block(spec: tuple, k: int, dtype: np.dtype) -> np.ndarray:
    (r0, c0), (nr, nc) = spec
    return np.eye(nr, nc, k=k + r0 - c0, dtype=dtype)


def eye(N: int, chunks: Any = "auto", M: int | None = None, k: int = 0, dtype: Any = float,
        name: str | None = None) -> Array:
    """A 2-d array with ones on the ``k``-th diagonal and zeros elsewhere.

    >>> eye(3, chunks=2, k=1).compute().tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    M = N if M is None else M
    shape = _normalize_shape((N, M))
    dtype = np.dtype(dtype)
    chunks = normalize_chunks(chunks, shape, dtype=dtype)
    if name is None:
        name = f"eye-{tokenize(N, M, k, repr(chunks), dtype)}"
    return _generated(name, chunks, partial(_eye_block, k=int(k), dtype=dtype), OffsetShapeTable(chunks), dtype)


def _fromfunction_block(spec: tuple, func: Callable, dtype: np.dtype, kwargs: dict) -> Any:
    offsets, shape = spec
    grids = np.indices(shape, dtype=dtype)
    grids = [g + o for g, o in zip(grids, offsets)]
    return func(*grids, **kwargs)


def fromfunction(function: Callable, shape: Any, dtype: Any = float, chunks: Any = "auto",
                 name: str | None = None, **kwargs: Any) -> Array:
    """Array whose element at ``(i, j, ...)`` is ``function(i, j, ...)`` (called on index grids per block).

    >>> fromfunction(lambda i, j: i * 10 + j, (2, 3), dtype=int, chunks=1).compute().tolist()
    [[0, 1, 2], [10, 11, 12]]
    """
    shape = _normalize_shape(shape)
    dtype = np.dtype(dtype)
    chunks = normalize_chunks(chunks, shape, dtype=dtype)
    try:
        meta = function(*[np.zeros((0,) * len(shape), dtype=dtype) for _ in shape], **kwargs)
        out_dtype = np.asarray(meta).dtype
    except Exception:
        out_dtype = dtype
    if name is None:
        name = f"fromfunction-{tokenize(function, shape, dtype, repr(chunks), kwargs)}"
    func = partial(_fromfunction_block, func=function, dtype=dtype, kwargs=kwargs)
    return _generated(name, chunks, func, OffsetShapeTable(chunks), out_dtype)


def _check_block(block: Any, shape: tuple, dtype: np.dtype, name: str) -> np.ndarray:
    block = np.asarray(block)
    if block.shape != shape:
        raise ValueError(f"from_delayed: the value computed for {name} has shape {block.shape}, not the declared {shape}")
    return block


def from_delayed(value: Any, shape: Any, dtype: Any = None, meta: Any = None, name: str | None = None) -> Array:
    """A single-block Array whose block is the result of a ``Delayed`` (of known ``shape`` and ``dtype``).

    The computed value is checked against ``shape`` when it arrives.
    """
    if not is_lazyarr_collection(value) or not hasattr(value, "key"):
        raise TypeError(f"from_delayed needs a Delayed value, got {type(value).__name__}")
    shape = _normalize_shape(shape)
    if dtype is None:
        if meta is None:
            raise ValueError("from_delayed needs dtype= (or meta=)")
        dtype = meta.dtype
    dtype = np.dtype(dtype)
    if name is None:
        name = f"from-value-{tokenize(value, shape, dtype)}"
    chunks = tuple((n,) for n in shape)
    key = (name,) + (0,) * len(shape)
    layer = {key: (_check_block, value.key, quote(shape), dtype, quote(name))}
    graph = LayeredGraph.from_collections(name, layer, [value])
    return Array(graph, name, chunks, dtype, meta)

