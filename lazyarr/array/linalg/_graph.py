"""Helpers the block algorithms of :mod:`lazyarr.array.linalg` share: input checks, result
dtypes, tree sums of block products, and arrays that share one layer of intermediate tasks."""
from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import config
from ..core import Array, asarray, new_array
from ..layers import LayeredGraph
from ..rechunk import rechunk

__all__ = ["matrix", "square", "inexact", "tree_sum", "intermediates", "output", "zeros_block"]


def matrix(a: Any, what: str) -> Array:
    """``a`` as a lazy 2-d array with known chunk sizes."""
    a = asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{what} needs a 2-d array, got shape {a.shape}")
    if any(math.isnan(n) for c in a.chunks for n in c):
        raise ValueError(f"{what} needs known chunk sizes, got {a.chunks}; compute the chunk sizes first")
    return a


def square(a: Any, what: str) -> Array:
    """``a`` as a square matrix whose blocks on the diagonal are square (the column chunks are
    made equal to the row chunks if they differ)."""
    a = matrix(a, what)
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"{what} needs a square matrix, got shape {a.shape}")
    return a if a.chunks[1] == a.chunks[0] else rechunk(a, {1: a.chunks[0]})


def inexact(*dtypes: Any) -> np.dtype:
    """The dtype NumPy's linear algebra computes in for inputs of ``dtypes`` (ints become float64)."""
    common = np.result_type(*dtypes)
    return np.linalg.inv(np.ones((1, 1), dtype=common)).dtype  # raises for dtypes NumPy can't handle


def _add(parts: list) -> Any:
    return functools.reduce(operator.add, parts)


def tree_sum(tasks: dict, base: tuple, parts: Sequence[Any]) -> Any:
    """A task adding up the tasks ``parts``, ``array.split-every`` at a time: each part and each
    partial sum gets a key ``base + (level, i)`` in ``tasks``, so none holds many blocks at once."""
    if len(parts) == 1:
        return parts[0]
    fan = max(int(config.get("array.split-every", 8)), 2)
    keys = []
    for i, part in enumerate(parts):
        keys.append(base + (0, i))
        tasks[keys[-1]] = part
    level = 1
    while len(keys) > fan:
        grouped = []
        for g in range(0, len(keys), fan):
            grouped.append(base + (level, g // fan))
            tasks[grouped[-1]] = (_add, keys[g:g + fan])
        keys, level = grouped, level + 1
    return (_add, keys)


def intermediates(name: str, tasks: Mapping, dependencies: Sequence[Any]) -> LayeredGraph:
    """A graph layer of intermediate tasks (keys ``(name, ...)``) on top of ``dependencies``."""
    return LayeredGraph.from_collections(name, dict(tasks), list(dependencies))


def output(name: str, layer: Mapping, inner: LayeredGraph, chunks: tuple, dtype: Any) -> Array:
    """An array whose blocks ``layer`` reads from the shared intermediate layer ``inner``."""
    return new_array(name, layer, [inner], chunks, dtype)


def zeros_block(shape: tuple, dtype: np.dtype) -> np.ndarray:
    """A block of zeros (the parts of triangular factors that are zero by construction)."""
    return np.zeros(shape, dtype=dtype)
