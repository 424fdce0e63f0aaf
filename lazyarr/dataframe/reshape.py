"""Reshaping lazy frames: melt, get_dummies, pivot_table.

``melt`` keeps pandas' row order (all rows of the first value column, then the second, ...) by
making one output partition per (value column, input partition). ``get_dummies`` and
``pivot_table`` make one output column per category, so those columns must be categorical with
known categories (see :mod:`lazyarr.dataframe.categories`), as in Dask.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_list_like, is_scalar, is_string_dtype

from ..tokenize import tokenize
from .categories import require_known_categories, with_meta_categories
from .core import DataFrame, Series, map_partitions, merge_layers, new_collection
from .reductions import tree_reduce
from .utils import make_meta, meta_nonempty, raise_unknown_columns

__all__ = ["explode", "melt", "get_dummies", "pivot_table"]


# ---------------------------------------------------------------- explode

def _explode(part: Any, column: Any, ignore_index: bool, as_object: list) -> Any:
    out = part.explode(column, ignore_index=ignore_index) if column is not None else \
        part.explode(ignore_index=ignore_index)
    if isinstance(out, pd.Series):
        return out.astype(object) if as_object and out.dtype != object else out
    changes = {c: object for c in as_object if out[c].dtype != object}
    return out.astype(changes) if changes else out


def explode(x: DataFrame | Series, column: Any = None, ignore_index: bool = False) -> Any:
    """One row per element of the list-likes in ``column`` (a Series: in itself), partition by partition.

    The index repeats, so known divisions stay valid; with ``ignore_index=True`` it restarts in
    each partition. Exploded columns of object dtype stay object: pandas 3 makes them ``str``
    when every element turns out to be a string, which only the whole column can tell, so
    call ``.astype('str')`` afterwards if you want that.

    >>> import lazyarr.dataframe as dd
    >>> pdf = pd.DataFrame({'k': [1, 2, 3], 'v': [[1, 2], [], [3]]})
    >>> explode(dd.from_pandas(pdf, npartitions=2), 'v').compute()
       k    v
    0  1    1
    0  1    2
    1  2  NaN
    2  3    3
    """
    meta = x._meta
    if isinstance(meta, pd.DataFrame):
        if column is None:
            raise TypeError("DataFrame.explode needs column=, the column(s) of list-likes to explode")
        columns = list(column) if isinstance(column, (list, tuple)) else [column]
        missing = [c for c in columns if c not in meta.columns]
        if missing:
            raise_unknown_columns(missing, meta.columns)
        as_object = [c for c in columns if meta[c].dtype == object]
    else:
        as_object = [meta.name] if meta.dtype == object else []
    out_meta = make_meta(_explode(meta_nonempty(meta), column, ignore_index, as_object))
    out = map_partitions(_explode, x, column, ignore_index, as_object, meta=out_meta, token="explode")
    return out.clear_divisions() if ignore_index else out


# ---------------------------------------------------------------- melt

def _as_dtypes(out: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """Cast columns to the meta's dtypes: one value column alone has its own dtype, all of them a common one."""
    changes = {c: meta.dtypes.iloc[i] for i, c in enumerate(meta.columns)
               if out.dtypes.iloc[i] != meta.dtypes.iloc[i]
               and not isinstance(meta.dtypes.iloc[i], pd.CategoricalDtype)}
    return out.astype(changes) if changes else out


def _melt_one(part: pd.DataFrame, column: Any, meta: pd.DataFrame, kwargs: dict) -> pd.DataFrame:
    return _as_dtypes(pd.melt(part, value_vars=[column], **kwargs), meta)


def melt(frame: DataFrame, id_vars: Any = None, value_vars: Any = None, var_name: Any = None,
         value_name: Any = "value", col_level: Any = None, ignore_index: bool = True) -> DataFrame:
    """Unpivot value columns into (variable, value) rows, in pandas' row order.

    Output partition ``(j, i)`` holds value column ``j`` of input partition ``i``, so the rows
    come out as pandas orders them. With ``ignore_index=True`` (the default) the index restarts
    in each output partition, as after ``reset_index``.

    >>> import lazyarr.dataframe as dd
    >>> pdf = pd.DataFrame({'id': [1, 2, 3], 'a': [10, 20, 30], 'b': [1.5, 2.5, 3.5]})
    >>> melt(dd.from_pandas(pdf, npartitions=2), id_vars='id').compute()
       id variable  value
    0   1        a   10.0
    1   2        a   20.0
    0   3        a   30.0
    0   1        b    1.5
    1   2        b    2.5
    0   3        b    3.5
    """
    if col_level is not None or isinstance(frame._meta.columns, pd.MultiIndex):
        raise NotImplementedError("melt of MultiIndex columns (col_level=) is not supported lazily; flatten the "
                                  "column labels first")
    kwargs = {"id_vars": id_vars, "var_name": var_name, "value_name": value_name, "ignore_index": ignore_index}
    fake = pd.melt(meta_nonempty(frame._meta), value_vars=value_vars, **kwargs)  # pandas' errors, now
    meta = make_meta(fake)
    var_column = fake.columns[-2]
    columns = list(pd.unique(fake[var_column]))
    if not columns:  # nothing to unpivot: every partition gives an empty frame
        return map_partitions(pd.melt, frame, value_vars=value_vars, meta=meta, token="melt", keep_divisions=False,
                              new_origin=True, **kwargs)
    name = f"melt-{tokenize(frame, columns, kwargs)}"
    layer = {(name, j * frame.npartitions + i): (_melt_one, (frame._name, i), col, meta, kwargs)
             for j, col in enumerate(columns) for i in range(frame.npartitions)}
    return new_collection(merge_layers(frame, {name: layer}), name, meta, (None,) * (len(layer) + 1))


# ---------------------------------------------------------------- get_dummies

def _dummies(part: Any, dtypes: dict, kwargs: dict) -> pd.DataFrame:
    if isinstance(part, pd.Series):
        part = with_meta_categories(part, dtypes[None], "get_dummies")
    else:
        part = part.assign(**{c: with_meta_categories(part[c], d, "get_dummies") for c, d in dtypes.items()})
    return pd.get_dummies(part, **kwargs)


def get_dummies(data: DataFrame | Series, prefix: Any = None, prefix_sep: Any = "_", dummy_na: bool = False,
                columns: Any = None, sparse: bool = False, drop_first: bool = False, dtype: Any = bool,
                **kwargs: Any) -> DataFrame:
    """One indicator column per category, as ``pandas.get_dummies``.

    The encoded columns must be categorical with known categories (``df.categorize()`` makes
    them so), because every partition must produce the same columns. With ``columns=None`` all
    categorical columns are encoded; string columns are an error, as they would be encoded by
    pandas but their values are not known.

    >>> import lazyarr.dataframe as dd
    >>> s = pd.Series(pd.Categorical(['b', 'a', 'b'], categories=['a', 'b', 'c']))
    >>> get_dummies(dd.from_pandas(s, npartitions=2), dtype=int).compute()
       a  b  c
    0  0  1  0
    1  1  0  0
    2  0  1  0
    """
    meta = data._meta
    if isinstance(data, Series):
        require_known_categories(meta, None, "get_dummies")
        dtypes = {None: meta.dtype}
    elif isinstance(data, DataFrame):
        if columns is None:
            strings = [c for i, c in enumerate(meta.columns) if is_string_dtype(meta.dtypes.iloc[i])
                       and not isinstance(meta.dtypes.iloc[i], pd.CategoricalDtype)]
            if strings:
                raise ValueError(f"get_dummies needs the categories of string columns {strings}, which are not "
                                 f"known: convert them with df.categorize(columns={strings!r}) first")
            columns = [c for i, c in enumerate(meta.columns) if isinstance(meta.dtypes.iloc[i], pd.CategoricalDtype)]
        else:
            columns = [columns] if is_scalar(columns) else list(columns)
            missing = [c for c in columns if c not in meta.columns]
            if missing:
                raise_unknown_columns(missing, meta.columns)
        require_known_categories(meta, columns, "get_dummies")
        dtypes = {c: meta[c].dtype for c in columns}
    else:
        raise TypeError(f"get_dummies takes a lazy DataFrame or Series, not {type(data).__name__}")
    options = dict(prefix=prefix, prefix_sep=prefix_sep, dummy_na=dummy_na, sparse=sparse, drop_first=drop_first,
                   dtype=dtype, **kwargs)
    if isinstance(data, DataFrame):
        options["columns"] = columns
    out_meta = make_meta(pd.get_dummies(meta_nonempty(meta), **options))
    return map_partitions(_dummies, data, dtypes, options, meta=out_meta, token="get_dummies")


# ---------------------------------------------------------------- pivot_table

_PIVOT_AGGS = ("mean", "sum", "count", "first", "last")
# how partials of each aggregation are computed per partition and merged
_PARTIAL = {"sum": "sum", "count": "count", "first": "first", "last": "last"}
_MERGE = {"sum": "sum", "count": "sum", "first": "first", "last": "last"}


def _pivot_chunk(part: pd.DataFrame, index: Any, columns: Any, values: list, aggfunc: str,
                 dtype: pd.CategoricalDtype) -> tuple:
    part = part.assign(**{columns: with_meta_categories(part[columns], dtype, "pivot_table")})
    grouped = part.groupby([index, columns], observed=True, sort=False, dropna=True)[values]
    if aggfunc == "mean":
        return (grouped.sum(), grouped.count())
    return (grouped.agg(_PARTIAL[aggfunc]),)


def _pivot_combine(parts: list, aggfunc: str) -> tuple:
    hows = ("sum", "sum") if aggfunc == "mean" else (_MERGE[aggfunc],)
    out = []
    for k, how in enumerate(hows):
        # concat keeps partition order, so first/last pick the earliest/latest rows, as pandas does
        stacked = pd.concat([p[k] for p in parts])
        out.append(stacked.groupby(level=[0, 1], observed=True, sort=False).agg(how))
    return tuple(out)


def _pivot_aggregate(parts: list, index: Any, columns: Any, values: Any, aggfunc: str,
                     meta: pd.DataFrame) -> pd.DataFrame:
    merged = _pivot_combine(parts, aggfunc)
    if aggfunc == "mean":
        with np.errstate(all="ignore"):
            long, final = merged[0] / merged[1], "first"  # one row per group: 'first' just places it
    else:
        long, final = merged[0], _MERGE[aggfunc]
    if len(long) == 0:
        out = meta.iloc[:, :0]  # pandas' answer when no row has both keys: no columns at all
    else:
        # pandas' own pivot of the merged partials gives pandas' index, column order, fills and dtypes
        out = pd.pivot_table(long.reset_index(), index=index, columns=columns, values=values, aggfunc=final,
                             observed=False)
    if not out.columns.equals(meta.columns):
        gone = [c for c in meta.columns if c not in out.columns]
        zeros = ", or use aggfunc='sum'/'count', which fill them with zeros" if len(long) else ""
        raise ValueError(f"pivot_table: no values for {gone}, so pandas would drop these columns, but a lazy "
                         f"pivot_table has one column per category of {columns!r}. Keep only the categories "
                         f"that occur with df.categorize(columns=[{columns!r}]){zeros}")
    return out


def _check_pivot_args(df: DataFrame, index: Any, columns: Any, values: Any, aggfunc: str) -> list:
    cols = df._meta.columns
    if not is_scalar(index) or index not in cols:
        raise ValueError(f"'index' must be the name of an existing column, got {index!r}")
    if not is_scalar(columns) or columns not in cols:
        raise ValueError(f"'columns' must be the name of an existing column, got {columns!r}")
    value_list = [values] if is_scalar(values) and values is not None else values
    if not is_list_like(value_list) or not value_list or any(v not in cols for v in value_list):
        raise ValueError(f"'values' must refer to an existing column or columns, got {values!r}")
    if aggfunc not in _PIVOT_AGGS:
        raise ValueError(f"aggfunc must be one of {list(_PIVOT_AGGS)}, got {aggfunc!r}")
    require_known_categories(df._meta, [columns], "pivot_table")
    return list(value_list)


def _pivot_meta(df: DataFrame, index: Any, columns: Any, values: Any, aggfunc: str) -> pd.DataFrame:
    dtype = df._meta[columns].dtype
    if not len(dtype.categories):
        raise ValueError(f"pivot_table: column {columns!r} has no categories, so the result would have no columns")
    fake = meta_nonempty(df._meta, n=len(dtype.categories))
    fake[columns] = pd.Categorical(dtype.categories, dtype=dtype)  # every category observed: every column present
    return make_meta(pd.pivot_table(fake, index=index, columns=columns, values=values, aggfunc=aggfunc,
                                    observed=False))


def pivot_table(df: DataFrame, index: Any = None, columns: Any = None, values: Any = None,
                aggfunc: str = "mean", split_every: int | None = None) -> DataFrame:
    """A spreadsheet-style pivot table with one column per category of ``columns`` (as Dask).

    ``index`` is one column, ``columns`` one categorical column with known categories,
    ``values`` one column or a list; ``aggfunc`` is ``'mean'``, ``'sum'``, ``'count'``,
    ``'first'`` or ``'last'``. Partial aggregates per partition are tree-reduced; the result
    equals ``pandas.pivot_table(..., observed=False)``, sorted by ``index``. If a category never
    has a value, pandas would drop its column (mean/first/last): that raises an error naming it.

    >>> import lazyarr.dataframe as dd
    >>> pdf = pd.DataFrame({'k': [1, 2, 1, 2], 'c': pd.Categorical(['x', 'y', 'y', 'y']), 'v': [1, 2, 3, 4]})
    >>> pivot_table(dd.from_pandas(pdf, npartitions=2), 'k', 'c', 'v', aggfunc='sum').compute()
    c  x  y
    k
    1  1  3
    2  0  6
    """
    value_list = _check_pivot_args(df, index, columns, values, aggfunc)
    meta = _pivot_meta(df, index, columns, values, aggfunc)
    chunk = functools.partial(_pivot_chunk, index=index, columns=columns, values=value_list, aggfunc=aggfunc,
                              dtype=df._meta[columns].dtype)
    combine = functools.partial(_pivot_combine, aggfunc=aggfunc)
    aggregate = functools.partial(_pivot_aggregate, index=index, columns=columns, values=values, aggfunc=aggfunc,
                                  meta=meta)
    return tree_reduce(df, chunk, combine, aggregate, meta, "pivot_table", split_every)
