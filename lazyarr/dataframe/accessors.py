"""``.str``, ``.dt`` and ``.cat`` accessors (partition-wise pandas calls) and ``categorize``."""
from __future__ import annotations

import functools
from typing import Any

import pandas as pd
from pandas.api.types import is_string_dtype

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
        cats = self._series._meta.cat.categories
        return not (len(cats) == 1 and cats[0] == "__UNKNOWN_CATEGORIES__")

    @property
    def categories(self) -> pd.Index:
        """The categories (from meta)."""
        return self._series._meta.cat.categories


def _cat_chunk(part: pd.DataFrame, columns: list) -> dict:
    return {c: part[c].dropna().drop_duplicates() for c in columns}


def _cat_combine(parts: list) -> dict:
    return {c: concat_parts([p[c] for p in parts]).drop_duplicates() for c in parts[0]}


def _cat_aggregate(parts: list) -> dict:
    merged = _cat_combine(parts)
    out = {}
    for c, v in merged.items():
        cats = pd.Index(v.to_numpy(), dtype=v.dtype).rename(None)
        out[c] = cats.sort_values() if _sortable(v) else cats
    return out


def _sortable(values: pd.Series) -> bool:
    try:
        values.sort_values()
        return True
    except TypeError:
        return False


def _apply_categories(part: pd.DataFrame, categories: dict) -> pd.DataFrame:
    return part.astype({c: pd.CategoricalDtype(cats) for c, cats in categories.items()})


def categorize(frame: DataFrame, columns: Any = None, index: bool | None = None,
               split_every: int | None = None) -> DataFrame:
    """Columns (default: every string/object column) turned into categoricals with known categories.

    The categories (sorted distinct values over all partitions) are computed now, in one pass.
    """
    meta = frame._meta
    if columns is None:
        columns = [c for i, c in enumerate(meta.columns) if is_string_dtype(meta.dtypes.iloc[i])
                   and not isinstance(meta.dtypes.iloc[i], pd.CategoricalDtype)]
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
    cats = tree_reduce(frame, chunk, _cat_combine, _cat_aggregate, {}, "categorize", split_every).compute()
    return partitionwise(_apply_categories, frame, cats, token="categorize")
