"""The chunked Array and the two primitives every array operation is built from.

An :class:`Array` is a grid of NumPy blocks described by a task graph: block ``(i, j)`` of the
array named ``name`` is the value of the key ``(name, i, j)``. ``chunks`` gives the block lengths
along every axis, e.g. ``((2, 2, 1), (3,))``.

* :func:`blockwise` is the general "apply a function block by block" operation with an index
  notation (``out[ij] = f(a[ij], b[j])``, contractions, new axes);
* :func:`map_blocks` is its friendly form;
* :func:`elemwise` is broadcasting elementwise application (all operators and ufuncs);
* :func:`from_array` wraps any sliceable array-like (NumPy arrays, memory maps, h5py, zarr...).

**For code adding new operations:** build the new layer (a dict of the new keys, or a
:class:`~lazyarr.array.layers.Blockwise` / :class:`~lazyarr.array.layers.BlockLayer`), then::

    graph = LayeredGraph.from_collections(name, layer, dependencies=[x, y])
    return Array(graph, name, chunks, dtype)

which costs O(1) in the size of the inputs' graphs (a plain dict holding the inputs' graphs works
too, but copies them and hides their layers from blockwise fusion).
"""
from __future__ import annotations

import inspect
import math
import numbers
import operator
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from itertools import product
from typing import Any

import numpy as np

from .. import config
from ..base import LazyarrMethodsMixin, is_lazyarr_collection
from ..tokenize import tokenize
from ..utils import format_bytes, funcname
from .chunks import (
    chunk_offsets,
    common_refinement,
    normalize_chunks,
    validate_axis,
)
from .layers import Blockwise, LayeredGraph, Literal, quote
from .optimization import optimize as _optimize_array_graph

__all__ = [
    "Array",
    "blockwise",
    "map_blocks",
    "elemwise",
    "from_array",
    "asarray",
    "asanyarray",
    "normalize_chunks",
    "broadcast_shapes",
    "unify_chunks",
    "new_array",
]

config.update_defaults({"array": {"chunk-size": "128MiB", "split-every": 8}})


def _is_nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def meta_from_dtype(dtype: Any, ndim: int) -> np.ndarray:
    """An empty NumPy array of ``dtype`` and ``ndim`` dimensions (the type template of blocks)."""
    return np.empty((0,) * ndim, dtype=dtype)


# --------------------------------------------------------------------------------------------
# The Array
# --------------------------------------------------------------------------------------------

class Array(LazyarrMethodsMixin):
    """A lazy N-dimensional array made of NumPy blocks.

    ``Array(graph, name, chunks, dtype, meta=None)``: ``graph`` maps keys to tasks and holds the
    keys ``(name, i, j, ...)`` for every block; ``chunks`` is normalised block lengths per axis.
    Users create arrays with :func:`from_array`, :func:`ones`, :mod:`lazyarr.array.random`, ...

    >>> import lazyarr.array as da
    >>> x = da.ones((4, 6), chunks=(2, 3))
    >>> x.numblocks, x.chunksize
    ((2, 2), (2, 3))
    >>> int((x + 1).sum().compute())
    48
    """

    __slots__ = ("dask", "_name", "_chunks", "_dtype", "_meta")
    __lazyarr_scheduler__ = "threads"
    __array_priority__ = 11

    def __init__(self, graph: Mapping, name: str, chunks: Any, dtype: Any = None, meta: Any = None):
        if not isinstance(name, str):
            raise TypeError(f"an array's name must be a str, got {type(name).__name__}")
        chunks = _validate_chunks(chunks)
        if dtype is None:
            if meta is None:
                raise ValueError(f"array {name!r} needs a dtype or a meta array")
            dtype = meta.dtype
        dtype = np.dtype(dtype)
        if meta is None or not hasattr(meta, "ndim") or meta.ndim != len(chunks) or meta.dtype != dtype:
            meta = meta_from_dtype(dtype, len(chunks))
        if isinstance(graph, LayeredGraph):
            pass  # its blocks are usually the layer called ``name``, but may live in any layer
        elif isinstance(graph, Mapping):
            graph = LayeredGraph({name: graph}, {name: set()})
        else:
            raise TypeError(f"graph must be a mapping of keys to tasks, got {type(graph).__name__}")
        self.dask = graph
        self._name = name
        self._chunks = chunks
        self._dtype = dtype
        self._meta = meta

    # -- basic attributes ------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The name shared by the keys of the blocks."""
        return self._name

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...]:
        """Block lengths along each axis."""
        return self._chunks

    @property
    def dtype(self) -> np.dtype:
        """The element type."""
        return self._dtype

    @property
    def _meta_array(self) -> np.ndarray:
        return self._meta

    @property
    def shape(self) -> tuple:
        """Length of every axis (``nan`` where block lengths are unknown)."""
        return tuple(sum(c) for c in self._chunks)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._chunks)

    @property
    def size(self) -> Any:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> Any:
        """Number of bytes of the whole (computed) array."""
        return self.size * self._dtype.itemsize

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self._dtype.itemsize

    @property
    def numblocks(self) -> tuple[int, ...]:
        """Number of blocks along each axis."""
        return tuple(len(c) for c in self._chunks)

    @property
    def npartitions(self) -> int:
        """Total number of blocks."""
        return math.prod(self.numblocks)

    @property
    def chunksize(self) -> tuple:
        """The largest block length along each axis."""
        return tuple(max(c) if c else 0 for c in self._chunks)

    def __len__(self) -> int:
        if not self._chunks:
            raise TypeError("len() of a 0-d array")
        n = self.shape[0]
        if _is_nan(n):
            raise ValueError("the length of this array is unknown (nan): compute chunk sizes first")
        return int(n)

    # -- collection protocol ---------------------------------------------------------------
    def __lazyarr_graph__(self) -> LayeredGraph:
        return self.dask

    def __lazyarr_keys__(self) -> list:
        name = self._name
        if not self._chunks:
            return [(name,)]

        def keys(prefix: tuple, depth: int) -> list:
            n = len(self._chunks[depth])
            if depth == len(self._chunks) - 1:
                return [(name,) + prefix + (i,) for i in range(n)]
            return [keys(prefix + (i,), depth + 1) for i in range(n)]

        return keys((), 0)

    def __lazyarr_postcompute__(self) -> tuple:
        return finalize, (self._chunks,)

    def __lazyarr_postpersist__(self) -> tuple:
        return _rebuild, (self._name, self._chunks, self._dtype, self._meta)

    __lazyarr_optimize__ = staticmethod(_optimize_array_graph)

    def __lazyarr_tokenize__(self) -> str:
        return self._name

    def __lazyarr_layer__(self) -> str:
        """Name of the graph layer holding this array's blocks."""
        return self._name

    def __reduce__(self):
        return (Array, (self.dask, self._name, self._chunks, self._dtype, self._meta))

    # -- display ---------------------------------------------------------------------------
    def _task_count(self) -> int:
        return sum(len(layer) for layer in self.dask.layers.values())

    def __repr__(self) -> str:
        from ..utils import key_split

        return (
            f"lazyarr.array<{key_split(self._name)}, shape={self.shape}, dtype={self._dtype}, "
            f"chunksize={self.chunksize}, chunktype={type(self._meta).__module__}.{type(self._meta).__name__}, "
            f"tasks={self._task_count()}>"
        )

    def _repr_html_(self) -> str:
        from html import escape

        def nbytes(n: Any) -> str:
            return "unknown" if _is_nan(n) else format_bytes(n)

        chunk_bytes = math.prod(self.chunksize) * self.itemsize if self._chunks else self.itemsize
        rows = [
            ("Bytes", nbytes(self.nbytes), nbytes(chunk_bytes)),
            ("Shape", str(self.shape), str(self.chunksize)),
            ("Count", f"{self._task_count()} tasks", f"{self.npartitions} chunks"),
            ("Type", f"{self._dtype}", f"{type(self._meta).__module__}.{type(self._meta).__name__}"),
        ]
        body = "".join(
            f"<tr><th>{escape(a)}</th><td>{escape(b)}</td><td>{escape(c)}</td></tr>" for a, b, c in rows
        )
        return (
            f"<table><thead><tr><td><b>{escape(self._name)}</b></td><th>Array</th><th>Chunk</th></tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    # -- conversion ------------------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        result = np.asarray(self.compute())
        if dtype is not None and result.dtype != dtype:
            result = result.astype(dtype)
        return result

    def _scalar(self, kind: type) -> Any:
        if self.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars; this one has shape {self.shape}")
        return kind(np.asarray(self.compute()).reshape(()))

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                f"the truth value of an array with shape {self.shape} is ambiguous; use .any() or .all()"
            )
        return bool(np.asarray(self.compute()).reshape(()))

    def __int__(self) -> int:
        return self._scalar(int)

    def __float__(self) -> float:
        return self._scalar(float)

    def __complex__(self) -> complex:
        return self._scalar(complex)

    def __index__(self) -> int:
        if not np.issubdtype(self._dtype, np.integer):
            raise TypeError(f"only integer arrays can be used as an index, not {self._dtype}")
        return self._scalar(operator.index)

    def __iter__(self):
        if not self._chunks:
            raise TypeError("iteration over a 0-d array")
        for i in range(len(self)):
            yield self[i]

    # -- NumPy protocols -------------------------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from .ufunc import array_ufunc

        return array_ufunc(ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func: Callable, types: tuple, args: tuple, kwargs: dict) -> Any:
        from .ufunc import array_function

        return array_function(func, types, args, kwargs)

    # -- structure (see slicing.py, rechunk.py, reshape.py, routines.py, overlap.py) ----------
    def __getitem__(self, index: Any) -> "Array":
        from .slicing import getitem

        return getitem(self, index)

    def __setitem__(self, key: Any, value: Any) -> None:
        from .slicing import setitem

        result = setitem(self, key, value)
        self.dask, self._name, self._chunks = result.dask, result.name, result.chunks
        self._dtype, self._meta = result.dtype, result._meta

    def rechunk(self, chunks: Any = "auto", **kwargs: Any) -> "Array":
        """The same values in new blocks (see :func:`lazyarr.array.rechunk`)."""
        from .rechunk import rechunk

        return rechunk(self, chunks, **kwargs)

    def reshape(self, *shape: Any, **kwargs: Any) -> "Array":
        """The same values in a new shape (see :func:`lazyarr.array.reshape`)."""
        from .reshape import reshape

        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = shape[0]
        return reshape(self, shape, **kwargs)

    def ravel(self) -> "Array":
        """The values as a 1-d array in C order."""
        from .reshape import ravel

        return ravel(self)

    flatten = ravel

    def transpose(self, *axes: Any) -> "Array":
        """Permute the axes (reverse them by default)."""
        from .routines import transpose

        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return transpose(self, axes or None)

    @property
    def T(self) -> "Array":
        """The transposed array."""
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> "Array":
        """Exchange two axes."""
        from .routines import swapaxes

        return swapaxes(self, axis1, axis2)

    def squeeze(self, axis: Any = None) -> "Array":
        """Drop axes of length one."""
        from .routines import squeeze

        return squeeze(self, axis=axis)

    def dot(self, other: Any) -> "Array":
        """Matrix product (see :func:`lazyarr.array.dot`)."""
        from .routines import dot

        return dot(self, other)

    def __matmul__(self, other: Any) -> Any:
        from .routines import matmul

        if not _is_operand(other):
            return NotImplemented
        return matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        from .routines import matmul

        if not _is_operand(other):
            return NotImplemented
        return matmul(other, self)

    def map_overlap(self, func: Callable, depth: Any, boundary: Any = None, **kwargs: Any) -> "Array":
        """Apply ``func`` to blocks extended by ``depth`` cells of their neighbours."""
        from .overlap import map_overlap

        return map_overlap(func, self, depth=depth, boundary=boundary, **kwargs)

    # -- blockwise helpers -------------------------------------------------------------------
    def map_blocks(self, func: Callable, *args: Any, **kwargs: Any) -> "Array":
        """``map_blocks(func, self, *args, **kwargs)``."""
        return map_blocks(func, self, *args, **kwargs)

    def astype(self, dtype: Any, casting: str = "unsafe", copy: bool = True) -> "Array":
        """The array converted to ``dtype`` block by block.

        ``casting`` follows NumPy; a cast it forbids raises ``TypeError`` now, not at compute time.
        """
        dtype = np.dtype(dtype)
        if dtype == self._dtype:
            return self
        if not np.can_cast(self._dtype, dtype, casting=casting):
            raise TypeError(f"cannot cast array from {self._dtype} to {dtype} under casting={casting!r}")
        return elemwise(_astype, self, dtype=dtype, extra=(dtype,), name_prefix="astype")

    def copy(self) -> "Array":
        """The array itself: arrays are immutable, so a copy shares the graph."""
        return self

    @property
    def real(self) -> "Array":
        """Real part."""
        return elemwise(np.real, self)

    @property
    def imag(self) -> "Array":
        """Imaginary part."""
        return elemwise(np.imag, self)

    def conj(self) -> "Array":
        """Complex conjugate."""
        return elemwise(np.conj, self)

    def round(self, decimals: int = 0) -> "Array":
        """Round to ``decimals`` decimal places."""
        return elemwise(np.round, self, extra=(decimals,), name_prefix="round")

    def clip(self, min: Any = None, max: Any = None) -> "Array":
        """Limit the values to ``[min, max]``."""
        from .ufunc import clip

        return clip(self, min, max)

    def store(self, target: Any, **kwargs: Any) -> Any:
        """Write the array into ``target`` (see :func:`lazyarr.array.store`)."""
        from .storage import store

        return store(self, target, **kwargs)

    def to_npy_stack(self, dirname: str, axis: int = 0) -> None:
        """Write one ``.npy`` file per block along ``axis`` (see :func:`lazyarr.array.to_npy_stack`)."""
        from .storage import to_npy_stack

        to_npy_stack(dirname, self, axis=axis)

    def to_delayed(self) -> np.ndarray:
        """An object array of ``Delayed`` values, one per block."""
        from ..delayed import Delayed

        graph = self.__lazyarr_optimize__(self.dask, self.__lazyarr_keys__())
        out = np.empty(self.numblocks, dtype=object)
        for idx in product(*map(range, self.numblocks)):
            out[idx] = Delayed((self._name,) + idx, graph)
        return out

    # -- reductions (see reductions.py) --------------------------------------------------------
    def sum(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Sum over ``axis`` (all axes by default)."""
        from .reductions import sum

        return sum(self, axis=axis, dtype=dtype, keepdims=keepdims, split_every=split_every)

    def prod(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Product over ``axis``."""
        from .reductions import prod

        return prod(self, axis=axis, dtype=dtype, keepdims=keepdims, split_every=split_every)

    def mean(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Arithmetic mean over ``axis``."""
        from .reductions import mean

        return mean(self, axis=axis, dtype=dtype, keepdims=keepdims, split_every=split_every)

    def var(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, ddof: int = 0,
            split_every: Any = None) -> "Array":
        """Variance over ``axis`` (merged across blocks with a numerically stable formula)."""
        from .reductions import var

        return var(self, axis=axis, dtype=dtype, keepdims=keepdims, ddof=ddof, split_every=split_every)

    def std(self, axis: Any = None, dtype: Any = None, keepdims: bool = False, ddof: int = 0,
            split_every: Any = None) -> "Array":
        """Standard deviation over ``axis``."""
        from .reductions import std

        return std(self, axis=axis, dtype=dtype, keepdims=keepdims, ddof=ddof, split_every=split_every)

    def min(self, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Minimum over ``axis``."""
        from .reductions import min

        return min(self, axis=axis, keepdims=keepdims, split_every=split_every)

    def max(self, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Maximum over ``axis``."""
        from .reductions import max

        return max(self, axis=axis, keepdims=keepdims, split_every=split_every)

    def argmin(self, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Index of the minimum over ``axis`` (of the flattened array by default)."""
        from .reductions import argmin

        return argmin(self, axis=axis, keepdims=keepdims, split_every=split_every)

    def argmax(self, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Index of the maximum over ``axis`` (of the flattened array by default)."""
        from .reductions import argmax

        return argmax(self, axis=axis, keepdims=keepdims, split_every=split_every)

    def any(self, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Whether any element is true over ``axis``."""
        from .reductions import any

        return any(self, axis=axis, keepdims=keepdims, split_every=split_every)

    def all(self, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> "Array":
        """Whether all elements are true over ``axis``."""
        from .reductions import all

        return all(self, axis=axis, keepdims=keepdims, split_every=split_every)

    def cumsum(self, axis: Any = None, dtype: Any = None) -> "Array":
        """Cumulative sum along ``axis`` (of the flattened array by default)."""
        from .reductions import cumsum

        return cumsum(self, axis=axis, dtype=dtype)

    def cumprod(self, axis: Any = None, dtype: Any = None) -> "Array":
        """Cumulative product along ``axis`` (of the flattened array by default)."""
        from .reductions import cumprod

        return cumprod(self, axis=axis, dtype=dtype)

    # -- operators ---------------------------------------------------------------------------
    def _binary(self, op: Callable, other: Any, reflected: bool = False) -> Any:
        if not _is_operand(other):
            return NotImplemented
        return elemwise(op, other, self) if reflected else elemwise(op, self, other)

    def __add__(self, other): return self._binary(operator.add, other)
    def __radd__(self, other): return self._binary(operator.add, other, True)
    def __sub__(self, other): return self._binary(operator.sub, other)
    def __rsub__(self, other): return self._binary(operator.sub, other, True)
    def __mul__(self, other): return self._binary(operator.mul, other)
    def __rmul__(self, other): return self._binary(operator.mul, other, True)
    def __truediv__(self, other): return self._binary(operator.truediv, other)
    def __rtruediv__(self, other): return self._binary(operator.truediv, other, True)
    def __floordiv__(self, other): return self._binary(operator.floordiv, other)
    def __rfloordiv__(self, other): return self._binary(operator.floordiv, other, True)
    def __mod__(self, other): return self._binary(operator.mod, other)
    def __rmod__(self, other): return self._binary(operator.mod, other, True)
    def __pow__(self, other): return self._binary(operator.pow, other)
    def __rpow__(self, other): return self._binary(operator.pow, other, True)
    def __lshift__(self, other): return self._binary(operator.lshift, other)
    def __rlshift__(self, other): return self._binary(operator.lshift, other, True)
    def __rshift__(self, other): return self._binary(operator.rshift, other)
    def __rrshift__(self, other): return self._binary(operator.rshift, other, True)
    def __and__(self, other): return self._binary(operator.and_, other)
    def __rand__(self, other): return self._binary(operator.and_, other, True)
    def __or__(self, other): return self._binary(operator.or_, other)
    def __ror__(self, other): return self._binary(operator.or_, other, True)
    def __xor__(self, other): return self._binary(operator.xor, other)
    def __rxor__(self, other): return self._binary(operator.xor, other, True)
    def __lt__(self, other): return self._binary(operator.lt, other)
    def __le__(self, other): return self._binary(operator.le, other)
    def __gt__(self, other): return self._binary(operator.gt, other)
    def __ge__(self, other): return self._binary(operator.ge, other)
    def __eq__(self, other): return self._binary(operator.eq, other)  # type: ignore[override]
    def __ne__(self, other): return self._binary(operator.ne, other)  # type: ignore[override]

    def __divmod__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return self // other, self % other

    def __rdivmod__(self, other):
        if not _is_operand(other):
            return NotImplemented
        return other // self, other % self

    def __neg__(self): return elemwise(operator.neg, self)
    def __pos__(self): return self
    def __abs__(self): return elemwise(operator.abs, self)
    def __invert__(self): return elemwise(operator.invert, self)

    __hash__ = None  # type: ignore[assignment]


def _astype(block: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return block.astype(dtype, copy=False)


def _is_operand(x: Any) -> bool:
    """Can ``x`` take part in elementwise arithmetic with an Array?"""
    if isinstance(x, (Array, np.ndarray, np.generic, numbers.Number, bool)):
        return True
    if is_lazyarr_collection(x):
        return False
    if isinstance(x, (list, tuple)):
        return True
    return hasattr(x, "__array__") and hasattr(x, "shape") and hasattr(x, "dtype")


def _validate_chunks(chunks: Any) -> tuple:
    if type(chunks) is tuple and all(type(c) is tuple and c and set(map(type, c)) == {int} and min(c) >= 0
                                     for c in chunks):
        return chunks  # the common case, checked at C speed
    if not isinstance(chunks, tuple) or not all(isinstance(c, tuple) for c in chunks):
        if isinstance(chunks, (tuple, list)) and all(isinstance(c, (tuple, list)) for c in chunks):
            chunks = tuple(tuple(c) for c in chunks)
        else:
            raise TypeError(
                f"Array(...) needs normalised chunks (a tuple of tuples of block lengths), got {chunks!r}; "
                "use normalize_chunks(chunks, shape) first"
            )
    for axis, c in enumerate(chunks):
        if not c:
            raise ValueError(f"axis {axis} has no blocks; an empty axis has the single block (0,)")
        for length in c:
            if _is_nan(length):
                continue
            if not isinstance(length, (int, np.integer)):
                raise TypeError(f"block lengths must be integers, got {length!r} on axis {axis}")
            if length < 0:
                raise ValueError(f"negative block length {length} on axis {axis}: {c}")
    if any(type(length) is not int and not _is_nan(length) for c in chunks for length in c):
        chunks = tuple(tuple(length if _is_nan(length) else int(length) for length in c) for c in chunks)
    return chunks


def _rebuild(graph: Mapping, name: str, chunks: tuple, dtype: Any, meta: Any) -> Array:
    return Array(graph, name, chunks, dtype, meta)


def finalize(results: Any, chunks: tuple) -> Any:
    """Assemble computed blocks (nested like the keys) into one NumPy array."""
    if not chunks:
        block = results[0]
        return block
    if len(results) == 1 and all(len(c) == 1 for c in chunks):
        block = results
        for _ in chunks:
            block = block[0]
        return block if isinstance(block, np.ndarray) else np.asarray(block)
    return concatenate_blocks(results, len(chunks))


def concatenate_blocks(nested: Any, ndim: int) -> np.ndarray:
    """Join a grid of blocks (nested lists or tuples, one level per axis) into one array.

    >>> concatenate_blocks([[np.ones((1, 2)), np.zeros((1, 1))]], 2).tolist()
    [[1.0, 1.0, 0.0]]
    """
    flat: list = []
    grid: list = []
    level = nested
    for _ in range(ndim):
        grid.append(len(level))
        level = level[0]
    stack = [nested]
    for _ in range(ndim):
        stack = [item for group in stack for item in group]
    flat = [b if isinstance(b, np.ndarray) else np.asarray(b) for b in stack]
    if not flat:
        raise ValueError("no blocks to concatenate")
    dtype = flat[0].dtype
    if any(b.dtype != dtype for b in flat) or any(b.ndim != ndim for b in flat) or type(flat[0]) is not np.ndarray:
        return _concat_recursive(nested, 0, ndim)
    # one pass: compute offsets from block shapes, allocate, copy each block in
    strides = [math.prod(grid[a + 1:]) for a in range(ndim)]
    lengths = []
    for axis in range(ndim):
        lengths.append([flat[i * strides[axis]].shape[axis] for i in range(grid[axis])])
    offsets = [[0] for _ in range(ndim)]
    for axis in range(ndim):
        for n in lengths[axis]:
            offsets[axis].append(offsets[axis][-1] + n)
    out = np.empty(tuple(o[-1] for o in offsets), dtype=dtype)
    for flat_i, idx in enumerate(product(*map(range, grid))):
        block = flat[flat_i]
        where = tuple(slice(offsets[a][i], offsets[a][i] + block.shape[a]) for a, i in enumerate(idx))
        if block.shape != tuple(s.stop - s.start for s in where) or any(
            block.shape[a] != lengths[a][i] for a, i in enumerate(idx)
        ):
            return _concat_recursive(nested, 0, ndim)
        out[where] = block
    return out


def _concat_recursive(nested: Any, axis: int, ndim: int) -> np.ndarray:
    if axis == ndim - 1:
        return np.concatenate([np.asarray(b) for b in nested], axis=axis)
    return np.concatenate([_concat_recursive(n, axis + 1, ndim) for n in nested], axis=axis)


def new_array(name: str, layer: Mapping, dependencies: Sequence[Any], chunks: Any, dtype: Any,
              meta: Any = None) -> Array:
    """An Array named ``name`` whose blocks are the tasks of ``layer``, reading ``dependencies``.

    The cheap way to add an operation: the inputs' graphs are shared, not copied.
    """
    graph = LayeredGraph.from_collections(name, layer, dependencies)
    return Array(graph, name, chunks, dtype, meta)


# --------------------------------------------------------------------------------------------
# Broadcasting and chunk alignment
# --------------------------------------------------------------------------------------------

def broadcast_shapes(*shapes: tuple) -> tuple:
    """The NumPy broadcast of ``shapes``, or a ``ValueError`` naming all of them.

    >>> broadcast_shapes((3, 1), (4,))
    (3, 4)
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis}
        known = {n for n in sizes if not _is_nan(n)}
        if any(_is_nan(n) for n in sizes):
            out.append(math.nan if not (known - {1}) else max(known - {1}))
            continue
        big = known - {1}
        if len(big) > 1:
            listed = " ".join(str(tuple(s)) for s in shapes)
            raise ValueError(f"operands could not be broadcast together with shapes {listed}")
        out.append(big.pop() if big else 1)
    return tuple(out)


def _rechunk_refinement(x: Array, chunks: tuple) -> Array:
    """``x`` re-blocked to ``chunks`` whose boundaries include all of ``x``'s (every new block is a
    slice of exactly one old block)."""
    if chunks == x.chunks:
        return x
    try:
        from .rechunk import rechunk
    except ImportError:  # pragma: no cover - the rechunk module ships with the package
        rechunk = None
    if rechunk is not None:
        return rechunk(x, chunks)
    raise RuntimeError("rechunk is unavailable")  # pragma: no cover


def _broadcast_axis(x: Array, axis: int) -> bool:
    """Is this axis of ``x`` broadcast by blockwise operations (length one, one block)?"""
    return x.shape[axis] == 1 and len(x.chunks[axis]) == 1


def aligned_label_chunks(arrays: Sequence[Array], inds: Sequence[tuple]) -> dict:
    """The common chunks of every index label (see :func:`unify_chunks`)."""
    by_label: dict = {}
    for x, ind in zip(arrays, inds):
        for axis, label in enumerate(ind):
            by_label.setdefault(label, []).append((x, axis))
    label_chunks: dict = {}
    for label, uses in by_label.items():
        candidates = [x.chunks[axis] for x, axis in uses if not _broadcast_axis(x, axis)]
        if not candidates:
            label_chunks[label] = (1,)
            continue
        lengths = {sum(c) for c in candidates if not any(map(_is_nan, c))}
        if len(lengths) > 1:
            shapes = ", ".join(str(x.shape) for x, _ in uses)
            raise ValueError(
                f"arrays of shapes {shapes} disagree on the length of index {label!r}: {sorted(lengths)}"
            )
        first = candidates[0]
        if all(c == first for c in candidates):
            label_chunks[label] = first
        elif any(_is_nan(n) for c in candidates for n in c):
            raise ValueError(f"cannot align unknown (nan) chunks {candidates} along index {label!r}")
        else:
            label_chunks[label] = common_refinement(*candidates)
    return label_chunks


def unify_chunks(arrays: Sequence[Array], inds: Sequence[tuple]) -> tuple[dict, list[Array]]:
    """Common chunks per index label, and the arrays rechunked to them.

    A dimension of length one is broadcast (left alone); other dimensions sharing a label must
    have the same length and are re-blocked to the common refinement of their chunks.
    """
    label_chunks = aligned_label_chunks(arrays, inds)
    out = []
    for x, ind in zip(arrays, inds):
        target = tuple(x.chunks[axis] if _broadcast_axis(x, axis) else label_chunks[label]
                       for axis, label in enumerate(ind))
        out.append(_rechunk_refinement(x, target) if target != x.chunks else x)
    return label_chunks, out


# --------------------------------------------------------------------------------------------
# blockwise
# --------------------------------------------------------------------------------------------

class _ConcatInputs:
    """Calls ``func`` after concatenating the nested block lists of contracted arguments."""

    __slots__ = ("func", "axes")

    def __init__(self, func: Callable, axes: dict):
        self.func = func
        self.axes = axes  # argument position -> axes to concatenate along, in nesting order

    def __call__(self, *args: Any) -> Any:
        args = list(args)
        for pos, axes in self.axes.items():
            args[pos] = _concatenate_nested_axes(args[pos], axes)
        return self.func(*args)

    def __reduce__(self):
        return (_ConcatInputs, (self.func, self.axes))


def _concatenate_nested_axes(nested: Any, axes: tuple) -> Any:
    if not axes:
        return nested
    if not isinstance(nested, list):
        return nested
    inner = [_concatenate_nested_axes(n, axes[1:]) for n in nested]
    return inner[0] if len(inner) == 1 else np.concatenate(inner, axis=axes[0])


def _as_array_arg(x: Any) -> Any:
    if isinstance(x, Array):
        return x
    if isinstance(x, np.ndarray) or (hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")):
        return from_array(x, chunks=-1)
    if isinstance(x, (list, tuple)):
        return from_array(np.asarray(x), chunks=-1)
    return x


def _infer_meta(func: Callable, metas: list, kwargs: dict) -> Any:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return func(*metas, **kwargs)
        except Exception:
            return None


def blockwise(func: Callable, out_ind: Sequence, *args: Any, name: str | None = None, token: str | None = None,
              dtype: Any = None, adjust_chunks: Mapping | None = None, new_axes: Mapping | None = None,
              align_arrays: bool = True, concatenate: bool | None = None, meta: Any = None,
              **kwargs: Any) -> Array:
    """Apply ``func`` block by block following an index notation, like ``numpy.einsum`` for blocks.

    ``args`` alternate between an input and its index (a string or tuple of labels, or ``None``
    for a literal argument passed unchanged to every call). Labels shared between inputs are
    aligned (rechunked to common blocks; length-one dimensions broadcast); labels missing from
    ``out_ind`` are contracted: ``func`` receives the list of blocks along them, or, with
    ``concatenate=True``, those blocks joined into one. ``new_axes`` gives the length (or block
    lengths) of output labels no input has; ``adjust_chunks`` maps a label to new block lengths
    (a function of the old length, an int or a tuple). The dtype is inferred by calling ``func``
    on empty arrays when not given.

    >>> import lazyarr.array as da, numpy as np
    >>> x = da.from_array(np.arange(6).reshape(2, 3), chunks=1)
    >>> y = blockwise(np.add, 'ij', x, 'ij', 10, None)
    >>> y.compute().tolist()
    [[10, 11, 12], [13, 14, 15]]
    """
    if len(args) % 2:
        raise ValueError("blockwise arguments come in pairs: an input and its index (None for literals)")
    out_ind = tuple(out_ind)
    if len(set(out_ind)) != len(out_ind):
        raise ValueError(f"repeated label in out_ind {out_ind!r}")
    new_axes = dict(new_axes or {})
    pairs = []
    for value, ind in zip(args[::2], args[1::2]):
        if ind is not None:
            ind = tuple(ind)
            value = _as_array_arg(value)
            if not isinstance(value, Array):
                raise TypeError(f"blockwise input with index {ind!r} must be an array, got {type(value).__name__}")
            if len(ind) != value.ndim:
                raise ValueError(
                    f"index {''.join(map(str, ind))!r} has {len(ind)} label(s) but the array has shape {value.shape}"
                )
        pairs.append((value, ind))
    arrays = [v for v, i in pairs if i is not None]
    inds = [i for v, i in pairs if i is not None]
    for label in out_ind:
        if label not in new_axes and not any(label in ind for ind in inds):
            raise ValueError(f"output label {label!r} is neither in any input index nor in new_axes")
    if align_arrays and arrays:
        label_chunks, aligned = unify_chunks(arrays, inds)
    else:
        label_chunks = {}
        for x, ind in zip(arrays, inds):
            for label, c in zip(ind, x.chunks):
                if label not in label_chunks or len(c) > len(label_chunks[label]):
                    label_chunks[label] = c
        aligned = list(arrays)
    it = iter(aligned)
    pairs = [(next(it), ind) if ind is not None else (v, ind) for v, ind in pairs]

    out_chunks = []
    for label in out_ind:
        if label in new_axes:
            size = new_axes[label]
            out_chunks.append(tuple(size) if isinstance(size, (tuple, list)) else (int(size),))
        else:
            out_chunks.append(label_chunks[label])
    if adjust_chunks:
        for i, label in enumerate(out_ind):
            if label not in adjust_chunks:
                continue
            adj = adjust_chunks[label]
            if callable(adj):
                out_chunks[i] = tuple(adj(c) for c in out_chunks[i])
            elif isinstance(adj, numbers.Integral):
                out_chunks[i] = (int(adj),) * len(out_chunks[i])
            else:
                adj = tuple(adj)
                if len(adj) != len(out_chunks[i]):
                    raise ValueError(
                        f"adjust_chunks for {label!r} gives {len(adj)} lengths for {len(out_chunks[i])} blocks"
                    )
                out_chunks[i] = adj
    out_chunks = tuple(out_chunks)

    contracted = {label for _, ind in pairs if ind is not None for label in ind if label not in out_ind}
    if kwargs:
        for v in kwargs.values():
            if is_lazyarr_collection(v):
                raise TypeError("lazy collections must be passed positionally to blockwise, not as keywords")
        call = partial(func, **kwargs)
    else:
        call = func
    if dtype is None and meta is None:
        metas = [v._meta if ind is not None else v for v, ind in pairs]
        if contracted and not concatenate:
            meta = None
        else:
            meta = _infer_meta(func, metas, kwargs)
        if meta is None or not hasattr(meta, "dtype"):
            raise ValueError(
                f"could not infer the output dtype of {funcname(func)}; pass dtype= (or meta=) explicitly"
            )
        dtype = meta.dtype
    if meta is not None and getattr(meta, "ndim", None) != len(out_ind):
        meta = None
    if dtype is None:
        dtype = meta.dtype

    if name is None:
        prefix = token or funcname(func).strip("_")
        name = f"{prefix}-{tokenize(func, out_ind, *[v for pair in pairs for v in pair], dtype, adjust_chunks, new_axes, concatenate, kwargs)}"

    dims = dict(zip(out_ind, (len(c) for c in out_chunks)))
    layer_args = []
    deps = []
    concat_axes: dict = {}
    for pos, (value, ind) in enumerate(pairs):
        if ind is None:
            if is_lazyarr_collection(value) and not isinstance(value, Array):
                key = getattr(value, "key", None)
                if key is None:
                    raise TypeError(f"cannot pass {type(value).__name__} to blockwise without an index")
                layer_args.append(("key", key, None, None))
                deps.append(value)
            elif isinstance(value, Array):
                raise TypeError("an array argument to blockwise needs an index (use a string of labels)")
            else:
                layer_args.append(("lit", value))
            continue
        layer_args.append(("key", value.name, ind, value.numblocks))
        deps.append(value)
        axes = tuple(a for a, label in enumerate(ind) if label in contracted)
        if axes and concatenate:
            concat_axes[pos] = axes
    if concat_axes:
        call = _ConcatInputs(call, concat_axes)
    layer = Blockwise(name, out_ind, tuple(dims[label] for label in out_ind), call, layer_args)
    graph = LayeredGraph.from_collections(name, layer, deps)
    return Array(graph, name, out_chunks, dtype, meta)


# --------------------------------------------------------------------------------------------
# elemwise
# --------------------------------------------------------------------------------------------

def _is_scalar_like(x: Any) -> bool:
    return isinstance(x, (numbers.Number, np.generic, bool)) or (isinstance(x, np.ndarray) and x.ndim == 0)


def elemwise(op: Callable, *args: Any, dtype: Any = None, name: str | None = None, extra: tuple = (),
             name_prefix: str | None = None, **kwargs: Any) -> Array:
    """Apply ``op`` elementwise with NumPy broadcasting; ``extra`` are trailing literal arguments.

    Shapes are checked now: incompatible shapes raise ``ValueError`` naming all of them; an
    operation NumPy refuses for the dtypes (``float & int``) raises ``TypeError`` now.

    >>> import lazyarr.array as da
    >>> elemwise(operator.add, da.ones(3, chunks=2), 1).compute().tolist()
    [2.0, 2.0, 2.0]
    """
    args = tuple(np.asarray(a) if isinstance(a, (list, tuple)) else a for a in args)
    arrays = [a for a in args if isinstance(a, Array) or (hasattr(a, "shape") and not _is_scalar_like(a))]
    shapes = [tuple(a.shape) for a in arrays]
    out_shape = broadcast_shapes(*shapes)
    ndim = len(out_shape)

    if dtype is None:
        metas = []
        for a in args:
            if isinstance(a, Array):
                metas.append(a._meta)
            elif _is_scalar_like(a):
                metas.append(a)
            elif hasattr(a, "dtype") and hasattr(a, "shape"):
                metas.append(np.empty((0,) * len(a.shape), dtype=a.dtype))
            else:
                metas.append(a)
        dtype = _result_dtype(op, metas, list(extra), kwargs, shapes)

    # in-memory arrays join with blocks matching the lazy arrays' chunks
    lazy = [a for a in arrays if isinstance(a, Array)]
    converted = []
    for a in args:
        if isinstance(a, Array) or _is_scalar_like(a) or not hasattr(a, "shape"):
            converted.append(a)
            continue
        converted.append(from_array(a, chunks=_matching_chunks(a.shape, lazy, out_shape)))
    args = tuple(converted)

    pairs: list = []
    for a in args:
        if isinstance(a, Array):
            pairs.extend([a, tuple(range(ndim - a.ndim, ndim))])
        else:
            pairs.extend([a, None])
    for e in extra:
        pairs.extend([e, None])
    if name is None:
        prefix = name_prefix or funcname(op).strip("_")
        name = f"{prefix}-{tokenize(op, *pairs, dtype, kwargs)}"
    return blockwise(op, tuple(range(ndim)), *pairs, name=name, dtype=dtype, **kwargs)


def _matching_chunks(shape: tuple, lazy: list, out_shape: tuple) -> tuple:
    ndim = len(out_shape)
    chunks = []
    for axis, n in enumerate(shape):
        out_axis = ndim - len(shape) + axis
        best = (n,)
        for x in lazy:
            x_axis = out_axis - (ndim - x.ndim)
            if 0 <= x_axis < x.ndim and x.shape[x_axis] == n and n != 1:
                best = x.chunks[x_axis]
                break
        chunks.append(best)
    return tuple(chunks)


def _result_dtype(op: Callable, metas: list, extra: list, kwargs: dict, shapes: list) -> np.dtype:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = op(*metas, *extra, **kwargs)
        except Exception as e:
            kinds = ", ".join(
                f"{getattr(m, 'dtype', type(m).__name__)}" + (f" shape {s}" if s is not None else "")
                for m, s in zip(metas, _shape_iter(metas, shapes))
            )
            raise TypeError(f"{funcname(op)} cannot be applied to operands of type {kinds}: {e}") from None
    if isinstance(result, tuple):
        return np.dtype(result[0].dtype)
    if not hasattr(result, "dtype"):
        return np.asarray(result).dtype
    return np.dtype(result.dtype)


def _shape_iter(metas: list, shapes: list):
    it = iter(shapes)
    for m in metas:
        if isinstance(m, np.ndarray) and m.ndim and m.size == 0:
            yield next(it, None)
        else:
            yield None


# --------------------------------------------------------------------------------------------
# map_blocks
# --------------------------------------------------------------------------------------------

def _has_keyword(func: Callable, keyword: str) -> bool:
    try:
        return keyword in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


class _BlockIdTable:
    """``table[idx] -> idx``: hands every block its own index."""

    __slots__ = ()

    def __getitem__(self, idx: tuple) -> tuple:
        return idx


class _BlockInfoTable:
    """``table[idx] -> block_info`` dict, as in Dask's ``map_blocks(block_info=...)``."""

    def __init__(self, inputs: list, out_chunks: tuple, out_dtype: Any, out_ind: tuple):
        self.inputs = inputs  # list of (position, shape, chunks, ind)
        self.out_chunks = out_chunks
        self.out_dtype = out_dtype
        self.out_ind = out_ind

    def __getitem__(self, idx: tuple) -> dict:
        where = dict(zip(self.out_ind, idx))
        info: dict = {}
        for pos, shape, chunks, ind in self.inputs:
            loc = tuple(0 if len(c) == 1 else where.get(label, 0) for label, c in zip(ind, chunks))
            offsets = chunk_offsets(chunks)
            info[pos] = {
                "shape": shape,
                "num-chunks": tuple(len(c) for c in chunks),
                "chunk-location": loc,
                "array-location": [(offsets[a][i], offsets[a][i] + chunks[a][i]) for a, i in enumerate(loc)],
            }
        out_offsets = chunk_offsets(self.out_chunks)
        info[None] = {
            "shape": tuple(sum(c) for c in self.out_chunks),
            "num-chunks": tuple(len(c) for c in self.out_chunks),
            "chunk-location": idx,
            "array-location": [(out_offsets[a][i], out_offsets[a][i] + self.out_chunks[a][i]) for a, i in enumerate(idx)],
            "chunk-shape": tuple(self.out_chunks[a][i] for a, i in enumerate(idx)),
            "dtype": self.out_dtype,
        }
        return info


class _WithKeywords:
    """Calls ``func(*args[:-n], **dict(zip(names, args[-n:])))``: per-block keyword values."""

    __slots__ = ("func", "names")

    def __init__(self, func: Callable, names: tuple):
        self.func = func
        self.names = names

    def __call__(self, *args: Any) -> Any:
        n = len(self.names)
        return self.func(*args[:-n], **dict(zip(self.names, args[-n:])))

    def __reduce__(self):
        return (_WithKeywords, (self.func, self.names))


def map_blocks(func: Callable, *args: Any, name: str | None = None, token: str | None = None, dtype: Any = None,
               chunks: Any = None, drop_axis: Any = None, new_axis: Any = None, meta: Any = None,
               **kwargs: Any) -> Array:
    """Apply ``func`` to every block of the array arguments (aligned by NumPy broadcasting).

    ``chunks`` gives the output block lengths when ``func`` changes the block shape (a tuple of
    per-axis block lengths, or the shape of every block); ``drop_axis`` removes axes (their blocks
    are concatenated first), ``new_axis`` inserts axes. If ``func`` accepts ``block_id`` or
    ``block_info`` keywords, each call receives the block's index or a description of where the
    block sits (as in Dask).

    >>> import lazyarr.array as da
    >>> x = da.arange(6, chunks=3)
    >>> map_blocks(lambda b: b * 2, x).compute().tolist()
    [0, 2, 4, 6, 8, 10]
    >>> map_blocks(lambda b, block_id=None: b * 0 + block_id[0], x).compute().tolist()
    [0, 0, 0, 1, 1, 1]
    """
    if not callable(func):
        raise TypeError(f"map_blocks needs a function first, got {type(func).__name__}")
    args = tuple(_as_array_arg(a) if isinstance(a, np.ndarray) and a.ndim else a for a in args)
    arrays = [a for a in args if isinstance(a, Array)]
    if not arrays:
        raise ValueError("map_blocks needs at least one array argument")
    ndim = max(a.ndim for a in arrays)
    ind_of = {id(a): tuple(range(ndim - a.ndim, ndim)) for a in arrays}
    out_ind = list(range(ndim))
    if drop_axis is not None:
        drop = [validate_axis(a, ndim) for a in ([drop_axis] if isinstance(drop_axis, int) else drop_axis)]
        out_ind = [label for label in out_ind if label not in drop]
    new_axes = {}
    if new_axis is not None:
        insert = sorted(a % (len(out_ind) + 1) if a < 0 else a
                        for a in ([new_axis] if isinstance(new_axis, int) else new_axis))
        for k, pos in enumerate(insert):
            label = ndim + k
            out_ind.insert(pos, label)
            new_axes[label] = 1
    out_ind = tuple(out_ind)

    adjust = None
    if chunks is not None:
        if len(chunks) != len(out_ind):
            raise ValueError(
                f"map_blocks got chunks for {len(chunks)} dimension(s) but the output has {len(out_ind)}"
            )
        adjust = {}
        for label, c in zip(out_ind, chunks):
            if label in new_axes:
                new_axes[label] = tuple(c) if isinstance(c, (tuple, list)) else c
            else:
                adjust[label] = tuple(c) if isinstance(c, (tuple, list)) else int(c)

    extra_names = []
    block_tables = []
    if _has_keyword(func, "block_id") and "block_id" not in kwargs:
        extra_names.append("block_id")
        block_tables.append(_BlockIdTable())
    want_info = _has_keyword(func, "block_info") and "block_info" not in kwargs

    if dtype is None and meta is None:
        metas = [a._meta if isinstance(a, Array) else a for a in args]
        extra_meta = {}
        if extra_names:
            extra_meta["block_id"] = (0,) * len(out_ind)
        if want_info:
            extra_meta["block_info"] = None
        meta = _infer_meta(func, metas, {**kwargs, **extra_meta})
        if meta is None or not hasattr(meta, "dtype"):
            raise ValueError(f"could not infer the output dtype of {funcname(func)}; pass dtype= explicitly")
        dtype = meta.dtype
    if dtype is None:
        dtype = meta.dtype

    if name is None:
        name = f"{token or funcname(func).strip('_')}-{tokenize(func, args, dtype, chunks, drop_axis, new_axis, kwargs)}"
    pairs: list = []
    for a in args:
        if isinstance(a, Array):
            pairs.extend([a, ind_of[id(a)]])
        else:
            pairs.extend([a, None])

    if not extra_names and not want_info:
        return blockwise(func, out_ind, *pairs, name=name, dtype=dtype, adjust_chunks=adjust, new_axes=new_axes,
                         concatenate=True, meta=meta, **kwargs)

    # a first pass gives the output chunks the block_info tables describe
    base = blockwise(func, out_ind, *pairs, name=name, dtype=dtype, adjust_chunks=adjust, new_axes=new_axes,
                     concatenate=True, meta=meta, **kwargs)
    layer: Blockwise = base.dask.layers[name]
    if want_info:
        label_chunks = aligned_label_chunks(arrays, [ind_of[id(a)] for a in arrays])
        inputs = []
        for pos, a in enumerate(args):
            if isinstance(a, Array):
                ind = ind_of[id(a)]
                chunks = tuple(c if _broadcast_axis(a, axis) else label_chunks[label]
                               for axis, (label, c) in enumerate(zip(ind, a.chunks)))
                inputs.append((pos, a.shape, chunks, ind))
        extra_names.append("block_info")
        block_tables.append(_BlockInfoTable(inputs, base.chunks, dtype, out_ind))
    fn = _WithKeywords(layer.func, tuple(extra_names))
    new_args = list(layer.args) + [("index", table, out_ind) for table in block_tables]
    new_layer = Blockwise(name, layer.out_ind, layer.numblocks, fn, new_args)
    graph = LayeredGraph(dict(base.dask.layers), dict(base.dask.dependencies))
    graph.layers[name] = new_layer
    return Array(graph, name, base.chunks, dtype, meta)


# --------------------------------------------------------------------------------------------
# from_array / asarray
# --------------------------------------------------------------------------------------------

class _SliceTable:
    """``table[idx]`` is the tuple of slices selecting block ``idx`` of an array with ``chunks``."""

    __slots__ = ("offsets", "chunks")

    def __init__(self, chunks: tuple):
        self.chunks = chunks
        self.offsets = chunk_offsets(chunks)

    def __getitem__(self, idx: tuple) -> list:
        return [slice(self.offsets[a][i], self.offsets[a][i] + self.chunks[a][i]) for a, i in enumerate(idx)]

    def in_order(self):
        """Every block's slices, blocks in C order."""
        per_axis = [[slice(o, o + n) for o, n in zip(offs, c)] for offs, c in zip(self.offsets, self.chunks)]
        return product(*per_axis)


def getter(source: Any, index: list, asarray: bool = True, lock: Any = None) -> Any:
    """``source[tuple(index)]`` (under ``lock`` if given), converted to a NumPy array if asked."""
    if lock is not None:
        with lock:
            block = source[tuple(index)]
            if asarray:
                block = np.asarray(block)
            return block
    block = source[tuple(index)]
    if asarray and not isinstance(block, np.ndarray):
        block = np.asarray(block)
    return block


def from_array(x: Any, chunks: Any = "auto", name: Any = None, lock: Any = False, asarray: bool | None = None,
               meta: Any = None) -> Array:
    """A lazy Array reading its blocks from ``x``: any array-like with ``shape``, ``dtype`` and slicing.

    Works with NumPy arrays, memory-mapped ``.npy`` files (``np.load(path, mmap_mode='r')``),
    h5py datasets, zarr arrays... Only the slices a computation needs are read. ``name`` fixes the
    key name (default: a hash of ``x``'s content; ``False`` for a random name). ``lock=True``
    serialises reads (for sources that are not thread-safe), or pass your own lock.

    >>> import numpy as np
    >>> x = from_array(np.arange(10), chunks=4)
    >>> x.chunks
    ((4, 4, 2),)
    >>> x.sum().compute()
    np.int64(45)
    """
    if isinstance(x, Array):
        return x if chunks == "auto" else x.rechunk(chunks)
    if is_lazyarr_collection(x):
        raise TypeError(f"from_array needs a concrete array-like, got the lazy {type(x).__name__}; use from_delayed")
    if not (hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")):
        x = np.asarray(x)
    shape = tuple(int(n) for n in x.shape)
    dtype = np.dtype(x.dtype)
    chunks = normalize_chunks(chunks, shape, dtype=dtype)
    if asarray is None:
        asarray = not isinstance(x, np.ndarray)
    if lock is True:
        lock = threading.Lock()
    if name is None or name is True:
        token = tokenize(x, repr(chunks), asarray)
        name = f"array-{token}"
    elif name is False:
        import uuid

        name = f"array-{uuid.uuid4().hex}"
    original = f"array-original-{name.split('-', 1)[-1] if name.startswith('array-') else tokenize(name)}"
    ndim = len(shape)
    if ndim == 0:
        layer = {(name,): (getter, original, quote([]), asarray, lock or None)}
        graph = LayeredGraph({original: {original: _raw(x)}, name: layer}, {name: {original}})
        return Array(graph, name, chunks, dtype, meta)
    numblocks = tuple(len(c) for c in chunks)
    labels = tuple(range(ndim))
    args = [("key", original, None, None), ("index", _SliceTable(chunks), labels)]
    func: Callable = getter
    if asarray or lock:
        func = partial(getter, asarray=asarray, lock=lock or None)
    layer = Blockwise(name, labels, numblocks, func, args)
    graph = LayeredGraph({original: {original: _raw(x)}, name: layer}, {name: {original}, original: set()})
    return Array(graph, name, chunks, dtype, meta)


def _raw(value: Any) -> Any:
    """``value`` as a graph entry that evaluates to itself."""
    if isinstance(value, (tuple, list, dict, str, bytes)):
        return (Literal(value),)
    return value


def asarray(a: Any, dtype: Any = None, order: Any = None, chunks: Any = "auto", **kwargs: Any) -> Array:
    """``a`` as a lazy Array: Arrays pass through (cast if ``dtype``), anything else via :func:`from_array`.

    >>> asarray([1, 2, 3]).compute().tolist()
    [1, 2, 3]
    """
    if isinstance(a, Array):
        return a if dtype is None else a.astype(dtype)
    if is_lazyarr_collection(a):
        raise TypeError(f"cannot convert the lazy {type(a).__name__} to an array; use from_delayed")
    if not (hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "__getitem__")) or dtype is not None:
        a = np.asarray(a, dtype=dtype, order=order)
    return from_array(a, chunks=chunks, **kwargs)


asanyarray = asarray
