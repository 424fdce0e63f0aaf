"""Cumulative operations across partitions: ``cumsum``, ``cumprod``, ``cummax``, ``cummin``.

Each partition runs pandas' cumulative operation on its own rows (in parallel). Its *state* is
the last valid value of that local result per column (the last value, missing or not, when
``skipna=False``). A chain of tiny tasks (:func:`lazyarr.dataframe.scan.carry_chain`) folds the
states in partition order, and each partition's local result is then combined with the state of
all partitions before it: added (``cumsum``), multiplied (``cumprod``) or compared (``cummax``,
``cummin``). Missing values stay missing, as in pandas; with ``skipna=False`` a missing value
makes every later value missing, in later partitions too.

The same states, keyed by group instead of by one dummy key, give the groupby versions in
:mod:`lazyarr.dataframe.groupby_cumulative`.
"""
from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..tokenize import tokenize
from .core import _call_method, _Frame, emulate, merge_layers, new_collection
from .scan import carry_chain
from .utils import concat_parts

__all__ = ["cumulative", "CUMULATIVE", "last_valid", "fold_states", "carry_into", "carry_into_groups"]

CUMULATIVE = ("cumsum", "cumprod", "cummax", "cummin")


# ---------------------------------------------------------------- combining a value with a carried one

def _keep_larger(a: pd.Series, b: Any) -> pd.Series:
    return a.where(a.isna() | (a >= b), b)


def _keep_smaller(a: pd.Series, b: Any) -> pd.Series:
    return a.where(a.isna() | (a <= b), b)


# how a carried value enters a local cumulative result; "cumcount" adds counts of earlier rows
_COMBINE: dict[str, Callable] = {"cumsum": operator.add, "cumprod": operator.mul, "cummax": _keep_larger,
                                 "cummin": _keep_smaller, "cumcount": operator.add}


def _put(col: pd.Series, rows: np.ndarray, values: pd.Series) -> pd.Series:
    """``col`` with the values at positions ``rows`` replaced (widening the dtype if they need it)."""
    if len(rows) == len(col):
        return values
    out = col.copy() if values.dtype == col.dtype else col.astype(values.dtype)
    out.iloc[rows] = values.array
    return out


def _combine_column(a: pd.Series, b: Any, how: str, skipna: bool, fill: bool) -> pd.Series:
    """``a`` combined with carried values ``b`` (a scalar, or an array aligned with ``a``).

    A missing carried value means "nothing valid before" with ``skipna`` (``a`` is kept) and
    "a missing value before" without (the result is missing). ``fill`` also takes the carried
    value where ``a`` is missing, which is how two states merge (but not how rows do: a missing
    row stays missing).
    """
    op = _COMBINE[how]
    missing = pd.isna(b)
    if np.ndim(missing) == 0:
        if not missing:
            return op(a, b)
        return a if skipna else a.where(np.zeros(len(a), dtype=bool))
    if not missing.any():
        out = op(a, b)
    else:
        ok = np.flatnonzero(~missing)
        out = _put(a, ok, op(a.iloc[ok], b[ok])) if len(ok) else a
    if not skipna:
        return out.where(~missing) if missing.any() else out
    if fill:
        return out.where(a.notna().to_numpy(), b)
    return out


def _columns(x: pd.DataFrame | pd.Series) -> list[pd.Series]:
    return [x] if isinstance(x, pd.Series) else [x.iloc[:, j] for j in range(x.shape[1])]


def _with_columns(x: pd.DataFrame | pd.Series, cols: list[pd.Series]) -> pd.DataFrame | pd.Series:
    if isinstance(x, pd.Series):
        return cols[0]
    out = x.copy(deep=False)
    for j, col in enumerate(cols):
        out.isetitem(j, col.array)  # positional: labels may repeat
    return out


# ---------------------------------------------------------------- states

def last_valid(local: pd.DataFrame | pd.Series, skipna: bool, keys: Any = None, dropna: bool = True,
               observed: bool = True) -> pd.DataFrame | pd.Series:
    """The state one partition passes on: its last valid local result per group and column.

    ``keys`` (arrays aligned with ``local``) give the groups; without them there is one group,
    labelled 0. With ``skipna=False`` the state is the last value, missing or not.

    >>> last_valid(pd.Series([1.0, 3.0, None]).cumsum(), skipna=True)
    0    4.0
    dtype: float64
    """
    if keys is None:
        if len(local) and (not skipna or not local.iloc[-1:].isna().to_numpy().any()):
            return local.iloc[-1:].set_axis(pd.Index([0]))  # the common case: no groupby needed
        keys = np.zeros(len(local), dtype=np.int64)
    g = local.groupby(keys, sort=False, dropna=dropna, observed=observed)
    return g.last(skipna=skipna)


def fold_states(state: Any, summary: Any, how: str, skipna: bool) -> Any:
    """The state after ``state`` (earlier partitions) and ``summary`` (the next partition), per group.

    >>> fold_states(pd.Series([4.0], index=[0]), pd.Series([2.0], index=[0]), 'cumsum', True)
    0    6.0
    dtype: float64
    """
    shared = summary.index.isin(state.index)
    if not shared.any():
        return concat_parts([state, summary])
    mine = summary[shared]
    theirs = state.reindex(mine.index)
    merged = _with_columns(mine, [_combine_column(a, b.array, how, skipna, fill=True)
                                  for a, b in zip(_columns(mine), _columns(theirs))])
    return concat_parts([state[~state.index.isin(mine.index)], merged, summary[~shared]])


def carry_into(local: Any, state: Any, how: str, skipna: bool) -> Any:
    """A partition's local cumulative result combined with the state of the partitions before it.

    >>> carry_into(pd.Series([1.0, None, 3.0]), pd.Series([10.0], index=[0]), 'cumsum', True).tolist()
    [11.0, nan, 13.0]
    """
    if state is None or not len(state) or not len(local):
        return local
    # one scalar per column, each of its column's type (a row of mixed dtypes would be object)
    carried = [state.iloc[0]] if isinstance(state, pd.Series) else [state.iloc[0, j] for j in range(state.shape[1])]
    return _with_columns(local, [_combine_column(a, b, how, skipna, fill=False)
                                 for a, b in zip(_columns(local), carried)])


def carry_into_groups(local: Any, row_keys: pd.Index, state: Any, how: str, skipna: bool) -> Any:
    """Like :func:`carry_into`, with ``state`` indexed by group and ``row_keys`` the group of each row."""
    if state is None or not len(state) or not len(local):
        return local
    where = state.index.get_indexer(row_keys)
    rows = np.flatnonzero(where >= 0)  # rows of groups seen before; the others start afresh
    if not len(rows):
        return local
    cols = []
    for a, b in zip(_columns(local), _columns(state)):
        carried = b.array.take(where[rows])
        cols.append(_put(a, rows, _combine_column(a.iloc[rows], carried, how, skipna, fill=False)))
    return _with_columns(local, cols)


# ---------------------------------------------------------------- the collection

def cumulative(frame: _Frame, how: str, skipna: bool = True, numeric_only: bool = False) -> Any:
    """``frame.cumsum()`` (``how``: one of :data:`CUMULATIVE`) along the rows, across partitions.

    >>> import lazyarr.dataframe as dd
    >>> s = dd.from_pandas(pd.Series([1, 2, 3, 4, 5]), npartitions=2)
    >>> cumulative(s, 'cumsum').compute().tolist()
    [1, 3, 6, 10, 15]
    """
    if how not in CUMULATIVE:
        raise ValueError(f"unknown cumulative operation {how!r}; use one of {', '.join(CUMULATIVE)}")
    kwargs: dict = {"skipna": skipna}
    if numeric_only:
        kwargs["numeric_only"] = True
    local = functools.partial(_call_method, method=how, **kwargs)
    meta = emulate(local, frame)
    name = f"{how}-{tokenize(frame, skipna, numeric_only)}"
    n = frame.npartitions
    layer = {(f"{name}-local", i): (local, (frame._name, i)) for i in range(n)}
    summaries = []
    for i in range(n):
        layer[(f"{name}-state", i)] = (last_valid, (f"{name}-local", i), skipna)
        summaries.append((f"{name}-state", i))
    chain, into = carry_chain(f"{name}-carry", summaries, functools.partial(fold_states, how=how, skipna=skipna))
    layer.update(chain)
    for i in range(n):
        layer[(name, i)] = (carry_into, (f"{name}-local", i), into[i], how, skipna)
    return new_collection(merge_layers(frame, {name: layer}), name, meta, frame.divisions, origin=frame._origin)
