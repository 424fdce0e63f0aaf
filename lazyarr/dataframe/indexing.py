"""``loc`` (labels, using divisions to touch only the partitions needed) and ``iloc`` (columns)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_list_like, is_scalar

from ..tokenize import tokenize
from .core import DataFrame, Series, _Frame, merge_layers, new_collection, partitionwise
from .utils import raise_unknown_columns

__all__ = ["LocIndexer", "ILocIndexer"]


def _loc_slice(part: Any, start: Any, stop: Any) -> Any:
    return part.loc[start:stop]


def _loc_labels(part: Any, labels: list) -> Any:
    present = part.index.isin(labels)
    out = part[present]
    return out


def _loc_columns(part: Any, rows: Any, cols: Any) -> Any:
    return part.loc[rows, cols]


class LocIndexer:
    """``ddf.loc[rows]`` / ``ddf.loc[rows, cols]``.

    ``rows`` is a label (rows with that label, as a frame), a slice of labels (inclusive, as in
    pandas), a list of labels, or an aligned boolean lazy Series. With known divisions only the
    partitions that can hold the labels are read.
    """

    def __init__(self, frame: _Frame):
        self.frame = frame

    def __getitem__(self, key: Any) -> Any:
        frame = self.frame
        if isinstance(key, tuple) and isinstance(frame, DataFrame):
            rows, cols = key
            if cols is not None and not (isinstance(cols, slice) and cols == slice(None)):
                col_list = [cols] if is_scalar(cols) else list(cols) if not isinstance(cols, slice) else None
                if col_list is not None:
                    missing = [c for c in col_list if c not in frame._meta.columns]
                    if missing:
                        raise_unknown_columns(missing, frame._meta.columns)
                frame = frame[cols] if col_list is not None else partitionwise(
                    _loc_columns, frame, slice(None), cols, token="loc-columns")
            key = rows
        return _select_rows(frame, key)


def _select_rows(frame: _Frame, key: Any) -> Any:
    if isinstance(key, slice) and key == slice(None):
        return frame
    if isinstance(key, Series):
        if not is_bool_dtype(key._meta.dtype):
            raise TypeError("loc with a lazy Series needs a boolean Series")
        return frame[key]
    if isinstance(key, slice):
        if key.step not in (None, 1):
            raise NotImplementedError("loc slices with a step are not supported")
        return _loc_range(frame, key.start, key.stop)
    if is_list_like(key) and not isinstance(key, (str, tuple)):
        return _loc_list(frame, list(key))
    return _loc_range(frame, key, key)


def _partition_range(divisions: tuple, start: Any, stop: Any) -> tuple[int, int]:
    """First and last partition that may hold labels in ``[start, stop]`` (``None``: open)."""
    n = len(divisions) - 1
    inner = list(divisions[1:-1])
    first = 0 if start is None else int(np.searchsorted(inner, start, side="right"))
    last = n - 1 if stop is None else int(np.searchsorted(inner, stop, side="right"))
    return min(first, n - 1), min(last, n - 1)


def _label_bounds(frame: _Frame, start: Any, stop: Any) -> tuple[Any, Any]:
    """Bounds comparable with the divisions: date strings on a datetime index become the first and
    last instants they name (``'2020-01-03'`` as a stop covers that whole day, as in pandas)."""
    index = frame._meta.index if not isinstance(frame._meta, pd.Index) else frame._meta
    if index.dtype.kind != "M":
        return start, stop
    tz = getattr(index.dtype, "tz", None)

    def convert(value: Any, end: bool) -> Any:
        if not isinstance(value, str):
            return value
        period = pd.Period(value)
        stamp = period.end_time if end else period.start_time
        return stamp.tz_localize(tz) if tz is not None else stamp

    return convert(start, False), convert(stop, True)


def _loc_range(frame: _Frame, start: Any, stop: Any) -> Any:
    name = f"loc-{tokenize(frame, start, stop)}"
    if not frame.known_divisions:
        return partitionwise(_loc_slice, frame, start, stop, token="loc")
    div = frame.divisions
    raw_start, raw_stop = start, stop
    start, stop = _label_bounds(frame, start, stop)
    if (start is not None and start > div[-1]) or (stop is not None and stop < div[0]):
        first = last = 0
    else:
        first, last = _partition_range(div, start, stop)
    layer = {(name, j): (_loc_slice, (frame._name, i), raw_start, raw_stop)
             for j, i in enumerate(range(first, last + 1))}
    lo = div[first] if start is None else max(start, div[first])
    hi = div[last + 1] if stop is None else min(stop, div[last + 1])
    if lo > hi:
        lo = hi
    divisions = (lo,) + tuple(div[first + 1: last + 1]) + (hi,)
    return new_collection(merge_layers(frame, {name: layer}), name, frame._meta, divisions)


def _loc_list(frame: _Frame, labels: list) -> Any:
    if not frame.known_divisions:
        return partitionwise(_loc_labels, frame, labels, token="loc")
    div = frame.divisions
    groups: dict = {}
    for label in labels:
        if label < div[0] or label > div[-1]:
            continue
        i, _ = _partition_range(div, label, label)
        groups.setdefault(i, []).append(label)
    name = f"loc-{tokenize(frame, labels)}"
    parts = sorted(groups) or [0]
    layer = {(name, j): (_loc_labels, (frame._name, i), groups.get(i, [])) for j, i in enumerate(parts)}
    divisions = tuple(div[i] for i in parts) + (div[parts[-1] + 1],)
    return new_collection(merge_layers(frame, {name: layer}), name, frame._meta, divisions)


class ILocIndexer:
    """``ddf.iloc[:, cols]``: columns by position (rows by position would need every partition's length)."""

    def __init__(self, frame: DataFrame):
        self.frame = frame

    def __getitem__(self, key: Any) -> Any:
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], slice) and key[0] == slice(None)):
            raise NotImplementedError("iloc supports column selection only: ddf.iloc[:, cols]; select rows by "
                                      "label with loc or with head()/partitions[...]")
        cols = self.frame._meta.iloc[:, key[1]]
        ncols = self.frame._meta.shape[1]
        positions = np.arange(ncols)[key[1]]
        if isinstance(cols, pd.Series):
            return self.frame[cols.name] if self.frame._meta.columns.is_unique else \
                partitionwise(_iloc_columns, self.frame, int(positions), token="iloc")
        if self.frame._meta.columns.is_unique:
            return self.frame[list(cols.columns)]
        return partitionwise(_iloc_columns, self.frame, list(np.atleast_1d(positions)), token="iloc")


def _iloc_columns(part: pd.DataFrame, positions: Any) -> Any:
    return part.iloc[:, positions]
