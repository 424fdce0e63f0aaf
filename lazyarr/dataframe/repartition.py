"""Changing how a lazy frame is split into partitions, without a shuffle (rows keep their order)."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..tokenize import tokenize
from ..utils import parse_bytes
from .core import _Frame, merge_layers, new_collection
from .utils import concat_parts

__all__ = ["repartition", "repartition_divisions", "repartition_npartitions"]


def repartition(frame: _Frame, divisions: Sequence | None = None, npartitions: int | None = None,
                partition_size: int | str | None = None) -> Any:
    """``frame`` split at new ``divisions``, into ``npartitions``, or into pieces of ``partition_size`` bytes.

    * ``divisions``: needs known divisions; each new partition gathers the rows of the old
      partitions that overlap it (sliced by index), so the data are not shuffled.
    * ``npartitions``: fewer partitions concatenate neighbours (divisions kept where known);
      more partitions split each one by index range (numeric/datetime index with known divisions)
      or by rows (divisions become unknown).
    * ``partition_size`` (e.g. ``'100MB'``): measures the partitions now (deep memory usage) and
      picks ``npartitions`` so that partitions are about that size.
    """
    given = sum(x is not None for x in (divisions, npartitions, partition_size))
    if given != 1:
        raise ValueError("give exactly one of divisions=, npartitions= and partition_size=")
    if divisions is not None:
        return repartition_divisions(frame, tuple(divisions))
    if partition_size is not None:
        size = parse_bytes(partition_size)
        if size <= 0:
            raise ValueError(f"partition_size must be positive, got {partition_size!r}")
        usage = frame.memory_usage_per_partition(deep=True).compute()
        npartitions = max(1, math.ceil(int(usage.sum()) / size))
    return repartition_npartitions(frame, int(npartitions))


def _slice_range(part: Any, lo: Any, hi: Any, right_closed: bool) -> Any:
    index = part.index if not isinstance(part, pd.Index) else part
    start = index.searchsorted(lo, side="left")
    stop = index.searchsorted(hi, side="right" if right_closed else "left")
    return part[start:stop] if isinstance(part, pd.Index) else part.iloc[start:stop]


def _concat(parts: list) -> Any:
    return concat_parts(parts)


def repartition_divisions(frame: _Frame, divisions: tuple) -> Any:
    """``frame`` (with known divisions) re-split at ``divisions`` by slicing its sorted index."""
    if not frame.known_divisions:
        raise ValueError("repartition(divisions=...) needs known divisions; use set_index() first")
    if len(divisions) < 2 or any(a >= b for a, b in zip(divisions[:-2], divisions[1:-1])) or divisions[-2] > divisions[-1]:
        raise ValueError(f"divisions must be sorted and unique, got {divisions}")
    old = frame.divisions
    if divisions[0] > old[0] or divisions[-1] < old[-1]:
        raise ValueError(
            f"new divisions [{divisions[0]}, {divisions[-1]}] must cover the current range [{old[0]}, {old[-1]}] "
            f"or rows would be lost"
        )
    name = f"repartition-{tokenize(frame, divisions)}"
    layer: dict = {}
    n_old, n_new = len(old) - 1, len(divisions) - 1
    for j in range(n_new):
        lo, hi = divisions[j], divisions[j + 1]
        last = j == n_new - 1
        pieces = []
        for i in range(n_old):
            o_lo, o_hi = old[i], old[i + 1]
            o_last = i == n_old - 1
            # old partition i holds [o_lo, o_hi) (or [o_lo, o_hi] if last); new j wants [lo, hi) or [lo, hi]
            if o_lo > hi or (o_lo == hi and not last):
                continue
            if o_hi < lo or (o_hi == lo and not o_last):
                continue
            key = (f"{name}-slice", i, j)
            layer[key] = (_slice_range, (frame._name, i), lo, hi, last)
            pieces.append(key)
        if not pieces:
            layer[(name, j)] = (_slice_range, (frame._name, 0), lo, lo, False)
        elif len(pieces) == 1:
            layer[(name, j)] = pieces[0]
        else:
            layer[(name, j)] = (_concat, pieces)
    return new_collection(merge_layers(frame, {name: layer}), name, frame._meta, divisions)


def _split_rows(part: Any, k: int) -> list:
    n = len(part)
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return [part.iloc[a:b] if not isinstance(part, pd.Index) else part[a:b] for a, b in zip(edges[:-1], edges[1:])]


def _pick(seq: list, j: int) -> Any:
    return seq[j]


def repartition_npartitions(frame: _Frame, npartitions: int) -> Any:
    """``frame`` with ``npartitions`` partitions, joining neighbours or splitting partitions."""
    if npartitions < 1:
        raise ValueError(f"npartitions must be at least 1, got {npartitions}")
    n = frame.npartitions
    if npartitions == n:
        return frame
    name = f"repartition-{npartitions}-{tokenize(frame, npartitions)}"
    if npartitions < n:
        edges = sorted(set(np.linspace(0, n, npartitions + 1).round().astype(int).tolist()))
        layer = {(name, j): (_concat, [(frame._name, i) for i in range(a, b)])
                 for j, (a, b) in enumerate(zip(edges[:-1], edges[1:]))}
        divisions = tuple(frame.divisions[e] for e in edges)
        return new_collection(merge_layers(frame, {name: layer}), name, frame._meta, divisions, origin=name)
    index_dtype = frame._meta.index.dtype if not isinstance(frame._meta, pd.Index) else frame._meta.dtype
    if frame.known_divisions and (pd.api.types.is_numeric_dtype(index_dtype) or index_dtype.kind == "M") \
            and not pd.api.types.is_bool_dtype(index_dtype):
        divisions = _interpolate_divisions(frame.divisions, npartitions, index_dtype)
        if len(divisions) - 1 >= npartitions or len(divisions) > len(frame.divisions):
            return repartition_divisions(frame, divisions)
    per = [npartitions // n + (1 if i < npartitions % n else 0) for i in range(n)]
    layer = {}
    j = 0
    for i, k in enumerate(per):
        layer[(f"{name}-split", i)] = (_split_rows, (frame._name, i), k)
        for piece in range(k):
            layer[(name, j)] = (_pick, (f"{name}-split", i), piece)
            j += 1
    return new_collection(merge_layers(frame, {name: layer}), name, frame._meta, (None,) * (npartitions + 1),
                          origin=name)


def _interpolate_divisions(divisions: tuple, npartitions: int, dtype: Any) -> tuple:
    n = len(divisions) - 1
    per = [npartitions // n + (1 if i < npartitions % n else 0) for i in range(n)]
    out: list = []
    is_dt = dtype.kind == "M"
    for i, k in enumerate(per):
        lo, hi = divisions[i], divisions[i + 1]
        if is_dt:
            lo_v, hi_v = pd.Timestamp(lo).value, pd.Timestamp(hi).value
            pts = np.linspace(lo_v, hi_v, k + 1)[:-1]
            vals = [pd.Timestamp(int(p), tz=getattr(lo, "tz", None)) for p in pts]
        else:
            pts = np.linspace(lo, hi, k + 1)[:-1]
            vals = [p.item() for p in (np.floor(pts) if dtype.kind in "iu" else pts)]
        for v in vals:
            if not out or v > out[-1]:
                out.append(v)
    if divisions[-1] > out[-1]:
        out.append(divisions[-1])
    elif len(out) == 1:
        out.append(divisions[-1])
    return tuple(out)
