"""``to_datetime`` and ``to_numeric`` of lazy Series, Indexes and DataFrames.

pandas decides some things about these conversions from the data as a whole, which a partition
cannot see on its own, so they are settled first, the way ``set_index`` reads quantiles now:

* ``to_datetime`` of strings without ``format=`` guesses the format from the *first* non-missing
  value of the whole input and parses every value with it. The first value is looked up now
  (partition by partition, usually reading one) and its format is given to every partition. The
  dtype (unit, time zone) comes from parsing that value (for numbers: from their dtype); a
  partition whose values need a finer unit (nanosecond strings, fractional numbers with
  ``unit=``) or another time zone raises an error naming the fix (``meta=`` or ``utc=True``).
* ``to_numeric`` of strings or objects gives, in pandas, a dtype that depends on all the values
  (``['1', '2']`` -> int64, ``['1', '2.5']`` -> float64). Reading everything to decide would
  double the work, so the result is float64 (which holds both) unless ``meta=`` says otherwise.

``meta=`` declares the result's dtype and skips the look-up.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_float_dtype, is_numeric_dtype, is_string_dtype

from .core import DataFrame, Index, Series, _Frame, map_partitions
from .utils import make_meta, meta_nonempty

__all__ = ["to_datetime", "to_numeric"]

# values pandas skips when it looks for the first value to guess a datetime format from
_NOT_A_DATE = {"", "NaT", "nat", "NAT", "nan", "NaN", "NAN", "now", "today"}


def _first_value_of(part: Any) -> pd.Series:
    for value in np.asarray(part, dtype=object):
        if pd.isna(value) or isinstance(value, str) and value in _NOT_A_DATE:
            continue
        return pd.Series([value], dtype=object)
    return pd.Series([], dtype=object)


def first_value(x: _Frame) -> Any:
    """The first non-missing value of lazy Series or Index ``x`` (``None`` if there is none), computed now.

    Partitions are read one at a time, in order, until one holds a value.
    """
    firsts = map_partitions(_first_value_of, x, meta=pd.Series([], dtype=object), token="first-value",
                            keep_divisions=False)
    for i in range(x.npartitions):
        found = firsts.get_partition(i).compute()
        if len(found):
            return found.iloc[0]
    return None


def _datetime_format(first: Any, dayfirst: bool) -> str | None:
    if first is None:
        return None
    if isinstance(first, str):
        from pandas.tseries.api import guess_datetime_format

        guessed = guess_datetime_format(first, dayfirst=dayfirst)
        if guessed is not None:
            return guessed
    # pandas parses each value on its own when it cannot guess: 'mixed' asks every partition to
    return "mixed"


_UNITS = ("s", "ms", "us", "ns")


def _unit(dtype: Any) -> str:
    return getattr(dtype, "unit", None) or np.datetime_data(dtype)[0]


def _to_datetime_part(part: Any, dtype: Any, kwargs: dict) -> Any:
    out = pd.to_datetime(part, **kwargs)
    if out.dtype == dtype:
        return out
    same_zone = getattr(out.dtype, "tz", None) == getattr(dtype, "tz", None)
    coarser = out.dtype.kind == dtype.kind == "M" and _UNITS.index(_unit(out.dtype)) < _UNITS.index(_unit(dtype))
    if same_zone and coarser:
        # a coarser unit (all-missing partitions parse to seconds): pandas gives the whole input the finest
        return out.astype(dtype)
    raise ValueError(f"to_datetime: a partition converted to {out.dtype}, but the result's dtype was decided as "
                     f"{dtype} before reading all the data (values needing a finer unit, or another time zone); "
                     f"pass meta= with the dtype you want (e.g. datetime64[ns]), or utc=True for several time zones")


def _datetime_meta(arg: _Frame, kwargs: dict) -> tuple[Any, dict]:
    """The result's meta, and the keyword arguments every partition is parsed with."""
    meta = arg._meta
    texts = not isinstance(meta, pd.DataFrame) and (is_string_dtype(meta.dtype)
                                                    or isinstance(meta.dtype, pd.CategoricalDtype))
    if not texts:
        # numbers and datetimes convert the same way in every partition
        return make_meta(pd.to_datetime(meta_nonempty(meta), **kwargs)), kwargs
    first = first_value(arg)
    if kwargs.get("format") is None:
        kwargs = {**kwargs, "format": _datetime_format(first, kwargs.get("dayfirst", False))}
    probe = pd.to_datetime(pd.Series([first], dtype=object), **kwargs)
    dtype = probe.dtype
    if first is not None and probe.isna().all():
        # the first value did not parse (errors='coerce'); parsed strings are at least microseconds
        dtype = pd.DatetimeTZDtype("us", dtype.tz) if getattr(dtype, "tz", None) else np.dtype("M8[us]")
    empty = meta.iloc[:0] if isinstance(meta, pd.Series) else meta[:0]
    return make_meta(pd.to_datetime(empty, **kwargs).astype(dtype)), kwargs


def to_datetime(arg: Any, meta: Any = None, **kwargs: Any) -> Any:
    """Convert a lazy Series, Index or DataFrame (year/month/day columns) to datetimes, as pandas.

    Keyword arguments go to :func:`pandas.to_datetime`. For strings without ``format=``, the
    format is guessed from the first value of the whole input, as pandas does (see the module
    docstring); ``meta=`` declares the result and skips looking that value up. Non-lazy
    arguments are passed to pandas.

    >>> import lazyarr.dataframe as dd
    >>> s = dd.from_pandas(pd.Series(['13/01/2020', '01/02/2020', None, '05/03/2020']), npartitions=2)
    >>> to_datetime(s, dayfirst=True).compute()
    0   2020-01-13
    1   2020-02-01
    2          NaT
    3   2020-03-05
    dtype: datetime64[us]
    """
    if not isinstance(arg, (Series, Index, DataFrame)):
        return pd.to_datetime(arg, **kwargs)
    if meta is None:
        meta, kwargs = _datetime_meta(arg, kwargs)
    else:
        meta = make_meta(meta)
    part = functools.partial(_to_datetime_part, dtype=meta.dtype, kwargs=kwargs)
    return map_partitions(part, arg, meta=meta, token="to_datetime")


# ---------------------------------------------------------------- to_numeric

def _to_numeric_part(part: Any, dtype: Any, kwargs: dict) -> Any:
    out = pd.to_numeric(part, **kwargs)
    if out.dtype == dtype:
        return out
    if is_float_dtype(dtype) and is_numeric_dtype(out.dtype) and not is_bool_dtype(out.dtype):
        return out.astype(dtype)
    raise ValueError(f"to_numeric: a partition converted to {out.dtype}, which does not fit the declared "
                     f"{dtype}; pass meta= with a dtype that holds every value (e.g. meta=('x', 'float64'))")


def to_numeric(arg: Any, errors: str = "raise", downcast: str | None = None, meta: Any = None,
               **kwargs: Any) -> Any:
    """Convert a lazy Series or Index to numbers, partition by partition.

    Numeric input keeps pandas' dtype. For strings and objects pandas picks the dtype from all
    the values (``['1', '2']`` gives int64, ``['1', '2.5']`` float64), which no partition can
    know alone, so the result is float64 unless ``meta=`` declares another dtype (say
    ``meta=('x', 'int64')`` when every value is an integer); no data is read to decide. With
    ``downcast=``, ``meta=`` is required for the same reason. Non-lazy arguments go to pandas.

    >>> import lazyarr.dataframe as dd
    >>> s = dd.from_pandas(pd.Series(['1', '2', '3.5', 'x']), npartitions=2)
    >>> to_numeric(s, errors='coerce').compute()
    0    1.0
    1    2.0
    2    3.5
    3    NaN
    dtype: float64
    """
    options = {"errors": errors, "downcast": downcast, **kwargs}
    if not isinstance(arg, (Series, Index)):
        if isinstance(arg, DataFrame):
            raise TypeError("to_numeric takes a Series or an Index; convert DataFrame columns one at a time "
                            "(e.g. with assign)")
        return pd.to_numeric(arg, **options)
    if meta is not None:
        meta = make_meta(meta)
    elif downcast is not None:
        raise ValueError(f"to_numeric(downcast={downcast!r}) picks the dtype from all the values, which a lazy "
                         f"Series cannot know in advance; pass meta= with the dtype you expect")
    elif is_numeric_dtype(arg._meta.dtype):
        meta = make_meta(pd.to_numeric(meta_nonempty(arg._meta), **options))
    else:
        # the float dtype these options give (float64, or Float64 / double[pyarrow] for other backends)
        floats = pd.to_numeric(pd.Series(["0.5"]), **options).dtype
        empty = arg._meta.iloc[:0] if isinstance(arg._meta, pd.Series) else arg._meta[:0]
        meta = make_meta(empty.astype(floats))
    part = functools.partial(_to_numeric_part, dtype=meta.dtype, kwargs=options)
    return map_partitions(part, arg, meta=meta, token="to_numeric")
