"""Helpers of the array tests (core, creation, elementwise, reductions, random, fusion, storage):
random shapes and chunkings, and a comparison against NumPy that also checks every block."""
from __future__ import annotations

import warnings

import numpy as np
from hypothesis import strategies as st

import lazyarr.array as da
from lazyarr.core import get as reference_get
from lazyarr.core import flatten

SCHEDULERS = ["sync", "threads"]


@st.composite
def chunkings(draw, shape: tuple) -> tuple:
    """A random chunking of ``shape``: uneven blocks, single blocks, single-element blocks."""
    out = []
    for n in shape:
        if n == 0:
            out.append((0,))
            continue
        cuts = draw(st.sets(st.integers(1, n - 1), max_size=min(n - 1, 4))) if n > 1 else set()
        bounds = [0, *sorted(cuts), n]
        out.append(tuple(b - a for a, b in zip(bounds, bounds[1:])))
    return tuple(out)


@st.composite
def shapes(draw, min_ndim: int = 0, max_ndim: int = 3, min_side: int = 0, max_side: int = 6) -> tuple:
    return tuple(draw(st.lists(st.integers(min_side, max_side), min_size=min_ndim, max_size=max_ndim)))


@st.composite
def arrays(draw, dtype: str = "f8", min_ndim: int = 0, max_ndim: int = 3, min_side: int = 0, max_side: int = 6,
           nans: bool = False):
    """``(numpy array, lazy array)`` with equal values, randomly chunked."""
    shape = draw(shapes(min_ndim, max_ndim, min_side, max_side))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    values = rng.integers(-5, 6, size=shape).astype(dtype) if dtype != "?" else rng.integers(0, 2, size=shape) > 0
    values = np.asarray(values)
    if np.dtype(dtype).kind == "f" and values.size:
        values = np.asarray(values + rng.random(shape).astype(dtype))
        if nans:
            values[rng.random(shape) < 0.3] = np.nan
    chunks = draw(chunkings(shape))
    return values, da.from_array(values, chunks=chunks)


def blocks_of(x: da.Array) -> dict:
    """Every block of ``x``, computed through the optimizer and the reference evaluator."""
    keys = x.__lazyarr_keys__()
    dsk = x.__lazyarr_optimize__(x.__lazyarr_graph__(), keys)
    flat = list(flatten(keys))
    return dict(zip(flat, reference_get(dsk, flat)))


def assert_eq(lazy: da.Array, expected, scheduler: str = "sync", rtol: float | None = None, check_blocks: bool = True,
              equal_nan: bool = True):
    """Compute ``lazy`` and compare it with ``expected``: shape, dtype, values, and (by default)
    that each block has the shape the chunks promise."""
    expected = np.asarray(expected)
    assert isinstance(lazy, da.Array), type(lazy)
    assert lazy.shape == expected.shape, (lazy.shape, expected.shape)
    assert lazy.dtype == expected.dtype, (lazy.dtype, expected.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = lazy.compute(scheduler=scheduler)
    result = np.asarray(result)
    assert result.shape == expected.shape, (result.shape, expected.shape)
    assert result.dtype == expected.dtype, (result.dtype, expected.dtype)
    if expected.dtype.kind in "fc":
        if rtol is None:
            rtol = 1e-5 if expected.dtype.itemsize <= 4 * (2 if expected.dtype.kind == "c" else 1) else 1e-9
        np.testing.assert_allclose(result, expected, rtol=rtol, atol=rtol, equal_nan=equal_nan)
    else:
        np.testing.assert_array_equal(result, expected)
    if check_blocks:
        for key, block in blocks_of(lazy).items():
            idx = key[1:]
            want = tuple(c[i] for c, i in zip(lazy.chunks, idx))
            assert np.shape(block) == want, (key, np.shape(block), want)
    return result


def numpy_quiet(func, *args, **kwargs):
    """``func(*args, **kwargs)`` with NumPy's warnings about empty or all-NaN slices silenced."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return func(*args, **kwargs)

