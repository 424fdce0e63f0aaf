"""Writing arrays out: ``store`` into any array-like target, and stacks of ``.npy`` files.

:func:`store` writes block by block into objects that support ``target[slices] = block``
(NumPy arrays, memory maps, h5py datasets, zarr arrays...), so an array larger than memory goes
to disk without ever being whole in memory. :func:`to_npy_stack` / :func:`from_npy_stack` save
and reload an array as one ``.npy`` file per block along an axis (reloaded memory-mapped).
"""
from __future__ import annotations

import json
import os
import threading
from itertools import product
from typing import Any

import numpy as np

from ..tokenize import tokenize
from .chunks import chunk_offsets, validate_axis
from .core import Array, asarray
from .layers import LayeredGraph, Literal, quote
from .optimization import optimize

__all__ = ["store", "to_npy_stack", "from_npy_stack"]


def _store_block(block: np.ndarray, target: Any, region: list, lock: Any) -> None:
    index = tuple(region)
    if lock is not None:
        with lock:
            target[index] = block
    else:
        target[index] = block
    return None


def _done(*_: Any) -> None:
    return None


def _run(graph: LayeredGraph, keys: list, scheduler: Any = None, **kwargs: Any) -> list:
    from ..base import get_scheduler

    schedule = get_scheduler(scheduler, None, [])
    dsk = optimize(graph, keys)
    return schedule(dsk, keys, **kwargs)


def _region_offsets(region: Any, target_shape: tuple, source_shape: tuple) -> tuple:
    """Start offset per axis of the region of the target written to, checking its shape."""
    if region is None:
        if tuple(target_shape) != tuple(source_shape):
            raise ValueError(f"cannot store an array of shape {source_shape} into a target of shape {target_shape}")
        return (0,) * len(source_shape)
    if not isinstance(region, tuple):
        region = (region,)
    starts = []
    sizes = []
    for axis, n in enumerate(target_shape):
        sl = region[axis] if axis < len(region) else slice(None)
        if not isinstance(sl, slice) or sl.step not in (None, 1):
            raise ValueError(f"store regions must be tuples of contiguous slices, got {region!r}")
        start, stop, _ = sl.indices(n)
        starts.append(start)
        sizes.append(max(stop - start, 0))
    if tuple(sizes) != tuple(source_shape):
        raise ValueError(
            f"cannot store an array of shape {source_shape} into region {region!r} of shape {tuple(sizes)} "
            f"of a target of shape {target_shape}"
        )
    return tuple(starts)


def store(sources: Any, targets: Any, lock: Any = True, regions: Any = None, compute: bool = True,
          scheduler: Any = None, **kwargs: Any) -> Any:
    """Write each source Array into its target, block by block.

    ``targets`` support ``target[slices] = block``; shapes must match (or the given ``regions``,
    tuples of slices of the targets). ``lock=True`` serialises the writes (many targets are not
    thread-safe); pass ``False`` for targets that are, or your own lock. With ``compute=False``
    the writes are returned as a ``Delayed`` to run later.

    >>> import numpy as np, lazyarr.array as da
    >>> out = np.zeros(5)
    >>> store(da.arange(5, chunks=2), out)
    >>> out.tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    single = isinstance(sources, Array) or not isinstance(sources, (list, tuple))
    if single:
        sources, targets = [sources], [targets]
        regions = [regions]
    else:
        targets = list(targets)
        if regions is None or isinstance(regions, slice) or (isinstance(regions, tuple) and all(isinstance(r, slice) for r in regions)):
            regions = [regions] * len(sources)  # one region for every target
        else:
            regions = list(regions)
    sources = [asarray(s) for s in sources]
    if len(sources) != len(targets):
        raise ValueError(f"store got {len(sources)} sources but {len(targets)} targets")
    if lock is True:
        lock = threading.Lock()
    elif lock is False:
        lock = None
    token = tokenize([s.name for s in sources], [id(t) for t in targets], regions)
    name = f"store-{token}"
    layer: dict = {}
    outs = []
    for n, (src, target, region) in enumerate(zip(sources, targets, regions)):
        if not hasattr(target, "__setitem__"):
            raise TypeError(f"store target {type(target).__name__} does not support item assignment")
        starts = _region_offsets(region, tuple(getattr(target, "shape", np.shape(target))), src.shape)
        target_key = f"store-target-{n}-{token}"
        layer[target_key] = (Literal(target),)
        offsets = chunk_offsets(src.chunks)
        for idx in product(*map(range, src.numblocks)):
            where = [slice(starts[a] + offsets[a][i], starts[a] + offsets[a][i] + src.chunks[a][i])
                     for a, i in enumerate(idx)]
            key = (name, n) + idx
            layer[key] = (_store_block, (src.name,) + idx, target_key, quote(where), lock)
            outs.append(key)
    final = f"store-done-{token}"
    layer[final] = (_done, outs)
    graph = LayeredGraph.from_collections(name, layer, sources)
    if not compute:
        from ..delayed import Delayed

        return Delayed(final, optimize(graph, [final]))
    _run(graph, [final], scheduler=scheduler, **kwargs)
    return None


def _save_block(path: str, block: np.ndarray) -> None:
    np.save(path, block)
    return None


def to_npy_stack(dirname: str, x: Any, axis: int = 0, scheduler: Any = None) -> None:
    """Save ``x`` as ``dirname/0.npy``, ``1.npy``, ... (one file per block along ``axis``) plus an
    ``info`` file describing chunks and dtype.

    >>> import tempfile, lazyarr.array as da
    >>> d = tempfile.mkdtemp()
    >>> to_npy_stack(d, da.arange(6, chunks=4))
    >>> from_npy_stack(d).compute().tolist()
    [0, 1, 2, 3, 4, 5]
    """
    x = asarray(x)
    axis = validate_axis(axis, x.ndim, x.shape)
    whole = tuple(c if a == axis else (x.shape[a],) for a, c in enumerate(x.chunks))
    if whole != x.chunks:
        x = x.rechunk(whole)
    os.makedirs(dirname, exist_ok=True)
    info = {
        "chunks": [list(c) for c in x.chunks],
        "dtype": np.lib.format.dtype_to_descr(x.dtype),
        "axis": axis,
    }
    with open(os.path.join(dirname, "info"), "w") as f:
        json.dump(info, f)
    name = f"to-npy-stack-{tokenize(x, dirname)}"
    layer: dict = {}
    for i in range(x.numblocks[axis]):
        idx = tuple(i if a == axis else 0 for a in range(x.ndim))
        layer[(name, i)] = (_save_block, quote(os.path.join(dirname, f"{i}.npy")), (x.name,) + idx)
    keys = list(layer)
    graph = LayeredGraph.from_collections(name, layer, [x])
    _run(graph, keys, scheduler=scheduler)


def _load_block(path: str, mmap_mode: Any, shape: tuple, dtype: np.dtype) -> np.ndarray:
    block = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    if block.shape != tuple(shape) or block.dtype != dtype:
        raise ValueError(
            f"{path} holds an array of shape {block.shape} and dtype {block.dtype}; "
            f"the stack's info promises {tuple(shape)} and {dtype}"
        )
    return block


def from_npy_stack(dirname: str, mmap_mode: Any = "r") -> Array:
    """Load a stack written by :func:`to_npy_stack` (memory-mapped by default: nothing is read
    until computed)."""
    path = os.path.join(dirname, "info")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{dirname} is not an npy stack: it has no info file")
    with open(path) as f:
        info = json.load(f)
    chunks = tuple(tuple(int(n) for n in c) for c in info["chunks"])
    dtype = np.lib.format.descr_to_dtype(_descr(info["dtype"]))
    axis = int(info["axis"])
    name = f"from-npy-stack-{tokenize(os.path.abspath(dirname), chunks, mmap_mode, [os.path.getmtime(os.path.join(dirname, f'{i}.npy')) for i in range(len(chunks[axis])) if os.path.exists(os.path.join(dirname, f'{i}.npy'))])}"
    layer: dict = {}
    for i in range(len(chunks[axis])):
        file = os.path.join(dirname, f"{i}.npy")
        if not os.path.exists(file):
            raise FileNotFoundError(f"npy stack {dirname} lacks block file {i}.npy")
        idx = tuple(i if a == axis else 0 for a in range(len(chunks)))
        shape = tuple(c[j] for c, j in zip(chunks, idx))
        layer[(name,) + idx] = (_load_block, quote(file), quote(mmap_mode) if mmap_mode else None, quote(shape), dtype)
    return Array(LayeredGraph({name: layer}, {name: set()}), name, chunks, dtype)


def _descr(value: Any) -> Any:
    if isinstance(value, list):
        return [tuple(_descr(v) for v in item) if isinstance(item, list) else item for item in value]
    return value

