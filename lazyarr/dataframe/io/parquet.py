"""Parquet through pyarrow (the optional ``[parquet]`` extra): one partition per file (or row group).

``to_parquet`` writes ``part.<i>.parquet`` files into a directory, with the index stored as a
column; ``read_parquet`` reads them back in file order, optionally selecting ``columns`` and
splitting by row group, and computes divisions from the index statistics when asked
(``calculate_divisions=True``) and they are sorted and disjoint.
"""
from __future__ import annotations

import glob as globmod
import os
import re
from typing import Any

import pandas as pd

from ...tokenize import tokenize
from ..core import new_collection
from ..utils import check_meta

__all__ = ["read_parquet", "to_parquet"]


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "lazyarr.dataframe parquet support needs pyarrow, which is not installed; "
            "install it with: pip install 'lazyarr[parquet]'"
        ) from None
    return pyarrow, pq


def _natural_key(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", os.path.basename(path))]


def _list_files(path: Any) -> list[str]:
    if isinstance(path, (list, tuple)):
        files = [os.fspath(p) for p in path]
    else:
        path = os.fspath(path)
        if os.path.isdir(path):
            files = [os.path.join(path, f) for f in os.listdir(path)
                     if f.endswith((".parquet", ".parq")) and not f.startswith(("_", "."))]
        elif any(ch in path for ch in "*?["):
            files = globmod.glob(path)
        else:
            files = [path]
    files = sorted(files, key=_natural_key)
    if not files:
        raise FileNotFoundError(f"no parquet files found at {path!r}")
    for f in files:
        if not os.path.exists(f):
            raise FileNotFoundError(f"no such parquet file: {f!r}")
    return files


def _read_piece(path: str, row_group: int | None, columns: list | None, index: Any, meta: pd.DataFrame,
                where: str, filters: Any) -> pd.DataFrame:
    _, pq = _pyarrow()
    pf = pq.ParquetFile(path)
    read_cols = None if columns is None else list(columns) + ([index] if index and index not in columns else [])
    if row_group is None:
        table = pf.read(columns=_with_pandas_index(pf, read_cols))
    else:
        table = pf.read_row_group(row_group, columns=_with_pandas_index(pf, read_cols))
    df = table.to_pandas()
    if filters is not None:
        df = _apply_filters(df, filters)
    if index and index in df.columns:
        df = df.set_index(index)
    if columns is not None:
        df = df[list(columns)]
    return check_meta(df, meta, where)


def _with_pandas_index(pf: Any, columns: list | None) -> list | None:
    if columns is None:
        return None
    meta = pf.schema_arrow.pandas_metadata or {}
    extra = [c for c in meta.get("index_columns", []) if isinstance(c, str)]
    return list(dict.fromkeys(list(columns) + extra))


_OPS = {"==": "__eq__", "=": "__eq__", "!=": "__ne__", "<": "__lt__", "<=": "__le__", ">": "__gt__",
        ">=": "__ge__"}


def _apply_filters(df: pd.DataFrame, filters: list) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    for col, op, value in filters:
        values = df[col] if col in df.columns else df.index.to_series()
        if op == "in":
            mask &= values.isin(value).to_numpy()
        elif op == "not in":
            mask &= ~values.isin(value).to_numpy()
        elif op in _OPS:
            mask &= getattr(values, _OPS[op])(value).to_numpy()
        else:
            raise ValueError(f"unknown filter operator {op!r}")
    return df[mask.to_numpy()]


def read_parquet(path: Any, columns: Any = None, index: Any = None, split_row_groups: bool = False,
                 calculate_divisions: bool = False, filters: list | None = None) -> Any:
    """A lazy DataFrame from parquet files (a file, a directory of them, a glob or a list).

    ``columns`` selects columns (a single name gives a Series); ``index`` names a column to use
    as the index (the stored pandas index is restored by default); ``split_row_groups=True``
    makes one partition per row group; ``filters=[(col, op, value), ...]`` keeps matching rows
    (ops ``== != < <= > >= in``, applied after reading). Needs pyarrow (``pip install
    'lazyarr[parquet]'``).
    """
    _, pq = _pyarrow()
    files = _list_files(path)
    single = isinstance(columns, str)
    cols = [columns] if single else (list(columns) if columns is not None else None)
    first = pq.ParquetFile(files[0])
    empty = first.schema_arrow.empty_table().to_pandas()
    if index:
        if index not in empty.columns:
            raise KeyError(f"index column {index!r} not found in {files[0]}; columns: {list(empty.columns)}")
        empty = empty.set_index(index)
    if cols is not None:
        missing = [c for c in cols if c not in empty.columns]
        if missing:
            raise KeyError(f"column(s) {missing} not found in {files[0]}; columns: {list(empty.columns)}")
        meta = empty[cols]
    else:
        meta = empty
    pieces: list[tuple[str, int | None]] = []
    for f in files:
        if split_row_groups:
            n = pq.ParquetFile(f).num_row_groups
            pieces.extend((f, g) for g in range(n))
        else:
            pieces.append((f, None))
    name = f"read_parquet-{tokenize(files, [os.path.getmtime(f) for f in files], cols, index, split_row_groups, filters)}"
    layer = {}
    for i, (f, g) in enumerate(pieces):
        where = f"partition {i} ({f}{'' if g is None else f', row group {g}'})"
        layer[(name, i)] = (_read_piece, f, g, cols, index, meta, where, filters)
    divisions = _divisions(pieces, meta) if calculate_divisions else None
    out = new_collection({name: layer}, name, meta, divisions or (None,) * (len(pieces) + 1))
    return out[columns] if single else out


def _divisions(pieces: list, meta: pd.DataFrame) -> tuple | None:
    _, pq = _pyarrow()
    index_name = meta.index.name
    if index_name is None:
        return None
    bounds = []
    for f, g in pieces:
        md = pq.ParquetFile(f).metadata
        groups = range(md.num_row_groups) if g is None else [g]
        lo = hi = None
        for rg in groups:
            rgm = md.row_group(rg)
            col = next((rgm.column(c) for c in range(rgm.num_columns)
                        if rgm.column(c).path_in_schema == str(index_name)), None)
            if col is None or col.statistics is None or not col.statistics.has_min_max:
                return None
            lo = col.statistics.min if lo is None else min(lo, col.statistics.min)
            hi = col.statistics.max if hi is None else max(hi, col.statistics.max)
        bounds.append((lo, hi))
    for (_, hi1), (lo2, _) in zip(bounds[:-1], bounds[1:]):
        if not hi1 < lo2:
            return None
    divs = tuple(lo for lo, _ in bounds) + (bounds[-1][1],)
    if meta.index.dtype.kind == "M":
        divs = tuple(pd.Timestamp(d) for d in divs)
    return divs


def _write_piece(part: pd.DataFrame, path: str, kwargs: dict) -> str:
    _pyarrow()
    part.to_parquet(path, engine="pyarrow", index=True, **kwargs)
    return path


def _paths_series(paths: list) -> pd.Series:
    return pd.Series(list(paths), dtype=object)


def to_parquet(frame: Any, path: Any, compute: bool = True, name_function: Any = None, scheduler: Any = None,
               **kwargs: Any) -> Any:
    """Write one parquet file per partition into directory ``path`` (created if needed); needs pyarrow.

    Files are named ``part.<i>.parquet`` (or ``name_function(i)``); the index is stored. Returns
    the list of files (a lazy Series of them with ``compute=False``).
    """
    _pyarrow()
    from ..core import DataFrame

    if not isinstance(frame, DataFrame):
        frame = frame.to_frame()
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    names = [name_function(i) if name_function else f"part.{i}.parquet" for i in range(frame.npartitions)]
    name = f"to_parquet-{tokenize(frame, path, names, kwargs)}"
    layer = {(name, i): (_paths_series, [(_write_piece, (frame._name, i), os.path.join(path, n), kwargs)])
             for i, n in enumerate(names)}
    out = new_collection({**frame._layers, name: layer}, name, pd.Series([], dtype=object),
                         (None,) * (frame.npartitions + 1))
    if not compute:
        return out
    return out.compute(scheduler=scheduler).tolist()
