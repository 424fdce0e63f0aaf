"""lazyarr.array: chunked N-dimensional arrays on NumPy, in the style of NumPy and Dask arrays.

>>> import lazyarr.array as da
>>> x = da.ones((1000, 1000), chunks=(250, 250))
>>> float(((x + 1) * 2).mean().compute())
4.0

See ``docs/array.md`` for the user guide.
"""
from __future__ import annotations

from . import fft, linalg, random
from .chunks import normalize_chunks
from .core import (
    Array,
    asanyarray,
    asarray,
    blockwise,
    broadcast_shapes,
    elemwise,
    from_array,
    map_blocks,
    new_array,
    unify_chunks,
)
from .creation import (
    arange,
    empty,
    empty_like,
    eye,
    from_delayed,
    fromfunction,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    zeros,
    zeros_like,
)
from .layers import LayeredGraph
from .reductions import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    count_nonzero,
    cumprod,
    cumsum,
    max,
    mean,
    min,
    nanargmax,
    nanargmin,
    nancumprod,
    nancumsum,
    nanmax,
    nanmean,
    nanmin,
    nanprod,
    nanstd,
    nansum,
    nanvar,
    prod,
    std,
    sum,
    var,
)
from .storage import from_npy_stack, store, to_npy_stack
from .ufunc import UFUNC_NAMES as _UFUNC_NAMES
from .ufunc import __all__ as _ufunc_all
from .ufunc import *  # noqa: F401,F403  every elementwise NumPy ufunc, where, clip, isclose, ...

# structural operations (slicing, rechunk, reshape, routines, overlap)
from .overlap import map_overlap, overlap, trim_internal
from .rechunk import rechunk
from .reshape import reshape
from .routines import (
    concatenate,
    dot,
    expand_dims,
    flatten,
    matmul,
    moveaxis,
    outer,
    ravel,
    squeeze,
    stack,
    swapaxes,
    tensordot,
    transpose,
)
from .slicing import boolean_mask, take

# numerical routines (one module each; docs/array.md lists them with their chunking needs)
from .differences import diff, ediff1d, gradient
from .einsum import einsum
from .gufunc import apply_gufunc, as_gufunc, gufunc
from .histograms import bincount, histogram, histogram2d, histogramdd
from .pad import pad
from .percentiles import nanpercentile, nanquantile, percentile, quantile
from .reorder import flip, fliplr, flipud, roll
from .routines import broadcast_to, rollaxis
from .searching import digitize, isin, searchsorted
from .triangles import tri, tril, triu

__all__ = sorted(
    {
        "Array", "LayeredGraph", "random", "normalize_chunks", "asanyarray", "asarray", "blockwise",
        "broadcast_shapes", "elemwise", "from_array", "map_blocks", "new_array", "unify_chunks",
        "arange", "empty", "empty_like", "eye", "from_delayed", "fromfunction", "full", "full_like",
        "linspace", "ones", "ones_like", "zeros", "zeros_like",
        "all", "amax", "amin", "any", "argmax", "argmin", "count_nonzero", "cumprod", "cumsum", "max",
        "mean", "min", "nanargmax", "nanargmin", "nancumprod", "nancumsum", "nanmax", "nanmean",
        "nanmin", "nanprod", "nanstd", "nansum", "nanvar", "prod", "std", "sum", "var",
        "from_npy_stack", "store", "to_npy_stack",
        "map_overlap", "overlap", "trim_internal", "rechunk", "reshape", "concatenate", "dot",
        "expand_dims", "flatten", "matmul", "moveaxis", "outer", "ravel", "squeeze", "stack",
        "swapaxes", "tensordot", "transpose", "boolean_mask", "take",
        "fft", "linalg", "diff", "ediff1d", "gradient", "einsum", "apply_gufunc", "as_gufunc", "gufunc",
        "bincount", "histogram", "histogram2d", "histogramdd", "pad", "nanpercentile", "nanquantile",
        "percentile", "quantile", "flip", "fliplr", "flipud", "roll", "broadcast_to", "rollaxis", "digitize",
        "isin", "searchsorted", "tri", "tril", "triu",
    }
    | {name for name in _ufunc_all if name not in ("UFunc", "array_ufunc", "array_function", "UFUNC_NAMES")}
)
