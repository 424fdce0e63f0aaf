"""Counting values into bins: histogram, histogram2d, histogramdd, bincount.

Every block is counted on its own with NumPy, against the same bin edges, into an array with
one extra length-one axis per axis of the input; the counts are then added up by the usual
tree reduction (:func:`~lazyarr.array.sum`). The edges have to be known before counting: give
them as an array, or give a number of bins together with ``range=(low, high)`` as Dask
requires (NumPy would look at the data for the range; ``range=(x.min(), x.max())`` with lazy
bounds works for ``histogram``).
"""
from __future__ import annotations

import math
import numbers
from functools import partial
from typing import Any

import numpy as np

from .. import config
from ..tokenize import tokenize
from .core import Array, asarray, blockwise, new_array
from .layers import LayeredGraph
from .routines import stack

__all__ = ["histogram", "histogram2d", "histogramdd", "bincount"]

range_ = range  # the functions below shadow the builtin with their ``range`` argument, as NumPy's do


# --------------------------------------------------------------------------------------------
# bin edges
# --------------------------------------------------------------------------------------------

def _unsigned_subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` for bin edges, in the unsigned type for signed integers (as NumPy, so wide
    integer bins do not overflow)."""
    dt = np.result_type(a, b)
    if dt.kind == "i":
        unsigned = np.dtype(dt.str.replace("i", "u"))
        return np.subtract(np.asarray(a, dtype=dt), np.asarray(b, dtype=dt), casting="unsafe", dtype=unsigned)
    return np.subtract(a, b, dtype=dt)


def _widths(edges: np.ndarray) -> np.ndarray:
    return _unsigned_subtract(edges[1:], edges[:-1])


def _edges_from_range(bounds: Any, bins: int, dtype: np.dtype) -> np.ndarray:
    low, high = (np.asarray(b).item() for b in bounds)
    return np.histogram_bin_edges(np.empty(0, dtype=dtype), bins=bins, range=(low, high))


def _lazy_edges(bins: Any, range: Any, dtype: np.dtype) -> Array | None:
    """The edges as a lazy 1-d array when ``bins`` or a bound of ``range`` is lazy, else None."""
    if isinstance(bins, Array):
        if range is not None:
            raise ValueError("histogram: give either bin edges or range=, not both")
        if bins.ndim != 1:
            raise ValueError(f"histogram: bin edges must be 1-d, got shape {bins.shape}")
        return bins.rechunk(-1)
    if range is None or not any(isinstance(b, Array) for b in range):
        return None
    bounds = [asarray(b) for b in range]
    if any(b.ndim != 0 for b in bounds):
        raise ValueError("histogram: the bounds in range= must be scalars")
    bins = int(bins)
    name = f"histogram-edges-{tokenize(bounds, bins, dtype)}"
    layer = {(name, 0): (_edges_from_range, [(b.name,) for b in bounds], bins, dtype)}
    edge_dtype = np.histogram_bin_edges(np.empty(0, dtype=dtype), bins=1, range=(0, 1)).dtype
    return new_array(name, layer, bounds, ((bins + 1,),), edge_dtype)


def _concrete_spec(a: Array, bins: Any, range: Any) -> tuple[Any, Any, np.ndarray]:
    """``(bins, range)`` to hand to ``np.histogram`` for every block, and the bin edges."""
    if isinstance(bins, str):
        raise ValueError(f"histogram: bins={bins!r} needs the whole data to choose the bins; give bin edges or "
                         "an int number of bins with range=(low, high)")
    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        if range is None:
            raise ValueError("histogram needs either bins as an array of edges, or an int number of bins together "
                             "with range=(low, high)")
        edges = np.histogram_bin_edges(np.empty(0, dtype=a.dtype), bins=int(bins), range=range)
        return int(bins), tuple(range), edges
    if bins is None:
        raise ValueError("histogram needs bins: an array of edges, or an int number of bins with range=(low, high)")
    edges = np.asarray(bins)
    if range is not None:
        raise ValueError("histogram: give either bin edges or range=, not both")
    np.histogram_bin_edges(np.empty(0, dtype=a.dtype), bins=edges)  # NumPy checks 1-d and increasing
    return edges, None, edges


# --------------------------------------------------------------------------------------------
# histogram
# --------------------------------------------------------------------------------------------

def _block_counts(block: np.ndarray, *rest: Any, bins: Any, range: Any, weighted: bool, edges_given: bool) -> Any:
    rest = list(rest)
    weights = rest.pop(0) if weighted else None
    if edges_given:
        bins = rest.pop(0)
    counts, _ = np.histogram(block, bins=bins, range=range, weights=weights)
    return counts.reshape((1,) * block.ndim + counts.shape)


def _density(counts: Array, widths: Any) -> Array:
    return counts / widths / counts.sum()  # NumPy's order of operations, for the same rounding


def histogram(a: Any, bins: Any = None, range: Any = None, normed: bool = False, weights: Any = None,
              density: bool | None = None) -> tuple[Array, Any]:
    """Counts of the values of ``a`` in bins, like ``np.histogram``: returns ``(hist, bin_edges)``.

    ``bins`` is an int number of bins (``range=(low, high)`` is then required; the bounds may
    be lazy scalars) or the bin edges (a NumPy or lazy 1-d array). ``bin_edges`` is a NumPy
    array unless the edges are lazy. ``weights`` has ``a``'s shape; ``density=True`` divides
    the counts by their total times the bin widths.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.array([0.5, 1.5, 1.7, 2.0, 9.0]), chunks=2)
    >>> hist, edges = histogram(x, bins=3, range=(0, 3))
    >>> hist.compute().tolist(), edges.tolist()
    ([1, 2, 1], [0.0, 1.0, 2.0, 3.0])
    """
    if normed:
        raise ValueError("histogram: normed= was removed from NumPy; use density=True")
    a = asarray(a)
    if a.ndim == 0:
        a = a.reshape(1)
    lazy_edges = _lazy_edges(bins, range, a.dtype)
    if lazy_edges is None:
        block_bins, block_range, edges = _concrete_spec(a, bins, range)
        nbins = len(edges) - 1
    else:
        block_bins, block_range, edges = None, None, lazy_edges
        nbins = lazy_edges.shape[0] - 1
    ind = tuple(range_(a.ndim))
    args: list = [a, ind]
    if weights is not None:
        weights = asarray(weights)
        if weights.shape != a.shape and not (weights.ndim == 0 and a.shape == (1,)):
            raise ValueError(f"histogram: weights of shape {weights.shape} must have the shape of a, {a.shape}")
        args += [weights.reshape(a.shape), ind]
    if lazy_edges is not None:
        args += [lazy_edges, ("edges",)]
    count_dtype = np.histogram(np.empty(0), bins=1, range=(0, 1),
                               weights=None if weights is None else np.empty(0, dtype=weights.dtype))[0].dtype
    fn = partial(_block_counts, bins=block_bins, range=block_range, weighted=weights is not None,
                 edges_given=lazy_edges is not None)
    per_block = blockwise(fn, ind + ("bin",), *args, new_axes={"bin": nbins}, adjust_chunks=dict.fromkeys(ind, 1),
                          dtype=count_dtype, concatenate=True)
    counts = per_block.sum(axis=ind, dtype=count_dtype)
    if density:
        widths = _widths(edges) if lazy_edges is None else edges.map_blocks(_widths, chunks=((nbins,),))
        counts = _density(counts, widths)
    return counts, edges


# --------------------------------------------------------------------------------------------
# histogramdd / histogram2d
# --------------------------------------------------------------------------------------------

def _as_sample(sample: Any) -> Array:
    """The sample as one lazy (N, D) array in a single column chunk."""
    if isinstance(sample, (list, tuple)):
        columns = [asarray(s) for s in sample]
        if any(c.ndim != 1 for c in columns):
            raise ValueError("histogramdd: a sequence sample must hold 1-d arrays of coordinates")
        sample = stack(columns, axis=1)
    sample = asarray(sample)
    if sample.ndim == 1:
        sample = sample[:, None]
    if sample.ndim != 2:
        raise ValueError(f"histogramdd: the sample must be (N, D) or a sequence of D 1-d arrays, got shape "
                         f"{sample.shape}")
    return sample.rechunk({1: -1}) if sample.numblocks[1] > 1 else sample


def _dd_edges(sample: Array, bins: Any, range: Any) -> list:
    d = sample.shape[1]
    if any(isinstance(b, Array) for b in (bins if isinstance(bins, (list, tuple)) else [bins])):
        raise NotImplementedError("histogramdd with lazy bins is not supported; give NumPy bin edges")
    try:
        per_axis = list(bins)
    except TypeError:  # one number of bins for every dimension
        per_axis = [bins] * d
    if len(per_axis) != d:
        raise ValueError(f"histogramdd: {len(per_axis)} bin specifications for a sample of {d} dimensions")
    ranges = list(range) if range is not None else [None] * d
    for i, (b, r) in enumerate(zip(per_axis, ranges)):
        if np.ndim(b) == 0 and r is None:
            raise ValueError(f"histogramdd needs range=(low, high) for dimension {i}, whose bins are given as a "
                             "number (or give the bin edges)")
        if r is not None and any(isinstance(v, Array) for v in r):
            raise NotImplementedError("histogramdd with lazy range bounds is not supported")
    empty = np.empty((0, d), dtype=sample.dtype)
    return np.histogramdd(empty, bins=per_axis, range=range)[1]


def _dd_block(block: np.ndarray, *weights: np.ndarray, edges: list) -> np.ndarray:
    counts, _ = np.histogramdd(block, bins=edges, weights=weights[0] if weights else None)
    return counts[np.newaxis]


def histogramdd(sample: Any, bins: Any = 10, range: Any = None, normed: bool | None = None, weights: Any = None,
                density: bool | None = None) -> tuple[Array, list]:
    """The multidimensional histogram of ``sample`` (``np.histogramdd``): ``(hist, edges)``.

    ``sample`` is an (N, D) array or a sequence of D 1-d arrays; it is rechunked to a single
    chunk along D. Bins given as numbers need ``range`` (one ``(low, high)`` per dimension).

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.array([0.1, 0.6, 0.7, 0.2]), chunks=3)
    >>> y = la.from_array(np.array([0.9, 0.1, 0.8, 0.3]), chunks=3)
    >>> hist, edges = histogramdd([x, y], bins=2, range=[(0, 1), (0, 1)])
    >>> hist.compute().tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    if normed:
        raise ValueError("histogramdd: normed= was removed from NumPy; use density=True")
    sample = _as_sample(sample)
    edges = _dd_edges(sample, bins, range)
    nbins = tuple(len(e) - 1 for e in edges)
    args: list = [sample, ("n", "d")]
    if weights is not None:
        weights = asarray(weights)
        if weights.shape != (sample.shape[0],):
            raise ValueError(f"histogramdd: weights of shape {weights.shape} must have one value per sample point "
                             f"({sample.shape[0]})")
        args += [weights, ("n",)]
    dtype = np.histogramdd(np.empty((0, len(edges))), bins=edges,
                           weights=None if weights is None else np.empty(0, dtype=weights.dtype))[0].dtype
    labels = tuple(f"bin{i}" for i in range_(len(edges)))
    per_block = blockwise(partial(_dd_block, edges=edges), ("n",) + labels, *args, adjust_chunks={"n": 1},
                          new_axes=dict(zip(labels, nbins)), dtype=dtype, concatenate=True)
    hist = per_block.sum(axis=0, dtype=dtype)
    if density:
        total = hist.sum()
        for i, e in enumerate(edges):
            shape = [1] * len(edges)
            shape[i] = nbins[i]
            hist = hist / np.diff(e).reshape(shape)
        hist = hist / total
    return hist, edges


def histogram2d(x: Any, y: Any, bins: Any = 10, range: Any = None, normed: bool | None = None,
                weights: Any = None, density: bool | None = None) -> tuple[Array, np.ndarray, np.ndarray]:
    """The 2-d histogram of the points ``(x, y)`` (``np.histogram2d``): ``(hist, xedges, yedges)``.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.array([0.1, 0.6, 0.7]), chunks=2)
    >>> hist, xe, ye = histogram2d(x, x, bins=[1, 2], range=[(0, 1), (0, 1)])
    >>> hist.compute().tolist()
    [[1.0, 2.0]]
    """
    try:
        n = len(bins)
    except TypeError:
        n = 1
    if n not in (1, 2):  # one array of edges for both axes, as NumPy
        edges = np.asarray(bins)
        bins = [edges, edges]
    hist, edges = histogramdd([x, y], bins=bins, range=range, normed=normed, weights=weights, density=density)
    return hist, edges[0], edges[1]


# --------------------------------------------------------------------------------------------
# bincount
# --------------------------------------------------------------------------------------------

def _bincount_block(block: np.ndarray, *weights: np.ndarray, minlength: int) -> np.ndarray:
    return np.bincount(block, weights=weights[0] if weights else None, minlength=minlength)


def _add_padded(counts: list, dtype: np.dtype) -> np.ndarray:
    out = np.zeros(max(len(c) for c in counts), dtype=dtype)
    for c in counts:
        out[:len(c)] += c
    return out


def _check_length(counts: np.ndarray, minlength: int) -> np.ndarray:
    if len(counts) != minlength:
        raise ValueError(f"bincount: x holds values up to {len(counts) - 1}, but minlength={minlength} fixed the "
                         f"length of the result at {minlength}; pass a larger minlength, or minlength=0 for a result "
                         "of unknown length")
    return counts


def bincount(x: Any, weights: Any = None, minlength: int = 0, split_every: int | None = None) -> Array:
    """Number of occurrences (or summed ``weights``) of every non-negative integer in the 1-d ``x``.

    The length of the result depends on the largest value, so it is unknown (``nan``) unless
    ``minlength`` is given, as in Dask. A given ``minlength`` fixes the length: values of
    ``minlength`` or more then raise an error when computed (NumPy would make the result longer).
    Block counts are added ``split_every`` at a time.

    >>> import numpy as np, lazyarr.array as la
    >>> bincount(la.from_array(np.array([0, 1, 1, 3]), chunks=2), minlength=5).compute().tolist()
    [1, 2, 0, 1, 0]
    """
    x = asarray(x)
    if x.ndim != 1:
        raise ValueError(f"bincount needs a 1-d array, got shape {x.shape}; use x.ravel()")
    if not isinstance(minlength, numbers.Integral) or minlength < 0:
        raise ValueError(f"bincount: minlength must be a non-negative integer, not {minlength!r}")
    args: list = [x, ("i",)]
    if weights is not None:
        weights = asarray(weights)
        if weights.shape != x.shape:
            raise ValueError(f"bincount: weights of shape {weights.shape} must have the shape of x, {x.shape}")
        args += [weights, ("i",)]
    # a one-element sample: NumPy gives empty input integer counts even with weights
    dtype = np.bincount(np.zeros(1, dtype=x.dtype),  # also checks that x holds integers
                        weights=None if weights is None else np.ones(1, dtype=weights.dtype)).dtype
    per_block = blockwise(partial(_bincount_block, minlength=int(minlength)), ("i",), *args, dtype=dtype,
                          adjust_chunks={"i": lambda _: math.nan})  # each block's count is as long as its largest value
    fan = int(split_every or config.get("array.split-every", 8))
    if fan < 2:
        raise ValueError(f"split_every must be at least 2, not {fan}")
    token = tokenize(per_block, minlength, fan)
    inner_name, name = f"bincount-combine-{token}", f"bincount-{token}"
    inner: dict = {}
    keys = [(per_block.name, i) for i in range_(per_block.numblocks[0])]
    level = 0
    while len(keys) > fan:
        grouped = []
        for g in range_(0, len(keys), fan):
            key = (inner_name, level, g // fan)
            inner[key] = (partial(_add_padded, dtype=dtype), keys[g:g + fan])
            grouped.append(key)
        keys, level = grouped, level + 1
    final: Any = (partial(_add_padded, dtype=dtype), keys)
    if minlength:
        final = (partial(_check_length, minlength=int(minlength)), final)
    deps: list = [per_block]
    if inner:
        deps = [LayeredGraph.from_collections(inner_name, inner, [per_block])]
    chunks = ((int(minlength),),) if minlength else ((math.nan,),)
    return new_array(name, {(name, 0): final}, deps, chunks, dtype)
