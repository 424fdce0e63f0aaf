"""Creating lazy frames from memory (pandas, dicts, arrays, delayed values) and converting them out."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...tokenize import tokenize
from ..core import DataFrame, Scalar, Series, _Frame, merge_layers, new_collection
from ..utils import check_meta, make_meta

__all__ = ["from_pandas", "from_dict", "from_array", "from_delayed", "to_delayed", "to_bag", "to_array",
           "sorted_locations"]


def _array_digest(values: Any) -> Any:
    """A content digest of one column or index: SHA-1 of the raw bytes where there are raw bytes."""
    import hashlib

    arr = values
    if isinstance(arr, (pd.Index, pd.Series)):
        arr = arr.array
    numpy_values = getattr(arr, "_ndarray", None) if not isinstance(arr, np.ndarray) else arr
    if isinstance(numpy_values, np.ndarray) and not numpy_values.dtype.hasobject:
        data = np.ascontiguousarray(numpy_values)
        return (str(values.dtype), data.shape, hashlib.sha1(data.view("u1").data).hexdigest())
    chunked = getattr(arr, "_pa_array", None)
    if chunked is not None:
        h = hashlib.sha1()
        for chunk in chunked.chunks:
            h.update(str(chunk.offset).encode())
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(memoryview(buf))
        return (str(values.dtype), len(arr), h.hexdigest())
    return tokenize(values)


def _pandas_token(data: Any) -> str:
    """A fast deterministic token of a pandas object's content (hashing raw column buffers)."""
    if isinstance(data, pd.Series):
        parts = [("series", data.name, _array_digest(data))]
    else:
        parts = [("frame", list(map(repr, data.columns)))]
        parts += [_array_digest(data.iloc[:, i]) for i in range(data.shape[1])]
    index = data.index
    if isinstance(index, pd.RangeIndex):
        parts.append(("range", index.start, index.stop, index.step, index.name))
    elif isinstance(index, pd.MultiIndex):
        parts.append(tokenize(index))
    else:
        parts.append(("index", index.name, _array_digest(index)))
    return tokenize(parts)


def sorted_locations(index: pd.Index, npartitions: int) -> list[int]:
    """Row positions splitting a sorted ``index`` into about ``npartitions`` pieces.

    Boundaries move back to the first occurrence of their value, so equal index values never
    straddle two partitions (the divisions then describe the partitions exactly).
    """
    n = len(index)
    step = max(1, math.ceil(n / npartitions)) if n else 1
    raw = list(range(0, n, step)) if n else [0]
    locations = [0]
    for loc in raw[1:]:
        loc = int(index.searchsorted(index[loc], side="left"))
        if loc > locations[-1]:
            locations.append(loc)
    locations.append(n)
    return locations


def from_pandas(data: pd.DataFrame | pd.Series, npartitions: int | None = None, chunksize: int | None = None,
                sort: bool = True, name: str | None = None) -> DataFrame | Series:
    """A lazy frame made of row slices of a pandas DataFrame or Series.

    Give ``npartitions`` or ``chunksize`` (rows per partition). With ``sort=True`` (default) the
    data are sorted by index if they are not already, and divisions are known; with
    ``sort=False`` the row order is kept and divisions are unknown. Partitions are zero-copy
    ``iloc`` slices held in the task graph.

    >>> import pandas as pd
    >>> ddf = from_pandas(pd.DataFrame({'x': range(10)}), npartitions=3)
    >>> ddf.npartitions, ddf.divisions
    (3, (0, 4, 8, 9))
    """
    if isinstance(data, _Frame):
        raise TypeError("from_pandas got a lazy frame; it is already lazy")
    if not isinstance(data, (pd.DataFrame, pd.Series)):
        raise TypeError(f"from_pandas needs a pandas DataFrame or Series, not {type(data).__name__}")
    if (npartitions is None) == (chunksize is None):
        raise ValueError("give exactly one of npartitions= and chunksize=")
    if npartitions is not None and int(npartitions) < 1:
        raise ValueError(f"npartitions must be at least 1, got {npartitions}")
    if chunksize is not None:
        if int(chunksize) < 1:
            raise ValueError(f"chunksize must be at least 1, got {chunksize}")
        npartitions = max(1, math.ceil(len(data) / int(chunksize)))
    npartitions = int(npartitions)
    index = data.index
    known = sort and not index.hasnans and not isinstance(index, pd.MultiIndex) and len(data) > 0
    if known and not index.is_monotonic_increasing:
        data = data.sort_index(kind="stable")
        index = data.index
    name = name or f"from_pandas-{tokenize(_pandas_token(data), npartitions, sort)}"
    if known:
        locations = sorted_locations(index, npartitions)
        divisions = tuple(index[loc] for loc in locations[:-1]) + (index[-1],)
        divisions = tuple(d.item() if isinstance(d, np.generic) else d for d in divisions)
    else:
        n = len(data)
        step = math.ceil(n / npartitions) if n else 1
        locations = list(range(0, n, step)) + [n] if n else [0, 0]
        divisions = (None,) * len(locations)
    layer = {(name, i): data.iloc[start:stop] for i, (start, stop) in enumerate(zip(locations[:-1], locations[1:]))}
    return new_collection({name: layer}, name, make_meta(data), divisions)


def from_dict(data: Mapping, npartitions: int, orient: str = "columns", dtype: Any = None,
              columns: Any = None) -> DataFrame:
    """A lazy DataFrame from a dict of columns (``pandas.DataFrame.from_dict`` then :func:`from_pandas`)."""
    frame = pd.DataFrame.from_dict(data, orient=orient, dtype=dtype, columns=columns)
    return from_pandas(frame, npartitions=npartitions)


def _array_block(block: Any, columns: Any, start: int, meta: Any) -> Any:
    block = np.asarray(block)
    index = pd.RangeIndex(start, start + len(block))
    if isinstance(meta, pd.Series):
        return pd.Series(block, index=index, name=meta.name, dtype=meta.dtype)
    return pd.DataFrame(block, index=index, columns=columns).astype(dict(meta.dtypes))


def from_array(x: Any, chunksize: int = 50_000, columns: Any = None, meta: Any = None) -> DataFrame | Series:
    """A lazy frame from a 1-d or 2-d numpy array, a record array, or a lazyarr Array (row blocks).

    1-d arrays give a Series (or a DataFrame when ``columns`` names one column); 2-d arrays a
    DataFrame with ``columns`` (default ``0..ncols-1``). The index is a RangeIndex with known
    divisions when the block lengths are known.
    """
    if hasattr(type(x), "__lazyarr_graph__"):
        return _from_lazy_array(x, columns)
    arr = np.asarray(x)
    if arr.ndim not in (1, 2):
        raise ValueError(f"from_array takes 1-d or 2-d arrays, got {arr.ndim} dimensions")
    if arr.dtype.names:
        frame = pd.DataFrame.from_records(arr)
        return from_pandas(frame, chunksize=chunksize)
    if arr.ndim == 1 and (columns is None or not isinstance(columns, (list, tuple))):
        meta = pd.Series([], dtype=arr.dtype, name=columns)
        cols = None
    else:
        ncols = 1 if arr.ndim == 1 else arr.shape[1]
        cols = list(columns) if columns is not None else list(range(ncols))
        if len(cols) != ncols:
            raise ValueError(f"got {len(cols)} column names for {ncols} columns")
        meta = pd.DataFrame({c: pd.Series([], dtype=arr.dtype) for c in cols}, columns=cols)
        if arr.ndim == 1:
            arr = arr[:, None]
    name = f"from_array-{tokenize(arr, chunksize, cols)}"
    n = len(arr)
    starts = list(range(0, n, chunksize)) or [0]
    layer = {(name, i): (_array_block, arr[s: s + chunksize], cols, s, meta) for i, s in enumerate(starts)}
    divisions = tuple(starts) + (max(n - 1, 0),)
    return new_collection({name: layer}, name, meta, divisions)


def _from_lazy_array(x: Any, columns: Any) -> DataFrame | Series:
    chunks = getattr(x, "chunks", None)
    if chunks is None or getattr(x, "ndim", 0) not in (1, 2):
        raise TypeError("from_array needs a numpy array or a 1-d/2-d lazyarr Array")
    if x.ndim == 2 and len(chunks[1]) != 1:
        x = x.rechunk({1: x.shape[1]})
        chunks = x.chunks
    dtype = np.dtype(x.dtype)
    if x.ndim == 1:
        meta: Any = pd.Series([], dtype=dtype, name=columns)
        cols = None
    else:
        cols = list(columns) if columns is not None else list(range(x.shape[1]))
        meta = pd.DataFrame({c: pd.Series([], dtype=dtype) for c in cols}, columns=cols)
    keys = x.__lazyarr_keys__()
    flat = keys if x.ndim == 1 else [row[0] for row in keys]
    row_chunks = chunks[0]
    known = all(not (isinstance(c, float) and math.isnan(c)) for c in row_chunks)
    starts = [0]
    for c in row_chunks[:-1]:
        starts.append(starts[-1] + (int(c) if known else 0))
    name = f"from_array-{tokenize(x, cols)}"
    layer = {(name, i): (_array_block, key, cols, starts[i], meta) for i, key in enumerate(flat)}
    if known:
        divisions = tuple(starts) + (max(sum(int(c) for c in row_chunks) - 1, 0),)
    else:
        divisions = (None,) * (len(flat) + 1)
    layers = merge_layers({x._name if hasattr(x, "_name") else name + "-src": dict(x.__lazyarr_graph__())},
                          {name: layer})
    return new_collection(layers, name, meta, divisions)


def _check_delayed_part(part: Any, meta: Any, i: int) -> Any:
    return check_meta(part, meta, f"partition {i} (from_delayed input {i})")


def from_delayed(dfs: Sequence[Any], meta: Any = None, divisions: Sequence | None = None,
                 verify_meta: bool = True) -> DataFrame | Series:
    """A lazy frame whose partitions are the values of Delayed objects (or futures).

    Without ``meta`` the first partition is computed to learn it. With ``verify_meta`` each
    partition is checked against meta as it is created: a partition with other columns or
    dtypes raises an error naming the partition and the difference.
    """
    dfs = list(dfs)
    if not dfs:
        raise ValueError("from_delayed needs at least one Delayed object")
    for i, d in enumerate(dfs):
        if not hasattr(type(d), "__lazyarr_graph__"):
            raise TypeError(f"from_delayed takes Delayed objects; item {i} is a {type(d).__name__}")
    if meta is None:
        meta = make_meta(dfs[0].compute())
    else:
        meta = make_meta(meta)
    name = f"from_delayed-{tokenize(dfs, meta, divisions, verify_meta)}"
    layers: dict = {}
    layer = {}
    for i, d in enumerate(dfs):
        (key,) = _single_key(d)
        layers.setdefault(f"{name}-input{i}", dict(d.__lazyarr_graph__()))
        layer[(name, i)] = (_check_delayed_part, key, meta, i) if verify_meta else (_identity, key)
    if divisions is None:
        divisions = (None,) * (len(dfs) + 1)
    elif len(divisions) != len(dfs) + 1:
        raise ValueError(f"divisions has {len(divisions)} entries; {len(dfs) + 1} needed for {len(dfs)} partitions")
    layers[name] = layer
    return new_collection(layers, name, meta, tuple(divisions))


def _identity(x: Any) -> Any:
    return x


def _single_key(d: Any) -> list:
    keys = d.__lazyarr_keys__()
    from ...core import flatten

    flat = list(flatten(keys))
    if len(flat) != 1:
        raise TypeError("from_delayed takes Delayed objects with a single output key each")
    return flat


def to_delayed(frame: Any, optimize_graph: bool = True) -> Any:
    """One :class:`lazyarr.delayed.Delayed` per partition (or one for a Scalar)."""
    from ...delayed import Delayed

    keys = frame.__lazyarr_keys__()
    graph = frame.__lazyarr_graph__()
    if optimize_graph:
        graph = type(frame).__lazyarr_optimize__(graph, keys)
    out = [_make_delayed(Delayed, key, graph) for key in keys]
    return out[0] if isinstance(frame, Scalar) else out


def _make_delayed(cls: Any, key: Any, graph: dict) -> Any:
    try:
        return cls(key, graph)
    except TypeError:
        return cls(key=key, dsk=graph)


def _rows(part: Any, index: bool, format: str) -> list:
    if isinstance(part, pd.Series):
        return list(part.items()) if index else part.tolist()
    if format == "dict":
        records = part.reset_index().to_dict(orient="records") if index else part.to_dict(orient="records")
        return records
    return list(part.itertuples(index=index, name=None))


def to_bag(frame: Any, index: bool = False, format: str = "tuple") -> Any:
    """A lazyarr Bag with one element per row (tuples, or dicts with ``format='dict'``)."""
    from ...bag import Bag

    if format not in ("tuple", "dict", "frame"):
        raise ValueError(f"format must be 'tuple' or 'dict', not {format!r}")
    name = f"to_bag-{tokenize(frame, index, format)}"
    layer = {(name, i): (_rows, (frame._name, i), index, format) for i in range(frame.npartitions)}
    graph = frame.__lazyarr_graph__()
    graph.update(layer)
    try:
        return Bag(graph, name, frame.npartitions)
    except TypeError:
        return Bag(dsk=graph, name=name, npartitions=frame.npartitions)


def _values(part: Any) -> np.ndarray:
    return part.to_numpy()


def to_array(frame: Any, lengths: Any = None) -> Any:
    """The values of a lazy frame as a lazyarr Array (row chunk sizes computed if ``lengths=True``)."""
    from ... import array as la

    if lengths is True:
        from ..reductions import partition_lengths

        lengths = partition_lengths(frame)
    name = f"values-{tokenize(frame, lengths)}"
    ncols = len(frame.columns) if isinstance(frame, DataFrame) else None
    rows = tuple(lengths) if lengths is not None else (math.nan,) * frame.npartitions
    if ncols is None:
        layer = {(name, i): (_values, (frame._name, i)) for i in range(frame.npartitions)}
        chunks: tuple = (rows,)
    else:
        layer = {(name, i, 0): (_values, (frame._name, i)) for i in range(frame.npartitions)}
        chunks = (rows, (ncols,))
    graph = frame.__lazyarr_graph__()
    graph.update(layer)
    dtype = frame._meta.to_numpy().dtype if ncols is not None else frame._meta.to_numpy().dtype
    return la.Array(graph, name, chunks, dtype=dtype)
