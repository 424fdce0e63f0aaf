"""Reductions (sum, mean, var, min, argmin, any, ...) as tree reductions, and cumulative sums/products.

A reduction runs in three kinds of tasks:

1. **chunk**: one per block, reducing the block to a small *intermediate* (a NumPy array with
   length one along the reduced axes, or a dict of such arrays, e.g. ``{n, mean, M2}`` for the
   variance). This step is blockwise, so it fuses with the elementwise work before it: the block
   is generated, transformed and reduced in one task, then freed;
2. **combine**: groups of at most ``split_every`` intermediates along each reduced axis are merged,
   level after level, until one group remains;
3. **aggregate**: the last group becomes the result.

``split_every`` is an int (the total fan-in, shared between the reduced axes), a dict
``{axis: fan-in}``, or the ``array.split-every`` setting (8 by default).

The variance merges ``(count, mean, sum of squared deviations)`` triples with the parallel
formula of Chan et al., so it stays accurate when the mean is large compared to the spread.
"""
from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .. import config
from ..tokenize import tokenize
from ..utils import funcname
from .chunks import chunk_offsets, validate_axis
from .core import Array, asarray
from .layers import Blockwise, BlockLayer, LayeredGraph, quote

__all__ = [
    "reduction",
    "sum",
    "prod",
    "mean",
    "var",
    "std",
    "min",
    "max",
    "argmin",
    "argmax",
    "any",
    "all",
    "nansum",
    "nanprod",
    "nanmean",
    "nanvar",
    "nanstd",
    "nanmin",
    "nanmax",
    "nanargmin",
    "nanargmax",
    "count_nonzero",
    "cumsum",
    "cumprod",
    "nancumsum",
    "nancumprod",
    "normalize_axes",
]


# --------------------------------------------------------------------------------------------
# axes and fan-in
# --------------------------------------------------------------------------------------------

def normalize_axes(axis: Any, ndim: int, shape: tuple | None = None) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple, negatives counting from the end) as a sorted tuple.

    >>> normalize_axes(None, 3)
    (0, 1, 2)
    >>> normalize_axes((-1, 0), 3)
    (0, 2)
    """
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        axes = [validate_axis(a, ndim, shape) for a in axis]
    else:
        axes = [validate_axis(axis, ndim, shape)]
    if len(set(axes)) != len(axes):
        raise ValueError(f"duplicate value in axis={axis!r}")
    return tuple(sorted(axes))


def _fan_in(split_every: Any, axes: tuple) -> dict:
    if split_every is None:
        split_every = config.get("array.split-every", 8)
    if isinstance(split_every, dict):
        out = {}
        for a in axes:
            n = split_every.get(a, 2)
            if n is not None and (not isinstance(n, numbers.Integral) or n < 2):
                raise ValueError(f"split_every must be at least 2 on every reduced axis, got {n!r} for axis {a}")
            out[a] = int(n)
        return out
    if not isinstance(split_every, numbers.Integral) or split_every < 2:
        raise ValueError(f"split_every must be an integer of at least 2, got {split_every!r}")
    per_axis = builtins.max(int(split_every ** (1.0 / (len(axes) or 1))), 2)
    return dict.fromkeys(axes, per_axis)


# --------------------------------------------------------------------------------------------
# the generic tree reduction
# --------------------------------------------------------------------------------------------

def _concat_intermediates(nested: Any, axes: tuple) -> Any:
    """Join a nested list (one level per reduced axis) of intermediates along those axes."""
    if not axes:
        return nested
    if not isinstance(nested, list):
        return nested
    first = nested
    for _ in axes:
        first = first[0]
    if isinstance(first, dict):
        return {k: _concat_arrays(_pluck(nested, k, len(axes)), axes) for k in first}
    return _concat_arrays(nested, axes)


def _pluck(nested: Any, key: str, depth: int) -> Any:
    if depth == 0:
        return nested[key]
    return [_pluck(n, key, depth - 1) for n in nested]


def _concat_arrays(nested: Any, axes: tuple) -> np.ndarray:
    if not axes:
        return nested
    parts = [_concat_arrays(n, axes[1:]) for n in nested]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axes[0])


class _Combine:
    """Task function: join a group of intermediates, then apply ``func(group, axis=axes, **kw)``."""

    __slots__ = ("func", "axes", "kwargs")

    def __init__(self, func: Callable, axes: tuple, kwargs: dict):
        self.func = func
        self.axes = axes
        self.kwargs = kwargs

    def __call__(self, nested: Any) -> Any:
        return self.func(_concat_intermediates(nested, self.axes), axis=self.axes, **self.kwargs)

    def __reduce__(self):
        return (_Combine, (self.func, self.axes, self.kwargs))

    def __repr__(self) -> str:
        return f"_Combine({funcname(self.func)})"


class _GroupTask:
    """Task maker of one tree level: output block ``idx`` reads a group of input blocks.

    ``whole`` groups all remaining blocks along the reduced axes (the aggregate step);
    ``keep_axes`` says whether ``idx`` still has the reduced axes.
    """

    __slots__ = ("func", "in_name", "in_numblocks", "axes", "fan", "whole", "keep_axes")

    def __init__(self, func: Callable, in_name: str, in_numblocks: tuple, axes: tuple, fan: dict,
                 whole: bool, keep_axes: bool):
        self.func, self.in_name, self.in_numblocks = func, in_name, in_numblocks
        self.axes, self.fan, self.whole, self.keep_axes = axes, fan, whole, keep_axes

    def __call__(self, idx: tuple) -> tuple:
        axes, in_name = self.axes, self.in_name
        if self.keep_axes:
            full = list(idx)
        else:
            it = iter(idx)
            full = [0 if a in axes else next(it) for a in range(len(self.in_numblocks))]
        ranges = []
        for a in axes:
            if self.whole:
                ranges.append(range(self.in_numblocks[a]))
            else:
                start = full[a] * self.fan[a]
                ranges.append(range(start, builtins.min(start + self.fan[a], self.in_numblocks[a])))
        if len(axes) == 1:
            a = axes[0]
            before, after = (in_name,) + tuple(full[:a]), tuple(full[a + 1:])
            return (self.func, [before + (i,) + after for i in ranges[0]])

        def nest(level: int, where: list) -> Any:
            if level == len(axes):
                return (in_name,) + tuple(where)
            out = []
            for i in ranges[level]:
                where[axes[level]] = i
                out.append(nest(level + 1, where))
            return out

        return (self.func, nest(0, full))


def reduction(x: Any, chunk: Callable, aggregate: Callable, axis: Any = None, keepdims: bool = False,
              dtype: Any = None, split_every: Any = None, combine: Callable | None = None, name: str | None = None,
              token: str | None = None, chunk_args: Sequence = (), empty_error: str | None = None,
              meta_fn: Callable | None = None) -> Array:
    """A tree reduction of ``x`` over ``axis``.

    ``chunk(block, *chunk_args, axis=axes, keepdims=True)`` makes an intermediate per block;
    ``combine(group, axis=axes, keepdims=True)`` merges joined groups (``aggregate`` with
    ``keepdims=True`` if not given); ``aggregate(group, axis=axes, keepdims=keepdims)`` gives the
    result. ``chunk_args`` are extra per-block blockwise arguments (``('index', table, labels)``).
    ``dtype`` is the result dtype. ``empty_error`` names the operation that has no identity, so that
    reducing an empty axis raises now.
    """
    x = asarray(x)
    axes = normalize_axes(axis, x.ndim, x.shape)
    if empty_error is not None:
        for a in axes:
            if x.shape[a] == 0:
                raise ValueError(
                    f"{empty_error} of an empty axis: axis {a} of shape {x.shape} has length 0 and "
                    f"{empty_error} has no identity"
                )
    fan = _fan_in(split_every, axes)
    token = token or funcname(chunk).strip("_")
    tok = tokenize(x, chunk, aggregate, combine, axes, keepdims, dtype, fan, chunk_args) if name is None else name
    labels = tuple(range(x.ndim))
    chunk_name = f"{token}-chunk-{tok}"
    chunk_layer = Blockwise(
        chunk_name, labels, x.numblocks, partial(chunk, axis=axes, keepdims=True),
        [("key", x.name, labels, x.numblocks)] + list(chunk_args),
    )
    graph = LayeredGraph.from_collections(chunk_name, chunk_layer, [x])
    combine = combine or aggregate
    current, numblocks = chunk_name, x.numblocks
    level = 0
    while builtins.any(numblocks[a] > fan[a] for a in axes):
        new_blocks = tuple(math.ceil(n / fan[a]) if a in axes else n for a, n in enumerate(numblocks))
        level_name = f"{token}-combine{level}-{tok}"
        task = _GroupTask(_Combine(combine, axes, {"keepdims": True}), current, numblocks, axes, fan, False, True)
        graph.layers[level_name] = BlockLayer(level_name, new_blocks, task, reads=(current,))
        graph.dependencies[level_name] = {current}
        current, numblocks = level_name, new_blocks
        level += 1
    final_name = name or f"{token}-aggregate-{tok}"
    if keepdims:
        out_blocks = tuple(1 if a in axes else n for a, n in enumerate(numblocks))
        out_chunks = tuple((1,) if a in axes else c for a, c in enumerate(x.chunks))
    else:
        out_blocks = tuple(n for a, n in enumerate(numblocks) if a not in axes)
        out_chunks = tuple(c for a, c in enumerate(x.chunks) if a not in axes)
    task = _GroupTask(_Combine(aggregate, axes, {"keepdims": keepdims}), current, numblocks, axes, fan, True, keepdims)
    graph.layers[final_name] = BlockLayer(final_name, out_blocks, task, reads=(current,))
    graph.dependencies[final_name] = {current}
    return Array(graph, final_name, out_chunks, dtype)


def _result_dtype(fn: Callable, x: Array, what: str, **kwargs: Any) -> np.dtype:
    sample = np.ones((1,) * x.ndim, dtype=x.dtype) if x.dtype.kind not in "OSUV" else np.empty((0,), dtype=x.dtype)
    with np.errstate(all="ignore"):
        try:
            return np.asarray(fn(sample, **kwargs)).dtype
        except Exception as e:
            raise TypeError(f"cannot compute the {what} of an array of dtype {x.dtype}: {e}") from None


def _prepare(x: Any) -> Array:
    if not isinstance(x, Array):
        x = asarray(x)
    return x


# --------------------------------------------------------------------------------------------
# sum, prod, any, all, min, max
# --------------------------------------------------------------------------------------------

def _simple(fn: Callable, block: Any, axis: tuple, keepdims: bool, **kwargs: Any) -> Any:
    return fn(block, axis=axis, keepdims=keepdims, **kwargs)


def _sum_chunk(block: np.ndarray, axis: tuple, keepdims: bool, dtype: Any = None) -> np.ndarray:
    return np.sum(block, axis=axis, dtype=dtype, keepdims=keepdims)


def _sum_agg(group: np.ndarray, axis: tuple, keepdims: bool, dtype: Any = None) -> np.ndarray:
    return np.sum(group, axis=axis, dtype=dtype, keepdims=keepdims)


def _prod_chunk(block: np.ndarray, axis: tuple, keepdims: bool, dtype: Any = None) -> np.ndarray:
    return np.prod(block, axis=axis, dtype=dtype, keepdims=keepdims)


def _prod_agg(group: np.ndarray, axis: tuple, keepdims: bool, dtype: Any = None) -> np.ndarray:
    return np.prod(group, axis=axis, dtype=dtype, keepdims=keepdims)


def _nansum_chunk(block: np.ndarray, axis: tuple, keepdims: bool, dtype: Any = None) -> np.ndarray:
    return np.nansum(block, axis=axis, dtype=dtype, keepdims=keepdims)


def _nanprod_chunk(block: np.ndarray, axis: tuple, keepdims: bool, dtype: Any = None) -> np.ndarray:
    return np.nanprod(block, axis=axis, dtype=dtype, keepdims=keepdims)


def _sum_like(kind: str, chunk: Callable, agg: Callable, base: Callable, x: Any, axis: Any, dtype: Any,
              keepdims: bool, split_every: Any) -> Array:
    x = _prepare(x)
    out_dtype = _result_dtype(base, x, kind, dtype=dtype)
    return reduction(x, partial(chunk, dtype=out_dtype), partial(agg, dtype=out_dtype), axis=axis,
                     keepdims=keepdims, dtype=out_dtype, split_every=split_every, token=kind)


def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Sum of the elements over ``axis`` (all axes by default).

    >>> import lazyarr.array as da
    >>> int(da.arange(10, chunks=3).sum().compute())
    45
    """
    return _sum_like("sum", _sum_chunk, _sum_agg, np.sum, a, axis, dtype, keepdims, split_every)


def prod(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Product of the elements over ``axis``."""
    return _sum_like("prod", _prod_chunk, _prod_agg, np.prod, a, axis, dtype, keepdims, split_every)


def nansum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Sum over ``axis``, treating NaN as zero."""
    return _sum_like("nansum", _nansum_chunk, _sum_agg, np.nansum, a, axis, dtype, keepdims, split_every)


def nanprod(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Product over ``axis``, treating NaN as one."""
    return _sum_like("nanprod", _nanprod_chunk, _prod_agg, np.nanprod, a, axis, dtype, keepdims, split_every)


def _any_chunk(block: np.ndarray, axis: tuple, keepdims: bool) -> np.ndarray:
    return np.any(block, axis=axis, keepdims=keepdims)


def _all_chunk(block: np.ndarray, axis: tuple, keepdims: bool) -> np.ndarray:
    return np.all(block, axis=axis, keepdims=keepdims)


def any(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Whether any element over ``axis`` is true."""
    a = _prepare(a)
    return reduction(a, _any_chunk, _any_chunk, axis=axis, keepdims=keepdims, dtype=bool,
                     split_every=split_every, token="any")


def all(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Whether all elements over ``axis`` are true."""
    a = _prepare(a)
    return reduction(a, _all_chunk, _all_chunk, axis=axis, keepdims=keepdims, dtype=bool,
                     split_every=split_every, token="all")


def _count_chunk(block: np.ndarray, axis: tuple, keepdims: bool) -> np.ndarray:
    return np.count_nonzero(block, axis=axis, keepdims=keepdims).astype(np.intp, copy=False)


def count_nonzero(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Number of non-zero elements over ``axis``."""
    a = _prepare(a)
    return reduction(a, _count_chunk, partial(_sum_agg, dtype=np.intp), axis=axis, keepdims=keepdims,
                     dtype=np.intp, split_every=split_every, token="count_nonzero")


def _identity_for(dtype: np.dtype, kind: str) -> Any:
    """The value that never wins a min (``kind='min'``) or max."""
    if dtype.kind == "f":
        return np.inf if kind == "min" else -np.inf
    if dtype.kind == "c":
        return complex(np.inf, np.inf) if kind == "min" else complex(-np.inf, -np.inf)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.max if kind == "min" else info.min
    if dtype.kind == "b":
        return kind == "min"
    if dtype.kind in "mM":
        return np.array(np.iinfo(np.int64).max if kind == "min" else np.iinfo(np.int64).min + 1).astype(dtype)
    return None


def _minmax(ufunc: np.ufunc, block: np.ndarray, axis: tuple, keepdims: bool, initial: Any) -> np.ndarray:
    if initial is not None:
        return ufunc.reduce(block, axis=axis, keepdims=keepdims, initial=initial)
    # fmin/fmax on floats: NaN is the identity (ignored), so empty blocks become NaN
    if builtins.any(block.shape[a] == 0 for a in axis):
        shape = tuple(1 if a in axis else n for a, n in enumerate(block.shape))
        if not keepdims:
            shape = tuple(n for a, n in enumerate(block.shape) if a not in axis)
        return np.full(shape, np.nan, dtype=block.dtype)
    return ufunc.reduce(block, axis=axis, keepdims=keepdims)


def _minmax_reduction(kind: str, ufunc: np.ufunc, a: Any, axis: Any, keepdims: bool, split_every: Any) -> Array:
    a = _prepare(a)
    if a.dtype.kind in "OSUV":
        raise TypeError(f"cannot compute the {kind} of an array of dtype {a.dtype} lazily")
    if ufunc in (np.fmin, np.fmax) and a.dtype.kind in "fc":
        initial = None
    else:
        initial = _identity_for(a.dtype, "min" if ufunc in (np.minimum, np.fmin) else "max")
    func = partial(_minmax, ufunc, initial=initial)
    return reduction(a, func, func, axis=axis, keepdims=keepdims, dtype=a.dtype, split_every=split_every,
                     token=kind, empty_error=f"{kind}")


def min(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Minimum over ``axis`` (NaN propagates, as in NumPy).

    >>> import lazyarr.array as da
    >>> int(da.arange(5, chunks=2).min().compute())
    0
    """
    return _minmax_reduction("min", np.minimum, a, axis, keepdims, split_every)


def max(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Maximum over ``axis`` (NaN propagates)."""
    return _minmax_reduction("max", np.maximum, a, axis, keepdims, split_every)


def nanmin(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Minimum over ``axis`` ignoring NaN (NaN where all are NaN)."""
    return _minmax_reduction("nanmin", np.fmin, a, axis, keepdims, split_every)


def nanmax(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Maximum over ``axis`` ignoring NaN (NaN where all are NaN)."""
    return _minmax_reduction("nanmax", np.fmax, a, axis, keepdims, split_every)


amin, amax = min, max


# --------------------------------------------------------------------------------------------
# mean, var, std
# --------------------------------------------------------------------------------------------

def _count(block: np.ndarray, axis: tuple, keepdims: bool, nan: bool) -> np.ndarray:
    if nan and block.dtype.kind in "fc":
        return np.sum(~np.isnan(block), axis=axis, keepdims=keepdims, dtype=np.int64)
    shape = tuple(1 if a in axis else n for a, n in enumerate(block.shape))
    if not keepdims:
        shape = tuple(n for a, n in enumerate(block.shape) if a not in axis)
    return np.full(shape, math.prod(block.shape[a] for a in axis), dtype=np.int64)


def _mean_chunk(block: np.ndarray, axis: tuple, keepdims: bool, dtype: Any, nan: bool) -> dict:
    total = (np.nansum if nan else np.sum)(block, axis=axis, dtype=dtype, keepdims=True)
    return {"n": _count(block, axis, True, nan), "total": total}


def _mean_combine(group: dict, axis: tuple, keepdims: bool, dtype: Any) -> dict:
    return {"n": np.sum(group["n"], axis=axis, keepdims=True),
            "total": np.sum(group["total"], axis=axis, dtype=dtype, keepdims=True)}


def _mean_agg(group: dict, axis: tuple, keepdims: bool, dtype: Any, out_dtype: np.dtype) -> np.ndarray:
    n = np.sum(group["n"], axis=axis, keepdims=keepdims)
    total = np.sum(group["total"], axis=axis, dtype=dtype, keepdims=keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = total / n
    return np.asarray(result).astype(out_dtype, copy=False) if np.ndim(result) else out_dtype.type(result)


def _mean_like(kind: str, a: Any, axis: Any, dtype: Any, keepdims: bool, split_every: Any, nan: bool) -> Array:
    a = _prepare(a)
    out_dtype = _result_dtype(np.nanmean if nan else np.mean, a, kind, dtype=dtype)
    if dtype is not None:
        acc = dtype
    elif a.dtype.kind in "iub":
        acc = np.float64
    else:
        acc = np.float32 if out_dtype == np.float16 else out_dtype
    return reduction(
        a, partial(_mean_chunk, dtype=acc, nan=nan), partial(_mean_agg, dtype=acc, out_dtype=out_dtype),
        combine=partial(_mean_combine, dtype=acc), axis=axis, keepdims=keepdims, dtype=out_dtype,
        split_every=split_every, token=kind,
    )


def mean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Arithmetic mean over ``axis``.

    >>> import lazyarr.array as da
    >>> float(da.arange(10, chunks=3).mean().compute())
    4.5
    """
    return _mean_like("mean", a, axis, dtype, keepdims, split_every, nan=False)


def nanmean(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Mean over ``axis`` ignoring NaN."""
    return _mean_like("nanmean", a, axis, dtype, keepdims, split_every, nan=True)


def _abs2(d: np.ndarray) -> np.ndarray:
    if d.dtype.kind == "c":
        return d.real * d.real + d.imag * d.imag
    return d * d


def _moment_chunk(block: np.ndarray, axis: tuple, keepdims: bool, dtype: Any, nan: bool) -> dict:
    if dtype is not None:
        block = block.astype(dtype, copy=False)
    elif block.dtype.kind in "iub":
        block = block.astype(np.float64)
    n = _count(block, axis, True, nan)
    total = (np.nansum if nan else np.sum)(block, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = total / n
    sq = _abs2(block - mu)
    m2 = (np.nansum if nan else np.sum)(sq, axis=axis, keepdims=True)
    return {"n": n, "mean": mu, "M2": m2}


def _moment_merge(group: dict, axis: tuple, keepdims: bool) -> tuple:
    n_i, mu_i, m2_i = group["n"], group["mean"], group["M2"]
    n = np.sum(n_i, axis=axis, keepdims=True)
    safe_mu = np.where(n_i > 0, mu_i, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.sum(n_i * safe_mu, axis=axis, keepdims=True) / n
    spread = np.where(n_i > 0, _abs2(safe_mu - mu), 0)
    m2 = np.sum(np.where(n_i > 0, m2_i, 0), axis=axis, keepdims=True) + np.sum(n_i * spread, axis=axis, keepdims=True)
    if not keepdims:
        n, mu, m2 = (np.squeeze(v, axis=axis) for v in (n, mu, m2))
    return n, mu, m2


def _moment_combine(group: dict, axis: tuple, keepdims: bool) -> dict:
    n, mu, m2 = _moment_merge(group, axis, True)
    return {"n": n, "mean": mu, "M2": m2}


def _var_agg(group: dict, axis: tuple, keepdims: bool, ddof: int, out_dtype: np.dtype, root: bool) -> Any:
    n, _, m2 = _moment_merge(group, axis, keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = np.maximum(n - ddof, 0)
        result = m2 / denom
        if root:
            result = np.sqrt(result)
    result = np.asarray(result).astype(out_dtype, copy=False)
    return result if result.ndim else out_dtype.type(result)


def _var_like(kind: str, a: Any, axis: Any, dtype: Any, keepdims: bool, ddof: int, split_every: Any, nan: bool,
              root: bool) -> Array:
    a = _prepare(a)
    if not isinstance(ddof, numbers.Real):
        raise TypeError(f"ddof must be a number, got {ddof!r}")
    base = {("var", False): np.var, ("var", True): np.nanvar, ("std", False): np.std, ("std", True): np.nanstd}
    out_dtype = _result_dtype(base[("std" if root else "var", nan)], a, kind, dtype=dtype)
    return reduction(
        a, partial(_moment_chunk, dtype=dtype, nan=nan),
        partial(_var_agg, ddof=ddof, out_dtype=out_dtype, root=root), combine=_moment_combine,
        axis=axis, keepdims=keepdims, dtype=out_dtype, split_every=split_every, token=kind,
    )


def var(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, ddof: int = 0,
        split_every: Any = None) -> Array:
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom.

    >>> import lazyarr.array as da
    >>> float(da.arange(10, chunks=3).var().compute())
    8.25
    """
    return _var_like("var", a, axis, dtype, keepdims, ddof, split_every, nan=False, root=False)


def std(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, ddof: int = 0,
        split_every: Any = None) -> Array:
    """Standard deviation over ``axis``."""
    return _var_like("std", a, axis, dtype, keepdims, ddof, split_every, nan=False, root=True)


def nanvar(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, ddof: int = 0,
           split_every: Any = None) -> Array:
    """Variance over ``axis`` ignoring NaN."""
    return _var_like("nanvar", a, axis, dtype, keepdims, ddof, split_every, nan=True, root=False)


def nanstd(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False, ddof: int = 0,
           split_every: Any = None) -> Array:
    """Standard deviation over ``axis`` ignoring NaN."""
    return _var_like("nanstd", a, axis, dtype, keepdims, ddof, split_every, nan=True, root=True)


# --------------------------------------------------------------------------------------------
# argmin / argmax
# --------------------------------------------------------------------------------------------

_NO_INDEX = np.iinfo(np.int64).max


class _Offsets:
    """``table[idx]`` is the global position of block ``idx``'s first element (per axis)."""

    __slots__ = ("offsets",)

    def __init__(self, chunks: tuple):
        self.offsets = chunk_offsets(chunks)

    def __getitem__(self, idx: tuple) -> tuple:
        return tuple(o[i] for o, i in zip(self.offsets, idx))


def _pick(values: np.ndarray, index: np.ndarray, axis: tuple, kind: str, nan: bool) -> tuple:
    """Best value over ``axis`` and the smallest global index holding it (keepdims)."""
    if kind == "min":
        best = (np.fmin if nan else np.minimum).reduce(values, axis=axis, keepdims=True)
    else:
        best = (np.fmax if nan else np.maximum).reduce(values, axis=axis, keepdims=True)
    hit = values == best
    if values.dtype.kind in "fc":
        hit |= np.isnan(values) & np.isnan(best)
    hit &= index != _NO_INDEX
    idx = np.where(hit, index, _NO_INDEX).min(axis=axis, keepdims=True)
    return best, idx


def _arg_chunk(block: np.ndarray, offsets: tuple, axis: tuple, keepdims: bool, kind: str, nan: bool,
               shape: tuple, flat: bool) -> dict:
    out_shape = tuple(1 if a in axis else n for a, n in enumerate(block.shape))
    if block.size == 0:
        fill = _identity_for(block.dtype, kind) if not nan else np.nan
        return {"v": np.full(out_shape, fill if fill is not None else 0, dtype=block.dtype),
                "i": np.full(out_shape, _NO_INDEX, dtype=np.int64)}
    if flat:
        if nan:
            grid = np.indices(block.shape, sparse=True)
            glob = np.ravel_multi_index(tuple(g + o for g, o in zip(grid, offsets)), shape)
            v, i = _pick(block, np.broadcast_to(glob, block.shape), axis, kind, nan)
            return {"v": v, "i": i.astype(np.int64)}
        local = int(np.argmin(block) if kind == "min" else np.argmax(block))
        where = np.unravel_index(local, block.shape)
        glob = np.ravel_multi_index(tuple(w + o for w, o in zip(where, offsets)), shape)
        return {"v": np.full(out_shape, block[where], dtype=block.dtype), "i": np.full(out_shape, glob, dtype=np.int64)}
    (a,) = axis
    if nan:
        pos = np.arange(block.shape[a], dtype=np.int64) + offsets[a]
        pos = pos.reshape(tuple(-1 if d == a else 1 for d in range(block.ndim)))
        v, i = _pick(block, np.broadcast_to(pos, block.shape), axis, kind, nan)
        return {"v": v, "i": i}
    local = (np.argmin if kind == "min" else np.argmax)(block, axis=a, keepdims=True)
    v = np.take_along_axis(block, local, axis=a)
    return {"v": v, "i": local.astype(np.int64) + offsets[a]}


def _arg_combine(group: dict, axis: tuple, keepdims: bool, kind: str, nan: bool) -> dict:
    v, i = _pick(group["v"], group["i"], axis, kind, nan)
    return {"v": v, "i": i}


def _arg_agg(group: dict, axis: tuple, keepdims: bool, kind: str, nan: bool, flat: bool, ndim: int) -> Any:
    v, i = _pick(group["v"], group["i"], axis, kind, nan)
    if nan and v.dtype.kind in "fc" and np.isnan(v).any():
        raise ValueError(f"All-NaN slice encountered in nanarg{kind}")
    if not keepdims:
        i = np.squeeze(i, axis=axis)
    i = i.astype(np.intp, copy=False)
    return i if i.ndim else np.intp(i)


def _arg_reduction(kind: str, a: Any, axis: Any, keepdims: bool, split_every: Any, nan: bool) -> Array:
    a = _prepare(a)
    name = f"{'nan' if nan else ''}arg{kind}"
    if a.dtype.kind in "OSUV":
        raise TypeError(f"cannot compute the {name} of an array of dtype {a.dtype} lazily")
    if axis is not None and not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} takes one integer axis or None, got axis={axis!r}")
    flat = axis is None
    axes = normalize_axes(axis, a.ndim, a.shape)
    if builtins.any(a.shape[ax] == 0 for ax in axes) or (flat and a.size == 0):
        raise ValueError(f"attempt to get {name} of an empty sequence (shape {a.shape}, axis={axis})")
    labels = tuple(range(a.ndim))
    chunk = partial(_arg_chunk, kind=kind, nan=nan, shape=a.shape, flat=flat)
    chunk_args = [("index", _Offsets(a.chunks), labels)]
    out = reduction(
        a, _ArgChunkOrder(chunk), partial(_arg_agg, kind=kind, nan=nan, flat=flat, ndim=a.ndim),
        combine=partial(_arg_combine, kind=kind, nan=nan), axis=axes, keepdims=keepdims, dtype=np.intp,
        split_every=split_every, token=name, chunk_args=chunk_args,
    )
    return out


class _ArgChunkOrder:
    """Adapts ``chunk(block, offsets, axis=, keepdims=)`` to the reduction's call convention."""

    __slots__ = ("func",)

    def __init__(self, func: Callable):
        self.func = func

    def __call__(self, block: np.ndarray, offsets: tuple, axis: tuple, keepdims: bool) -> dict:
        return self.func(block, offsets, axis=axis, keepdims=keepdims)

    def __reduce__(self):
        return (_ArgChunkOrder, (self.func,))


def argmin(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Index of the first minimum along ``axis`` (into the flattened array if ``axis`` is None).

    >>> import lazyarr.array as da, numpy as np
    >>> int(da.from_array(np.array([3, 1, 2, 1]), chunks=2).argmin().compute())
    1
    """
    return _arg_reduction("min", a, axis, keepdims, split_every, nan=False)


def argmax(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Index of the first maximum along ``axis`` (flattened if None)."""
    return _arg_reduction("max", a, axis, keepdims, split_every, nan=False)


def nanargmin(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Index of the first minimum ignoring NaN (an all-NaN slice is an error when computed)."""
    return _arg_reduction("min", a, axis, keepdims, split_every, nan=True)


def nanargmax(a: Any, axis: Any = None, keepdims: bool = False, split_every: Any = None) -> Array:
    """Index of the first maximum ignoring NaN."""
    return _arg_reduction("max", a, axis, keepdims, split_every, nan=True)


# --------------------------------------------------------------------------------------------
# cumulative sums and products
# --------------------------------------------------------------------------------------------

def _cum_block(block: np.ndarray, func: Callable, axis: int, dtype: Any) -> np.ndarray:
    return func(block, axis=axis, dtype=dtype)


def _last(block: np.ndarray, axis: int, identity: Any) -> np.ndarray:
    if block.shape[axis] == 0:
        shape = tuple(1 if a == axis else n for a, n in enumerate(block.shape))
        return np.full(shape, identity, dtype=block.dtype)
    index = [slice(None)] * block.ndim
    index[axis] = slice(-1, None)
    return block[tuple(index)]


def _apply_carry(block: np.ndarray, carry: np.ndarray, op: Callable) -> np.ndarray:
    return op(block, carry)


class _CarryTask:
    """Task maker of the running carry: block ``k`` of the carry combines carry ``k-1`` with the
    last slice of block ``k-1`` (the identity for the first block)."""

    __slots__ = ("name", "last_name", "axis", "chunks", "op", "identity", "dtype")

    def __init__(self, name: str, last_name: str, axis: int, chunks: tuple, op: Callable, identity: Any,
                 dtype: np.dtype):
        self.name, self.last_name, self.axis, self.chunks = name, last_name, axis, chunks
        self.op, self.identity, self.dtype = op, identity, dtype

    def __call__(self, idx: tuple) -> Any:
        axis = self.axis
        k = idx[axis]
        if k == 0:
            shape = tuple(1 if d == axis else self.chunks[d][i] for d, i in enumerate(idx))
            return (np.full, quote(shape), self.identity, self.dtype)
        before = idx[:axis] + (k - 1,) + idx[axis + 1:]
        return (self.op, (self.name,) + before, (self.last_name,) + before)


def _cumulative(kind: str, func: Callable, op: Callable, identity: Any, a: Any, axis: Any, dtype: Any) -> Array:
    a = _prepare(a)
    if axis is None:
        if a.ndim != 1:
            a = a.ravel()
        axis = 0
    axis = validate_axis(axis, a.ndim, a.shape)
    try:
        out_dtype = func(np.ones((1,) * a.ndim, dtype=a.dtype), axis=axis, dtype=dtype).dtype
    except Exception as e:
        raise TypeError(f"cannot compute the {kind} of an array of dtype {a.dtype}: {e}") from None
    token = tokenize(a, kind, axis, out_dtype)
    labels = tuple(range(a.ndim))
    local_name = f"{kind}-local-{token}"
    local = Blockwise(local_name, labels, a.numblocks, partial(_cum_block, func=func, axis=axis, dtype=out_dtype),
                      [("key", a.name, labels, a.numblocks)])
    graph = LayeredGraph.from_collections(local_name, local, [a])
    last_name = f"{kind}-last-{token}"
    graph.layers[last_name] = Blockwise(last_name, labels, a.numblocks,
                                        partial(_last, axis=axis, identity=identity),
                                        [("key", local_name, labels, a.numblocks)])
    graph.dependencies[last_name] = {local_name}
    carry_name = f"{kind}-carry-{token}"
    carry_task = _CarryTask(carry_name, last_name, axis, a.chunks, op, identity, out_dtype)
    graph.layers[carry_name] = BlockLayer(carry_name, a.numblocks, carry_task)
    graph.dependencies[carry_name] = {last_name}
    out_name = f"{kind}-{token}"
    graph.layers[out_name] = Blockwise(out_name, labels, a.numblocks, partial(_apply_carry, op=op),
                                       [("key", local_name, labels, a.numblocks),
                                        ("key", carry_name, labels, a.numblocks)])
    graph.dependencies[out_name] = {local_name, carry_name}
    return Array(graph, out_name, a.chunks, out_dtype)


def cumsum(a: Any, axis: Any = None, dtype: Any = None) -> Array:
    """Cumulative sum along ``axis`` (of the flattened array if None); blocks are carried in order.

    >>> import lazyarr.array as da
    >>> da.arange(5, chunks=2).cumsum().compute().tolist()
    [0, 1, 3, 6, 10]
    """
    return _cumulative("cumsum", np.cumsum, np.add, 0, a, axis, dtype)


def cumprod(a: Any, axis: Any = None, dtype: Any = None) -> Array:
    """Cumulative product along ``axis`` (flattened if None)."""
    return _cumulative("cumprod", np.cumprod, np.multiply, 1, a, axis, dtype)


def nancumsum(a: Any, axis: Any = None, dtype: Any = None) -> Array:
    """Cumulative sum treating NaN as zero."""
    return _cumulative("nancumsum", np.nancumsum, np.add, 0, a, axis, dtype)


def nancumprod(a: Any, axis: Any = None, dtype: Any = None) -> Array:
    """Cumulative product treating NaN as one."""
    return _cumulative("nancumprod", np.nancumprod, np.multiply, 1, a, axis, dtype)

