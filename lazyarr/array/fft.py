"""Discrete Fourier transforms of lazy arrays: ``lazyarr.array.fft``, after ``numpy.fft``.

As in Dask, a transform needs every transformed axis in a single chunk: each block is then
transformed on its own by NumPy (one task per block, no communication), and the other axes
keep their chunks. An axis in several chunks raises an error telling which ``rechunk`` to do
(an FFT couples all elements of the axis, so it would have to be gathered anyway).

Transforms: ``fft``, ``ifft``, ``rfft``, ``irfft``, ``hfft``, ``ihfft`` (one axis, ``n=``),
``fft2``, ``ifft2``, ``rfft2``, ``irfft2`` (two axes, ``s=``) and ``fftn``, ``ifftn``,
``rfftn``, ``irfftn`` (any axes). Helpers: ``fftfreq``, ``rfftfreq``, ``fftshift`` and
``ifftshift`` (a roll, so any chunking works).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from .chunks import validate_axis
from .core import Array, asarray, map_blocks
from .creation import arange
from .reorder import roll

__all__ = [
    "fft", "ifft", "rfft", "irfft", "hfft", "ihfft",
    "fft2", "ifft2", "rfft2", "irfft2",
    "fftn", "ifftn", "rfftn", "irfftn",
    "fftfreq", "rfftfreq", "fftshift", "ifftshift",
]


# --------------------------------------------------------------------------------------------
# output lengths: "c2c" keeps them, "r2c" halves the last axis, "c2r" doubles it back
# --------------------------------------------------------------------------------------------

def _out_length(kind: str, given: int | None, length: int, last: bool) -> int:
    if not last or kind == "c2c":
        return length if given is None else given
    if kind == "r2c":
        return (length if given is None else given) // 2 + 1
    return 2 * (length - 1) if given is None else given  # c2r


def _check_axes(a: Array, axes: Sequence[int], name: str) -> tuple[int, ...]:
    axes = tuple(validate_axis(ax, a.ndim, a.shape) for ax in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{name}: repeated axes {axes} are not allowed")
    for ax in axes:
        if a.numblocks[ax] > 1:
            raise ValueError(f"{name} needs axis {ax} in one chunk, but its chunks are {a.chunks[ax]}; "
                             f"rechunk({{{ax}: -1}}) first")
    return axes


def _transform(a: Any, func: Callable, kind: str, name: str, lengths: Sequence[int | None] | None,
               axes: Sequence[int], norm: str | None, one_axis: bool) -> Array:
    a = asarray(a)
    axes = _check_axes(a, axes, name)
    given = list(lengths) if lengths is not None else [None] * len(axes)
    if len(given) != len(axes):
        raise ValueError(f"{name}: the shape s={tuple(given)} and axes={axes} have different lengths")
    chunks = list(a.chunks)
    for i, (ax, n) in enumerate(zip(axes, given)):
        out = _out_length(kind, n, a.shape[ax], i == len(axes) - 1)
        if out < 1:
            raise ValueError(f"{name}: invalid number of data points ({out}) along axis {ax}")
        chunks[ax] = (out,)
    if one_axis:
        call = partial(func, n=given[0], axis=axes[0], norm=norm)
    else:
        call = partial(func, s=None if lengths is None else tuple(given), axes=axes, norm=norm)
    sample = func(np.ones((4,) * len(axes), dtype=a.dtype))  # the result dtype (float32 stays single)
    return map_blocks(call, a, chunks=tuple(chunks), dtype=sample.dtype, token=name)


def _one_axis(func: Callable, kind: str) -> Callable:
    name = func.__name__

    def transform(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Array:
        return _transform(a, func, kind, name, [n], [axis], norm, one_axis=True)

    transform.__name__ = transform.__qualname__ = name
    transform.__doc__ = (f"``numpy.fft.{name}`` along ``axis``, which must be in one chunk.\n\n"
                         f"``n`` is the transform length (input cropped or zero-padded), as in NumPy.")
    return transform


def _axes_default(a: Any, lengths: Sequence[int] | None, axes: Sequence[int] | None, two: bool) -> tuple:
    if axes is not None:
        return tuple(axes)
    if two:
        return (-2, -1)
    if lengths is not None:
        return tuple(range(-len(lengths), 0))
    return tuple(range(np.ndim(a) if not isinstance(a, Array) else a.ndim))


def _many_axes(func: Callable, kind: str, two: bool) -> Callable:
    name = func.__name__

    def transform(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
                  norm: str | None = None) -> Array:
        chosen = _axes_default(a, s, axes, two)
        return _transform(a, func, kind, name, s, chosen, norm, one_axis=False)

    transform.__name__ = transform.__qualname__ = name
    where = "the last two axes" if two else "all axes"
    transform.__doc__ = (f"``numpy.fft.{name}`` over ``axes`` ({where} by default), each in one chunk.\n\n"
                         f"``s`` gives the transform lengths, as in NumPy.")
    return transform


fft = _one_axis(np.fft.fft, "c2c")
ifft = _one_axis(np.fft.ifft, "c2c")
rfft = _one_axis(np.fft.rfft, "r2c")
irfft = _one_axis(np.fft.irfft, "c2r")
hfft = _one_axis(np.fft.hfft, "c2r")
ihfft = _one_axis(np.fft.ihfft, "r2c")
fft2 = _many_axes(np.fft.fft2, "c2c", two=True)
ifft2 = _many_axes(np.fft.ifft2, "c2c", two=True)
rfft2 = _many_axes(np.fft.rfft2, "r2c", two=True)
irfft2 = _many_axes(np.fft.irfft2, "c2r", two=True)
fftn = _many_axes(np.fft.fftn, "c2c", two=False)
ifftn = _many_axes(np.fft.ifftn, "c2c", two=False)
rfftn = _many_axes(np.fft.rfftn, "r2c", two=False)
irfftn = _many_axes(np.fft.irfftn, "c2r", two=False)


# --------------------------------------------------------------------------------------------
# frequencies and shifts
# --------------------------------------------------------------------------------------------

def _fftfreq_block(k: np.ndarray, n: int, scale: Any) -> np.ndarray:
    return np.where(k < (n + 1) // 2, k, k - n) * scale


def fftfreq(n: int, d: float = 1.0, chunks: Any = "auto") -> Array:
    """The sample frequencies of an ``n``-point transform with sample spacing ``d`` (``np.fft.fftfreq``).

    >>> fftfreq(5, chunks=2).compute().tolist()
    [0.0, 0.2, 0.4, -0.4, -0.2]
    """
    scale = 1.0 / (n * d)
    dtype = np.fft.fftfreq(1, d).dtype
    return map_blocks(partial(_fftfreq_block, n=n, scale=scale), arange(n, chunks=chunks), dtype=dtype)


def _rfftfreq_block(k: np.ndarray, scale: Any) -> np.ndarray:
    return k * scale


def rfftfreq(n: int, d: float = 1.0, chunks: Any = "auto") -> Array:
    """The non-negative sample frequencies of :func:`rfft` (``np.fft.rfftfreq``).

    >>> rfftfreq(5, chunks=2).compute().tolist()
    [0.0, 0.2, 0.4]
    """
    scale = 1.0 / (n * d)
    dtype = np.fft.rfftfreq(1, d).dtype
    return map_blocks(partial(_rfftfreq_block, scale=scale), arange(n // 2 + 1, chunks=chunks), dtype=dtype)


def _shift(x: Any, axes: Any, sign: int) -> Array:
    x = asarray(x)
    if axes is None:
        axes = tuple(range(x.ndim))
    elif isinstance(axes, (int, np.integer)):
        axes = (int(axes),)
    shifts = [sign * (x.shape[ax] // 2) for ax in axes]
    return roll(x, shifts, tuple(axes)) if axes else x


def fftshift(x: Any, axes: Any = None) -> Array:
    """Move the zero-frequency term to the centre (``np.fft.fftshift``): a roll by half of each axis.

    >>> fftshift(fftfreq(5, chunks=2)).compute().tolist()
    [-0.4, -0.2, 0.0, 0.2, 0.4]
    """
    return _shift(x, axes, 1)


def ifftshift(x: Any, axes: Any = None) -> Array:
    """The inverse of :func:`fftshift` (``np.fft.ifftshift``).

    >>> ifftshift(fftshift(fftfreq(5, chunks=2))).compute().tolist()
    [0.0, 0.2, 0.4, -0.4, -0.2]
    """
    return _shift(x, axes, -1)
