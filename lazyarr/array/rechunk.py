"""Changing the chunking of an array in bounded memory.

A single rechunk *step* builds every new block from pieces of the old blocks it overlaps. A piece
that is a whole old block is used as is; any other piece is cut out by its own small ``split``
task, and the new block is then assembled by a ``merge`` task from its pieces. So no task ever
holds more than one old block (to cut it) or one new block (to assemble it).

What can still blow up is the *number* of pieces: going from long-thin blocks (rows) to
thin-long ones (columns) cuts every old block into as many pieces as there are new blocks.
:func:`plan_rechunk` therefore may go through intermediate chunkings whose per-axis sizes lie
geometrically between the old and the new ones. Because the product of geometric means is the
geometric mean of the products, an intermediate block is never larger than the larger of an old
and a new block, so staging keeps the memory bound while shrinking the graph: turning ``n`` rows
of an ``n``-by-``n`` array into ``n`` columns takes ``n**2`` pieces in one step, but about
``3 * n**(4/3)`` tasks in three (33,000 instead of 1,000,000 for ``n = 1000``).
"""
from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from functools import partial
from operator import getitem
from typing import Any

import numpy as np

from ..tokenize import tokenize
from .chunks import normalize_chunks
from .core import Array, concatenate_blocks, new_array
from .layers import LayeredGraph, quote

__all__ = ["rechunk", "plan_rechunk", "normalize_rechunk_chunks", "chunks_equal"]

#: The most stages :func:`plan_rechunk` considers.
MAX_STAGES = 4


def rechunk(x: Array, chunks: Any = "auto", *, block_size_limit: int | None = None) -> Array:
    """The same array with new chunks.

    ``chunks`` is an int (every axis), a tuple with one entry per axis (an int, ``-1`` for the
    whole axis, ``None`` to keep the axis as it is, ``'auto'``, or explicit chunk sizes), a dict
    ``{axis: entry}`` (axes not named keep their chunks), ``-1`` or ``'auto'``.

    ``block_size_limit`` (bytes) caps the blocks of intermediate stages. It is never below the
    size of the largest old or new block (the default), so rechunking never needs more memory
    per task than the chunkings you start and end with; a larger value lets the planner use
    larger intermediates if that makes a smaller graph.

    >>> import lazyarr.array as la
    >>> x = la.ones((4, 6), chunks=(1, 6))
    >>> x.rechunk((4, 1)).chunks
    ((4,), (1, 1, 1, 1, 1, 1))
    >>> x.rechunk({1: 3}).chunks
    ((1, 1, 1, 1), (3, 3))
    """
    new = normalize_rechunk_chunks(x, chunks)
    if chunks_equal(new, x.chunks):
        return x
    itemsize = max(np.dtype(x.dtype).itemsize, 1)
    for step in plan_rechunk(x.chunks, new, itemsize, block_size_limit):
        x = _rechunk_step(x, step)
    return x


def normalize_rechunk_chunks(x: Array, chunks: Any) -> tuple[tuple[int, ...], ...]:
    """Resolve a user's ``chunks`` for ``x`` to explicit per-axis chunk sizes, checking them."""
    ndim = len(x.chunks)
    if isinstance(chunks, Mapping):
        spec = [None] * ndim
        for axis, entry in chunks.items():
            if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
                raise ValueError(f"rechunk: axis {axis!r} in chunks {chunks!r} is out of range for an array "
                                 f"with {ndim} dimensions")
            spec[axis % ndim] = entry
        chunks = tuple(spec)
    elif isinstance(chunks, (list, tuple)) and len(chunks) != ndim:
        raise ValueError(f"rechunk: chunks {chunks!r} have {len(chunks)} entries but the array of shape "
                         f"{tuple(x.shape)} has {ndim} dimensions")
    elif not isinstance(chunks, (list, tuple)):
        chunks = (chunks,) * ndim
    # None keeps an axis as it is, also along axes of unknown length (which cannot change).
    chunks = tuple(tuple(old) if entry is None else entry for entry, old in zip(chunks, x.chunks))
    for axis, (entry, old) in enumerate(zip(chunks, x.chunks)):
        if any(math.isnan(c) for c in old) and entry != tuple(old):
            raise ValueError(f"rechunk: axis {axis} has unknown chunk sizes {old}; it cannot be rechunked "
                             f"(compute the array, or its chunk sizes, first)")
    try:
        new = normalize_chunks(chunks, tuple(x.shape), dtype=x.dtype, previous_chunks=tuple(x.chunks))
    except ValueError as err:
        raise ValueError(f"rechunk: chunks {chunks!r} do not fit an array of shape {tuple(x.shape)}: "
                         f"{err}") from None
    new = tuple(tuple(int(c) for c in axis) if not any(math.isnan(c) for c in axis) else tuple(axis)
                for axis in new)
    for axis, (sizes, length) in enumerate(zip(new, x.shape)):
        if not math.isnan(length) and sum(sizes) != length:
            raise ValueError(f"rechunk: chunks {sizes} along axis {axis} add up to {sum(sizes)}, but the array "
                             f"of shape {tuple(x.shape)} has length {length} there")
    return new



# --- planning ------------------------------------------------------------------------------------

def plan_rechunk(old: Sequence[Sequence[int]], new: Sequence[Sequence[int]], itemsize: int = 8,
                 block_size_limit: int | None = None) -> list[tuple[tuple[int, ...], ...]]:
    """The chunkings to go through from ``old`` to ``new``, ending with ``new``.

    Each intermediate chunking merges consecutive old chunks along axes that grow and
    consecutive new chunks along axes that shrink, to sizes geometrically between the two, so
    an intermediate block is no larger than ``max(largest old block, largest new block)`` (or
    ``block_size_limit`` bytes, if that is larger). Among plans of 1 to :data:`MAX_STAGES`
    steps, the one with the fewest tasks wins.

    >>> plan_rechunk(((2, 2), (4,)), ((4,), (2, 2)))
    [((4,), (2, 2))]
    >>> [len(c[0]) for c in plan_rechunk(((1,) * 100, (100,)), ((100,), (1,) * 100))]
    [20, 5, 1]
    """
    old = tuple(tuple(c) for c in old)
    new = tuple(tuple(c) for c in new)
    if chunks_equal(old, new):
        return []
    # Axes that keep their chunks (including unknown ones) take no part in the planning.
    moving = [a for a, (o, n) in enumerate(zip(old, new)) if not chunks_equal((o,), (n,))]
    limit = max(_largest_block(old, moving), _largest_block(new, moving))
    if block_size_limit is not None:
        fixed = math.prod(max(old[a], default=1) for a in range(len(old)) if a not in moving) or 1
        limit = max(limit, block_size_limit // max(itemsize, 1) // max(fixed, 1))
    best = [new]
    best_cost = _step_cost(old, new)
    for stages in range(2, MAX_STAGES + 1):
        plan = [_intermediate(old, new, moving, k / stages, limit) for k in range(1, stages)] + [new]
        plan = [c for i, c in enumerate(plan) if not chunks_equal(c, plan[i - 1] if i else old)]
        cost = sum(_step_cost(a, b) for a, b in zip([old] + plan[:-1], plan))
        if cost < best_cost:
            best, best_cost = plan, cost
    return best


def _largest_block(chunks: tuple[tuple[int, ...], ...], axes: Sequence[int]) -> int:
    return math.prod(max(chunks[a], default=0) for a in axes)


def _intermediate(old: tuple, new: tuple, moving: Sequence[int], t: float, limit: int) -> tuple:
    """A chunking a fraction ``t`` of the way (geometrically) from ``old`` to ``new``."""
    sizes = {}
    for a in moving:
        lo, hi = max(max(old[a]), 1), max(max(new[a]), 1)
        sizes[a] = max(1, round(lo ** (1 - t) * hi ** t))
    # rounding may overshoot the geometric mean a little: shrink back under the limit
    while math.prod(sizes.values()) > limit and max(sizes.values()) > 1:
        a = max(sizes, key=sizes.get)
        sizes[a] = max(1, sizes[a] - max(1, sizes[a] // 8))
    result = list(old)
    for a, size in sizes.items():
        growing = max(new[a]) >= max(old[a])
        result[a] = _group(old[a] if growing else new[a], size)
    return tuple(result)


def _group(chunks: tuple[int, ...], target: int) -> tuple[int, ...]:
    """Merge consecutive ``chunks`` greedily into groups of at most ``target`` (one chunk at least)."""
    out: list[int] = []
    current = None
    for c in chunks:
        if current is not None and current + c <= target:
            current += c
        else:
            if current is not None:
                out.append(current)
            current = c
    if current is not None:
        out.append(current)
    return tuple(out)


def _step_cost(old: tuple, new: tuple) -> int:
    """Tasks in one step: one per piece plus one per new block."""
    pieces = math.prod(_count_pieces(o, n) for o, n in zip(old, new))
    return pieces + math.prod(len(n) for n in new)


def _count_pieces(old: tuple[int, ...], new: tuple[int, ...]) -> int:
    if chunks_equal((old,), (new,)):
        return len(old)
    bounds = set(itertools.accumulate(old, initial=0)) | set(itertools.accumulate(new, initial=0))
    return max(len(bounds) - 1, 1) + sum(1 for c in new if c == 0)


# --- one step ------------------------------------------------------------------------------------

def axis_pieces(old: Sequence[int], new: Sequence[int]) -> list[list[tuple[int, slice]]]:
    """For each new chunk along one axis, the ``(old block, slice within it)`` pieces it is made of.

    >>> axis_pieces((3, 3), (2, 4))
    [[(0, slice(0, 2, None))], [(0, slice(2, 3, None)), (1, slice(0, 3, None))]]
    """
    bounds = list(itertools.accumulate(old, initial=0))
    last = max(len(old) - 1, 0)
    result = []
    start = 0
    for size in new:
        stop = start + size
        if size == 0:
            block = min(bisect_right(bounds, start) - 1, last)
            local = start - bounds[block]
            result.append([(block, slice(local, local))])
            continue
        pieces = []
        block = bisect_right(bounds, start) - 1
        while block <= last and bounds[block] < stop:
            lo = max(start, bounds[block]) - bounds[block]
            hi = min(stop, bounds[block + 1]) - bounds[block]
            if hi > lo:
                pieces.append((block, slice(lo, hi)))
            block += 1
        result.append(pieces)
        start = stop
    return result


def _rechunk_step(x: Array, new: tuple[tuple[int, ...], ...]) -> Array:
    """One step: split the old blocks where needed and merge the pieces into the new blocks."""
    token = tokenize(x, new)
    merge_name = f"rechunk-merge-{token}"
    split_name = f"rechunk-split-{token}"
    per_axis = [[[(i, slice(None))] for i in range(len(o))] if chunks_equal((o,), (n,)) else axis_pieces(o, n)
                for o, n in zip(x.chunks, new)]
    old_chunks = x.chunks
    merge = partial(concatenate_blocks, ndim=len(new))
    layer: dict = {}
    splits: dict = {}
    counter = itertools.count()

    def piece(parts: tuple) -> Any:
        """The old block key if ``parts`` is a whole block, else a task cutting the piece out."""
        key = (x.name,) + tuple(b for b, _ in parts)
        if all(s == slice(None) or (s.start == 0 and s.stop == old_chunks[ax][b]) for ax, (b, s) in enumerate(parts)):
            return key
        return (getitem, key, quote(tuple(s for _, s in parts)))

    for out_index in itertools.product(*(range(len(n)) for n in new)):
        choices = [per_axis[axis][i] for axis, i in enumerate(out_index)]
        grid = [len(c) for c in choices]
        if all(g == 1 for g in grid):
            layer[(merge_name,) + out_index] = piece(tuple(c[0] for c in choices))
            continue
        keys = []
        for parts in itertools.product(*choices):
            task = piece(parts)
            if task[0] is getitem:
                # cut in its own task, so the merge task never holds whole old blocks
                split_key = (split_name, next(counter))
                splits[split_key] = task
                task = split_key
            keys.append(task)
        layer[(merge_name,) + out_index] = (merge, nest(keys, grid))
    return array_with_intermediates(merge_name, layer, split_name, splits, [x], new, x.dtype)


def array_with_intermediates(name: str, layer: Mapping, inner_name: str, inner: Mapping,
                             dependencies: Sequence[Any], chunks: Any, dtype: Any) -> Array:
    """Like :func:`~lazyarr.array.core.new_array`, with the intermediate tasks ``inner`` (keys
    ``(inner_name, ...)``, read by ``layer``) in a layer of their own."""
    if not inner:
        return new_array(name, layer, dependencies, chunks, dtype)
    inner_graph = LayeredGraph.from_collections(inner_name, inner, dependencies)
    graph = LayeredGraph.from_collections(name, layer, [inner_graph, *dependencies])
    return Array(graph, name, chunks, dtype)


def nest(flat: list, grid: Sequence[int]) -> list:
    """Arrange a C-ordered flat list into nested lists of the given ``grid`` shape.

    >>> nest([1, 2, 3, 4, 5, 6], (2, 3))
    [[1, 2, 3], [4, 5, 6]]
    """
    if len(grid) <= 1:
        return list(flat)
    step = math.prod(grid[1:])
    return [nest(flat[i * step:(i + 1) * step], grid[1:]) for i in range(grid[0])]


def chunks_equal(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> bool:
    """Are two chunkings the same, counting unknown (``nan``) sizes as equal to each other?

    >>> chunks_equal(((2, float('nan')),), ((2, float('nan')),))
    True
    """
    if len(a) != len(b):
        return False
    for ca, cb in zip(a, b):
        if len(ca) != len(cb):
            return False
        for u, v in zip(ca, cb):
            if u != v and not (math.isnan(u) and math.isnan(v)):
                return False
    return True
