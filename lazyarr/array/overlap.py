"""Ghost cells: blocks that see a margin of their neighbours, for stencils.

:func:`overlap` grows every block by ``depth`` cells on each side along each axis, copied from
the neighbouring blocks; at the array's outer edges the margin comes from a boundary rule:

* ``'reflect'``: the edge cells mirrored (``np.pad(mode='symmetric')``);
* ``'periodic'``: the cells from the other end of the array (``mode='wrap'``);
* ``'nearest'``: the edge cell repeated (``mode='edge'``);
* a number: that constant (``mode='constant'``);
* ``'none'`` (the default, as in Dask): no margin at the outer edges.

Axes are processed one after another, so corner cells arrive through two exchanges. Each task
joins one block with slices of at most two neighbours, so memory stays at about three blocks.
Chunks shorter than the depth are first merged with their neighbours (a rechunk), since a
margin must come from the adjacent block. :func:`trim_internal` cuts the margins off again, and
:func:`map_overlap` is overlap, then a function on every block, then trim.
"""
from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Mapping
from functools import partial
from operator import getitem
from typing import Any

import numpy as np

from ..tokenize import tokenize
from .core import Array, asarray, map_blocks, new_array
from .layers import quote
from .rechunk import rechunk

__all__ = ["overlap", "trim_internal", "map_overlap", "normalize_depth", "normalize_boundary"]

_BOUNDARIES = ("reflect", "periodic", "nearest", "none")


def _per_axis(spec: Any, ndim: int, default: Any, what: str) -> list:
    """One entry per axis from a single value, a tuple (one per axis) or a dict ``{axis: value}``."""
    if isinstance(spec, Mapping):
        result = [default] * ndim
        for axis, value in spec.items():
            if not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
                raise ValueError(f"{what}: axis {axis!r} is out of range for an array with {ndim} dimensions")
            result[int(axis) % ndim] = value
        return result
    if isinstance(spec, (tuple, list)):
        if len(spec) != ndim:
            raise ValueError(f"{what} {tuple(spec)} has {len(spec)} entries but the array has {ndim} dimensions")
        return list(spec)
    return [spec] * ndim


def normalize_depth(depth: Any, ndim: int) -> tuple[int, ...]:
    """Depth per axis from an int, a tuple (one per axis) or a dict ``{axis: depth}``.

    >>> normalize_depth({1: 2}, 3)
    (0, 2, 0)
    >>> normalize_depth(1, 2)
    (1, 1)
    """
    result = _per_axis(0 if depth is None else depth, ndim, 0, "depth")
    for axis, d in enumerate(result):
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral) or d < 0:
            raise ValueError(f"depth along axis {axis} must be a non-negative integer, not {d!r}")
    return tuple(int(d) for d in result)


def normalize_boundary(boundary: Any, ndim: int) -> tuple[Any, ...]:
    """Boundary rule per axis from one rule, a tuple of rules or a dict ``{axis: rule}``.

    A rule is ``'reflect'``, ``'periodic'``, ``'nearest'``, ``'none'`` or a number (a constant);
    ``None`` means ``'none'``.

    >>> normalize_boundary({0: 'periodic'}, 2)
    ('periodic', 'none')
    """
    out = []
    for axis, rule in enumerate(_per_axis(boundary, ndim, "none", "boundary")):
        if rule is None:
            rule = "none"
        if isinstance(rule, str):
            if rule not in _BOUNDARIES:
                raise ValueError(f"unknown boundary {rule!r} for axis {axis}; expected one of "
                                 f"{', '.join(map(repr, _BOUNDARIES))} or a number")
        elif not isinstance(rule, (numbers.Number, np.generic)):
            raise ValueError(f"boundary for axis {axis} must be one of {', '.join(map(repr, _BOUNDARIES))} or a "
                             f"number, not {rule!r}")
        out.append(rule)
    return tuple(out)


def overlap(x: Any, depth: Any, boundary: Any = None) -> Array:
    """``x`` with each block extended by ``depth`` cells from its neighbours on each side.

    ``depth`` is an int, a tuple (one per axis) or a dict ``{axis: depth}``; ``boundary`` one
    rule or a tuple/dict of rules per axis (see the module docstring).

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(6), chunks=3)
    >>> g = overlap(x, 1, 'periodic')
    >>> g.chunks
    ((5, 5),)
    >>> g.compute().tolist()
    [5, 0, 1, 2, 3, 2, 3, 4, 5, 0]
    """
    if not isinstance(x, Array):
        x = asarray(x)
    depths = normalize_depth(depth, x.ndim)
    rules = normalize_boundary(boundary, x.ndim)
    for axis, (d, rule) in enumerate(zip(depths, rules)):
        length = x.shape[axis]
        if not d:
            continue
        if math.isnan(length):
            raise ValueError(f"cannot overlap along axis {axis}: its chunk sizes are unknown (nan)")
        if rule in ("reflect", "periodic") and d > length:
            raise ValueError(f"depth {d} along axis {axis} is larger than the axis length {length}; the "
                             f"{rule!r} boundary needs at least depth cells")
        if rule == "nearest" and length == 0:
            raise ValueError(f"the 'nearest' boundary needs at least one cell along axis {axis}, which is empty")
    x = _ensure_min_chunks(x, depths)
    for axis, (d, rule) in enumerate(zip(depths, rules)):
        if d:
            x = _exchange(x, axis, d, rule)
    return x


def _ensure_min_chunks(x: Array, depths: tuple[int, ...]) -> Array:
    """Rechunk so every chunk is at least ``depth`` long (margins come from adjacent blocks only)."""
    wanted = {}
    for axis, d in enumerate(depths):
        chunks = x.chunks[axis]
        if d and len(chunks) > 1 and min(chunks) < d:
            wanted[axis] = _merge_small(chunks, d)
    return rechunk(x, wanted) if wanted else x


def _merge_small(chunks: tuple[int, ...], minimum: int) -> tuple[int, ...]:
    """Merge consecutive chunks until each is at least ``minimum`` (a short tail joins the last).

    >>> _merge_small((3, 1, 1, 4, 1), 2)
    (3, 2, 5)
    """
    out: list[int] = []
    current = 0
    for c in chunks:
        current += c
        if current >= minimum:
            out.append(current)
            current = 0
    if current:
        if out:
            out[-1] += current
        else:
            out.append(current)
    return tuple(out)


def _exchange(x: Array, axis: int, depth: int, rule: Any) -> Array:
    """Grow the blocks along one axis by ``depth`` cells on each side."""
    n = x.numblocks[axis]
    name = f"overlap-{tokenize(x, axis, depth, rule)}"
    pad = rule != "none"
    tail = partial(_margin, axis=axis, depth=depth, side="tail")
    head = partial(_margin, axis=axis, depth=depth, side="head")
    slab_before = partial(_boundary_slab, axis=axis, depth=depth, rule=rule, side="before")
    slab_after = partial(_boundary_slab, axis=axis, depth=depth, rule=rule, side="after")
    join = partial(_join, axis=axis)
    layer = {}
    for index in itertools.product(*(range(b) for b in x.numblocks)):
        i = index[axis]

        def neighbour(j: int) -> tuple:
            return (x.name,) + index[:axis] + (j,) + index[axis + 1:]

        if i > 0:
            before = (tail, neighbour(i - 1))
        elif pad:
            before = (slab_before, neighbour(n - 1) if rule == "periodic" else neighbour(0))
        else:
            before = None
        if i < n - 1:
            after = (head, neighbour(i + 1))
        elif pad:
            after = (slab_after, neighbour(0) if rule == "periodic" else neighbour(n - 1))
        else:
            after = None
        layer[(name,) + index] = (join, before, (x.name,) + index, after)
    chunks = list(x.chunks)
    chunks[axis] = tuple(c + (depth if i > 0 or pad else 0) + (depth if i < n - 1 or pad else 0)
                         for i, c in enumerate(x.chunks[axis]))
    return new_array(name, layer, [x], tuple(chunks), x.dtype)


def _take_along(block: np.ndarray, axis: int, sl: slice) -> np.ndarray:
    index = [slice(None)] * block.ndim
    index[axis] = sl
    return block[tuple(index)]


def _margin(block: np.ndarray, axis: int, depth: int, side: str) -> np.ndarray:
    return _take_along(block, axis, slice(-depth, None) if side == "tail" else slice(0, depth))


def _boundary_slab(block: np.ndarray, axis: int, depth: int, rule: Any, side: str) -> np.ndarray:
    """The ``depth`` cells beyond the array's edge on ``side``, from the block at that edge (or
    at the other edge, for ``'periodic'``)."""
    before = side == "before"
    if rule == "periodic":
        return _margin(block, axis, depth, "tail" if before else "head")
    if rule == "reflect":
        edge = _margin(block, axis, depth, "head" if before else "tail")
        return np.flip(edge, axis=axis)
    if rule == "nearest":
        edge = _take_along(block, axis, slice(0, 1) if before else slice(-1, None))
        return np.repeat(edge, depth, axis=axis)
    shape = list(block.shape)
    shape[axis] = depth
    return np.full(shape, rule, dtype=block.dtype)


def _join(before: np.ndarray | None, block: np.ndarray, after: np.ndarray | None, axis: int) -> np.ndarray:
    parts = [p for p in (before, block, after) if p is not None]
    return np.concatenate(parts, axis=axis) if len(parts) > 1 else block


def trim_internal(x: Array, depth: Any, boundary: Any = None) -> Array:
    """Cut ``depth`` cells off each side of every block, undoing :func:`overlap`.

    With the ``'none'`` boundary the outer sides of the edge blocks got no margin, so they are
    not cut.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(6), chunks=3)
    >>> trim_internal(overlap(x, 1, 'reflect'), 1, 'reflect').chunks
    ((3, 3),)
    """
    depths = normalize_depth(depth, x.ndim)
    rules = normalize_boundary(boundary, x.ndim)
    if not any(depths):
        return x
    cuts = []  # per axis, per block: (cut before, cut after)
    for axis, (d, rule) in enumerate(zip(depths, rules)):
        n = x.numblocks[axis]
        cuts.append([(d if i > 0 or rule != "none" else 0, d if i < n - 1 or rule != "none" else 0)
                     for i in range(n)])
    chunks = []
    for axis, sizes in enumerate(x.chunks):
        new = tuple(c - lo - hi for c, (lo, hi) in zip(sizes, cuts[axis]))
        if any(c < 0 for c in new):
            raise ValueError(f"cannot trim {depths[axis]} cells from each side of the chunks {tuple(sizes)} along "
                             f"axis {axis}")
        chunks.append(new)
    name = f"trim-{tokenize(x, depths, rules)}"
    layer = {}
    for index in itertools.product(*(range(b) for b in x.numblocks)):
        sl = tuple(slice(cuts[a][i][0], x.chunks[a][i] - cuts[a][i][1]) for a, i in enumerate(index))
        layer[(name,) + index] = (getitem, (x.name,) + index, quote(sl))
    return new_array(name, layer, [x], tuple(chunks), x.dtype)


def map_overlap(func: Callable, x: Any, depth: Any = None, boundary: Any = None, trim: bool = True,
                dtype: Any = None, **kwargs: Any) -> Array:
    """Apply ``func`` to every block of ``x`` grown by ``depth`` ghost cells, then trim them.

    ``func(block, **kwargs)`` must return an array of the block's shape (with its margins) when
    ``trim`` is true. ``dtype`` is the result's dtype, found by calling ``func`` on a small
    sample if not given.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.array([1., 2., 4., 7., 11., 16.]), chunks=3)
    >>> map_overlap(np.gradient, x, depth=1, boundary='none').compute().tolist()
    [1.0, 1.5, 2.5, 3.5, 4.5, 5.0]
    """
    if not callable(func):
        raise TypeError(f"map_overlap: func must be callable, not {type(func).__name__}")
    if not isinstance(x, Array):
        x = asarray(x)
    depths = normalize_depth(depth, x.ndim)
    rules = normalize_boundary(boundary, x.ndim)
    if dtype is None:
        dtype = _infer_dtype(func, x, depths, kwargs)
    grown = overlap(x, depths, rules)
    mapped = map_blocks(func, grown, dtype=dtype, **kwargs)
    return trim_internal(mapped, depths, rules) if trim else mapped


def _infer_dtype(func: Callable, x: Any, depths: tuple[int, ...], kwargs: dict) -> np.dtype:
    sample = np.ones(tuple(2 * d + 3 for d in depths), dtype=x.dtype)
    try:
        with np.errstate(all="ignore"):
            return np.asarray(func(sample, **kwargs)).dtype
    except Exception:
        return np.dtype(x.dtype)
