"""Known and unknown categories of lazy categorical columns.

A categorical column's categories are *known* when the meta lists them and every partition uses
them (``from_pandas``, ``categorize``). They are *unknown* when each partition finds its own
(``astype('category')`` of strings): the meta then holds the single placeholder category
:data:`UNKNOWN_CATEGORIES`, as in Dask. Operations whose output columns come from the
categories (``get_dummies``, ``pivot_table``) need known categories.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import pandas as pd

from .utils import make_meta, meta_nonempty

__all__ = ["UNKNOWN_CATEGORIES", "has_known_categories", "astype_meta", "require_known_categories",
           "with_meta_categories"]

UNKNOWN_CATEGORIES = "__UNKNOWN_CATEGORIES__"


def has_known_categories(x: Any) -> bool:
    """Are the categories of categorical ``x`` (a pandas or lazy Series, Index or dtype) known?

    >>> has_known_categories(pd.Series(['a'], dtype='category'))
    True
    >>> has_known_categories(pd.CategoricalDtype([UNKNOWN_CATEGORIES]))
    False
    """
    dtype = x if isinstance(x, pd.CategoricalDtype) else getattr(getattr(x, "_meta", x), "dtype", None)
    if not isinstance(dtype, pd.CategoricalDtype):
        raise TypeError(f"expected categorical data, got dtype {dtype}")
    return UNKNOWN_CATEGORIES not in dtype.categories


def _unknown(dtype: pd.CategoricalDtype) -> pd.CategoricalDtype:
    return pd.CategoricalDtype([UNKNOWN_CATEGORIES], ordered=dtype.ordered)


def _makes_unknown(before: Any, wanted: Any) -> bool:
    """Does ``astype(wanted)`` of a column of dtype ``before`` find its categories in the data?"""
    if isinstance(before, pd.CategoricalDtype):
        return False  # pandas keeps the existing categories
    if isinstance(wanted, str):
        return wanted == "category"
    return isinstance(wanted, pd.CategoricalDtype) and wanted.categories is None


def astype_meta(meta: Any, dtype: Any) -> Any:
    """The meta of ``meta.astype(dtype)``; categories found in the data are marked unknown.

    >>> out = astype_meta(make_meta({'s': 'object'}), 'category')
    >>> has_known_categories(out['s'])
    False
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # about the made-up values, not the user's
        out = make_meta(meta_nonempty(meta).astype(dtype))
    if isinstance(out, pd.Series):
        return out.astype(_unknown(out.dtype)) if _makes_unknown(meta.dtype, dtype) else out
    wanted = dtype if isinstance(dtype, Mapping) else {c: dtype for c in out.columns}
    unknown = {c: _unknown(out[c].dtype) for c, d in wanted.items() if _makes_unknown(meta[c].dtype, d)}
    return out.astype(unknown) if unknown else out


def require_known_categories(meta: pd.DataFrame | pd.Series, columns: list | None, operation: str) -> None:
    """Raise a clear error unless each of ``columns`` of ``meta`` (a Series: itself) has known categories."""
    dtypes = {meta.name: meta.dtype} if isinstance(meta, pd.Series) else {c: meta[c].dtype for c in columns}
    not_categorical = [c for c, d in dtypes.items() if not isinstance(d, pd.CategoricalDtype)]
    if not_categorical:
        raise ValueError(f"{operation} needs categorical columns with known categories; {not_categorical} "
                         f"are not categorical. Convert them with df.categorize(columns={not_categorical!r})")
    unknown = [c for c, d in dtypes.items() if not has_known_categories(d)]
    if unknown:
        raise ValueError(f"{operation} needs known categories, but those of {unknown} are unknown (found per "
                         f"partition). Compute them with df.categorize(columns={unknown!r})")


def with_meta_categories(values: pd.Series, dtype: pd.CategoricalDtype, operation: str) -> pd.Series:
    """``values`` with the meta's categories, raising if the partition holds a value outside them.

    Partitions may list their categories in another order, or only some of them (after a
    concat); values outside the meta's categories mean the meta is wrong, so nothing is dropped.
    """
    if values.dtype == dtype:
        return values
    extra = values.cat.categories.difference(dtype.categories)
    if len(extra) and values.isin(extra).any():
        found = list(values[values.isin(extra)].unique()[:5])
        raise ValueError(f"{operation}: column {values.name!r} holds {found}, which are not among its known "
                         f"categories {list(dtype.categories)}; recompute them with df.categorize(columns="
                         f"[{values.name!r}])")
    return values.cat.set_categories(dtype.categories, ordered=dtype.ordered)
