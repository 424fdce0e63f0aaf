"""Padding arrays: pad, with NumPy's modes.

The array is padded one axis after another, as ``np.pad`` does, so the corners of later axes
come from the padding of earlier ones. Along an axis the result is the original blocks with
new blocks joined before and after (:func:`~lazyarr.array.concatenate`):

* ``'constant'`` and ``'empty'``: new blocks of the fill value;
* ``'edge'``, ``'maximum'``, ``'minimum'``, ``'mean'``, ``'median'``: the edge slice or a
  statistic over (the first/last ``stat_length`` elements of) the axis, broadcast to the pad
  width; ``'median'`` rechunks those elements into one chunk;
* ``'linear_ramp'``: ``np.linspace`` from the end value to the edge slice;
* ``'reflect'``, ``'symmetric'``, ``'wrap'``: reversed or plain slices of the array, repeated
  in NumPy's steps when the pad is wider than the axis (so ``reflect_type='odd'`` matches too);
* a function: the array padded with zeros is rechunked to one chunk along each axis in turn,
  and the function runs on every 1-d line of each block, as NumPy calls it.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .chunks import validate_axis
from .core import Array, asarray, map_blocks
from .creation import empty, full, zeros
from .rechunk import rechunk
from .routines import broadcast_to, concatenate
from .ufunc import around

__all__ = ["pad"]

_ALLOWED = {
    "constant": {"constant_values"}, "edge": set(), "linear_ramp": {"end_values"}, "maximum": {"stat_length"},
    "mean": {"stat_length"}, "median": {"stat_length"}, "minimum": {"stat_length"},
    "reflect": {"reflect_type"}, "symmetric": {"reflect_type"}, "wrap": set(), "empty": set(),
}


def _as_pairs(x: Any, ndim: int, as_index: bool = False) -> list:
    """One ``(before, after)`` pair per axis from a number, a pair or a list of pairs (NumPy's rules)."""
    if x is None:
        return [(None, None)] * ndim
    x = np.array(x)
    if as_index:
        x = np.round(x).astype(np.intp, copy=False)
        if x.size and x.min() < 0:
            raise ValueError("pad: widths and lengths can't contain negative values")
    if x.ndim < 3 and x.size == 1:
        v = x.ravel()[0].item()
        return [(v, v)] * ndim
    if x.ndim < 3 and x.size == 2 and x.shape != (2, 1):
        a, b = (v.item() for v in x.ravel())
        return [(a, b)] * ndim
    try:
        return [tuple(pair) for pair in np.broadcast_to(x, (ndim, 2)).tolist()]
    except ValueError:
        raise ValueError(f"pad: {x.tolist()!r} cannot be read as (before, after) pairs for {ndim} axes") from None


def _along(ndim: int, axis: int, sl: slice) -> tuple:
    return tuple(sl if d == axis else slice(None) for d in range(ndim))


def _pad_shape(x: Array, axis: int, width: int) -> tuple:
    shape = list(x.shape)
    shape[axis] = width
    return tuple(shape)


def _pad_chunks(x: Array, axis: int, width: int) -> tuple:
    chunks = list(x.chunks)
    chunks[axis] = (width,)
    return tuple(chunks)


def _join(x: Array, axis: int, before: Array | None, after: Array | None) -> Array:
    parts = [p for p in (before, x, after) if p is not None]
    return concatenate([p.astype(x.dtype) for p in parts], axis=axis) if len(parts) > 1 else x


# --------------------------------------------------------------------------------------------
# one axis, one mode
# --------------------------------------------------------------------------------------------

def _constant(x: Array, axis: int, widths: tuple, values: tuple, fill: Callable) -> Array:
    sides = [fill(_pad_shape(x, axis, w), v, dtype=x.dtype, chunks=_pad_chunks(x, axis, w)) if w else None
             for w, v in zip(widths, values)]
    return _join(x, axis, *sides)


def _broadcast_side(part: Array, x: Array, axis: int, width: int) -> Array:
    return broadcast_to(part, _pad_shape(x, axis, width), chunks=_pad_chunks(x, axis, width))


def _edge(x: Array, axis: int, widths: tuple) -> Array:
    n = x.shape[axis]
    first, last = x[_along(x.ndim, axis, slice(0, 1))], x[_along(x.ndim, axis, slice(n - 1, n))]
    before = _broadcast_side(first, x, axis, widths[0]) if widths[0] else None
    after = _broadcast_side(last, x, axis, widths[1]) if widths[1] else None
    return _join(x, axis, before, after)


def _ramp(edge: np.ndarray, end: Any, width: int, axis: int, dtype: np.dtype, reverse: bool) -> np.ndarray:
    ramp = np.linspace(end, edge.squeeze(axis), num=width, endpoint=False, dtype=dtype, axis=axis)
    return np.flip(ramp, axis=axis) if reverse else ramp


def _linear_ramp(x: Array, axis: int, widths: tuple, ends: tuple) -> Array:
    n = x.shape[axis]
    sides = []
    for side, (w, end) in enumerate(zip(widths, ends)):
        if not w:
            sides.append(None)
            continue
        edge = x[_along(x.ndim, axis, slice(0, 1) if side == 0 else slice(n - 1, n))]
        fn = partial(_ramp, end=end, width=w, axis=axis, dtype=x.dtype, reverse=side == 1)
        sides.append(map_blocks(fn, edge, chunks=_pad_chunks(edge, axis, w), dtype=x.dtype))
    return _join(x, axis, *sides)


def _median(part: Array, axis: int) -> Array:
    part = rechunk(part, {axis: -1})
    chunks = list(part.chunks)
    chunks[axis] = (1,)
    dtype = np.median(np.ones(1, dtype=part.dtype)).dtype
    return map_blocks(partial(np.median, axis=axis, keepdims=True), part, chunks=tuple(chunks), dtype=dtype)


def _stat(x: Array, axis: int, widths: tuple, lengths: tuple, mode: str) -> Array:
    n = x.shape[axis]
    stats = []
    for side, (w, length) in enumerate(zip(widths, lengths)):
        length = n if length is None or length > n else length
        if w and length == 0 and mode in ("maximum", "minimum"):
            raise ValueError("pad: stat_length of 0 yields no value for padding")
        part = x[_along(x.ndim, axis, slice(0, length) if side == 0 else slice(n - length, n))]
        if mode == "median":
            value = _median(part, axis)
        else:
            value = {"maximum": part.max, "minimum": part.min, "mean": part.mean}[mode](axis=axis, keepdims=True)
        if x.dtype.kind in "iu" and value.dtype.kind in "fc":
            value = around(value)  # as NumPy: a mean of integers is rounded, not truncated
        stats.append(value.astype(x.dtype))
    before = _broadcast_side(stats[0], x, axis, widths[0]) if widths[0] else None
    after = _broadcast_side(stats[1], x, axis, widths[1]) if widths[1] else None
    return _join(x, axis, before, after)


def _mirrored(x: Array, axis: int, start: int, stop: int, edge: tuple, odd: bool) -> Array:
    """``x[start:stop]`` reversed along ``axis``, reflected about the edge slice for ``'odd'``."""
    part = x[_along(x.ndim, axis, slice(stop - 1, start - 1 if start else None, -1))]
    if odd:
        part = 2 * x[_along(x.ndim, axis, slice(*edge))] - part
    return part.astype(x.dtype)


def _reflect(x: Array, axis: int, widths: tuple, period: int, symmetric: bool, odd: bool) -> Array:
    """NumPy's reflection, in its steps: each step mirrors at most as much as is already there."""
    left, right = widths
    while left or right:
        n = x.shape[axis]
        if symmetric:
            span, offset = n // period * period, 1
        else:
            span, offset = (n - 1) // (period - 1) * (period - 1), 0
        before = after = None
        if left:
            size = min(span, left)
            before = _mirrored(x, axis, 1 - offset, size + 1 - offset, (0, 1), odd)
            left -= size
        if right:
            size = min(span, right)
            after = _mirrored(x, axis, n - 1 + offset - size, n - 1 + offset, (n - 1, n), odd)
            right -= size
        x = _join(x, axis, before, after)
    return x


def _wrap(x: Array, axis: int, widths: tuple) -> Array:
    left, right = widths
    period = x.shape[axis]
    while left or right:  # NumPy's steps: at most one period of what is already there per step
        n = x.shape[axis]
        span = n // period * period
        before = after = None
        if left:
            size = min(span, left)
            before = x[_along(x.ndim, axis, slice(span - size, span))]
            left -= size
        if right:
            size = min(span, right)
            after = x[_along(x.ndim, axis, slice(n - span, n - span + size))]
            right -= size
        x = _join(x, axis, before, after)
    return x


# --------------------------------------------------------------------------------------------
# user functions
# --------------------------------------------------------------------------------------------

def _apply_lines(block: np.ndarray, func: Callable, width: tuple, axis: int, kwargs: dict) -> np.ndarray:
    block = block.copy()  # NumPy's pad functions modify the line in place
    view = np.moveaxis(block, axis, -1)
    for index in np.ndindex(view.shape[:-1]):
        func(view[index], width, axis, kwargs)
    return block


def _pad_function(x: Array, widths: list, func: Callable, kwargs: dict) -> Array:
    padded = pad(x, widths, mode="constant")
    chunks = padded.chunks
    for axis in range(x.ndim):
        padded = rechunk(padded, {axis: -1})
        fn = partial(_apply_lines, func=func, width=tuple(widths[axis]), axis=axis, kwargs=kwargs)
        padded = map_blocks(fn, padded, dtype=x.dtype)
    return rechunk(padded, chunks)


# --------------------------------------------------------------------------------------------
# pad
# --------------------------------------------------------------------------------------------

def pad(array: Any, pad_width: Any, mode: str | Callable = "constant", **kwargs: Any) -> Array:
    """The array padded with ``pad_width`` values before and after each axis, like ``np.pad``.

    ``pad_width`` is a number, a ``(before, after)`` pair, one pair per axis, or a dict
    ``{axis: width or pair}`` (NumPy 2). Every mode of
    NumPy is supported (see the module docstring), with its keywords: ``constant_values``,
    ``end_values``, ``stat_length`` and ``reflect_type``; a function ``mode`` is called as
    ``mode(line, (before, after), axis, kwargs)`` on every line, as in NumPy.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.array([1, 2, 3]), chunks=2)
    >>> pad(x, (2, 1), mode='reflect').compute().tolist()
    [3, 2, 1, 2, 3, 2]
    >>> pad(x, 2, constant_values=(0, 9)).compute().tolist()
    [0, 0, 1, 2, 3, 9, 9]
    """
    x = asarray(array)
    if isinstance(pad_width, dict):  # NumPy 2: {axis: width or (before, after)}, other axes unpadded
        widths = [(0, 0)] * x.ndim
        for axis, w in pad_width.items():
            widths[validate_axis(axis, x.ndim, x.shape)] = _as_pairs(w, 1, as_index=True)[0]
    else:
        widths = _as_pairs(pad_width, x.ndim, as_index=True)
    if callable(mode):
        return _pad_function(x, widths, mode, kwargs)
    if mode not in _ALLOWED:
        raise ValueError(f"pad: mode {mode!r} is not supported; use one of {', '.join(sorted(_ALLOWED))} or a function")
    unknown = set(kwargs) - _ALLOWED[mode]
    if unknown:
        raise ValueError(f"pad: unsupported keyword arguments for mode {mode!r}: {sorted(unknown)}")
    if mode in ("constant", "empty"):
        values = _as_pairs(kwargs.get("constant_values", 0), x.ndim)
        fill = full if mode == "constant" else (lambda shape, _, dtype, chunks: empty(shape, dtype=dtype,
                                                                                       chunks=chunks))
        for axis in range(x.ndim):
            x = _constant(x, axis, widths[axis], values[axis], fill)
        return x
    for axis, (w, n) in enumerate(zip(widths, x.shape)):
        if n == 0 and any(w):
            raise ValueError(f"pad: can't extend empty axis {axis} using modes other than 'constant' or 'empty'")
    if x.size == 0:  # nothing to copy: the result is as empty as the input
        return zeros(tuple(n + sum(w) for n, w in zip(x.shape, widths)), dtype=x.dtype)
    reflect_type = kwargs.get("reflect_type", "even")
    if reflect_type not in ("even", "odd"):
        raise ValueError(f"pad: reflect_type must be 'even' or 'odd', not {reflect_type!r}")
    ends = _as_pairs(kwargs.get("end_values", 0), x.ndim)
    lengths = _as_pairs(kwargs.get("stat_length"), x.ndim, as_index=True)
    for axis in range(x.ndim):
        w = tuple(widths[axis])
        if not any(w):
            continue
        if mode == "edge" or (mode in ("reflect", "symmetric") and x.shape[axis] == 1):
            x = _edge(x, axis, w)  # NumPy's (legacy) rule for reflecting a single element
        elif mode == "linear_ramp":
            x = _linear_ramp(x, axis, w, ends[axis])
        elif mode in ("maximum", "minimum", "mean", "median"):
            x = _stat(x, axis, w, lengths[axis], mode)
        elif mode == "wrap":
            x = _wrap(x, axis, w)
        else:
            x = _reflect(x, axis, w, x.shape[axis], mode == "symmetric", reflect_type == "odd")
    return x
