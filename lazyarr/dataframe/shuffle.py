"""Moving rows between partitions: hash shuffles, range partitioning, set_index, sort_values.

Two ways to move the rows, chosen by ``method=`` or the configuration ``dataframe.shuffle.method``:

``'disk'`` (default with the local schedulers)
    Each input partition is split and every piece is appended, as one framed pickle record, to
    the file of its output partition in a fresh temporary directory (``temporary-directory``
    configuration, else the system's). Output partition ``j`` then reads, concatenates and deletes
    its file. Only the partitions being worked on are in memory, so a shuffle needs about
    (input partitions in flight + output partitions in flight) x partition size, not the whole data.
    Every run uses its own directory, so a failed run never leaves rows for the next.
``'tasks'`` (default when the scheduler is a distributed client)
    Each input partition is split into a list of pieces in memory and output ``j`` concatenates
    piece ``j`` of every input: an all-to-all of ``n_in x n_out`` small pieces that any scheduler
    can run, machines apart.

Pieces are always concatenated in input-partition order, so rows with equal keys keep their
original relative order (sorts here are stable).
"""
from __future__ import annotations

import atexit
import functools
import os
import pickle
import shutil
import struct
import tempfile
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_scalar

from .. import config
from ..base import uses_local_scheduler
from ..tokenize import tokenize
from .core import DataFrame, Series, _Frame, merge_layers, new_collection, partitionwise
from .utils import concat_parts, raise_unknown_columns

__all__ = ["shuffle", "rearrange", "hash_partitions", "hash_index_partitions", "set_index", "sort_values",
           "drop_duplicates", "shuffle_method", "cleanup_shuffle_dirs"]



def shuffle_method(method: str | None = None) -> str:
    """The shuffle implementation to use: the argument, the configuration, or by scheduler."""
    method = method or config.get("dataframe.shuffle.method", None)
    if method is None:
        method = "disk" if uses_local_scheduler() else "tasks"
    if method not in ("disk", "tasks"):
        raise ValueError(f"unknown shuffle method {method!r}; use 'disk' or 'tasks'")
    return method


# ---------------------------------------------------------------- assigning rows to partitions

def _hashable_keys(keys: Any, cast: dict | None) -> Any:
    if cast:
        keys = keys.astype({c: d for c, d in cast.items() if c in getattr(keys, "columns", [])}) \
            if isinstance(keys, pd.DataFrame) else keys.astype(next(iter(cast.values())))
    return keys


def hash_partitions(part: pd.DataFrame, on: list, npartitions: int, cast: dict | None = None) -> np.ndarray:
    """Output partition of each row: hash of the ``on`` columns (or index if ``on`` is empty) modulo n."""
    if not on:
        return hash_index_partitions(part.index, npartitions)
    keys = part[on[0]] if len(on) == 1 else part[on]
    keys = _hashable_keys(keys, cast)
    h = pd.util.hash_pandas_object(keys, index=False).to_numpy()
    return (h % np.uint64(npartitions)).astype(np.int64)


def hash_index_partitions(index: pd.Index, npartitions: int) -> np.ndarray:
    """Output partition of each index value (hash modulo ``npartitions``)."""
    h = pd.util.hash_pandas_object(index, index=False).to_numpy() if not isinstance(index, pd.MultiIndex) \
        else pd.util.hash_pandas_object(index.to_frame(index=False), index=False).to_numpy()
    return (h % np.uint64(npartitions)).astype(np.int64)


def range_partitions(values: pd.Series, boundaries: Sequence, ascending: bool = True,
                     na_last: bool = True) -> np.ndarray:
    """Output partition of each value for sorted ``boundaries`` (the divisions): ``searchsorted`` bins.

    Missing values go to the last partition (``na_last``) or the first.
    """
    n = len(boundaries) - 1
    isna = pd.isna(values).to_numpy()
    valid_values = values[~isna] if isna.any() else values
    if len(valid_values):
        lo, hi = valid_values.min(), valid_values.max()
        if lo < boundaries[0] or hi > boundaries[-1]:
            bad = lo if lo < boundaries[0] else hi
            raise ValueError(f"value {bad!r} is outside the divisions [{boundaries[0]!r}, {boundaries[-1]!r}]; "
                             f"give divisions that cover the data")
    out = np.zeros(len(values), dtype=np.int64)
    inner = list(boundaries[1:-1])
    if n > 1:
        arr = values.to_numpy() if isinstance(values.dtype, np.dtype) else None
        if arr is not None and arr.dtype.kind in "iufmM" and len(inner) <= 64:
            bounds = np.asarray(inner).astype(arr.dtype)
            for b in bounds:  # a pass per boundary beats a binary search per value for few boundaries
                out += arr >= b
        else:
            valid = ~isna
            try:
                inner_typed = pd.Index(inner).astype(values.dtype)
                out[valid] = inner_typed.searchsorted(values[valid], side="right")
            except (TypeError, ValueError):
                out[valid] = np.searchsorted(np.asarray(inner, dtype=object), values.to_numpy()[valid], side="right")
    if not ascending:
        out = n - 1 - out
    out[isna] = n - 1 if na_last else 0
    return out


def _split(part: Any, func: Callable, npartitions: int) -> list:
    """``part`` split into ``npartitions`` pieces by the partition numbers ``func(part)`` gives."""
    assigned = np.asarray(func(part))
    if len(assigned) != len(part):
        raise ValueError("the partitioning function must give one partition number per row")
    if len(part) == 0:
        return [part] * npartitions
    # small integer keys: numpy's stable sort is a linear-time radix sort for 16-bit ints
    keys = assigned.astype(np.int16) if npartitions < 2**15 else assigned
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(assigned, minlength=npartitions)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    ordered = part.iloc[order]
    return [ordered.iloc[bounds[j]: bounds[j + 1]] for j in range(npartitions)]


def _collect(splits: list, j: int, meta: Any) -> Any:
    pieces = [s[j] for s in splits]
    nonempty = [p for p in pieces if len(p)]
    if not nonempty:
        return meta
    return concat_parts(nonempty)


# ---------------------------------------------------------------- disk shuffle

_HEADER = struct.Struct("<qq")  # (input partition, payload length)


_LIVE_DIRS: set = set()


def cleanup_shuffle_dirs() -> None:
    """Remove the disk-shuffle directories this process made whose outputs were not all read.

    Each output partition deletes its own file once read, so after a full computation nothing is
    left; a partial one (``head()`` after a shuffle, an error) leaves files, removed here and at exit.
    """
    for directory in list(_LIVE_DIRS):
        shutil.rmtree(directory, ignore_errors=True)
        _LIVE_DIRS.discard(directory)


atexit.register(cleanup_shuffle_dirs)


def _new_shuffle_dir(token: str) -> str:
    base = config.get("temporary-directory", None) or tempfile.gettempdir()
    os.makedirs(base, exist_ok=True)
    directory = tempfile.mkdtemp(prefix=f"lazyarr-shuffle-{uuid.uuid4().hex[:8]}-", dir=base)
    _LIVE_DIRS.add(directory)
    return directory


def _disk_write(part: Any, directory: str, func: Callable, npartitions: int, i: int) -> int:
    """Append each piece of input partition ``i`` to the file of its output partition."""
    pieces = _split(part, func, npartitions)
    for j, piece in enumerate(pieces):
        if not len(piece):
            continue
        payload = pickle.dumps(piece, protocol=5)
        record = _HEADER.pack(i, len(payload)) + payload
        fd = os.open(os.path.join(directory, f"{j}.bin"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # one write per record on an O_APPEND file: records from concurrent writers never interleave
            written = os.write(fd, record)
            while written < len(record):
                written += os.write(fd, record[written:])
        finally:
            os.close(fd)
    return len(part)


def _disk_barrier(directory: str, *done: int) -> str:
    return directory


def _disk_read(directory: str, j: int, meta: Any) -> Any:
    path = os.path.join(directory, f"{j}.bin")
    if not os.path.exists(path):
        _try_cleanup(directory)
        return meta
    records = []
    with open(path, "rb") as f:
        data = f.read()
    offset = 0
    while offset < len(data):
        i, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        records.append((i, pickle.loads(data[offset: offset + length])))
        offset += length
    del data
    os.remove(path)
    _try_cleanup(directory)
    records.sort(key=lambda r: r[0])
    return concat_parts([r[1] for r in records])


def _try_cleanup(directory: str) -> None:
    try:
        os.rmdir(directory)
    except OSError:
        return  # other outputs still have files there
    _LIVE_DIRS.discard(directory)


def rearrange(frame: _Frame, func: Callable, npartitions: int, method: str | None = None,
              token: str = "shuffle") -> Any:
    """``frame`` with each row moved to output partition ``func(partition)[row]``.

    ``func`` maps a pandas partition to an integer array in ``[0, npartitions)``. Divisions of the
    result are unknown; within an output partition rows come in input order.
    """
    method = shuffle_method(method)
    name = f"{token}-{tokenize(frame, func, npartitions, method)}"
    meta = frame._meta
    n_in = frame.npartitions
    layer: dict = {}
    if method == "tasks":
        split_name = f"{name}-split"
        for i in range(n_in):
            layer[(split_name, i)] = (_split, (frame._name, i), func, npartitions)
        for j in range(npartitions):
            layer[(name, j)] = (_collect, [(split_name, i) for i in range(n_in)], j, meta)
    else:
        setup, write, barrier = f"{name}-dir", f"{name}-write", f"{name}-barrier"
        layer[(setup, 0)] = (_new_shuffle_dir, name)
        for i in range(n_in):
            layer[(write, i)] = (_disk_write, (frame._name, i), (setup, 0), func, npartitions, i)
        layer[(barrier, 0)] = (_disk_barrier, (setup, 0), *[(write, i) for i in range(n_in)])
        for j in range(npartitions):
            layer[(name, j)] = (_disk_read, (barrier, 0), j, meta)
    return new_collection(merge_layers(frame, {name: layer}), name, meta, (None,) * (npartitions + 1))


def _check_on(frame: _Frame, on: Any) -> list:
    on_list = [on] if is_scalar(on) or isinstance(on, tuple) else list(on)
    if isinstance(frame._meta, pd.DataFrame):
        missing = [c for c in on_list if c not in frame._meta.columns]
        if missing:
            raise_unknown_columns(missing, frame._meta.columns)
    return on_list


def shuffle(frame: _Frame, on: Any, npartitions: int | None = None, method: str | None = None,
            cast: dict | None = None) -> Any:
    """Hash-partition ``frame`` on column(s) ``on`` (``[]``: the index): equal keys share a partition."""
    on_list = [] if on is None else _check_on(frame, on)
    n = npartitions or frame.npartitions
    func = functools.partial(_hash_func, on=on_list, npartitions=n, cast=cast)
    return rearrange(frame, func, n, method=method, token="shuffle")


def _hash_func(part: Any, on: list, npartitions: int, cast: dict | None) -> np.ndarray:
    if isinstance(part, pd.Series):
        if on:
            raise TypeError("a Series is shuffled by its values or index, not by columns")
        return hash_index_partitions(pd.Index(part.to_numpy()), npartitions)
    return hash_partitions(part, on, npartitions, cast)


# ---------------------------------------------------------------- divisions from data

def _sample_chunk(s: pd.Series, k: int) -> tuple[Any, int, Any, Any]:
    """Evenly spaced sorted values of a random sample of one partition (for division estimates),
    with the partition's count of values, min and max."""
    valid = s.dropna()
    n = len(valid)
    if n == 0:
        return (valid.iloc[:0], 0, None, None)
    if n > 20 * k:
        rng = np.random.default_rng(n)  # deterministic: the same data give the same divisions
        sample = valid.iloc[np.sort(rng.choice(n, 20 * k, replace=False))]
    else:
        sample = valid
    values = sample.sort_values(kind="stable")
    m = len(values)
    take = np.unique(np.linspace(0, m - 1, min(k, m)).round().astype(int))
    return (values.iloc[take].reset_index(drop=True), n, valid.min(), valid.max())


def _merge_samples(chunks: list, npartitions: int) -> tuple:
    """Boundaries splitting the merged weighted sample into ``npartitions`` ranges of equal weight."""
    chunks = [c for c in chunks if c[1]]
    if not chunks:
        return ()
    values = pd.concat([c[0] for c in chunks], ignore_index=True)
    weights = np.concatenate([np.full(len(c[0]), c[1] / len(c[0])) for c in chunks])
    order = np.argsort(values.to_numpy(), kind="stable")
    values = values.iloc[order].reset_index(drop=True)
    cum = np.cumsum(weights[order])
    total = cum[-1]
    lo = min(c[2] for c in chunks)
    hi = max(c[3] for c in chunks)
    targets = total * np.arange(1, npartitions) / npartitions
    pos = np.searchsorted(cum, targets, side="left").clip(0, len(values) - 1)
    inner = [values.iloc[p] for p in pos]
    out = [lo]
    for v in inner + [hi]:
        if v > out[-1]:
            out.append(v)
    if len(out) == 1:
        out.append(hi)
    return tuple(_pyscalar(v) for v in out)


def _pyscalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def compute_divisions(series: Series, npartitions: int, samples: int = 1000) -> tuple:
    """Approximate quantile boundaries (``npartitions + 1``, unique) of a lazy Series' values, computed now."""
    from .reductions import tree_reduce

    chunk = functools.partial(_sample_chunk, k=samples)
    aggregate = functools.partial(_merge_samples, npartitions=npartitions)
    result = tree_reduce(series, chunk, _as_list, aggregate, (), "divisions", split_every=1 << 30)
    return result.compute()


def _as_list(parts: list) -> list:
    return list(parts)


def _minmax_chunk(s: Any) -> tuple:
    valid = s.dropna() if not isinstance(s, pd.Index) else s.dropna()
    if len(valid) == 0:
        return (None, None, len(s))
    return (_pyscalar(valid.min()), _pyscalar(valid.max()), len(s))


# ---------------------------------------------------------------- set_index / sort_values

def _sort_by_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by index, stable, missing values last (numpy's sort where the index allows)."""
    index = frame.index
    if index.is_monotonic_increasing:
        return frame
    values = index.to_numpy() if isinstance(index.dtype, np.dtype) else None
    if values is not None and values.dtype.kind in "iufmM":
        # numpy orders NaN/NaT last, like pandas' na_position="last". Its quicksort is several
        # times faster than the stable sort; it is only unstable where values repeat.
        order = np.argsort(values)
        ordered = values[order]
        if len(ordered) > 1 and ((ordered[1:] == ordered[:-1]).any() or pd.isna(ordered[-1])):
            order = np.argsort(values, kind="stable")
        return frame.iloc[order]
    return frame.sort_index(kind="stable")


def _set_index_part(part: pd.DataFrame, column: Any, drop: bool) -> pd.DataFrame:
    return _sort_by_index(part.set_index(column, drop=drop))


def set_index(frame: DataFrame, other: Any, drop: bool = True, sorted: bool = False, npartitions: int | None = None,
              divisions: Sequence | None = None, method: str | None = None, samples: int = 1000) -> DataFrame:
    """``frame`` indexed by column ``other`` (or an aligned lazy Series) with rows sorted across partitions.

    Divisions come from ``divisions=``, from per-partition min/max when ``sorted=True`` (no
    shuffle; the column must already be sorted across partitions), or from approximate quantiles
    of the column (computed now), after which rows are range-partitioned with a shuffle.
    Rows whose key is missing go to the last partition.
    """
    if isinstance(other, Series):
        frame = frame.assign(__lazyarr_index__=other)
        column: Any = "__lazyarr_index__"
        rename_to = other._meta.name
    else:
        if not (is_scalar(other) or isinstance(other, tuple)):
            raise NotImplementedError("set_index takes one column name or one lazy Series")
        _check_on(frame, other)
        column, rename_to = other, other
    values = frame[column]
    meta = frame._meta.set_index(column, drop=drop)
    if column == "__lazyarr_index__":
        meta.index.name = rename_to
    n = npartitions or frame.npartitions
    if sorted and divisions is None:
        from .reductions import tree_reduce

        bounds = tree_reduce(values, _minmax_chunk, _as_list, _as_list, (), "minmax", split_every=1 << 30).compute()
        ranges = [(lo, hi) for lo, hi, _ in bounds if lo is not None]
        for (lo1, hi1), (lo2, hi2) in zip(ranges[:-1], ranges[1:]):
            if hi1 > lo2:
                raise ValueError(f"set_index(sorted=True) but the column is not sorted across partitions: a "
                                 f"partition ending at {hi1!r} is followed by one starting at {lo2!r}")
        if len(ranges) == len(bounds) and ranges and all(hi1 != lo2 for (_, hi1), (lo2, _) in zip(ranges[:-1],
                                                                                                   ranges[1:])):
            divs = tuple(lo for lo, _ in ranges) + (ranges[-1][1],)
        else:
            divs = (None,) * (frame.npartitions + 1)
        out = partitionwise(_set_index_part, frame, column, drop, meta=meta, token="set_index")
        out = new_collection(out._layers, out._name, out._meta, divs)
        return _rename_index(out, column, rename_to)
    if divisions is None:
        divisions = compute_divisions(values, n, samples)
        if not divisions:
            out = partitionwise(_set_index_part, frame, column, drop, meta=meta, token="set_index")
            return _rename_index(out.clear_divisions(), column, rename_to)
    divisions = tuple(divisions)
    func = functools.partial(_range_func, column=column, divisions=divisions, ascending=True, na_last=True)
    moved = rearrange(frame, func, len(divisions) - 1, method=method, token="set_index-shuffle")
    out = partitionwise(_set_index_part, moved, column, drop, meta=meta, token="set_index")
    out = new_collection(out._layers, out._name, out._meta, divisions)
    return _rename_index(out, column, rename_to)


def _rename_index(frame: DataFrame, column: Any, name: Any) -> DataFrame:
    if column == name:
        return frame
    out = partitionwise(_rename_axis, frame, name, token="rename_axis")
    return new_collection(out._layers, out._name, out._meta, frame.divisions)


def _rename_axis(part: pd.DataFrame, name: Any) -> pd.DataFrame:
    return part.rename_axis(index=name)


def _range_func(part: pd.DataFrame, column: Any, divisions: tuple, ascending: bool, na_last: bool) -> np.ndarray:
    return range_partitions(part[column], divisions, ascending=ascending, na_last=na_last)


def _sort_part(part: pd.DataFrame, by: list, ascending: Any, na_position: str) -> pd.DataFrame:
    return part.sort_values(by, ascending=ascending, na_position=na_position, kind="stable")


def sort_values(frame: DataFrame, by: Any, ascending: Any = True, npartitions: int | None = None,
                na_position: str = "last", method: str | None = None) -> Any:
    """Rows of ``frame`` sorted by ``by`` across partitions (stable; the index is kept, divisions unknown)."""
    if isinstance(frame, Series):
        column = frame._meta.name if frame._meta.name is not None else "__values__"
        out = sort_values(frame.to_frame(name=column), column, ascending=ascending, npartitions=npartitions,
                          na_position=na_position, method=method)[column]
        return out if column == frame._meta.name else out.rename(frame._meta.name)
    by_list = _check_on(frame, by)
    if na_position not in ("first", "last"):
        raise ValueError(f"na_position must be 'first' or 'last', not {na_position!r}")
    first_asc = ascending if isinstance(ascending, bool) else ascending[0]
    values = frame[by_list[0]]
    n = npartitions or frame.npartitions
    divisions = compute_divisions(values, n)
    if not divisions or len(divisions) < 3:
        # everything fits one range: sort the whole in one partition
        single = frame.repartition(npartitions=1)
        out = partitionwise(_sort_part, single, by_list, ascending, na_position, token="sort_values")
        return out.clear_divisions()
    func = functools.partial(_range_func, column=by_list[0], divisions=divisions, ascending=first_asc,
                             na_last=na_position == "last")
    moved = rearrange(frame, func, len(divisions) - 1, method=method, token="sort_values-shuffle")
    return partitionwise(_sort_part, moved, by_list, ascending, na_position, token="sort_values")


# ---------------------------------------------------------------- drop_duplicates

def _dd_chunk(x: Any, subset: Any, keep: str, ignore_index: bool = False) -> Any:
    if isinstance(x, pd.Series):
        return x.drop_duplicates(keep=keep)
    return x.drop_duplicates(subset=subset, keep=keep)


def _dd_combine(parts: list, subset: Any, keep: str) -> Any:
    return _dd_chunk(concat_parts(list(parts)), subset, keep)


def _dd_aggregate(parts: list, subset: Any, keep: str, ignore_index: bool) -> Any:
    out = _dd_combine(parts, subset, keep)
    return out.reset_index(drop=True) if ignore_index else out


def drop_duplicates(frame: _Frame, subset: Any = None, keep: str = "first", split_out: int = 1,
                    split_every: int | None = None, ignore_index: bool = False, method: str | None = None) -> Any:
    """Rows without duplicates (in ``subset`` columns): a tree reduction, or a shuffle when ``split_out > 1``.

    ``keep='first'``/``'last'`` keep pandas' choice of row; ``keep=False`` (drop all copies) always
    shuffles so every copy of a row meets the others.
    """
    if keep not in ("first", "last", False):
        raise ValueError(f"keep must be 'first', 'last' or False, not {keep!r}")
    if subset is not None and isinstance(frame._meta, pd.DataFrame):
        subset = _check_on(frame, subset)
    if split_out == 1 and keep is not False:
        from .reductions import tree_reduce

        chunk = functools.partial(_dd_chunk, subset=subset, keep=keep)
        combine = functools.partial(_dd_combine, subset=subset, keep=keep)
        aggregate = functools.partial(_dd_aggregate, subset=subset, keep=keep, ignore_index=ignore_index)
        meta = frame._meta.reset_index(drop=True) if ignore_index else frame._meta
        return tree_reduce(frame, chunk, combine, aggregate, meta, "drop_duplicates", split_every)
    n = split_out if split_out > 1 else frame.npartitions
    if isinstance(frame, Series):
        moved = rearrange(frame, functools.partial(_series_hash, npartitions=n), n, method=method, token="shuffle")
    else:
        on = subset if subset is not None else list(frame.columns)
        moved = shuffle(frame, on, npartitions=n, method=method)
    out = partitionwise(_dd_chunk, moved, subset, keep, token="drop_duplicates")
    return out.reset_index(drop=True) if ignore_index else out


def _series_hash(part: pd.Series, npartitions: int) -> np.ndarray:
    h = pd.util.hash_pandas_object(part, index=False).to_numpy()
    return (h % np.uint64(npartitions)).astype(np.int64)
