"""Parquet through pyarrow (the optional ``[parquet]`` extra): one partition per file (or row group).

``to_parquet`` writes ``part.<i>.parquet`` files into a directory, with the index stored as a
column; ``read_parquet`` reads them back in file order, optionally selecting ``columns`` and
splitting by row group, and computes divisions from the index statistics when asked
(``calculate_divisions=True``) and they are sorted and disjoint.

``filters`` are pushed down: while the graph is built, the row-group statistics (pyarrow's own
check, then a min/max check that also works where a column has missing values) decide which row
groups of each file could hold a matching row; files (or, with ``split_row_groups``, row groups)
with none are left out of the graph, and each task reads only its surviving row groups. The rows read are then filtered exactly, with pyarrow's expression semantics (those of
``pandas.read_parquet(filters=...)``), so the result never depends on what the statistics know.
"""
from __future__ import annotations

import glob as globmod
import os
import re
from typing import Any

import pandas as pd
from pandas.api.types import is_scalar

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


def _read_piece(path: str, row_groups: list[int] | None, columns: list | None, index: Any, meta: pd.DataFrame,
                where: str, filters: list | None) -> pd.DataFrame:
    _, pq = _pyarrow()
    pf = pq.ParquetFile(path)
    read_cols = None
    if columns is not None:
        # the filter columns are read too, to filter by, and dropped below
        wanted = list(columns) + ([index] if index else []) + _filter_columns(filters)
        read_cols = list(dict.fromkeys(wanted))
    if row_groups is None:
        table = pf.read(columns=_with_pandas_index(pf, read_cols))
    else:
        table = pf.read_row_groups(row_groups, columns=_with_pandas_index(pf, read_cols))
    if filters is not None:
        table = table.filter(pq.filters_to_expression(filters))
    df = table.to_pandas()
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


_FILTER_OPS = ("==", "=", "!=", "<", "<=", ">", ">=", "in", "not in")


def _normalize_filters(filters: Any, names: list[str], source: str) -> list[list[tuple]]:
    """``filters`` as an OR-list of AND-lists of ``(column, op, value)``, checked against ``names``.

    Accepts what ``pandas.read_parquet`` does: ``[(col, op, value), ...]`` (all must hold) or
    ``[[...], [...]]`` (any inner list must hold).
    """
    if not isinstance(filters, (list, tuple)) or not filters or any(not f for f in filters):
        raise ValueError(f"malformed filters {filters!r}: give [(column, op, value), ...] "
                         f"or a list of such lists (OR of ANDs)")
    # pyarrow's rule for telling one AND-list from a list of them
    dnf = [filters] if isinstance(filters[0][0], str) else filters
    return [[_check_predicate(pred, names, source) for pred in conjunction] for conjunction in dnf]


def _check_predicate(pred: Any, names: list[str], source: str) -> tuple:
    if not isinstance(pred, (list, tuple)) or len(pred) != 3:
        raise ValueError(f"malformed filter {pred!r}: expected (column, op, value)")
    col, op, value = pred
    if op not in _FILTER_OPS:
        raise ValueError(f"unknown filter operator {op!r} in {tuple(pred)!r}; use one of {', '.join(_FILTER_OPS)}")
    if col not in names:
        raise KeyError(f"filter column {col!r} not found in {source}; columns: {names}")
    return (col, op, value)


def _filter_columns(filters: list | None) -> list[str]:
    return [col for conjunction in filters or [] for col, _, _ in conjunction]


def _matching_row_groups(path: str, filters: list) -> list[int]:
    """Row groups of ``path`` whose statistics do not rule out every row for ``filters``.

    pyarrow decides first. It does not use a column's statistics in a row group where that
    column has missing values (pandas stores NaN as missing), so min/max are checked again for
    the operators that missing values never satisfy. Both checks keep any row group that could
    hold a match.
    """
    _, pq = _pyarrow()
    import pyarrow.dataset as ds
    from pyarrow.fs import LocalFileSystem

    fragment = ds.ParquetFileFormat().make_fragment(path, filesystem=LocalFileSystem())
    kept = [rg.id for rg in fragment.subset(filter=pq.filters_to_expression(filters)).row_groups]
    metadata, schema = fragment.metadata, fragment.physical_schema
    return [g for g in kept if _row_group_may_match(metadata.row_group(g), schema, filters)]


# For the operators that a missing value never satisfies: comparisons of the literal with the
# row group's (min, max) that must all hold for any row to match, as (pyarrow function, bound).
_RANGE_TESTS: dict[str, list[tuple[str, int]]] = {
    "==": [("less_equal", 0), ("greater_equal", 1)],
    "=": [("less_equal", 0), ("greater_equal", 1)],
    "in": [("less_equal", 0), ("greater_equal", 1)],
    "<": [("less", 0)],
    "<=": [("less_equal", 0)],
    ">": [("greater", 1)],
    ">=": [("greater_equal", 1)],
}


def _row_group_may_match(row_group: Any, schema: Any, filters: list) -> bool:
    stats = {row_group.column(i).path_in_schema: row_group.column(i).statistics
             for i in range(row_group.num_columns)}
    return any(all(_predicate_may_match(stats.get(col), row_group.num_rows, schema, col, op, value)
                   for col, op, value in conjunction)
               for conjunction in filters)


def _predicate_may_match(stats: Any, num_rows: int, schema: Any, col: str, op: str, value: Any) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    # != and 'not in' hold for missing values: min/max cannot rule them out
    if stats is None or op not in _RANGE_TESTS or col not in schema.names:
        return True
    values = list(value) if op == "in" else [value]
    if any(is_scalar(v) and pd.isna(v) for v in values):
        return True  # a missing value in the filter itself: leave it to pyarrow
    if stats.has_null_count and stats.null_count == num_rows:
        return False  # only missing values here
    if not stats.has_min_max:
        return True
    arrow_type = schema.field(col).type
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type  # statistics are of the values
    try:
        # pyarrow's own comparison kernels, so the literal is cast exactly as in the row filter
        # (decimal against float, int against float, ...); casts keep order, so if no bound test
        # holds no value between the bounds can match
        bounds = pa.array([stats.min, stats.max], type=arrow_type)
        return any(all(getattr(pc, fn)(bounds[i], v).as_py() for fn, i in _RANGE_TESTS[op]) for v in values)
    except (pa.ArrowException, TypeError, ValueError):
        return True  # the literal does not compare with the column: keep, pyarrow will say why


def _pieces(files: list[str], split_row_groups: bool, filters: list | None) -> list[tuple[str, list[int] | None]]:
    """``(file, row groups)`` per partition; ``None`` reads the whole file."""
    _, pq = _pyarrow()
    pieces: list[tuple[str, list[int] | None]] = []
    for f in files:
        if filters is not None:
            groups = _matching_row_groups(f, filters)
        elif split_row_groups:
            groups = list(range(pq.ParquetFile(f).num_row_groups))
        else:
            groups = None
        if split_row_groups:
            pieces.extend((f, [g]) for g in groups)
        elif groups is None or groups:
            pieces.append((f, groups))
    # nothing can match: one empty partition keeps the frame's meta
    return pieces or [(files[0], [])]


def read_parquet(path: Any, columns: Any = None, index: Any = None, split_row_groups: bool = False,
                 calculate_divisions: bool = False, filters: list | None = None) -> Any:
    """A lazy DataFrame from parquet files (a file, a directory of them, a glob or a list).

    ``columns`` selects columns (a single name gives a Series); ``index`` names a column to use
    as the index (the stored pandas index is restored by default); ``split_row_groups=True``
    makes one partition per row group. ``filters`` keeps the rows ``pandas.read_parquet`` would:
    ``[(col, op, value), ...]`` (all hold) or a list of such lists (any holds), with ops
    ``== = != < <= > >= in``, ``not in``; files and row groups whose statistics rule out every
    row are not read at all (see the module docstring). Needs pyarrow (``pip install
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
    if filters is not None:
        filters = _normalize_filters(filters, first.schema_arrow.names, files[0])
    pieces = _pieces(files, split_row_groups, filters)
    name = f"read_parquet-{tokenize(files, [os.path.getmtime(f) for f in files], cols, index, pieces, filters)}"
    layer = {}
    for i, (f, groups) in enumerate(pieces):
        where = f"partition {i} ({f}{'' if groups is None else f', row groups {groups}'})"
        layer[(name, i)] = (_read_piece, f, groups, cols, index, meta, where, filters)
    divisions = _divisions(pieces, meta) if calculate_divisions else None
    out = new_collection({name: layer}, name, meta, divisions or (None,) * (len(pieces) + 1))
    return out[columns] if single else out


def _divisions(pieces: list, meta: pd.DataFrame) -> tuple | None:
    _, pq = _pyarrow()
    index_name = meta.index.name
    if index_name is None:
        return None
    bounds = []
    for f, kept in pieces:
        md = pq.ParquetFile(f).metadata
        groups = range(md.num_row_groups) if kept is None else kept
        if not groups:
            return None
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
