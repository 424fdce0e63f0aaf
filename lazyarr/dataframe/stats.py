"""Statistics built on tree reductions: corr/cov, mode, memory_usage and DataFrame.nlargest/nsmallest.

``corr``/``cov`` send per-partition co-moments: for every pair of columns, the number of rows
where both are present, each column's mean over those rows, its sum of squared deviations
``M2`` and the co-moment ``C`` (sum of products of deviations). Partitions are merged with Chan
et al.'s pairwise update, which stays accurate when the means are large compared with the
spread (naive sums of products would cancel catastrophically). Within a partition the values are
first shifted by the column's mean for the same reason. The final step applies pandas' rules:
pairs with fewer than ``min_periods`` rows, or a constant column, give NaN; correlations are
clipped to [-1, 1]; ``DataFrame.cov`` honours ``ddof`` only when no value is missing, as pandas does.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from .core import DataFrame, Series, align_partitions, map_partitions
from .reductions import tree_reduce, value_counts
from .utils import make_meta, meta_nonempty, raise_unknown_columns

__all__ = ["frame_nlargest", "mode", "memory_usage", "corr", "cov", "series_corr", "series_cov"]


# ---------------------------------------------------------------- DataFrame.nlargest / nsmallest

def _select_n(x: pd.DataFrame, n: int, columns: Any, how: str) -> pd.DataFrame:
    return getattr(x, how)(n, columns)


def _select_n_combine(parts: list, n: int, columns: Any, how: str) -> pd.DataFrame:
    # partials keep partition order, so ties resolve to the earliest rows as in pandas (keep='first')
    return _select_n(pd.concat(parts), n, columns, how)


def frame_nlargest(df: DataFrame, n: int, columns: Any, largest: bool = True,
                   split_every: int | None = None) -> DataFrame:
    """The ``n`` rows with the largest (or smallest) values of ``columns``, as pandas orders them.

    >>> import lazyarr.dataframe as dd
    >>> pdf = pd.DataFrame({'a': [3, 1, 4, 1, 5], 'b': list('vwxyz')})
    >>> frame_nlargest(dd.from_pandas(pdf, npartitions=2), 2, 'a').compute()
       a  b
    4  5  z
    2  4  x
    """
    how = "nlargest" if largest else "nsmallest"
    if columns is None:
        raise TypeError(f"DataFrame.{how} needs columns=, the column(s) to order by")
    missing = [c for c in (columns if isinstance(columns, list) else [columns]) if c not in df._meta.columns]
    if missing:
        raise_unknown_columns(missing, df._meta.columns)
    meta = make_meta(_select_n(meta_nonempty(df._meta), n, columns, how))  # pandas' errors (dtypes), now
    chunk = functools.partial(_select_n, n=n, columns=columns, how=how)
    combine = functools.partial(_select_n_combine, n=n, columns=columns, how=how)
    return tree_reduce(df, chunk, combine, combine, meta, how, split_every)


# ---------------------------------------------------------------- mode

def _mode_of_counts(counts: pd.Series, dropna: bool) -> pd.Series:
    top = counts[counts == counts.max()] if len(counts) and counts.max() > 0 else counts.iloc[:0]
    # Each tied value once: pandas' own mode of them gives pandas' order and dtype.
    return pd.Series(top.index).mode(dropna=dropna)


def mode(s: Series, dropna: bool = True, split_every: int | None = None) -> Series:
    """The most frequent value(s) of ``s``, sorted, from a tree reduction of value counts.

    >>> import lazyarr.dataframe as dd
    >>> mode(dd.from_pandas(pd.Series([2, 1, 2, 1, 3], name='x'), npartitions=2)).compute()
    0    1
    1    2
    Name: x, dtype: int64
    """
    counts = value_counts(s, sort=False, dropna=dropna, split_every=split_every)
    meta = make_meta(meta_nonempty(s._meta).mode(dropna=dropna))
    return map_partitions(_mode_of_counts, counts, dropna, meta=meta, token="mode")


# ---------------------------------------------------------------- memory_usage

def _memory_chunk(x: Any, index: bool, deep: bool) -> Any:
    return x.memory_usage(index=index, deep=deep)


def _memory_sum(parts: list) -> Any:
    if isinstance(parts[0], pd.Series):  # the same labels in every part; add by position
        return pd.Series(np.sum([p.to_numpy() for p in parts], axis=0), index=parts[0].index, dtype="int64")
    return int(sum(parts))


def memory_usage(x: DataFrame | Series, index: bool = True, deep: bool = False,
                 split_every: int | None = None) -> Any:
    """Bytes used, summed over partitions: per column (and ``'Index'``) for a DataFrame, one number for a Series.

    Each partition's index and categories are counted, so the total can exceed what the
    same data takes as one pandas object.
    """
    meta = make_meta(_memory_chunk(meta_nonempty(x._meta), index, deep))
    chunk = functools.partial(_memory_chunk, index=index, deep=deep)
    return tree_reduce(x, chunk, _memory_sum, _memory_sum, meta, "memory_usage", split_every)


# ---------------------------------------------------------------- co-moments for corr / cov

def _comoments(values: np.ndarray, valid: np.ndarray) -> dict:
    """Pairwise counts, means, M2 and co-moments of the columns of ``values`` (see the module docstring)."""
    v = valid.astype("float64")
    present = v.sum(axis=0)
    with np.errstate(all="ignore"):
        shift = np.where(present > 0, np.where(valid, values, 0.0).sum(axis=0) / present, 0.0)
        xs = np.where(valid, values - shift, 0.0)
        n = v.T @ v
        s = xs.T @ v  # s[i, j]: sum of shifted column i over the rows where i and j are present
        mean_s = np.where(n > 0, s / n, 0.0)
        m2 = np.maximum((xs * xs).T @ v - s * mean_s, 0.0)
        c = xs.T @ xs - s * mean_s.T
    return {"n": n, "mean": mean_s + shift[:, None], "m2": m2, "c": c}


def _merge_two(a: dict, b: dict) -> dict:
    """Chan et al.'s update of pairwise (n, mean, M2, C); cells with no rows carry mean 0 and weight 0."""
    n = a["n"] + b["n"]
    zero = np.zeros_like(n)
    with np.errstate(all="ignore"):
        weight_b = np.divide(b["n"], n, out=zero.copy(), where=n > 0)
        factor = np.divide(a["n"] * b["n"], n, out=zero.copy(), where=n > 0)
    delta = b["mean"] - a["mean"]
    return {"n": n, "mean": a["mean"] + delta * weight_b, "m2": a["m2"] + b["m2"] + delta ** 2 * factor,
            "c": a["c"] + b["c"] + delta * delta.T * factor}


def _frame_moments_chunk(part: pd.DataFrame, positions: list) -> dict:
    values = part.iloc[:, positions].to_numpy(dtype="float64", na_value=np.nan)
    # pandas' DataFrame.corr/cov skip non-finite values pairwise (libalgos.nancorr)
    stats = _comoments(values, np.isfinite(values))
    stats.update(rows=len(values), missing=bool(np.isnan(values).any()), inf=np.isinf(values).any(axis=0))
    return stats


def _series_moments_chunk(a: pd.Series, b: pd.Series) -> dict:
    this, other = a.align(b, join="inner")
    values = np.column_stack([this.to_numpy(dtype="float64", na_value=np.nan),
                              other.to_numpy(dtype="float64", na_value=np.nan)])
    stats = _comoments(values, ~np.isnan(values))  # Series.corr/cov drop only missing values (nanops)
    stats.update(rows=len(values), missing=False, inf=np.zeros(2, dtype=bool))
    return stats


def _moments_combine(parts: list) -> dict:
    out = functools.reduce(_merge_two, parts)
    return {**out, "rows": sum(p["rows"] for p in parts), "missing": any(p["missing"] for p in parts),
            "inf": np.logical_or.reduce([p["inf"] for p in parts])}


def _correlation(stats: dict, min_periods: int) -> np.ndarray:
    n, m2, c = stats["n"], stats["m2"], stats["c"]
    divisor = np.sqrt(m2 * m2.T)
    with np.errstate(all="ignore"):
        r = np.clip(c / divisor, -1.0, 1.0)
    return np.where((n < min_periods) | (divisor == 0), np.nan, r)


def _frame_covariance(stats: dict, min_periods: int | None, ddof: int) -> np.ndarray:
    n, c = stats["n"], stats["c"]
    with np.errstate(all="ignore"):
        if stats["missing"]:  # pandas' nancorr: divisor n - 1 whatever ddof
            out = np.where(n - 1 != 0, c / (n - 1), np.nan)
            return np.where(n < (1 if min_periods is None else min_periods), np.nan, out)
        if min_periods is not None and min_periods > stats["rows"]:
            return np.full_like(c, np.nan)
        out = c / np.maximum(n - ddof, 0)  # numpy.cov: no degrees of freedom -> division by zero
    bad = stats["inf"]  # numpy.cov turns a column holding inf into NaN in its row and column
    out[bad, :] = np.nan
    out[:, bad] = np.nan
    return out


def _frame_result(parts: list, columns: pd.Index, finish: Any) -> pd.DataFrame:
    stats = _moments_combine(parts)
    return pd.DataFrame(finish(stats), index=columns, columns=columns, dtype="float64")


def _numeric_positions(df: DataFrame, numeric_only: bool, name: str) -> list:
    dtypes = df._meta.dtypes
    ok = [is_numeric_dtype(d) and d.kind not in "mM" for d in dtypes]
    if not numeric_only and not all(ok):
        bad = [c for c, good in zip(df.columns, ok, strict=True) if not good]
        raise TypeError(f"{name} needs numeric columns; {bad} are not numeric. Select numeric columns or pass "
                        f"numeric_only=True")
    return [i for i, good in enumerate(ok) if good]


def _frame_stat(df: DataFrame, name: str, finish: Any, numeric_only: bool, split_every: int | None) -> DataFrame:
    positions = _numeric_positions(df, numeric_only, name)
    columns = df._meta.columns[positions]
    meta = pd.DataFrame(np.empty((0, len(columns))), index=columns[:0], columns=columns)
    chunk = functools.partial(_frame_moments_chunk, positions=positions)
    aggregate = functools.partial(_frame_result, columns=columns, finish=finish)
    return tree_reduce(df, chunk, _moments_combine, aggregate, meta, name, split_every)


def _check_method(method: str) -> None:
    if method != "pearson":
        raise NotImplementedError(f"only method='pearson' is supported lazily, not {method!r} (ranks need "
                                  f"every partition at once); compute first for {method!r}")


def corr(df: DataFrame, method: str = "pearson", min_periods: int | None = None, numeric_only: bool = False,
         split_every: int | None = None) -> DataFrame:
    """Pairwise Pearson correlation of columns, excluding missing values pair by pair (as pandas).

    >>> import lazyarr.dataframe as dd
    >>> pdf = pd.DataFrame({'a': [1.0, 2, 3, 4], 'b': [2.0, 4, 6, 9]})
    >>> corr(dd.from_pandas(pdf, npartitions=2)).round(4).compute()
            a       b
    a  1.0000  0.9944
    b  0.9944  1.0000
    """
    _check_method(method)
    finish = functools.partial(_correlation, min_periods=1 if min_periods is None else min_periods)
    return _frame_stat(df, "corr", finish, numeric_only, split_every)


def cov(df: DataFrame, min_periods: int | None = None, ddof: int = 1, numeric_only: bool = False,
        split_every: int | None = None) -> DataFrame:
    """Pairwise covariance of columns, excluding missing values pair by pair (as pandas)."""
    finish = functools.partial(_frame_covariance, min_periods=min_periods, ddof=1 if ddof is None else ddof)
    return _frame_stat(df, "cov", finish, numeric_only, split_every)


def _series_result(parts: list, how: str, min_periods: int | None, ddof: int) -> float:
    stats = _moments_combine(parts)
    n, m2a, m2b, c = stats["n"][0, 1], stats["m2"][0, 1], stats["m2"][1, 0], stats["c"][0, 1]
    if stats["rows"] == 0 or n < (1 if min_periods is None else min_periods):
        return np.float64(np.nan)
    with np.errstate(all="ignore"):
        if how == "cov":
            return np.float64(c / max(n - ddof, 0))
        if n < 2 or m2a == 0 or m2b == 0:
            return np.float64(np.nan)
        return np.float64(np.clip(c / np.sqrt(m2a * m2b), -1.0, 1.0))


def _series_stat(s: Series, other: Any, how: str, min_periods: int | None, ddof: int,
                 split_every: int | None) -> Any:
    if not isinstance(other, Series):
        raise TypeError(f"Series.{how} needs another lazy Series, not {type(other).__name__}")
    for x in (s, other):
        if not is_numeric_dtype(x._meta.dtype) or x._meta.dtype.kind in "mM":
            raise TypeError(f"Series.{how} needs numeric values; {x.name!r} is {x._meta.dtype}")
    a, b = align_partitions(s, other)
    aggregate = functools.partial(_series_result, how=how, min_periods=min_periods, ddof=ddof)
    return tree_reduce([a, b], _series_moments_chunk, _moments_combine, aggregate, np.float64(np.nan), how,
                       split_every)


def series_corr(s: Series, other: Series, method: str = "pearson", min_periods: int | None = None,
                split_every: int | None = None) -> Any:
    """Pearson correlation of two aligned lazy Series (a lazy Scalar), as ``pandas.Series.corr``."""
    _check_method(method)
    return _series_stat(s, other, "corr", min_periods, 1, split_every)


def series_cov(s: Series, other: Series, min_periods: int | None = None, ddof: int = 1,
               split_every: int | None = None) -> Any:
    """Covariance of two aligned lazy Series (a lazy Scalar), as ``pandas.Series.cov``."""
    return _series_stat(s, other, "cov", min_periods, 1 if ddof is None else ddof, split_every)
