"""Functions that see rows of neighbouring partitions: ``map_overlap``, ``shift``, ``diff``, ``pct_change``.

``map_overlap(func, frame, before, after)`` calls ``func`` on each partition extended with the
``before`` rows that precede it and the ``after`` rows that follow it, then cuts the borrowed
rows off the result. ``before``/``after`` are row counts, or time spans (``'2h'``, a
``Timedelta``) for a datetime or timedelta index: then the borrowed rows are those whose index is
within that span of the partition's first (last) row.

The borrowed rows are gathered by a chain of small tasks (:func:`lazyarr.dataframe.scan.carry_chain`):
the rows before partition ``i`` are the last ``before`` rows of partition ``i - 1`` together with
the rows before it, so they come from as many earlier partitions as needed. Short or empty
partitions are therefore fine, unlike in Dask, which raises when a partition is shorter than the
overlap; an overlap longer than the whole frame just borrows every row.
"""
from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_integer
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import Tick

from ..tokenize import tokenize
from ..utils import funcname
from .core import (
    _call_method,
    _Frame,
    align_partitions,
    emulate,
    lazy_call,
    map_partitions,
    merge_layers,
    new_collection,
    no_default,
)
from .scan import carry_chain
from .utils import apply_and_enforce, concat_parts, make_meta

__all__ = ["map_overlap", "shift", "diff", "pct_change", "overlap_span"]

Span = int | pd.Timedelta


# ---------------------------------------------------------------- spans

def _as_timedelta(value: Any) -> pd.Timedelta:
    try:
        return pd.Timedelta(value)
    except (ValueError, TypeError):
        pass
    try:
        return pd.Timedelta(to_offset(value))
    except (ValueError, TypeError):
        raise ValueError(f"{value!r} is not a fixed time span (such as '2h' or '30min')") from None


def overlap_span(value: Any, index_meta: pd.Index, what: str = "before") -> Span:
    """``value`` as a row count (``int``) or a ``Timedelta``, checked against the index.

    >>> overlap_span('90min', pd.DatetimeIndex([]))
    Timedelta('0 days 01:30:00')
    >>> overlap_span(3, pd.RangeIndex(0))
    3
    """
    if is_integer(value) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{what} must be a non-negative number of rows, got {value}")
        return int(value)
    if not isinstance(value, (str, datetime.timedelta, np.timedelta64, pd.DateOffset)):
        raise TypeError(f"{what} must be a number of rows or a time span such as '2h', not {type(value).__name__}")
    span = _as_timedelta(value)
    if index_meta.dtype.kind not in "Mm":
        raise TypeError(f"{what}={value!r} is a time span, which needs a datetime or timedelta index; "
                        f"this index is {index_meta.dtype}")
    if span < pd.Timedelta(0):
        raise ValueError(f"{what} must be a non-negative time span, got {value!r}")
    return span


def _index(x: Any) -> pd.Index:
    return x if isinstance(x, pd.Index) else x.index


# ---------------------------------------------------------------- the borrowed rows

def _last_rows(part: Any, span: Span) -> Any:
    """The rows of ``part`` a later partition may need: the last ``span`` rows, or those within ``span`` of its end."""
    if isinstance(span, int):
        return part.iloc[len(part) - min(span, len(part)):]
    if not len(part):
        return part
    index = _index(part)
    return part.iloc[index.searchsorted(index[-1] - span, side="left"):]


def _first_rows(part: Any, span: Span) -> Any:
    """The rows of ``part`` an earlier partition may need: the first ``span`` rows, or those within ``span`` of its start."""
    if isinstance(span, int):
        return part.iloc[:span]
    if not len(part):
        return part
    index = _index(part)
    return part.iloc[:index.searchsorted(index[0] + span, side="right")]


def _fold_before(state: Any, rows: Any, span: Span) -> Any:
    if isinstance(span, int):
        if len(rows) >= span:
            return rows  # this partition alone has all the rows the next one needs
        return _last_rows(concat_parts([state, rows]), span)
    if not len(rows):
        return state
    _check_sorted(state, rows)
    # cut the earlier rows before concatenating, so that contiguous rows keep their index's freq
    kept = state.iloc[_index(state).searchsorted(_index(rows)[-1] - span, side="left"):]
    return concat_parts([kept, rows])


def _fold_after(state: Any, rows: Any, span: Span) -> Any:
    if isinstance(span, int):
        if len(rows) >= span:
            return rows
        return _first_rows(concat_parts([rows, state]), span)
    if not len(rows):
        return state
    _check_sorted(rows, state)
    kept = state.iloc[:_index(state).searchsorted(_index(rows)[0] + span, side="right")]
    return concat_parts([rows, kept])


def _check_sorted(earlier: Any, later: Any) -> None:
    if len(earlier) and len(later) and _index(earlier)[-1] > _index(later)[0]:
        raise ValueError("a time-span overlap needs an index sorted across partitions, but a partition starts at "
                         f"{_index(later)[0]} after one that ends at {_index(earlier)[-1]}; sort it with "
                         "set_index() first")


def _extend(part: Any, before_rows: Any, after_rows: Any, before: Span, after: Span) -> tuple[Any, int, int]:
    """``part`` with the borrowed rows around it, and how many were added at each end."""
    pieces = []
    if before_rows is not None:
        if not isinstance(before, int):
            _check_sorted(before_rows, part)
            if len(part):
                index = _index(before_rows)
                before_rows = before_rows.iloc[index.searchsorted(_index(part)[0] - before, side="left"):]
        pieces.append(before_rows)
    pieces.append(part)
    if after_rows is not None:
        if not isinstance(after, int):
            _check_sorted(part, after_rows)
            if len(part):
                index = _index(after_rows)
                after_rows = after_rows.iloc[:index.searchsorted(_index(part)[-1] + after, side="right")]
        pieces.append(after_rows)
    n_before = len(before_rows) if before_rows is not None else 0
    n_after = len(after_rows) if after_rows is not None else 0
    extended = concat_parts(pieces) if n_before or n_after else part
    return extended, n_before, n_after


def _apply_extended(call: Callable, is_frame: tuple, before: Span, after: Span, *values: Any) -> Any:
    """Run ``call`` on the extended partitions (frames arrive as part, rows before, rows after) and trim."""
    args: list = []
    trim = None
    it = iter(values)
    for frame in is_frame:
        if not frame:
            args.append(next(it))
            continue
        extended, n_before, n_after = _extend(next(it), next(it), next(it), before, after)
        trim = trim or (n_before, n_after, len(extended))
        args.append(extended)
    out = call(*args)
    n_before, n_after, length = trim
    if not isinstance(out, (pd.DataFrame, pd.Series)) or len(out) != length:
        got = f"{len(out)} rows" if hasattr(out, "__len__") else f"a {type(out).__name__}"
        raise ValueError(f"map_overlap: the function returned {got} for a {length}-row partition with borrowed "
                         f"rows; it must return one row per input row so the borrowed rows can be cut off")
    return out.iloc[n_before: length - n_after]


# ---------------------------------------------------------------- the collection

def _borrow(frame: _Frame, name: str, before: Span, after: Span) -> tuple[dict, list, list]:
    """Tasks for the rows before/after each partition of ``frame``: ``(layer, before_keys, after_keys)``."""
    n = frame.npartitions
    layer: dict = {}
    into_before: list = [None] * n
    into_after: list = [None] * n
    if before:
        for i in range(n):
            layer[(f"{name}-last", i)] = (_last_rows, (frame._name, i), before)
        chain, into_before = carry_chain(f"{name}-before", [(f"{name}-last", i) for i in range(n)],
                                         functools.partial(_fold_before, span=before))
        layer.update(chain)
    if after:
        for i in range(n):
            layer[(f"{name}-first", i)] = (_first_rows, (frame._name, i), after)
        chain, into_after = carry_chain(f"{name}-after", [(f"{name}-first", i) for i in range(n)],
                                        functools.partial(_fold_after, span=after), reverse=True)
        layer.update(chain)
    return layer, into_before, into_after


def overlap(func: Callable, frame: _Frame, before: Span, after: Span, args: tuple = (), kwargs: dict | None = None,
            meta: Any = None, token: str | None = None) -> Any:
    """The collection of ``func`` over extended partitions (spans already checked, ``meta`` known)."""
    kwargs = kwargs or {}
    name = f"{token or funcname(func)}-{tokenize(func, frame, before, after, args, kwargs, meta)}"
    lazy, call = lazy_call(func, (frame, *args), kwargs)
    is_frame = tuple(isinstance(x, _Frame) for x in lazy)
    layer: dict = {}
    borrowed = {}
    for j, x in enumerate(lazy):
        if is_frame[j] and id(x) not in borrowed:
            sub, into_before, into_after = _borrow(x, f"{name}-{j}", before, after)
            layer.update(sub)
            borrowed[id(x)] = (into_before, into_after)
    for i in range(frame.npartitions):
        inputs: list = []
        for j, x in enumerate(lazy):
            if is_frame[j]:
                into_before, into_after = borrowed[id(x)]
                inputs += [(x._name, i), into_before[i], into_after[i]]
            else:
                inputs.append((x._name, 0))
        layer[(name, i)] = (_apply_extended, call, is_frame, before, after, *inputs)
    return new_collection(merge_layers(*lazy, {name: layer}), name, meta, frame.divisions, origin=frame._origin)


def map_overlap(func: Callable, frame: _Frame, before: Any, after: Any, *args: Any, meta: Any = no_default,
                token: str | None = None, **kwargs: Any) -> Any:
    """Apply ``func`` to each partition extended with ``before`` rows of the partitions before it and
    ``after`` rows of those after it; the borrowed rows are cut off ``func``'s result.

    ``before``/``after`` are row counts or, for a datetime/timedelta index, time spans such as
    ``'2h'`` (the rows whose index lies within that span of the partition's first/last row).
    ``func`` must return a Series or DataFrame with one row per input row. Other lazy frames in
    ``args``/``kwargs`` are aligned with ``frame`` and extended the same way; lazy scalars are
    passed as values. Give ``meta=`` to skip running ``func`` on a sample.

    >>> import lazyarr.dataframe as dd
    >>> s = dd.from_pandas(pd.Series([1, 2, 4, 7, 11]), npartitions=3)
    >>> map_overlap(lambda x: x - x.shift(1), s, 1, 0).compute().tolist()
    [nan, 1.0, 2.0, 3.0, 4.0]
    """
    index_meta = _index(frame._meta)
    before = overlap_span(before, index_meta, "before")
    after = overlap_span(after, index_meta, "after")
    frames = [a for a in (frame, *args, *kwargs.values()) if isinstance(a, _Frame)]
    if len(frames) > 1:
        lookup = {id(f): a for f, a in zip(frames, align_partitions(*frames))}
        frame = lookup[id(frame)]
        args = tuple(lookup.get(id(a), a) if isinstance(a, _Frame) else a for a in args)
        kwargs = {k: lookup.get(id(v), v) if isinstance(v, _Frame) else v for k, v in kwargs.items()}
    if meta is no_default:
        meta = emulate(func, frame, *args, udf=True, **kwargs)
    else:
        meta = make_meta(meta)
        func = functools.partial(apply_and_enforce, func, _meta=meta)
    if not isinstance(meta, (pd.DataFrame, pd.Series)):
        raise TypeError(f"map_overlap needs a function returning a Series or DataFrame with one row per input row; "
                        f"{funcname(func)} returns {type(meta).__name__}")
    if not before and not after:
        return map_partitions(func, frame, *args, meta=meta, token=token, **kwargs)
    return overlap(func, frame, before, after, args, kwargs, meta=meta, token=token or "overlap")


# ---------------------------------------------------------------- shift, diff, pct_change

def _check_periods(periods: Any) -> int:
    if not is_integer(periods) or isinstance(periods, bool):
        raise TypeError(f"periods must be an integer, got {periods!r}")
    return int(periods)


def _patch(out: Any, rows: slice, values: Any) -> bool:
    """Write ``values`` (same shape and dtypes) over ``out.iloc[rows]`` in place; False (nothing written) if
    a dtype differs."""
    if isinstance(out, pd.Series):
        if values.dtype != out.dtype:
            return False
        out.iloc[rows] = values.array
        return True
    if not out.dtypes.reset_index(drop=True).equals(values.dtypes.reset_index(drop=True)):
        return False
    for j in range(out.shape[1]):
        out.iloc[rows, j] = values.iloc[:, j].array
    return True


# from this many rows on, a partition's edge rows are patched rather than the partition concatenated with its
# neighbour's rows (below it the copy is cheaper than the extra pandas calls)
_PATCH_ROWS = 50_000


def _by_rows_apply(call: Callable, periods: int, part: Any, before_rows: Any, after_rows: Any) -> Any:
    """``call`` (shift, diff or pct_change by ``periods``) on one partition, given the borrowed rows.

    Only the first (last, for negative periods) ``|periods|`` rows of the partition look at borrowed
    rows, so ``call`` runs on the partition alone and those rows are recomputed from a small frame of
    the borrowed rows and themselves, then written over: the partition is never copied into a
    concatenation with its neighbours.
    """
    k = abs(periods)
    borrowed = before_rows if periods > 0 else after_rows
    if borrowed is None or not len(borrowed):
        return call(part)
    if len(part) >= max(k + 1, _PATCH_ROWS):
        out = call(part)
        if periods > 0:
            rows, edge = slice(0, k), call(concat_parts([borrowed, part.iloc[:k]])).iloc[-k:]
        else:
            rows, edge = slice(len(part) - k, len(part)), call(concat_parts([part.iloc[-k:], borrowed])).iloc[:k]
        if _patch(out, rows, edge):
            return out
    # a small partition, or the borrowed rows change the dtypes: the partition extended with them
    return _apply_extended(call, (True,), max(periods, 0), max(-periods, 0), part, before_rows, after_rows)


def _by_rows(frame: _Frame, method: str, periods: int, **kwargs: Any) -> Any:
    func = functools.partial(_call_method, method=method, periods=periods, **kwargs)
    meta = emulate(func, frame)
    if periods == 0:
        return map_partitions(func, frame, meta=meta, token=method)
    name = f"{method}-{tokenize(frame, method, periods, kwargs)}"
    layer, into_before, into_after = _borrow(frame, name, max(periods, 0), max(-periods, 0))
    for i in range(frame.npartitions):
        layer[(name, i)] = (_by_rows_apply, func, periods, (frame._name, i), into_before[i], into_after[i])
    return new_collection(merge_layers(frame, {name: layer}), name, meta, frame.divisions, origin=frame._origin)


def _shifted_divisions(frame: _Frame, periods: int, freq: Any) -> tuple:
    unknown = (None,) * (frame.npartitions + 1)
    if not frame.known_divisions or _index(frame._meta).dtype.kind not in "Mm":
        return unknown
    offset = to_offset(freq)
    if not isinstance(offset, Tick):  # calendar offsets can map distinct labels to one
        return unknown
    step = pd.Timedelta(offset) * periods
    return tuple(d + step for d in frame.divisions)


def shift(frame: _Frame, periods: int = 1, freq: Any = None, axis: Any = 0, fill_value: Any = no_default) -> Any:
    """Values moved ``periods`` rows down (up when negative) across partitions, or with ``freq``
    the index moved by ``periods * freq`` (each partition on its own).

    >>> import lazyarr.dataframe as dd
    >>> s = dd.from_pandas(pd.Series([1.0, 2.0, 3.0, 4.0]), npartitions=2)
    >>> shift(s, -1).compute().tolist()
    [2.0, 3.0, 4.0, nan]
    """
    periods = _check_periods(periods)
    extra = {} if fill_value is no_default else {"fill_value": fill_value}
    if axis in (1, "columns"):
        return frame._method("shift", periods, axis=1, **extra)
    if freq is not None:
        if freq == "infer":
            raise NotImplementedError("shift(freq='infer') would infer a frequency per partition; give freq")
        moved = frame._method("shift", periods, freq=freq, **extra)
        # the labels changed: the result no longer lines up row for row with frame
        return new_collection(moved._layers, moved._name, moved._meta, _shifted_divisions(frame, periods, freq))
    return _by_rows(frame, "shift", periods, **extra)


def diff(frame: _Frame, periods: int = 1, axis: Any = 0) -> Any:
    """Difference with the value ``periods`` rows earlier (later when negative), across partitions.

    >>> import lazyarr.dataframe as dd
    >>> s = dd.from_pandas(pd.Series([1, 2, 4, 7]), npartitions=2)
    >>> diff(s).compute().tolist()
    [nan, 1.0, 2.0, 3.0]
    """
    periods = _check_periods(periods)
    if axis in (1, "columns"):
        return frame._method("diff", periods, axis=1)
    return _by_rows(frame, "diff", periods)


def pct_change(frame: _Frame, periods: int = 1, fill_method: Any = None, freq: Any = None) -> Any:
    """Relative change from the value ``periods`` rows earlier, across partitions (no filling, as pandas 3)."""
    periods = _check_periods(periods)
    if fill_method is not None:
        raise ValueError(f"fill_method must be None (as in pandas 3); got {fill_method!r}. Fill first with "
                         "fillna(value)")
    if freq is not None:
        raise NotImplementedError("pct_change(freq=...) matches rows by shifted labels anywhere in the frame, "
                                  "which is not supported; use periods")
    return _by_rows(frame, "pct_change", periods)
