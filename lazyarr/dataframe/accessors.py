"""``.str``, ``.dt`` and ``.cat`` accessors (partition-wise pandas calls) and ``categorize``."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_string_dtype

from .categories import has_known_categories
from .core import DataFrame, Series, partitionwise
from .reductions import tree_reduce
from .utils import concat_parts, raise_unknown_columns

__all__ = ["StringAccessor", "DatetimeAccessor", "CategoricalAccessor", "categorize"]


def _accessor_attr(s: pd.Series, accessor: str, attr: str) -> Any:
    return getattr(getattr(s, accessor), attr)


def _accessor_call(s: pd.Series, accessor: str, attr: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(getattr(s, accessor), attr)(*args, **kwargs)


def _split_expand(s: pd.Series, pat: Any, n: int, regex: Any, columns: list) -> pd.DataFrame:
    out = s.str.split(pat, n=n, expand=True, regex=regex)
    return out.reindex(columns=columns)


class _Accessor:
    """Forwards attributes and methods to the pandas accessor of each partition."""

    _accessor = ""
    _not_partitionwise: tuple = ()

    def __init__(self, series: Series):
        self._series = series
        # fail now, as pandas would, if the dtype has no such accessor
        getattr(series._meta, self._accessor)

    def __dir__(self) -> list:
        return sorted(set(dir(getattr(self._series._meta, self._accessor))))

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        if attr in self._not_partitionwise:
            raise NotImplementedError(f".{self._accessor}.{attr} needs data from every partition at once; "
                                      f"compute first")
        pandas_acc = getattr(self._series._meta, self._accessor)
        if not hasattr(pandas_acc, attr):
            raise AttributeError(f"'.{self._accessor}' has no attribute {attr!r}")
        if callable(getattr(pandas_acc, attr)):
            def method(*args: Any, **kwargs: Any) -> Any:
                return partitionwise(_accessor_call, self._series, self._accessor, attr, *args,
                                     token=f"{self._accessor}-{attr}", **kwargs)

            method.__name__ = attr
            return method
        return partitionwise(_accessor_attr, self._series, self._accessor, attr, token=f"{self._accessor}-{attr}")


class StringAccessor(_Accessor):
    """``series.str``: every pandas string method, run on each partition."""

    _accessor = "str"
    _not_partitionwise = ("cat",)

    def split(self, pat: Any = None, n: int = -1, expand: bool = False, regex: Any = None) -> Any:
        """Split strings; with ``expand=True`` give ``n`` so the number of columns is known."""
        if expand and n == -1:
            raise ValueError("str.split(expand=True) needs n= (the number of splits) so every partition "
                             "has the same columns")
        if not expand:
            return partitionwise(_accessor_call, self._series, "str", "split", pat=pat, n=n, regex=regex,
                                 token="str-split")
        # partitions with fewer splits get all-missing columns, so every partition has n + 1 columns
        columns = list(range(n + 1))
        meta = pd.DataFrame({c: pd.Series([], dtype=self._series._meta.dtype) for c in columns}, columns=columns)
        return partitionwise(_split_expand, self._series, pat, n, regex, columns, meta=meta, token="str-split")


class DatetimeAccessor(_Accessor):
    """``series.dt``: datetime properties and methods, run on each partition."""

    _accessor = "dt"


class CategoricalAccessor(_Accessor):
    """``series.cat``: categorical properties and methods."""

    _accessor = "cat"

    @property
    def known(self) -> bool:
        """Are the categories known in the meta (not discovered per partition)?"""
        return has_known_categories(self._series)

    @property
    def categories(self) -> pd.Index:
        """The categories (from meta)."""
        return self._series._meta.cat.categories


def _cat_chunk(part: pd.DataFrame, columns: list) -> dict:
    return {c: part[c].dropna().drop_duplicates() for c in columns}


def _cat_combine(parts: list) -> dict:
    return {c: concat_parts([p[c] for p in parts]).drop_duplicates() for c in parts[0]}


def _cat_aggregate(parts: list, meta: pd.DataFrame) -> dict:
    return {c: _found_dtype(v, meta[c].dtype) for c, v in _cat_combine(parts).items()}


def _found_dtype(values: pd.Series, before: Any) -> pd.CategoricalDtype:
    """The categorical dtype for the distinct ``values`` found in a column of dtype ``before``."""
    if isinstance(before, pd.CategoricalDtype) and has_known_categories(before):
        occurring = before.categories.isin(np.asarray(values))  # in their order, which may mean something
        return pd.CategoricalDtype(before.categories[occurring], ordered=before.ordered)
    if isinstance(values.dtype, pd.CategoricalDtype):  # unknown categories: each partition had its own
        values = values.astype(values.dtype.categories.dtype)
    found = pd.Index(values.to_numpy(), dtype=values.dtype)
    return pd.CategoricalDtype(_sorted(found), ordered=getattr(before, "ordered", False))


def _sorted(cats: pd.Index) -> pd.Index:
    return cats.sort_values() if _sortable(cats) else cats


def _sortable(values: pd.Series | pd.Index) -> bool:
    try:
        values.sort_values()
        return True
    except TypeError:
        return False


def _apply_categories(part: pd.DataFrame, dtypes: dict) -> pd.DataFrame:
    return part.astype(dtypes)


def _needs_categories(dtype: Any) -> bool:
    if isinstance(dtype, pd.CategoricalDtype):
        return not has_known_categories(dtype)
    return is_string_dtype(dtype)


def categorize(frame: DataFrame, columns: Any = None, index: bool | None = None,
               split_every: int | None = None) -> DataFrame:
    """Columns (default: string/object columns and categoricals with unknown categories) with known categories.

    The categories (sorted distinct values over all partitions) are computed now, in one pass.
    A categorical column named in ``columns`` keeps the categories that occur, in their order.
    """
    meta = frame._meta
    if columns is None:
        columns = [c for i, c in enumerate(meta.columns) if _needs_categories(meta.dtypes.iloc[i])]
    else:
        columns = [columns] if isinstance(columns, str) else list(columns)
        missing = [c for c in columns if c not in meta.columns]
        if missing:
            raise_unknown_columns(missing, meta.columns)
    if index:
        raise NotImplementedError("categorize(index=True) is not supported")
    if not columns:
        return frame
    chunk = functools.partial(_cat_chunk, columns=columns)
    aggregate = functools.partial(_cat_aggregate, meta=meta)
    dtypes = tree_reduce(frame, chunk, _cat_combine, aggregate, {}, "categorize", split_every).compute()
    return partitionwise(_apply_categories, frame, dtypes, token="categorize")
