"""groupby operations that run down the rows: ``cumsum cumprod cummax cummin cumcount shift diff``.

Rows keep their partitions, order and index, as in pandas (no shuffle). Each partition runs the
pandas operation on its own rows; what a group needs from earlier partitions is carried by a
chain of small tasks (:func:`lazyarr.dataframe.scan.carry_chain`), keyed by group:

* cumulative operations carry each group's last valid cumulative value (as
  :mod:`lazyarr.dataframe.cumulative` does for a whole column), ``cumcount`` the number of rows
  of each group so far (from the end for ``ascending=False``);
* ``shift``/``diff`` carry each group's last ``|periods|`` rows (first rows for negative
  periods); a partition is extended with them, the pandas operation runs, and they are cut off.
  The carried rows grow with the number of groups: ``|periods|`` rows per group seen so far.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from ..tokenize import tokenize
from .core import merge_layers, new_collection, no_default, partitionwise
from .cumulative import CUMULATIVE, carry_into_groups, fold_states, last_valid
from .groupby import _GroupBy, pandas_groupby, restore_unnamed
from .overlap import _check_periods
from .scan import carry_chain
from .utils import concat_parts, make_meta

__all__ = ["groupby_cumulative", "groupby_shift"]

def _grouping(gb: _GroupBy) -> tuple[Any, dict]:
    frame, by = gb._keyed()
    return frame, {"by": by, "names": gb._names, "slice_": gb._slice, "dropna": gb.dropna, "observed": gb.observed}


def _pandas_result(g: Any, how: str, kwargs: dict, slice_: Any) -> Any:
    return restore_unnamed(getattr(g, how)(**kwargs), slice_)


def _meta(gb: _GroupBy, how: str, kwargs: dict) -> Any:
    return make_meta(_pandas_result(gb._fake_groupby(), how, kwargs, gb._slice))


def _local(part: pd.DataFrame, how: str, kwargs: dict, by: list, names: list, slice_: Any, dropna: bool,
           observed: bool) -> tuple[Any, list]:
    """The partition's own result, and the group key of each row (an Index per key: positional, unlike Series)."""
    g, _ = pandas_groupby(part, by, names, slice_, sort=False, dropna=dropna, observed=observed)
    return _pandas_result(g, how, kwargs, slice_), [pd.Index(part[b].array) for b in by]


def _group_labels(keys: list) -> pd.Index:
    return keys[0] if len(keys) == 1 else pd.MultiIndex.from_arrays(keys)


def _state(local: tuple, how: str, skipna: bool, dropna: bool) -> Any:
    result, keys = local
    grouper = keys[0] if len(keys) == 1 else keys
    if how == "cumcount":
        return result.groupby(grouper, sort=False, dropna=dropna, observed=True).size()
    return last_valid(result, skipna, keys=grouper, dropna=dropna)


def _finish(local: tuple, state: Any, how: str, skipna: bool) -> Any:
    result, keys = local
    if state is None or not len(state):
        return result
    return carry_into_groups(result, _group_labels(keys), state, how, skipna)


def groupby_cumulative(gb: _GroupBy, how: str, skipna: bool = True, numeric_only: bool = False,
                       ascending: bool = True) -> Any:
    """``gb.cumsum()`` (``how`` one of ``cumsum cumprod cummax cummin cumcount``) in pandas' row order.

    >>> import lazyarr.dataframe as dd
    >>> pdf = pd.DataFrame({'k': [1, 2, 1, 2, 1], 'x': [1, 2, 3, 4, 5]})
    >>> ddf = dd.from_pandas(pdf, npartitions=3)
    >>> groupby_cumulative(ddf.groupby('k').x, 'cumsum').compute().tolist()
    [1, 2, 4, 6, 9]
    """
    if how not in (*CUMULATIVE, "cumcount"):
        raise ValueError(f"unknown groupby operation {how!r}")
    kwargs: dict = {"ascending": ascending} if how == "cumcount" else {"skipna": skipna}
    if numeric_only:
        kwargs["numeric_only"] = True
    meta = _meta(gb, how, kwargs)
    frame, grouping = _grouping(gb)
    name = f"groupby-{how}-{tokenize(frame, grouping, kwargs)}"
    local = functools.partial(_local, how=how, kwargs=kwargs, **grouping)
    n = frame.npartitions
    layer: dict = {}
    for i in range(n):
        layer[(f"{name}-local", i)] = (local, (frame._name, i))
        layer[(f"{name}-state", i)] = (_state, (f"{name}-local", i), how, skipna, gb.dropna)
    fold = functools.partial(fold_states, how=how, skipna=skipna)
    chain, into = carry_chain(f"{name}-carry", [(f"{name}-state", i) for i in range(n)], fold,
                              reverse=how == "cumcount" and not ascending)
    layer.update(chain)
    for i in range(n):
        layer[(name, i)] = (_finish, (f"{name}-local", i), into[i], how, skipna)
    return new_collection(merge_layers(frame, {name: layer}), name, meta, frame.divisions, origin=frame._origin)


# ---------------------------------------------------------------- shift and diff

def _first_of_groups(part: pd.DataFrame, by: list, dropna: bool, last: bool) -> np.ndarray:
    """Mask of the last (first) row of each group, as ``groupby(by).tail(1)`` (``head(1)``) selects them,
    from one hash pass (no group numbering or sort)."""
    keys = part[by[0]] if len(by) == 1 else part[by]
    mask = ~keys.duplicated(keep="last" if last else "first").to_numpy()
    if dropna:
        valid = keys.notna()
        mask &= (valid if len(by) == 1 else valid.all(axis=1)).to_numpy()
    return mask


def _edge_rows(part: pd.DataFrame, by: list, dropna: bool, k: int, last: bool) -> pd.DataFrame:
    """The last (first) ``k`` rows of each group: what later (earlier) partitions need."""
    if k == 1:
        return part[_first_of_groups(part, by, dropna, last)]
    g = part.groupby(by, sort=False, dropna=dropna, observed=True)
    return g.tail(k) if last else g.head(k)


def _fold_edges(state: pd.DataFrame, rows: pd.DataFrame, by: list, dropna: bool, k: int, last: bool) -> pd.DataFrame:
    both = concat_parts([state, rows] if last else [rows, state])
    return _edge_rows(both, by, dropna, k, last)


def _shift_extended(part: pd.DataFrame, carried: Any, how: str, kwargs: dict, by: list, names: list, slice_: Any,
                    dropna: bool, observed: bool, before: bool) -> Any:
    n = len(carried) if carried is not None else 0
    if n and abs(kwargs["periods"]) == 1:
        # only each group's first (last) row here looks at the carried rows: run the operation on the
        # partition alone and recompute those rows from a small frame of the carried rows and themselves
        edge = np.flatnonzero(_first_of_groups(part, by, dropna, last=not before))
        out = _shift_extended(part, None, how, kwargs, by, names, slice_, dropna, observed, before)
        small = part.iloc[edge]
        small = concat_parts([carried, small] if before else [small, carried])
        g, _ = pandas_groupby(small, by, names, slice_, sort=False, dropna=dropna, observed=observed)
        fixed = _pandas_result(g, how, kwargs, slice_)
        fixed = fixed.iloc[n:] if before else fixed.iloc[:len(fixed) - n]
        if _patch_rows(out, edge, fixed):
            return out
    extended = part if not n else concat_parts([carried, part] if before else [part, carried])
    g, _ = pandas_groupby(extended, by, names, slice_, sort=False, dropna=dropna, observed=observed)
    out = _pandas_result(g, how, kwargs, slice_)
    return out.iloc[n:] if before else out.iloc[:len(out) - n]


def _patch_rows(out: Any, rows: np.ndarray, values: Any) -> bool:
    """Write ``values`` over the rows at positions ``rows`` of ``out`` (a fresh result) in place; False, with
    nothing written, if the dtypes differ."""
    if isinstance(out, pd.Series):
        if not isinstance(values, pd.Series) or values.dtype != out.dtype:
            return False
        out.iloc[rows] = values.array
        return True
    if list(out.dtypes) != list(values.dtypes):
        return False
    for j in range(out.shape[1]):
        out.iloc[rows, j] = values.iloc[:, j].array
    return True


def groupby_shift(gb: _GroupBy, how: str, periods: int = 1, fill_value: Any = no_default) -> Any:
    """``gb.shift(periods)`` or ``gb.diff(periods)`` (``how``) in pandas' row order, across partitions.

    >>> import lazyarr.dataframe as dd
    >>> pdf = pd.DataFrame({'k': [1, 2, 1, 2, 1], 'x': [1.0, 2.0, 4.0, 8.0, 16.0]})
    >>> ddf = dd.from_pandas(pdf, npartitions=3)
    >>> groupby_shift(ddf.groupby('k').x, 'diff').compute().tolist()
    [nan, nan, 3.0, 6.0, 12.0]
    """
    periods = _check_periods(periods)
    kwargs: dict = {"periods": periods}
    if fill_value is not no_default:
        kwargs["fill_value"] = fill_value
    meta = _meta(gb, how, kwargs)
    frame, grouping = _grouping(gb)
    before = periods > 0
    if periods == 0:
        return partitionwise(_shift_extended, frame, None, how, kwargs, before=True, meta=meta,
                             token=f"groupby-{how}", **grouping)
    name = f"groupby-{how}-{tokenize(frame, grouping, kwargs)}"
    k, by, dropna = abs(periods), grouping["by"], gb.dropna
    n = frame.npartitions
    layer = {(f"{name}-edge", i): (_edge_rows, (frame._name, i), by, dropna, k, before) for i in range(n)}
    fold = functools.partial(_fold_edges, by=by, dropna=dropna, k=k, last=before)
    chain, into = carry_chain(f"{name}-carry", [(f"{name}-edge", i) for i in range(n)], fold, reverse=not before)
    layer.update(chain)
    apply = functools.partial(_shift_extended, how=how, kwargs=kwargs, before=before, **grouping)
    for i in range(n):
        layer[(name, i)] = (apply, (frame._name, i), into[i])
    return new_collection(merge_layers(frame, {name: layer}), name, meta, frame.divisions, origin=frame._origin)
