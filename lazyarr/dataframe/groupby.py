"""groupby on lazy frames: tree-reduced aggregations, and apply/transform through a shuffle.

Aggregations run in three steps, like every reduction here:

* **chunk**: each partition is grouped (``sort=False``) into *partial statistics* per group:
  sum, count, size, min, max, first, last, prod, and (count, mean, M2) for var/std. When the
  key is a single integer column with a compact range and the values are float64, sums and
  counts come from ``numpy.bincount`` instead of a hash table (several times faster);
* **combine**: partials of up to ``split_every`` partitions are concatenated and re-grouped by
  key (sums of sums, min of mins, Chan's formula for M2, ...);
* **aggregate**: the last combine, then the requested results (mean = sum / count, var = M2 /
  (count - ddof), ...), sorted by key when ``sort=True``.

``nunique`` keeps the distinct (key, value) pairs instead. With ``split_out=n`` the partials are
hash-split by key into ``n`` independent reductions, giving an ``n``-partition result (each sorted,
not globally) for results with very many groups.

Keys are columns, the index (``level=0``, the index's name, ``ddf.index``; the chunks read each
partition's index) or lazy Series aligned with the frame. With ``as_index=False`` the last step
moves the keys into columns as pandas does.

``apply`` and ``transform`` shuffle the rows so that each group is whole in one partition, then
run pandas' ``apply``/``transform`` there (index and Series keys travel as temporary columns).
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_list_like, is_scalar

from .core import DataFrame, Index, Series, _Frame, align_partitions, emulate, no_default, partitionwise
from .reductions import tree_reduce
from .utils import concat_parts, meta_nonempty, raise_unknown_columns

__all__ = ["DataFrameGroupBy", "SeriesGroupBy", "SUPPORTED_AGGREGATIONS"]

SUPPORTED_AGGREGATIONS = ("sum", "mean", "count", "min", "max", "std", "var", "size", "first", "last", "nunique",
                          "prod")

_FUNC_ALIASES = {np.sum: "sum", np.mean: "mean", np.min: "min", np.max: "max", np.std: "std", np.var: "var",
                 np.prod: "prod", sum: "sum", min: "min", max: "max", len: "size", np.nansum: "sum",
                 np.nanmean: "mean", np.nanmin: "min", np.nanmax: "max"}

# a Series grouped without a name is held as a column of this name
_UNNAMED = "__series__"

_STATS_FOR = {"sum": ["sum"], "count": ["count"], "mean": ["sum", "count"], "size": ["size"], "min": ["min"],
              "max": ["max"], "first": ["first"], "last": ["last"], "prod": ["prod"],
              "var": ["count", "vmean", "m2"], "std": ["count", "vmean", "m2"],
              # nunique counts distinct (key, value) pairs; the sizes give its groups as the other results have them
              # (categories unobserved with observed=False, missing keys with dropna=False, order of appearance)
              "nunique": ["size"]}


def _func_name(func: Any) -> str:
    if isinstance(func, str):
        name = func
    else:
        name = _FUNC_ALIASES.get(func) or getattr(func, "__name__", None)
    if name not in SUPPORTED_AGGREGATIONS:
        raise NotImplementedError(
            f"groupby aggregation {func!r} is not supported lazily; use one of {', '.join(SUPPORTED_AGGREGATIONS)}, "
            f"or groupby(...).apply(func) which shuffles whole groups together"
        )
    return name


# ---------------------------------------------------------------- per-partition statistics

def _keys_of(part: pd.DataFrame, by: list, extra: tuple) -> list:
    """The grouping keys for one partition: columns, the index, and aligned Series passed as ``extra``."""
    out = []
    it = iter(extra)
    for b in by:
        if b is _SERIES:
            out.append(next(it))
        elif b is _INDEX:
            out.append(part.index)
        else:
            out.append(part[b])
    return out


class _KeyMarker:
    """Stands in ``_GroupBy._by`` for a key that is not a column: a lazy Series (its partitions are
    passed alongside the frame's) or the frame's own index (read from each partition)."""

    def __init__(self, kind: str):
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind} key>"

    def __lazyarr_tokenize__(self) -> str:
        return f"{self.kind}-key"

    def __reduce__(self) -> Any:
        # unpickle to the module's singleton: keys are compared with ``is``
        return (_key_marker, (self.kind,))


def _key_marker(kind: str) -> "_KeyMarker":
    return _MARKERS[kind]


_SERIES = _KeyMarker("lazy Series")
_INDEX = _KeyMarker("index")
_MARKERS = {m.kind: m for m in (_SERIES, _INDEX)}


def _bincount_chunk(part: pd.DataFrame, key: pd.Series | pd.Index, stat_cols: list, names: list,
                    sort: bool = True) -> pd.DataFrame | None:
    """Sums/counts/sizes via numpy.bincount for a compact integer key, or None if that does not apply.

    The work is bound by memory bandwidth, so passes over the data are few: one ``max`` of the
    key (``bincount`` finds negative keys itself), one ``bincount`` per sum, and missing values
    are looked for only in columns whose group sums came out NaN. The partial is one float64 block
    (counts are exact in float64 up to 2**53); the final step casts counts back to int64. Groups
    come in key order, or with ``sort=False`` in order of first appearance (one more hash pass).
    """
    kv = key.to_numpy()
    n = len(kv)
    if n == 0:
        return None
    kmax = int(kv.max())
    kmin = 0
    if kmax > max(4 * n, 1 << 16):
        return None
    codes = kv if kv.dtype == np.intp else kv.astype(np.intp)
    try:
        sizes = np.bincount(codes, minlength=kmax + 1)
    except ValueError:  # negative keys: shift them
        kmin = int(kv.min())
        if kmax - kmin > max(4 * n, 1 << 16):
            return None
        codes = codes - kmin
        sizes = np.bincount(codes, minlength=kmax - kmin + 1)
    span = len(sizes)
    # sort=False promises pandas' order of first appearance, which the combine steps keep
    present = np.flatnonzero(sizes) if sort else pd.unique(codes)
    block = np.empty((len(present), len(stat_cols)), dtype=np.float64)
    exact_ints: dict = {}
    sums: dict = {}
    for pos, (col, stat) in enumerate(stat_cols):
        if stat == "size":
            block[:, pos] = sizes[present]
            continue
        v = part[col].to_numpy()
        if v.dtype.kind in "iu":
            if stat == "count":
                block[:, pos] = sizes[present]
                continue
            # float64 sums of integers are exact below 2**53; bound every partial sum by n * max|v|
            if n * max(abs(int(v.min())), abs(int(v.max()))) >= 2**53:
                return None
            exact_ints[pos] = np.bincount(codes, weights=v, minlength=span)[present].astype(np.int64)
            continue
        if col not in sums:
            total = np.bincount(codes, weights=v, minlength=span)[present]
            counts = None
            if np.isnan(total).any():  # some group has a missing value: skip those, count the rest
                isnan = np.isnan(v)
                total = np.bincount(codes, weights=np.where(isnan, 0.0, v), minlength=span)[present]
                counts = np.bincount(codes, weights=~isnan, minlength=span)[present]
            sums[col] = (total, counts)
        total, counts = sums[col]
        if stat == "sum":
            block[:, pos] = total
        else:  # count
            block[:, pos] = sizes[present] if counts is None else counts
    labels = present + kmin if kmin else present
    index = pd.Index(labels.astype(key.dtype, copy=False), name=names[0], copy=False)
    if exact_ints:
        data = {pos: exact_ints[pos] if pos in exact_ints else block[:, pos] for pos in range(len(stat_cols))}
        return pd.DataFrame(data, index=index)
    return pd.DataFrame(block, index=index, copy=False)


def _fast_path_ok(part: pd.DataFrame, keys: list, stat_cols: list) -> bool:
    if len(keys) != 1:
        return False
    k = keys[0]
    if not (isinstance(k.dtype, np.dtype) and k.dtype.kind in "iu"):
        return False
    for col, stat in stat_cols:
        if stat not in ("sum", "count", "size"):
            return False
        if stat != "size" and not (part[col].dtype == np.float64 or part[col].dtype in (np.int64, np.int32)):
            return False
    return True


def _groupby_chunk(part: pd.DataFrame, *extra: Any, by: list, names: list, stat_cols: list, nunique_cols: list,
                   dropna: bool, observed: bool, sort: bool = True) -> dict:
    keys = _keys_of(part, by, extra)
    stats = None
    if stat_cols and _fast_path_ok(part, keys, stat_cols):
        stats = _bincount_chunk(part, keys[0], stat_cols, names, sort)
    if stats is None and stat_cols:
        stats = _pandas_stats(part, keys, names, stat_cols, dropna, observed)
    uniq = {}
    for col in nunique_cols:
        # .array keeps the keys' dtypes (categories), so they match the stats' index when reindexed
        pairs = pd.DataFrame({f"__k{i}": k.array for i, k in enumerate(keys)})
        pairs["__v"] = part[col].array
        uniq[col] = pairs.drop_duplicates()
    return {"stats": stats, "uniq": uniq}


def _pandas_stats(part: pd.DataFrame, keys: list, names: list, stat_cols: list, dropna: bool,
                  observed: bool) -> pd.DataFrame:
    keys = [k.rename(n) for k, n in zip(keys, names)]
    g = part.groupby(keys, sort=False, dropna=dropna, observed=observed)
    data: dict = {}
    for pos, (col, stat) in enumerate(stat_cols):
        if stat == "size":
            data[pos] = g.size()
        elif stat == "vmean":
            data[pos] = g[col].mean()
        elif stat == "m2":
            data[pos] = g[col].var(ddof=0) * g[col].count()
        elif stat in ("sum", "prod"):
            data[pos] = getattr(g[col], stat)(min_count=0) if stat == "sum" else g[col].prod()
        else:
            data[pos] = getattr(g[col], stat)()
    out = pd.DataFrame(data)
    if out.index.nlevels == 1:
        out.index.name = names[0]
    else:
        out.index.names = names
    return out


def _combine_stats(frame: pd.DataFrame, stat_cols: list, dropna: bool) -> pd.DataFrame:
    levels = list(range(frame.index.nlevels))
    g = frame.groupby(level=levels, sort=False, dropna=dropna, observed=True)
    data: dict = {}
    done_var: dict = {}
    for pos, (col, stat) in enumerate(stat_cols):
        if stat in ("sum", "count", "size"):
            data[pos] = g[pos].sum()
        elif stat in ("min", "max", "first", "last", "prod"):
            data[pos] = getattr(g[pos], stat)()
        elif stat in ("vmean", "m2"):
            if col not in done_var:
                done_var[col] = _combine_moments(frame, g, stat_cols, col)
            mean, m2 = done_var[col]
            data[pos] = mean if stat == "vmean" else m2
    out = pd.DataFrame(data)
    out.index.names = frame.index.names
    return out


def _combine_moments(frame: pd.DataFrame, g: Any, stat_cols: list, col: Any) -> tuple:
    """Chan et al.: merge (n, mean, M2) of the parts of each group."""
    cpos = stat_cols.index((col, "count"))
    mpos = stat_cols.index((col, "vmean"))
    m2pos = stat_cols.index((col, "m2"))
    n = frame[cpos].astype("float64")
    mean_i = frame[mpos].where(n > 0, 0.0)
    total_n = n.groupby(level=list(range(frame.index.nlevels)), sort=False, dropna=False).sum()
    weighted = (n * mean_i).groupby(level=list(range(frame.index.nlevels)), sort=False, dropna=False).sum()
    with np.errstate(all="ignore"):
        mean = weighted / total_n.where(total_n > 0)
    mean_b = mean.reindex(frame.index).to_numpy()
    spread = (n * (mean_i.to_numpy() - mean_b) ** 2).where(n > 0, 0.0)
    m2 = (frame[m2pos].where(n > 0, 0.0) + spread).groupby(level=list(range(frame.index.nlevels)), sort=False,
                                                           dropna=False).sum()
    return mean.reindex(total_n.index), m2.reindex(total_n.index)


def _groupby_combine(parts: list, stat_cols: list, dropna: bool) -> dict:
    stats = [p["stats"] for p in parts if p["stats"] is not None]
    out_stats = None
    if stats:
        out_stats = _combine_stats(concat_parts(stats), stat_cols, dropna) if len(stats) > 1 else \
            _combine_stats(stats[0], stat_cols, dropna)
    uniq = {}
    for col in (parts[0]["uniq"] if parts else {}):
        uniq[col] = concat_parts([p["uniq"][col] for p in parts]).drop_duplicates()
    return {"stats": out_stats, "uniq": uniq}


def _groupby_aggregate(parts: list, stat_cols: list, outputs: list, names: list, dropna: bool, sort: bool,
                       meta: Any, nkeys: int, flat: tuple | None = None) -> Any:
    """The results from the merged partials, sorted by key if asked; ``flat`` is ``(inserted keys, meta)``
    of the ``as_index=False`` layout, if asked for."""
    merged = _groupby_combine(parts, stat_cols, dropna)
    stats = merged["stats"]
    columns: dict = {}
    index = stats.index
    for j, (col, func, ddof) in enumerate(outputs):
        if func == "nunique":
            pairs = merged["uniq"][col]
            kcols = [f"__k{i}" for i in range(nkeys)]
            counts = pairs.groupby(kcols if nkeys > 1 else kcols[0], sort=False, dropna=dropna)["__v"].nunique()
            counts.index.names = names
            columns[j] = counts.reindex(index, fill_value=0).astype("int64")
            continue
        if func in ("sum", "count", "size", "min", "max", "first", "last", "prod"):
            columns[j] = stats[stat_cols.index((col, func))]
        elif func == "mean":
            s, c = stats[stat_cols.index((col, "sum"))], stats[stat_cols.index((col, "count"))]
            with np.errstate(all="ignore"):
                columns[j] = s / c.where(c > 0)
        elif func in ("var", "std"):
            n = stats[stat_cols.index((col, "count"))].astype("float64")
            m2 = stats[stat_cols.index((col, "m2"))]
            with np.errstate(all="ignore"):
                var = m2 / (n - ddof).where(n - ddof > 0)
            columns[j] = np.sqrt(var) if func == "std" else var
    out = pd.DataFrame(columns, index=index)
    if sort:
        out = _sorted_by_key(out)
    if isinstance(meta, pd.Series):
        out = out[0]
        out.name = meta.name
    else:
        out.columns = meta.columns
    out = _cast_like(out, meta)
    return out if flat is None else _keys_to_columns(out, *flat)


def _sorted_by_key(out: pd.DataFrame) -> pd.DataFrame:
    """``out`` in pandas' sorted group order (categories in category order, missing keys last)."""
    if not isinstance(out.index, pd.MultiIndex):
        return out.sort_index()
    # not sort_index: it leaves alone a MultiIndex whose categorical levels look sorted by their labels
    keys = out.index.to_frame(index=False)
    keys.columns = range(keys.shape[1])
    return out.iloc[keys.sort_values(list(keys.columns)).index.to_numpy()]


def _inserted_keys(names: list, flat_meta: pd.DataFrame, nvalues: int) -> list:
    """The positions of the keys that pandas' ``as_index=False`` turns into leading columns.

    As in pandas, every key is inserted (last first) unless its name is already a column;
    unnamed keys are called ``index`` (one key) or ``level_<i>``, as by ``reset_index``.
    """
    value_columns = flat_meta.columns[len(flat_meta.columns) - nvalues:]
    taken: set = set()
    inserted = []
    for i in reversed(range(len(names))):
        name = names[i] if names[i] is not None else ("index" if len(names) == 1 else f"level_{i}")
        if name not in value_columns and name not in taken:
            inserted.insert(0, i)
            taken.add(name)
    if len(inserted) + nvalues != len(flat_meta.columns):
        raise NotImplementedError(f"cannot line up the keys {names!r} with pandas' as_index=False columns "
                                  f"{list(flat_meta.columns)!r}; use as_index=True and reset_index()")
    return inserted


def _keys_to_columns(result: Any, inserted: list, meta: pd.DataFrame) -> pd.DataFrame:
    """An ``as_index=True`` result in pandas' ``as_index=False`` layout: the ``inserted`` key levels as
    leading columns, then the values, on a fresh RangeIndex."""
    out = (result.to_frame() if isinstance(result, pd.Series) else result).reset_index(drop=True)
    out.columns = range(len(inserted), len(inserted) + out.shape[1])  # positional labels: names may repeat
    for j, level in enumerate(inserted):
        out.insert(j, j, result.index.get_level_values(level).array)
    out.columns = meta.columns
    return _cast_like(out, meta)


def _cast_like(out: Any, meta: Any) -> Any:
    """Give the result the dtypes pandas would (meta), where that changes no value."""
    if isinstance(meta, pd.Series):
        if out.dtype != meta.dtype:
            try:
                if not (out.isna().any() and meta.dtype.kind in "iub"):
                    out = out.astype(meta.dtype)
            except (TypeError, ValueError):
                pass
        if isinstance(meta.index, pd.MultiIndex) is False and out.index.dtype != meta.index.dtype:
            try:
                out.index = out.index.astype(meta.index.dtype)
            except (TypeError, ValueError):
                pass
        return out
    changes = {}
    for i, c in enumerate(meta.columns):
        want, got = meta.dtypes.iloc[i], out.dtypes.iloc[i]
        if want != got and not (out.iloc[:, i].isna().any() and want.kind in "iub"):
            changes[c] = want
    if changes:
        try:
            out = out.astype(changes)
        except (TypeError, ValueError):
            pass
    if not isinstance(meta.index, pd.MultiIndex) and out.index.dtype != meta.index.dtype:
        try:
            out.index = out.index.astype(meta.index.dtype)
        except (TypeError, ValueError):
            pass
    return out


def _split_partial(partial: dict, n: int, nkeys: int) -> list:
    from .shuffle import hash_index_partitions

    pieces = [{"stats": None, "uniq": {}} for _ in range(n)]
    stats = partial["stats"]
    if stats is not None:
        where = hash_index_partitions(stats.index, n)
        for j in range(n):
            pieces[j]["stats"] = stats.iloc[np.flatnonzero(where == j)]
    for col, pairs in partial["uniq"].items():
        kcols = [f"__k{i}" for i in range(nkeys)]
        idx = pd.MultiIndex.from_frame(pairs[kcols]) if nkeys > 1 else pd.Index(pairs[kcols[0]])
        where = hash_index_partitions(idx, n)
        for j in range(n):
            pieces[j]["uniq"][col] = pairs.iloc[np.flatnonzero(where == j)]
    return pieces


# ---------------------------------------------------------------- the GroupBy objects

def _single_level(index: pd.Index, what: str) -> None:
    if isinstance(index, pd.MultiIndex):
        raise NotImplementedError(f"grouping by {what} of a MultiIndex is not supported; reset_index() the levels "
                                  f"and group by the columns")


def _level_keys(index: pd.Index, level: Any) -> list:
    """``groupby(level=...)`` on a single-level index: one index key, with pandas' errors for bad levels."""
    _single_level(index, "a level")
    levels = list(level) if is_list_like(level) and not isinstance(level, str) else [level]
    if len(levels) != 1:
        raise ValueError("multiple levels only valid with MultiIndex")
    lvl = levels[0]
    if isinstance(lvl, (int, np.integer)) and not isinstance(lvl, bool):
        if lvl > 0 or lvl < -1:
            raise ValueError("level > 0 or level < -1 only valid with MultiIndex")
    elif lvl != index.name:
        raise ValueError(f"level name {lvl} is not the name of the index")
    return [_INDEX]


def _resolve_key(obj: _Frame, b: Any) -> tuple[Any, Any, Any]:
    """``(entry of _GroupBy._by, lazy Series to pass alongside or None, name)`` for one key of ``obj``."""
    index = obj._meta.index
    if b is _INDEX:
        return _INDEX, None, index.name
    if isinstance(b, Series):
        return _SERIES, b, b._meta.name
    if isinstance(b, Index):
        if b._name == obj.index._name:  # names are tokens: the same graph is the frame's own index
            _single_level(index, "the index")
            return _INDEX, None, index.name
        # pandas lines up an Index key with the rows by position, a Series by label
        return _SERIES, partitionwise(_index_values_by_position, obj, b, token="groupby-key"), b._meta.name
    if isinstance(b, _Frame) or isinstance(b, (pd.Series, pd.DataFrame, pd.Index, np.ndarray)):
        raise TypeError("groupby keys are column names, the index (its name, level=, or the frame's .index) or "
                        "lazy Series/Index aligned with the frame")
    return _label_key(obj._meta, b)


def _label_key(meta: Any, b: Any) -> tuple[Any, Any, Any]:
    """A key given by name: a column, else the index's name, as pandas resolves it."""
    columns = meta.columns if isinstance(meta, pd.DataFrame) else pd.Index([])
    try:
        is_column = b in columns
        is_level = b is not None and b in meta.index.names
    except TypeError:  # unhashable
        raise TypeError(f"groupby key {b!r} is not a column name") from None
    if is_column and is_level:
        raise ValueError(f"{b!r} is both an index level and a column label, which is ambiguous.")
    if is_column:
        return b, None, b
    if is_level:
        _single_level(meta.index, f"the level {b!r}")
        return _INDEX, None, b
    if isinstance(meta, pd.DataFrame):
        raise_unknown_columns([b], columns)
    raise KeyError(f"a Series can only be grouped by lazy Series or its index, not {b!r}")


def _index_values_by_position(part: pd.DataFrame, index: pd.Index) -> pd.Series:
    """An Index key as a Series on the partition's index, so that pandas lines it up by position."""
    return pd.Series(index.array, index=part.index, name=index.name)


def _with_index_columns(part: pd.DataFrame, columns: list) -> pd.DataFrame:
    """The partition with its index values also in ``columns`` (temporary key columns)."""
    out = part.copy(deep=False)
    for col in columns:
        out[col] = part.index.array
    return out


class _GroupBy:
    """Grouping of a lazy frame by column names, its index (``level=``, the index name, ``ddf.index``)
    and/or aligned lazy Series or Index objects."""

    def __init__(self, obj: _Frame, by: Any = None, sort: bool = True, dropna: bool = True, observed: bool = True,
                 group_keys: bool = True, _slice: Any = None, level: Any = None, as_index: bool = True,
                 **kwargs: Any):
        if by is None and level is None:
            raise TypeError("You have to supply one of 'by' and 'level'")
        if by is not None and level is not None:
            # pandas would silently group by the index level alone
            raise TypeError("pass by= or level=, not both; to group by the index and columns pass "
                            "by=[ddf.index, 'column'] or the index name")
        if isinstance(obj, Series) and not as_index:
            raise TypeError("as_index=False only valid with DataFrame")
        self.sort, self.dropna, self.observed, self.group_keys = sort, dropna, observed, group_keys
        self.as_index = as_index
        if level is not None:
            by_list = _level_keys(obj._meta.index, level)
        else:
            by_list = list(by) if isinstance(by, list) else [by]
        if not by_list:
            raise ValueError("groupby needs at least one key")
        self._by: list = []
        self._series: list = []
        self._names: list = []
        for b in by_list:
            key, series, name = _resolve_key(obj, b)
            self._by.append(key)
            self._names.append(name)
            if series is not None:
                self._series.append(series)
        if isinstance(obj, Series):
            column = obj._meta.name if obj._meta.name is not None else _UNNAMED
            obj = obj.to_frame(name=column)
            _slice = column if _slice is None else _slice
        self.obj = obj
        if self._series:
            aligned = align_partitions(obj, *self._series)
            self.obj, self._series = aligned[0], aligned[1:]
        self._slice = _slice

    # -- meta helpers
    def _fake_groupby(self, as_index: bool | None = None) -> Any:
        """pandas' GroupBy of a fake nonempty partition, for metas (``as_index`` defaults to the user's)."""
        fake = meta_nonempty(self.obj._meta)
        keys = []
        it = iter(self._series)
        for b in self._by:
            if b is _SERIES:
                keys.append(meta_nonempty(next(it)._meta).set_axis(fake.index))
            else:
                keys.append(fake.index if b is _INDEX else b)
        g = fake.groupby(keys if len(keys) > 1 else keys[0], sort=self.sort, dropna=self.dropna,
                         observed=self.observed, as_index=self.as_index if as_index is None else as_index)
        if self._slice is not None:
            g = g[self._slice]
        return g

    def _value_columns(self) -> list:
        if self._slice is not None:
            return [self._slice] if is_scalar(self._slice) or isinstance(self._slice, tuple) else list(self._slice)
        if isinstance(self.obj._meta, pd.Series):
            return [self.obj._meta.name]
        keys = set(b for b in self._by if not isinstance(b, _KeyMarker))
        return [c for c in self.obj._meta.columns if c not in keys]

    def __getitem__(self, key: Any) -> "_GroupBy":
        cols = [key] if is_scalar(key) or isinstance(key, tuple) else list(key)
        missing = [c for c in cols if c not in self.obj._meta.columns]
        if missing:
            raise_unknown_columns(missing, self.obj._meta.columns)
        cls = SeriesGroupBy if is_scalar(key) or isinstance(key, tuple) else DataFrameGroupBy
        out = cls.__new__(cls)
        out.__dict__.update(self.__dict__)
        out._slice = key
        return out

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        obj = self.__dict__.get("obj")
        if obj is not None and isinstance(obj._meta, pd.DataFrame) and key in obj._meta.columns:
            return self[key]
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    # -- aggregation
    def _normalize(self, arg: Any, named: dict) -> tuple[list, str]:
        """A list of (input column, function name) in pandas' output order, and the output kind."""
        cols = self._value_columns()
        series_like = isinstance(self, SeriesGroupBy) or isinstance(self.obj._meta, pd.Series)
        if named:
            specs = []
            for out_name, spec in named.items():
                if not (isinstance(spec, tuple) and len(spec) == 2):
                    if series_like:
                        specs.append((cols[0], _func_name(spec)))
                        continue
                    raise TypeError(f"named aggregation {out_name}= must be a (column, function) tuple")
                col, func = spec
                if col not in self.obj._meta.columns:
                    raise_unknown_columns([col], self.obj._meta.columns)
                specs.append((col, _func_name(func)))
            return specs, "named"
        if isinstance(arg, Mapping):
            specs = []
            for col, funcs in arg.items():
                if isinstance(self.obj._meta, pd.DataFrame) and col not in self.obj._meta.columns:
                    raise_unknown_columns([col], self.obj._meta.columns)
                for f in (funcs if is_list_like(funcs) else [funcs]):
                    specs.append((col, _func_name(f)))
            return specs, "dict"
        if is_list_like(arg) and not isinstance(arg, str):
            return [(c, _func_name(f)) for c in cols for f in arg], "list"
        func = _func_name(arg)
        if func == "size":
            return [(None, "size")], "size"
        return [(c, func) for c in cols], "single"

    def _pandas_meta(self, arg: Any, named: dict, ddof: int, as_index: bool = True) -> Any:
        g = self._fake_groupby(as_index)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if named:
                out = g.agg(**named)
            elif isinstance(arg, str) and arg in ("var", "std"):
                out = getattr(g, arg)(ddof=ddof)
            elif isinstance(arg, str):
                out = getattr(g, arg)()
            else:
                out = g.agg(arg)
        return restore_unnamed(out.iloc[:0], self._slice)

    def aggregate(self, arg: Any = None, split_every: int | None = None, split_out: int = 1, ddof: int = 1,
                  **named: Any) -> Any:
        """Aggregate groups with a function name, a list, a dict column -> function(s), or named
        aggregations ``new=('column', 'func')``; functions from :data:`SUPPORTED_AGGREGATIONS`.

        With ``as_index=False`` the keys come back as leading columns, as in pandas, on an index
        ``0 .. n-1`` (restarting in each partition with ``split_out > 1``).

        >>> import lazyarr.dataframe as dd
        >>> pdf = pd.DataFrame({'k': [1, 2, 1], 'x': [1.0, 2.0, 4.0]}, index=pd.Index([7, 8, 7], name='ix'))
        >>> ddf = dd.from_pandas(pdf, npartitions=2)
        >>> ddf.groupby('k', as_index=False).agg(total=('x', 'sum')).compute()
           k  total
        0  1    5.0
        1  2    2.0
        >>> ddf.groupby(level=0).x.agg('mean').compute()
        ix
        7    2.5
        8    2.0
        Name: x, dtype: float64
        """
        if arg is None and not named:
            raise TypeError("agg needs a function, a list, a dict or named aggregations")
        specs, kind = self._normalize(arg, named)
        meta = self._pandas_meta(arg, named, ddof)
        stat_cols: list = []
        for col, func in specs:
            for stat in _STATS_FOR[func]:
                key = (None, "size") if stat == "size" else (col, stat)
                if key not in stat_cols:
                    stat_cols.append(key)
        nunique_cols = list(dict.fromkeys(col for col, func in specs if func == "nunique"))
        outputs = [(None if func == "size" else col, func, ddof) for col, func in specs]
        n_expected = 1 if isinstance(meta, pd.Series) else len(meta.columns)
        if n_expected != len(outputs):
            raise NotImplementedError(f"cannot line up {len(outputs)} aggregations with pandas' {n_expected} "
                                      f"output columns for {arg!r}")
        by, names = self._by, self._names
        chunk = functools.partial(_groupby_chunk, by=by, names=names, stat_cols=stat_cols,
                                  nunique_cols=nunique_cols, dropna=self.dropna, observed=self.observed,
                                  sort=self.sort)
        combine = functools.partial(_groupby_combine, stat_cols=stat_cols, dropna=self.dropna)
        flat = None
        if not self.as_index:
            flat_meta = self._pandas_meta(arg, named, ddof, as_index=False)
            flat = (_inserted_keys(names, flat_meta, n_expected), flat_meta)
        aggregate = functools.partial(_groupby_aggregate, stat_cols=stat_cols, outputs=outputs, names=names,
                                      dropna=self.dropna, sort=self.sort, meta=meta, nkeys=len(by), flat=flat)
        split = functools.partial(_split_partial, nkeys=len(by))
        token = "groupby-" + (specs[0][1] if len(set(f for _, f in specs)) == 1 else "agg")
        return tree_reduce([self.obj, *self._series], chunk, combine, aggregate, meta if flat is None else flat[1],
                           token, split_every, split_out=split_out, split_func=split)

    agg = aggregate

    def _simple(self, func: str, split_every: int | None, split_out: int, ddof: int = 1) -> Any:
        return self.aggregate(func, split_every=split_every, split_out=split_out, ddof=ddof)

    def sum(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Sum per group."""
        return self._simple("sum", split_every, split_out)

    def mean(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Mean per group (sum / count)."""
        return self._simple("mean", split_every, split_out)

    def count(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Non-missing values per group."""
        return self._simple("count", split_every, split_out)

    def size(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Rows per group."""
        return self._simple("size", split_every, split_out)

    def min(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Minimum per group."""
        return self._simple("min", split_every, split_out)

    def max(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Maximum per group."""
        return self._simple("max", split_every, split_out)

    def prod(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Product per group."""
        return self._simple("prod", split_every, split_out)

    def first(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """First non-missing value per group (in row order)."""
        return self._simple("first", split_every, split_out)

    def last(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Last non-missing value per group (in row order)."""
        return self._simple("last", split_every, split_out)

    def var(self, ddof: int = 1, split_every: int | None = None, split_out: int = 1) -> Any:
        """Variance per group (stable combination of per-partition moments)."""
        return self._simple("var", split_every, split_out, ddof)

    def std(self, ddof: int = 1, split_every: int | None = None, split_out: int = 1) -> Any:
        """Standard deviation per group."""
        return self._simple("std", split_every, split_out, ddof)

    def nunique(self, split_every: int | None = None, split_out: int = 1) -> Any:
        """Distinct values per group."""
        return self._simple("nunique", split_every, split_out)

    # -- down the rows, in the original row order (groupby_cumulative.py)
    def _cumulative(self, how: str, **kwargs: Any) -> Any:
        from .groupby_cumulative import groupby_cumulative

        return groupby_cumulative(self, how, **kwargs)

    def cumsum(self, numeric_only: bool = False, skipna: bool = True) -> Any:
        """Running sum within each group, rows in their original order (totals carried across partitions)."""
        return self._cumulative("cumsum", numeric_only=numeric_only, skipna=skipna)

    def cumprod(self, numeric_only: bool = False, skipna: bool = True) -> Any:
        """Running product within each group."""
        return self._cumulative("cumprod", numeric_only=numeric_only, skipna=skipna)

    def cummax(self, numeric_only: bool = False, skipna: bool = True) -> Any:
        """Running maximum within each group."""
        return self._cumulative("cummax", numeric_only=numeric_only, skipna=skipna)

    def cummin(self, numeric_only: bool = False, skipna: bool = True) -> Any:
        """Running minimum within each group."""
        return self._cumulative("cummin", numeric_only=numeric_only, skipna=skipna)

    def cumcount(self, ascending: bool = True) -> Any:
        """Position of each row within its group (from the group's end with ``ascending=False``)."""
        return self._cumulative("cumcount", ascending=ascending)

    def shift(self, periods: int = 1, freq: Any = None, fill_value: Any = no_default) -> Any:
        """Values moved ``periods`` rows down (up if negative) within each group, across partitions."""
        from .groupby_cumulative import groupby_shift

        if freq is not None:
            raise NotImplementedError("groupby(...).shift(freq=...) is not supported; shift by periods")
        return groupby_shift(self, "shift", periods, fill_value=fill_value)

    def diff(self, periods: int = 1) -> Any:
        """Difference with the row ``periods`` before (after if negative) in the same group."""
        from .groupby_cumulative import groupby_shift

        return groupby_shift(self, "diff", periods)

    # -- shuffle-based
    def _keyed(self) -> tuple[DataFrame, list]:
        """The frame with each lazy Series or index key as a temporary ``__lazyarr_by<i>`` column (shuffles
        and the carried states of cumulative operations work on columns), and the key columns."""
        frame = self.obj
        by = []
        extra = {}
        index_columns = []
        it = iter(self._series)
        for i, b in enumerate(self._by):
            if not isinstance(b, _KeyMarker):
                by.append(b)
                continue
            col = f"__lazyarr_by{i}"
            by.append(col)
            if b is _SERIES:
                extra[col] = next(it)
            else:
                index_columns.append(col)
        if index_columns:
            frame = partitionwise(_with_index_columns, frame, index_columns, token="groupby-index-key")
        if extra:
            frame = frame.assign(**extra)
        return frame, by

    def _shuffled(self, method: str | None, npartitions: int | None) -> tuple[DataFrame, list]:
        from .shuffle import shuffle

        frame, by = self._keyed()
        return shuffle(frame, by, npartitions=npartitions, method=method), by

    def _apply_like(self, how: str, func: Callable, meta: Any, args: tuple, kwargs: dict, method: str | None,
                    npartitions: int | None) -> Any:
        frame, by = self._shuffled(method, npartitions)
        slice_ = self._slice
        call = functools.partial(_group_apply, how=how, func=func, by=by, names=self._names, slice_=slice_,
                                 sort=self.sort, dropna=self.dropna, observed=self.observed,
                                 group_keys=self.group_keys, as_index=self.as_index, args=args, kwargs=kwargs)
        if meta is no_default:
            meta = emulate(call, frame, udf=True)
        return partitionwise(call, frame, meta=meta, token=f"groupby-{how}")

    def apply(self, func: Callable, *args: Any, meta: Any = no_default, shuffle_method: str | None = None,
              npartitions: int | None = None, **kwargs: Any) -> Any:
        """pandas ``apply`` on each whole group, after shuffling rows so groups do not span partitions.

        Pass ``meta=`` to skip running ``func`` on a sample. The result's partitions hold whole
        groups; divisions are unknown and rows are not globally sorted by key.
        """
        return self._apply_like("apply", func, meta, args, kwargs, shuffle_method, npartitions)

    def transform(self, func: Any, *args: Any, meta: Any = no_default, shuffle_method: str | None = None,
                  npartitions: int | None = None, **kwargs: Any) -> Any:
        """pandas ``transform`` on each whole group (rows keep their index labels, partitions change)."""
        return self._apply_like("transform", func, meta, args, kwargs, shuffle_method, npartitions)


def restore_unnamed(out: Any, slice_: Any) -> Any:
    """A Series result of grouping a Series that had no name gets no name (not the placeholder column's)."""
    if isinstance(out, pd.Series) and isinstance(slice_, str) and slice_ == _UNNAMED:
        return out.rename(None)
    return out


def pandas_groupby(part: pd.DataFrame, by: list, names: list, slice_: Any, **kwargs: Any) -> tuple[Any, pd.DataFrame]:
    """pandas' GroupBy of a partition of :meth:`_GroupBy._keyed` (temporary key columns become named keys),
    and the partition without those columns."""
    temp = [b for b in by if isinstance(b, str) and b.startswith("__lazyarr_by")]
    keys = [part[b].rename(n) if b in temp else b for b, n in zip(by, names)]
    frame = part.drop(columns=temp) if temp else part
    g = frame.groupby(keys if len(keys) > 1 else keys[0], **kwargs)
    if slice_ is not None:
        g = g[slice_]
    return g, frame


def _group_apply(part: pd.DataFrame, how: str, func: Any, by: list, names: list, slice_: Any, sort: bool,
                 dropna: bool, observed: bool, group_keys: bool, args: tuple, kwargs: dict,
                 as_index: bool = True) -> Any:
    if len(part) == 0:
        # no groups here: the empty result has the shape of a result on a sample
        sample = _group_apply(meta_nonempty(part), how, func, by, names, slice_, sort, dropna, observed,
                              group_keys, args, kwargs, as_index)
        return sample.iloc[:0]
    g, frame = pandas_groupby(part, by, names, slice_, sort=sort, dropna=dropna, observed=observed,
                              group_keys=group_keys, as_index=as_index)
    if slice_ is None and how == "transform":
        g = g[[c for c in frame.columns if c not in set(by)]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return restore_unnamed(getattr(g, how)(func, *args, **kwargs), slice_)


class DataFrameGroupBy(_GroupBy):
    """``ddf.groupby(key)``: aggregations, ``[columns]`` selection, apply and transform."""


class SeriesGroupBy(_GroupBy):
    """``ddf.groupby(key)[column]`` (or ``series.groupby(other)``)."""
