"""Bag -> lazyarr DataFrame (pandas is imported only when this is used)."""
from __future__ import annotations

from typing import Any

from .core import Bag

__all__ = ["to_dataframe"]


def to_dataframe(bag: Bag, meta: Any = None, columns: Any = None) -> Any:
    """A lazyarr DataFrame (or Series) with one partition per bag partition.

    Elements are dicts (keys become columns), tuples/lists (named by ``columns`` or ``meta``),
    or scalars (a Series, when ``meta`` is a Series or a ``(name, dtype)`` pair). ``meta`` is
    anything :func:`lazyarr.dataframe.make_meta` accepts: an empty pandas object, a dict or list
    of ``(column, dtype)``, ...; partitions are cast to its dtypes. Without ``meta`` the first
    partition is computed to infer it. Each partition's index counts from 0, as in Dask.
    """
    from .. import dataframe as dd
    from ..delayed import delayed

    if meta is None:
        first = bag.to_delayed()[0].compute()
        if not first:
            raise ValueError("to_dataframe: the first partition is empty, so give meta= to describe the columns")
        sample = frame_of_partition(first, None, columns)
        meta = dd.make_meta(sample)
    else:
        meta = dd.make_meta(meta)
        if columns is not None and hasattr(meta, "columns") and list(columns) != list(meta.columns):
            raise ValueError(f"to_dataframe: columns {list(columns)} differ from meta's {list(meta.columns)}")
    make = delayed(frame_of_partition, pure=True)
    parts = [make(part, meta, columns) for part in bag.to_delayed()]
    return dd.from_delayed(parts, meta=meta)


def frame_of_partition(part: list, meta: Any, columns: Any) -> Any:
    """One bag partition as a pandas DataFrame (or Series), cast to ``meta``'s dtypes if given."""
    import pandas as pd

    if meta is not None and isinstance(meta, pd.Series):
        return pd.Series(list(part), dtype=meta.dtype, name=meta.name)
    if meta is not None:
        columns = list(meta.columns)
    part = list(part)
    if part and isinstance(part[0], dict):
        frame = pd.DataFrame.from_records(part, columns=columns)
    else:
        frame = pd.DataFrame(part, columns=columns)
    if meta is not None:
        frame = frame.astype(meta.dtypes.to_dict())
    return frame
