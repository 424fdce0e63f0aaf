"""Combining lazy frames: merge/join (index-aligned, broadcast or hash join) and concat."""
from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_scalar

from ..tokenize import tokenize
from .core import DataFrame, Series, _Frame, align_partitions, merge_layers, new_collection
from .shuffle import shuffle
from .utils import concat_parts, meta_nonempty

__all__ = ["merge", "concat"]

_HOWS = ("inner", "left", "right", "outer", "leftsemi", "cross")


def _as_list(x: Any) -> list:
    if x is None:
        return []
    return [x] if is_scalar(x) or isinstance(x, tuple) else list(x)


def _check_keys(frame: Any, keys: list, side: str) -> None:
    cols = frame._meta.columns
    index_names = [n for n in frame._meta.index.names if n is not None]
    missing = [k for k in keys if k not in cols and k not in index_names]
    if missing:
        noun = "key" if len(missing) == 1 else "keys"
        raise KeyError(f"merge {noun} {', '.join(repr(m) for m in missing)} not found in the {side} frame; "
                       f"its columns are {list(cols)}")


def _merge_parts(left: pd.DataFrame, right: pd.DataFrame, kwargs: dict, casts: dict | None = None) -> pd.DataFrame:
    out = pd.merge(left, right, **kwargs)
    if casts:
        todo = {c: d for c, d in casts.items() if out[c].dtype != d}
        if todo:
            out = out.astype(todo)
    return out


def _merge_meta(left: Any, right: Any, kwargs: dict) -> tuple[pd.DataFrame, dict]:
    """The merged meta, with columns that an unmatched row fills with NaN widened as pandas would.

    pandas widens an int column to float only when some row is unmatched, which depends on the
    data; here such columns are always widened (and each partition's result cast), so every
    partition agrees with the meta.
    """
    lf, rf = meta_nonempty(left._meta), meta_nonempty(right._meta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = pd.merge(lf, rf, **kwargs).iloc[:0]
        how = kwargs["how"]
        wider = []
        if how in ("left", "outer"):
            wider.append(pd.merge(lf, rf.iloc[:0], **kwargs))
        if how in ("right", "outer"):
            wider.append(pd.merge(lf.iloc[:0], rf, **kwargs))
    casts = {}
    for other in wider:
        for c in base.columns:
            if c in other.columns and other[c].dtype != base[c].dtype and c not in casts:
                casts[c] = other[c].dtype
    if casts:
        base = base.astype(casts)
    return base, casts


def _concat_all(parts: list) -> Any:
    return concat_parts(list(parts))


def _key_cast(left: Any, right: Any, left_keys: list, right_keys: list) -> tuple[dict | None, dict | None]:
    """Common dtypes for the join keys, so equal keys hash equally on both sides."""
    lcast, rcast = {}, {}
    for lk, rk in zip(left_keys, right_keys):
        ld = left._meta[lk].dtype if lk in left._meta.columns else left._meta.index.dtype
        rd = right._meta[rk].dtype if rk in right._meta.columns else right._meta.index.dtype
        if ld == rd:
            continue
        if isinstance(ld, pd.CategoricalDtype) or isinstance(rd, pd.CategoricalDtype):
            continue  # categoricals hash by value
        try:
            common = np.result_type(np.dtype(ld), np.dtype(rd))
        except TypeError:
            common = np.dtype(object) if ld.kind == "O" or rd.kind == "O" else None
        if common is None:
            continue
        lcast[lk] = common
        rcast[rk] = common
    return lcast or None, rcast or None


def merge(left: Any, right: Any, how: str = "inner", on: Any = None, left_on: Any = None, right_on: Any = None,
          left_index: bool = False, right_index: bool = False, suffixes: tuple = ("_x", "_y"),
          npartitions: int | None = None, shuffle_method: str | None = None, broadcast: bool | None = None,
          indicator: bool = False) -> DataFrame:
    """Join two frames like :func:`pandas.merge`, choosing a strategy:

    * both on the index with known divisions: partitions are aligned and merged pairwise, no shuffle;
    * one side has a single partition (or ``broadcast=True``, or it has at most 1/8 as many
      partitions as the other): that side is concatenated and merged with every partition of
      the other side (``inner``/``left`` broadcast the right side, ``inner``/``right`` the left);
    * otherwise a hash join: both sides are shuffled on the keys into the same number of
      partitions, then merged pairwise.

    Row order and the index of a column merge are not pandas' (each partition's merge gives a
    fresh RangeIndex); compare results after sorting.
    """
    if how not in _HOWS[:4]:
        raise ValueError(f"how must be one of 'inner', 'left', 'right', 'outer', not {how!r}")
    from .io.io import from_pandas

    if isinstance(left, (pd.DataFrame, pd.Series)):
        left = from_pandas(left, npartitions=1)
    if isinstance(right, (pd.DataFrame, pd.Series)):
        right = from_pandas(right, npartitions=1)
    if isinstance(left, Series):
        left = left.to_frame()
    if isinstance(right, Series):
        right = right.to_frame()
    if not isinstance(left, DataFrame) or not isinstance(right, DataFrame):
        raise TypeError("merge takes lazy or pandas DataFrames/Series")
    if on is not None and (left_on is not None or right_on is not None):
        raise ValueError("give on= or left_on=/right_on=, not both")
    if on is None and left_on is None and right_on is None and not left_index and not right_index:
        common = [c for c in left.columns if c in set(right.columns)]
        if not common:
            raise ValueError("no common columns to merge on; give on=, left_on=/right_on= or left_index/right_index")
        on = common
    lkeys = _as_list(on if on is not None else left_on)
    rkeys = _as_list(on if on is not None else right_on)
    _check_keys(left, lkeys, "left")
    _check_keys(right, rkeys, "right")
    if (lkeys or left_index) and (rkeys or right_index):
        nl = len(lkeys) if lkeys else left._meta.index.nlevels
        nr = len(rkeys) if rkeys else right._meta.index.nlevels
        if nl != nr:
            raise ValueError(f"the left side has {nl} join keys and the right side {nr}")
    kwargs = dict(how=how, suffixes=suffixes, indicator=indicator)
    if on is not None:
        kwargs["on"] = on
    else:
        if left_on is not None:
            kwargs["left_on"] = left_on
        if right_on is not None:
            kwargs["right_on"] = right_on
    if left_index:
        kwargs["left_index"] = True
    if right_index:
        kwargs["right_index"] = True
    meta, casts = _merge_meta(left, right, kwargs)
    name = f"merge-{tokenize(left, right, kwargs, npartitions, shuffle_method, broadcast)}"

    # 1. index-aligned merge
    if left_index and right_index and left.known_divisions and right.known_divisions:
        la, ra = align_partitions(left, right)
        layer = {(name, i): (_merge_parts, (la._name, i), (ra._name, i), kwargs, casts)
                 for i in range(la.npartitions)}
        return new_collection(merge_layers(la, ra, {name: layer}), name, meta, la.divisions)

    # 2. broadcast join
    small_right = how in ("inner", "left") and _is_small(right, left, broadcast)
    small_left = how in ("inner", "right") and _is_small(left, right, broadcast)
    if small_right or small_left:
        big, small = (left, right) if small_right else (right, left)
        layer = {(f"{name}-broadcast", 0): (_concat_all, [(small._name, i) for i in range(small.npartitions)])}
        for i in range(big.npartitions):
            pair = ((big._name, i), (f"{name}-broadcast", 0)) if small_right else \
                ((f"{name}-broadcast", 0), (big._name, i))
            layer[(name, i)] = (_merge_parts, pair[0], pair[1], kwargs, casts)
        keep = big.divisions if (small_right and left_index and not right_index) or \
            (small_left and right_index and not left_index) else (None,) * (big.npartitions + 1)
        return new_collection(merge_layers(left, right, {name: layer}), name, meta, keep)

    # 3. hash join
    n = npartitions or max(left.npartitions, right.npartitions)
    lcast, rcast = _key_cast(left, right, lkeys or [], rkeys or [])
    lon = [] if left_index else lkeys
    ron = [] if right_index else rkeys
    ls = shuffle(left, lon, npartitions=n, method=shuffle_method, cast=lcast) if lon else \
        _shuffle_index(left, n, shuffle_method)
    rs = shuffle(right, ron, npartitions=n, method=shuffle_method, cast=rcast) if ron else \
        _shuffle_index(right, n, shuffle_method)
    layer = {(name, i): (_merge_parts, (ls._name, i), (rs._name, i), kwargs, casts) for i in range(n)}
    return new_collection(merge_layers(ls, rs, {name: layer}), name, meta, (None,) * (n + 1))


def _shuffle_index(frame: DataFrame, n: int, method: str | None) -> DataFrame:
    return shuffle(frame, None, npartitions=n, method=method)


def _is_small(small: DataFrame, big: DataFrame, broadcast: bool | None) -> bool:
    if broadcast is False:
        return False
    if broadcast is True:
        return small.npartitions <= big.npartitions
    return small.npartitions == 1 or small.npartitions * 8 <= big.npartitions


# ---------------------------------------------------------------- concat

def _conform(part: Any, meta: Any) -> Any:
    if isinstance(meta, pd.DataFrame):
        if list(part.columns) != list(meta.columns):
            part = part.reindex(columns=meta.columns)
        mismatched = {c: meta[c].dtype for c in meta.columns if part[c].dtype != meta[c].dtype}
        if mismatched:
            part = part.astype(mismatched)
    elif isinstance(meta, pd.Series) and part.dtype != meta.dtype:
        part = part.astype(meta.dtype)
    return part


def _union_categoricals_meta(meta: Any, dfs: list) -> Any:
    """Columns categorical in every input get the union of their categories (not object)."""
    if isinstance(meta, pd.Series):
        dtypes = [d._meta.dtype for d in dfs]
        if all(isinstance(d, pd.CategoricalDtype) for d in dtypes):
            cats = pd.api.types.union_categoricals([pd.Categorical([], dtype=d) for d in dtypes]).categories
            return meta.astype(pd.CategoricalDtype(cats))
        return meta
    changes = {}
    for c in meta.columns:
        dtypes = [d._meta[c].dtype if c in d._meta.columns else None for d in dfs]
        if all(isinstance(d, pd.CategoricalDtype) for d in dtypes):
            cats = pd.api.types.union_categoricals([pd.Categorical([], dtype=d) for d in dtypes]).categories
            changes[c] = pd.CategoricalDtype(cats)
    return meta.astype(changes) if changes else meta


def _concat_axis1(*parts: Any, join: str = "outer") -> pd.DataFrame:
    return pd.concat(list(parts), axis=1, join=join)


def concat(dfs: Sequence[Any], axis: Any = 0, join: str = "outer", ignore_index: bool = False,
           interleave_partitions: bool = False) -> Any:
    """Concatenate lazy frames: stack their partitions (``axis=0``) or put columns side by side (``axis=1``).

    Stacking keeps every input's partitions and gives known divisions when all inputs have known,
    non-overlapping ascending divisions. Columns missing from some inputs are filled with NaN
    (``join='outer'``) or dropped (``join='inner'``).
    """
    from .io.io import from_pandas

    dfs = [from_pandas(d, npartitions=1) if isinstance(d, (pd.DataFrame, pd.Series)) else d for d in dfs]
    if not dfs:
        raise ValueError("concat needs at least one frame")
    if any(not isinstance(d, _Frame) for d in dfs):
        raise TypeError("concat takes lazy or pandas DataFrames and Series")
    if len(dfs) == 1:
        return dfs[0]
    if join not in ("inner", "outer"):
        raise ValueError(f"join must be 'inner' or 'outer', not {join!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if axis in (1, "columns"):
            meta = pd.concat([meta_nonempty(d._meta) for d in dfs], axis=1, join=join).iloc[:0]
        else:
            meta = pd.concat([meta_nonempty(d._meta) for d in dfs], join=join, ignore_index=ignore_index).iloc[:0]
    if axis not in (1, "columns"):
        meta = _union_categoricals_meta(meta, dfs)
    name = f"concat-{tokenize(dfs, axis, join, ignore_index)}"
    if axis in (1, "columns"):
        aligned = align_partitions(*dfs)
        call = functools.partial(_concat_axis1, join=join)
        layer = {(name, i): (call, *[(d._name, i) for d in aligned]) for i in range(aligned[0].npartitions)}
        return new_collection(merge_layers(*aligned, {name: layer}), name, meta, aligned[0].divisions)
    layer = {}
    j = 0
    for d in dfs:
        for i in range(d.npartitions):
            layer[(name, j)] = (_conform, (d._name, i), meta)
            j += 1
    divisions: tuple = (None,) * (j + 1)
    if not ignore_index and all(d.known_divisions for d in dfs) and all(
            a.divisions[-1] < b.divisions[0] for a, b in zip(dfs[:-1], dfs[1:])):
        divs: list = []
        for d in dfs:
            divs.extend(d.divisions[:-1])
        divisions = tuple(divs) + (dfs[-1].divisions[-1],)
    out = new_collection(merge_layers(*dfs, {name: layer}), name, meta, divisions)
    if ignore_index:
        out = out.reset_index(drop=True)
    return out
