"""Time-bin aggregations: ``ddf.resample('h').mean()`` and friends, equal to pandas' resample.

The frame needs a DatetimeIndex with known divisions. As in Dask, it is first re-split (with
:func:`lazyarr.dataframe.repartition.repartition_divisions`, no shuffle) at the start of the bin
holding each division, so that no bin spans two partitions, and pandas' resample runs on every
partition. (When each division has a bin of its own, large partitions skip the concatenation: see
:func:`_piece_split`.) Each output partition then covers exactly the bins it owns, whether or not
it has rows in them, so the empty bins between partitions (and the bins of empty partitions) get
pandas' fill: the fill and dtype pandas gives an empty bin are learnt once from a sample with a gap.

pandas' output also depends on the data as a whole: it runs from the first row's bin to the last
row's (with, for some calendar rules and ``closed='right'``, an empty bin before or after them),
and an empty bin anywhere turns an integer ``min`` into floats everywhere. Each partition
therefore reports a small summary of its rows (first and last bin, gaps), one tiny task combines
them, and every output partition is trimmed and cast according to it.

Where pandas anchors the bins at the data (``origin='start_day'``, the default, and ``'start'``,
``'end'``, ``'end_day'`` for fixed frequencies; the first row's date for calendar rules with
``n > 1`` such as ``'2ME'``, and ``'7D'`` on a tz-aware index), the anchor is taken from the first
(last) division, checked against the actual first (last) row when the result is computed.
"""
from __future__ import annotations

import dataclasses
import functools
import operator
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset
from pandas.tseries.offsets import BaseOffset, Day, Tick

from ..tokenize import tokenize
from .core import _Frame, merge_layers, new_collection
from .repartition import repartition_divisions
from .utils import concat_parts, make_meta, meta_nonempty

__all__ = ["Resampler"]

_ROW_ORIGINS = ("start", "start_day", "end", "end_day")


# ---------------------------------------------------------------- bins

@dataclasses.dataclass(frozen=True)
class _Bins:
    """pandas' binning for one resample, reproducible on any part of the frame.

    ``origin`` is what each partition passes to pandas: an origin that pandas would take from the
    rows is replaced by the Timestamp it stands for (from the divisions). ``fixed`` rules (a fixed
    frequency, or ``'D'`` on a naive index) are binned from the origin, so pandas bins a partition as
    it bins the whole frame. Calendar rules are binned from the first row's date, and pandas may add
    an empty bin before the first row's or after the last row's (with ``closed='right'``); a
    partition is therefore resampled with a *phantom* row in the bin just before its first row's and
    one in the bin just after its last row's, whose bins are then dropped. ``anchored`` is False for
    calendar rules whose bins depend on that first date (``'2ME'``, ``'7D'`` on a tz-aware index):
    there the phantom row also makes pandas lay out the whole frame's bins.
    """

    rule: BaseOffset
    closed: str
    label: str
    origin: Any
    offset: Any
    unit: str
    row_origin: str | None  # what the bins are laid out from when it depends on the rows
    fixed: bool
    anchored: bool

    @property
    def kwargs(self) -> dict:
        """The keywords for pandas' ``resample``."""
        return {"rule": self.rule, "closed": self.closed, "label": self.label, "origin": self.origin,
                "offset": self.offset}

    @property
    def tick(self) -> pd.Timedelta:
        """The smallest step of the index."""
        return pd.Timedelta(1, unit=self.unit)


def _is_fixed(rule: BaseOffset, tz: Any) -> bool:
    # pandas bins a fixed frequency (and 'D' on a naive index) from an origin, the rest by calendar
    return isinstance(rule, Tick) or (isinstance(rule, Day) and tz is None)


def _calendar_grid(rule: BaseOffset) -> bool:
    """Are ``rule``'s bins the same whatever date pandas starts them from (``'W'``, ``'ME'``, ``'B'``)?"""
    if rule.n != 1:
        return False
    days = pd.date_range("2001-01-01", periods=8, freq="D")
    # an offset that is on every day (DateOffset(months=1), 'W' without weekday) steps from the start
    return isinstance(rule, Day) or not all(rule.is_on_offset(d) for d in days)


def _origin_from_rows(origin: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.Timestamp:
    """The Timestamp pandas anchors the bins at for ``origin`` when the rows run from ``first`` to ``last``."""
    if origin == "start":
        return first
    if origin == "start_day":
        return first.normalize()
    if origin == "end":
        return last
    return last.ceil("D")


def _make_bins(index_meta: pd.DatetimeIndex, divisions: tuple, rule: Any, closed: str | None,
               label: str | None, origin: Any, offset: Any) -> _Bins:
    # pandas' Grouper checks the arguments and settles closed/label defaults (which depend on origin)
    grouper = pd.Grouper(freq=rule, closed=closed, label=label, origin=origin, offset=offset)
    freq = to_offset(grouper.freq)
    fixed = _is_fixed(freq, index_meta.tz)
    anchored = fixed or _calendar_grid(freq)
    row_origin, resolved, shift = None, grouper.origin, grouper.offset
    if fixed and grouper.origin in _ROW_ORIGINS:
        row_origin = grouper.origin
        resolved = _origin_from_rows(row_origin, divisions[0], divisions[-1])
    elif not fixed:
        # pandas ignores (and warns about) origin and offset for calendar rules
        resolved, shift = "start_day", None
        row_origin = None if anchored else "first row's date"
    return _Bins(freq, grouper.closed, grouper.label, resolved, shift, index_meta.unit, row_origin, fixed, anchored)


def _probe(bins: _Bins, points: list) -> pd.Series:
    """Rows per bin of pandas' resample of rows at ``points`` (sorted times)."""
    index = pd.DatetimeIndex(points).as_unit(bins.unit)
    return pd.Series(1, index=index).resample(**bins.kwargs).count()


def _left_point(bins: _Bins, label: pd.Timestamp) -> pd.Timestamp:
    """The bin edge on the left of the bin labelled ``label``."""
    return label if bins.label == "left" else label - bins.rule


def _phantom(bins: _Bins, label: pd.Timestamp) -> pd.Timestamp:
    """A time in the bin just before ``label``'s from which pandas lays out the whole frame's bins."""
    point = _left_point(bins, label)
    return point - bins.rule if bins.closed == "left" else point


def _from_rows(bins: _Bins, first: pd.Timestamp, last: pd.Timestamp) -> _Bins:
    """``bins`` with the origin pandas would take from rows running from ``first`` to ``last``."""
    if not (bins.fixed and bins.row_origin):
        return bins
    return dataclasses.replace(bins, origin=_origin_from_rows(bins.row_origin, first, last))


def _natural(bins: _Bins, first: pd.Timestamp, last: pd.Timestamp) -> pd.Series:
    """Rows per bin of pandas' resample of rows from ``first`` to ``last``, exact in its first bins (where
    pandas may put an empty bin before the first row's)."""
    if bins.row_origin not in ("end", "end_day"):
        return _probe(_from_rows(bins, first, last), [first])
    # pandas counts whole periods back from the end (and one more for closed='left', which leaves an
    # empty first bin when they fit exactly): a row a whole number of periods before the end, close
    # to the first, makes it lay out the same first bins
    end = _origin_from_rows(bins.row_origin, first, last)
    step = pd.Timedelta(bins.rule)
    proxy = end - max(0, (end - first) // step - 1) * step
    return _probe(dataclasses.replace(bins, origin="end"), [first, proxy])


def _probe_from(bins: _Bins, points: list, known: pd.Timestamp) -> pd.Series:
    """:func:`_probe` on the whole frame's bins; ``known`` is a label at or before the first point's bin."""
    return _probe(bins, points if bins.anchored else [_phantom(bins, known), *points])


def _holding(bins: _Bins, time: pd.Timestamp, known: pd.Timestamp) -> pd.Timestamp:
    """The label of the bin holding ``time``."""
    counts = _probe_from(bins, [time], known)
    return counts.index[counts.to_numpy() > 0][-1]


def _bin_start(bins: _Bins, label: pd.Timestamp, known: pd.Timestamp) -> pd.Timestamp:
    """The first instant of the bin labelled ``label``: a division there keeps the bin in one partition."""
    point = _left_point(bins, label)
    if bins.closed == "left":
        candidates = [point]
    else:
        # a right-closed bin starts just after its left edge; pandas moves the edges of end-of-period
        # rules ('ME', 'W', ...) to the last instant of the day (wall time), so try both
        wall = point.tz_localize(None) + pd.Timedelta(days=1) - bins.tick
        candidates = [point + bins.tick, wall.tz_localize(point.tz) + bins.tick]
    for start in candidates:
        counts = _probe_from(bins, [start - bins.tick, start], known)
        held = counts[counts.to_numpy() > 0]
        if held.index[-1] == label and held.iloc[-1] == 1:
            return start
    raise NotImplementedError(f"cannot find where the bin {label} of rule {bins.rule.freqstr!r} starts, so the "
                              f"partitions cannot be aligned with the bins; resample with another rule")


def _labels_of(bins: _Bins, times: Any) -> list:
    """The label of the bin holding each of ``times``, from one pandas call (``bins.anchored`` only)."""
    points = sorted(set(times))
    counts = _probe(bins, points)
    held = counts.index.repeat(counts.to_numpy())
    where = dict(zip(points, held))
    return [where[t] for t in times]


def _bin_starts(bins: _Bins, labels: list) -> list:
    """:func:`_bin_start` of each of ``labels`` (``bins.anchored``), checking the usual candidates in one pandas
    call and falling back to one search per label where they are wrong."""
    if not labels:
        return []
    shift = bins.tick if bins.closed == "right" else pd.Timedelta(0)
    starts = [_left_point(bins, label) + shift for label in labels]
    held = _labels_of(bins, [t for start in starts for t in (start - bins.tick, start)])
    return [start if held[2 * i + 1] == label and held[2 * i] != label else _bin_start(bins, label, label)
            for i, (start, label) in enumerate(zip(starts, labels))]


def _layout(bins: _Bins, divisions: tuple) -> tuple[tuple, tuple]:
    """New divisions at bin starts (one per bin holding an old division), and the output divisions:
    the label of each new partition's first bin, and the last label pandas gives rows ending at the
    last division."""
    # pandas lays out the bins from the first row here too (and may start with an empty bin before it)
    natural = _natural(bins, divisions[0], divisions[-1])
    cuts, labels = [divisions[0]], [natural.index[0]]
    current = natural.index[natural.to_numpy() > 0][0]
    if bins.anchored:
        # the bins do not depend on where pandas starts them: one probe for all the divisions' bins
        for label in _labels_of(bins, divisions[1:-1]) if len(divisions) > 2 else ():
            if label > current:
                labels.append(label)
                current = label
        cuts += _bin_starts(bins, labels[1:])
    else:
        for d in divisions[1:-1]:
            label = _holding(bins, d, current)
            if label > current:
                cuts.append(_bin_start(bins, label, current))
                labels.append(label)
                current = label
    cuts.append(divisions[-1])
    labels.append(_probe_from(bins, [divisions[-1]], current).index[-1])
    return tuple(cuts), tuple(labels)


def _owned(bins: _Bins, lo: pd.Timestamp, hi: pd.Timestamp, last: bool, name: Any) -> pd.DatetimeIndex:
    """The labels of a partition's bins, ``lo`` to ``hi`` (included for the last partition), as pandas makes them."""
    return pd.date_range(lo, hi, freq=bins.rule, inclusive="both" if last else "left", name=name, unit=bins.unit,
                         ambiguous=True, nonexistent="shift_forward")


# ---------------------------------------------------------------- per partition

@dataclasses.dataclass(frozen=True)
class _Rows:
    """What one partition's rows tell about the whole result: their time range, bins and gaps."""

    first: pd.Timestamp
    last: pd.Timestamp
    first_label: pd.Timestamp  # the bin of the first row
    last_label: pd.Timestamp
    gap_inside: bool  # an empty bin between its first and last rows' bins
    gap_before: bool  # an empty bin it owns before its first row's
    gap_after: bool  # an empty bin it owns after its last row's


def _aggregate(resampler: Any, method: str, args: tuple, kwargs: dict) -> Any:
    return getattr(resampler, method)(*args, **kwargs)


def _ghost(row: Any, time: pd.Timestamp, unit: str) -> Any:
    return row.set_axis(pd.DatetimeIndex([time], name=row.index.name).as_unit(unit))


def _resample_rows(part: Any, bins: _Bins, known: pd.Timestamp, how: functools.partial) -> tuple[Any, pd.Series]:
    """pandas' result and rows per bin for the nonempty ``part``, from its first row's bin to its last's,
    on the whole frame's bins (``known``: a label at or before its first row's bin)."""
    if bins.fixed:
        resampler = part.resample(**bins.kwargs)
        return how(resampler), resampler.size()
    first = _holding(bins, part.index[0], known)
    last = _holding(bins, part.index[-1], first)
    after = _bin_start(bins, last + bins.rule, last)
    padded = pd.concat([_ghost(part.iloc[:1], _phantom(bins, first), bins.unit), part,
                        _ghost(part.iloc[-1:], after, bins.unit)])
    resampler = padded.resample(**bins.kwargs)
    return how(resampler).iloc[1:-1], resampler.size().iloc[1:-1]  # the phantom rows' bins are not ours


def _piece(part: Any, bins: _Bins, lo: pd.Timestamp, hi: pd.Timestamp, last: bool, how: functools.partial) -> tuple:
    """``(result, _Rows)`` of one partition (``(None, None)`` without rows); it owns the bins from label
    ``lo`` to ``hi`` (excluded, unless it is the last partition)."""
    if not len(part):
        return None, None
    result, sizes = _resample_rows(part, bins, lo, how)
    a, b = sizes.index[0], sizes.index[-1]
    rows = _Rows(part.index[0], part.index[-1], a, b, bool((sizes.to_numpy() == 0).any()), a > lo,
                 b < hi if last else b + bins.rule < hi)
    return result, rows


# from this many rows on, a partition's first bin is resampled apart instead of concatenating the rows
_SPLIT_ROWS = 250_000


def _rows_from(part: Any, start: pd.Timestamp) -> Any:
    """The rows of ``part`` at or after ``start``: those that belong to the next partition's first bin."""
    return part.iloc[part.index.searchsorted(start, side="left"):]


def _piece_split(tail: Any | None, part: Any, stop: pd.Timestamp | None, bins: _Bins, lo: pd.Timestamp,
                 hi: pd.Timestamp, last: bool, how: functools.partial) -> tuple:
    """:func:`_piece` of the rows ``tail`` (the end of the previous partition, all in this partition's first
    bin) followed by the rows of ``part`` before ``stop`` (all of them if None), without concatenating
    them: ``part``'s rows are resampled alone, and the first bin, shared with ``tail``, again from ``tail``
    and that bin's rows of ``part``."""
    if stop is not None:
        part = part.iloc[:part.index.searchsorted(stop, side="left")]
    if tail is None:
        return _piece(part, bins, lo, hi, last, how)
    if not len(tail) or not len(part):
        return _piece(part if len(part) else tail, bins, lo, hi, last, how)
    if len(part) < _SPLIT_ROWS:  # copying few rows costs less than the second resample and the concat
        return _piece(concat_parts([tail, part]), bins, lo, hi, last, how)
    result, sizes = _resample_rows(part, bins, lo, how)
    shared = int(sizes.iloc[0])  # the rows of part in its first bin
    head, head_sizes = _resample_rows(concat_parts([tail, part.iloc[:shared]]), bins, lo, how)
    if len(head_sizes) != 1 or head_sizes.index[0] != sizes.index[0] or head_sizes.iloc[0] != len(tail) + shared:
        return _piece(concat_parts([tail, part]), bins, lo, hi, last, how)  # not one shared bin: not expected
    result = concat_parts([head, result.iloc[1:]])
    sizes = concat_parts([head_sizes, sizes.iloc[1:]])
    a, b = sizes.index[0], sizes.index[-1]
    rows = _Rows(tail.index[0], part.index[-1], a, b, bool((sizes.to_numpy() == 0).any()), a > lo,
                 b < hi if last else b + bins.rule < hi)
    return result, rows


def _check_bins(bins: _Bins, natural: pd.Series, first_label: pd.Timestamp) -> None:
    """Raise if pandas, laying out the bins from the actual rows, would place them differently."""
    if bins.row_origin is None or natural.index[natural.to_numpy() > 0][0] == first_label:
        return
    raise ValueError(
        f"resample({bins.rule.freqstr!r}) lays out its bins from the {bins.row_origin}, but they were laid out "
        f"from this frame's divisions, which only bound the rows (after a filter, say), and the two differ. Give "
        f"an origin that does not depend on the rows (origin='epoch' or a Timestamp), or exact divisions "
        f"(ddf.reset_index().set_index(column, sorted=True))"
    )


def _span(bins: _Bins, rows: list) -> tuple | None:
    """``(first label, last label, any empty bin)`` of the whole result, or None when there are no rows."""
    full = [j for j, r in enumerate(rows) if r is not None]
    if not full:
        return None
    a, b = full[0], full[-1]
    first, last = rows[a].first, rows[b].last
    natural = _natural(bins, first, last)  # what pandas does with these rows
    _check_bins(bins, natural, rows[a].first_label)
    start, end = natural.index[0], _probe_from(_from_rows(bins, first, last), [last], rows[b].last_label).index[-1]
    empty = start < rows[a].first_label or end > rows[b].last_label  # pandas' extra bins at the ends
    empty = empty or len(full) < b - a + 1  # a partition without rows in between owns only empty bins
    empty = empty or any(rows[j].gap_inside or (j > a and rows[j].gap_before) or (j < b and rows[j].gap_after)
                         for j in full)
    return start, end, empty


def _padding(base: Any, labels: pd.DatetimeIndex, filler: Any) -> Any:
    """Rows for the empty bins ``labels``: pandas' fill for an empty bin, missing values elsewhere."""
    pad = base.iloc[:0].reindex(labels)  # missing values, in the dtype pandas widens to
    if isinstance(pad, pd.Series):
        value = filler.iloc[0]
        return pad if pd.isna(value) else pd.Series(value, index=labels, dtype=filler.dtype, name=pad.name)
    for i in range(pad.shape[1]):
        value = filler.iloc[0, i]
        if not pd.isna(value):
            pad.isetitem(i, pd.Series(value, index=labels, dtype=filler.dtypes.iloc[i]))
    return pad


def _widen(column: pd.Series, dtype: Any) -> pd.Series:
    # pandas makes bools/ints floats when a bin is missing its value; other dtypes hold missing values
    if column.dtype != dtype and isinstance(dtype, np.dtype) and dtype.kind == "f" and column.dtype.kind in "biuO":
        return column.astype(dtype)
    return column


def _widen_all(out: Any, filler: Any) -> Any:
    if isinstance(out, pd.Series):
        return _widen(out, filler.dtype)
    out = out.copy(deep=False)
    for i in range(out.shape[1]):
        out.isetitem(i, _widen(out.iloc[:, i], filler.dtypes.iloc[i]))
    return out


def _finish(piece: tuple, span: tuple | None, bins: _Bins, lo: pd.Timestamp, hi: pd.Timestamp, last: bool,
            meta: Any, filler: Any, empty: Any) -> Any:
    """The partition's share of the result: its bins within the result's span, empty ones filled as pandas does."""
    result = piece[0]
    if span is None:  # no rows at all: pandas' result for no rows
        return empty
    start, end, any_empty = span
    owned = _owned(bins, max(lo, start), min(hi, end), last or hi > end, meta.index.name)
    if not len(owned):
        return meta
    missing = owned[~owned.isin(result.index)] if result is not None else owned
    if len(missing):
        pad = _padding(result if result is not None else meta, missing, filler)
        result = pd.concat([result, pad]).sort_index() if result is not None else pad
    result = result.set_axis(owned)  # the labels as pandas makes them (with freq, so concat keeps it)
    return _widen_all(result, filler) if any_empty else result


# ---------------------------------------------------------------- the collection

def _samples(frame: _Frame, bins: _Bins, how: functools.partial) -> tuple[Any, Any, Any]:
    """pandas' result on two rows in one bin (the meta), the row it gives an empty bin (the filler), and
    its result without rows."""
    sample = meta_nonempty(frame._meta)
    t0 = frame.divisions[0]
    known = _probe(bins, [t0]).index[0]
    name = frame._meta.index.name
    one_bin = sample.set_axis(pd.DatetimeIndex([t0, t0], name=name).as_unit(bins.unit))
    meta = make_meta(_resample_rows(one_bin, bins, known, how)[0])
    gapped = sample.set_axis(pd.DatetimeIndex([t0, t0 + 3 * bins.rule], name=name).as_unit(bins.unit))
    result, sizes = _resample_rows(gapped, bins, known, how)
    filler = result[sizes.to_numpy() == 0].iloc[:1]
    try:
        empty = how(frame._meta.resample(**bins.kwargs))
    except Exception:  # pandas cannot aggregate nothing this way: an empty partition is all we need
        empty = meta
    return meta, filler, empty


def _check_frame(frame: _Frame) -> None:
    """Raise unless ``frame`` has a DatetimeIndex with known divisions, saying how to get one."""
    index = frame._meta.index
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"resample needs a DatetimeIndex, but this index is {type(index).__name__} of "
                        f"{index.dtype}; make a datetime column the index first: set_index(column, sorted=True) "
                        f"if the rows are in time order, else set_index(column)")
    if not frame.known_divisions:
        raise ValueError("resample needs known divisions (to put every bin in one partition), and this frame's "
                         "are unknown. If the rows are in time order, ddf.reset_index().set_index(column, "
                         "sorted=True) finds them from each partition's first and last value without moving "
                         "data; otherwise set_index(column) sorts the rows. repartition(divisions=...) changes "
                         "divisions that are known")
    if any(pd.isna(d) for d in frame.divisions):
        raise ValueError("resample needs divisions without missing values (NaT)")


def _resample(frame: _Frame, bins: _Bins, layout: tuple, method: str, args: tuple, kwargs: dict) -> Any:
    """The lazy result of ``getattr(frame.resample(...), method)(*args, **kwargs)``."""
    how = functools.partial(_aggregate, method=method, args=args, kwargs=kwargs)
    meta, filler, empty = _samples(frame, bins, how)
    cuts, labels = layout
    # each division in a bin of its own (the usual case): partition j's bins are its own rows before the
    # next cut and the rows of partition j - 1 from cut j, resampled apart (see _piece_split); otherwise
    # (bins wider than partitions) the partitions are re-split at the cuts
    split = cuts != tuple(frame.divisions) and len(cuts) == len(frame.divisions)
    parts = frame if split or cuts == tuple(frame.divisions) else repartition_divisions(frame, cuts)
    name = f"resample-{method}-{tokenize(parts, cuts, bins, how)}"
    n = parts.npartitions
    layer: dict = {}
    for j in range(n):
        owned = (bins, labels[j], labels[j + 1], j == n - 1)
        if split and j:
            layer[(f"{name}-tail", j)] = (_rows_from, (parts._name, j - 1), cuts[j])
            stop = cuts[j + 1] if j < n - 1 else None
            layer[(f"{name}-piece", j)] = (_piece_split, (f"{name}-tail", j), (parts._name, j), stop, *owned, how)
        elif split:
            layer[(f"{name}-piece", j)] = (_piece_split, None, (parts._name, j), cuts[1], *owned, how)
        else:
            layer[(f"{name}-piece", j)] = (_piece, (parts._name, j), *owned, how)
        layer[(f"{name}-rows", j)] = (operator.itemgetter(1), (f"{name}-piece", j))
        layer[(name, j)] = (_finish, (f"{name}-piece", j), (f"{name}-span", 0), *owned, meta, filler, empty)
    # the one task every output waits for: tiny summaries, never the data
    layer[(f"{name}-span", 0)] = (_span, bins, [(f"{name}-rows", j) for j in range(n)])
    return new_collection(merge_layers(parts, {name: layer}), name, meta, labels)


class Resampler:
    """``frame.resample(rule, closed=, label=, origin=, offset=)``: aggregations over time bins, as in pandas.

    The frame needs a DatetimeIndex with known divisions. Results equal pandas' (every bin from the
    first row's to the last row's, empty ones filled as pandas fills them, and pandas' dtypes), and
    have known divisions: the first label of each output partition. See :mod:`lazyarr.dataframe.resample`.

    >>> import pandas as pd, lazyarr.dataframe as dd
    >>> s = pd.Series([1, 2, 3, 4], index=pd.to_datetime(['2024-01-01 00:10', '2024-01-01 00:50',
    ...                                                   '2024-01-01 03:05', '2024-01-01 03:20']))
    >>> ds = dd.from_pandas(s, npartitions=2)
    >>> ds.resample('h').sum().compute().tolist()
    [3, 0, 0, 7]
    >>> ds.resample('h').max().compute().tolist()
    [2.0, nan, nan, 4.0]
    """

    def __init__(self, obj: _Frame, rule: Any, closed: str | None = None, label: str | None = None,
                 origin: Any = "start_day", offset: Any = None):
        _check_frame(obj)
        self.obj = obj
        self._args = {"rule": rule, "closed": closed, "label": label, "origin": origin, "offset": offset}
        self._bins = _make_bins(obj._meta.index, obj.divisions, rule, closed, label, origin, offset)
        self._layout: tuple | None = None

    @property
    def _laid_out(self) -> tuple:
        """``(divisions at bin starts, output divisions)``, worked out once for all the aggregations."""
        if self._layout is None:
            self._layout = _layout(self._bins, self.obj.divisions)
        return self._layout

    def __repr__(self) -> str:
        return f"Resampler [rule={self._bins.rule.freqstr}] on {type(self.obj).__name__} with " \
               f"{self.obj.npartitions} partitions"

    def __getitem__(self, key: Any) -> Resampler:
        out = Resampler(self.obj[key], **self._args)
        out._layout = self._layout  # the same index, so the same bins
        return out

    def __getattr__(self, key: str) -> Resampler:
        meta = self.__dict__["obj"]._meta if "obj" in self.__dict__ else None
        if isinstance(meta, pd.DataFrame) and key in meta.columns:
            return self[key]
        raise AttributeError(f"'Resampler' object has no attribute {key!r}")

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _resample(self.obj, self._bins, self._laid_out, method, args, kwargs)

    def sum(self, numeric_only: bool = False, min_count: int = 0) -> Any:
        """Sum of each bin (0 for an empty bin, unless ``min_count`` says otherwise)."""
        return self._call("sum", numeric_only=numeric_only, min_count=min_count)

    def prod(self, numeric_only: bool = False, min_count: int = 0) -> Any:
        """Product of each bin (1 for an empty bin)."""
        return self._call("prod", numeric_only=numeric_only, min_count=min_count)

    def mean(self, numeric_only: bool = False) -> Any:
        """Mean of each bin."""
        return self._call("mean", numeric_only=numeric_only)

    def median(self, numeric_only: bool = False) -> Any:
        """Median of each bin."""
        return self._call("median", numeric_only=numeric_only)

    def min(self, numeric_only: bool = False, min_count: int = 0) -> Any:
        """Minimum of each bin."""
        return self._call("min", numeric_only=numeric_only, min_count=min_count)

    def max(self, numeric_only: bool = False, min_count: int = 0) -> Any:
        """Maximum of each bin."""
        return self._call("max", numeric_only=numeric_only, min_count=min_count)

    def first(self, numeric_only: bool = False, min_count: int = 0, skipna: bool = True) -> Any:
        """First (non-missing) value of each bin."""
        return self._call("first", numeric_only=numeric_only, min_count=min_count, skipna=skipna)

    def last(self, numeric_only: bool = False, min_count: int = 0, skipna: bool = True) -> Any:
        """Last (non-missing) value of each bin."""
        return self._call("last", numeric_only=numeric_only, min_count=min_count, skipna=skipna)

    def std(self, ddof: int = 1, numeric_only: bool = False) -> Any:
        """Standard deviation of each bin."""
        return self._call("std", ddof=ddof, numeric_only=numeric_only)

    def var(self, ddof: int = 1, numeric_only: bool = False) -> Any:
        """Variance of each bin."""
        return self._call("var", ddof=ddof, numeric_only=numeric_only)

    def sem(self, ddof: int = 1, numeric_only: bool = False) -> Any:
        """Standard error of the mean of each bin."""
        return self._call("sem", ddof=ddof, numeric_only=numeric_only)

    def count(self) -> Any:
        """Non-missing values in each bin."""
        return self._call("count")

    def size(self) -> Any:
        """Rows in each bin (a Series)."""
        return self._call("size")

    def nunique(self) -> Any:
        """Distinct non-missing values in each bin."""
        return self._call("nunique")

    def ohlc(self) -> Any:
        """First, highest, lowest and last value of each bin (columns open, high, low, close)."""
        return self._call("ohlc")

    def quantile(self, q: float = 0.5, interpolation: str = "linear") -> Any:
        """Quantile ``q`` (one number) of each bin."""
        if not np.isscalar(q):
            raise NotImplementedError("resample(...).quantile takes one q; call it once per quantile")
        return self._call("quantile", q, interpolation=interpolation)

    def aggregate(self, func: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Several statistics at once: a name or function, a list of them, a dict per column, or named
        aggregations (``agg(total=('x', 'sum'))``)."""
        return self._call("aggregate", func, *args, **kwargs)

    agg = aggregate
