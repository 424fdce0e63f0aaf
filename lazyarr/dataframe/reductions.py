"""Tree reductions over partitions: sum, mean, var, nunique, value_counts, quantile, describe, ...

Every reduction is *chunk* (one pandas partition -> a small partial result), *combine* (a list
of at most ``split_every`` partials -> one partial, applied level by level) and *aggregate*
(the last list of partials -> the answer). ``split_every`` defaults to the configuration value
``dataframe.split-every`` (8).

Variances are combined with Chan et al.'s pairwise formula from per-partition
``(count, mean, M2)``, so they stay accurate when the mean is large compared with the spread.

Quantiles are **approximate** when there is more than one partition: each partition contributes
its values at up to 1,000 evenly spaced ranks, weighted by its length, and the answer is read off
the merged weighted distribution. The error is at most about 1/1000 of the spread of values in a
partition; with one partition the result is exact.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype, is_scalar

from .. import config
from ..tokenize import tokenize
from .core import Index, Scalar, Series, _Frame, merge_layers, new_collection
from .utils import concat_parts, meta_nonempty

__all__ = [
    "tree_reduce",
    "reduce_frame",
    "partition_lengths",
    "value_counts",
    "unique",
    "quantile",
    "describe",
    "nlargest",
]


def _split_every(split_every: int | None) -> int:
    n = split_every if split_every is not None else config.get("dataframe.split-every", 8)
    if n is False or n is None:
        return 1 << 30
    if int(n) < 2:
        raise ValueError(f"split_every must be at least 2, got {n}")
    return int(n)


def tree_reduce(frames: Sequence[_Frame] | _Frame, chunk: Callable, combine: Callable | None, aggregate: Callable,
                meta: Any, token: str, split_every: int | None = None, split_out: int = 1,
                split_func: Callable | None = None) -> Any:
    """Reduce the partitions of ``frames`` (aligned) with ``chunk``, then ``combine``/``aggregate``.

    ``chunk(*partitions)`` runs on partition ``i`` of every frame. ``combine(list)`` and
    ``aggregate(list)`` take lists of partials. With ``split_out > 1``, ``split_func(partial, n)``
    splits each chunk result into a list of ``n`` pieces, and piece ``j`` of all partitions is
    reduced into output partition ``j`` (a Series/DataFrame with ``split_out`` partitions).
    """
    frames = [frames] if isinstance(frames, _Frame) else list(frames)
    n = frames[0].npartitions
    every = _split_every(split_every)
    combine = combine or aggregate
    base = f"{token}-{tokenize(frames, chunk, combine, aggregate, every, split_out, meta)}"
    layer: dict = {}
    chunk_name = f"{base}-chunk"
    for i in range(n):
        layer[(chunk_name, i)] = (chunk, *[(f._name, i) for f in frames])
    outputs = []
    for j in range(split_out):
        if split_out > 1:
            piece = f"{base}-piece{j}"
            for i in range(n):
                layer[(piece, i)] = (_pick, (f"{base}-split", i), j)
            keys = [(piece, i) for i in range(n)]
        else:
            keys = [(chunk_name, i) for i in range(n)]
        depth = 0
        while len(keys) > every:
            cname = f"{base}-combine{depth}-{j}"
            groups = [keys[k: k + every] for k in range(0, len(keys), every)]
            for g, group in enumerate(groups):
                layer[(cname, g)] = (combine, list(group))
            keys = [(cname, g) for g in range(len(groups))]
            depth += 1
        outputs.append((aggregate, list(keys)))
    if split_out > 1:
        for i in range(n):
            layer[(f"{base}-split", i)] = (split_func, (chunk_name, i), split_out)
    layer.update({(base, j): task for j, task in enumerate(outputs)})
    layers = merge_layers(*frames, {base: layer})
    if isinstance(meta, (pd.DataFrame, pd.Series, pd.Index)):
        return new_collection(layers, base, meta, (None,) * (split_out + 1))
    return Scalar(layers, base, meta)


def _pick(seq: Any, j: int) -> Any:
    return seq[j]


def partition_lengths(frame: _Frame) -> list[int]:
    """The number of rows in each partition (computed now)."""
    from .core import map_partitions

    lengths = map_partitions(_len_series, frame, meta=pd.Series([], dtype="int64"), token="len", keep_divisions=False)
    return [int(v) for v in lengths.compute()]


def _len_series(part: Any) -> pd.Series:
    return pd.Series([len(part)], dtype="int64")


# ---------------------------------------------------------------- simple reductions

def _is_frame(x: Any) -> bool:
    return isinstance(x, pd.DataFrame)


def _chunk_method(x: Any, how: str, kwargs: dict) -> Any:
    if len(x) == 0 and how in ("min", "max"):
        return None  # an empty partition has no extreme; leave it out
    return getattr(x, how)(**kwargs)


def _stack(parts: list) -> Any:
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    if isinstance(parts[0], pd.Series):
        return pd.DataFrame(parts)
    return pd.Series(parts)


def _combine_method(parts: list, how: str, kwargs: dict) -> Any:
    stacked = _stack(parts)
    if stacked is None:
        return None
    return getattr(stacked, how)(**kwargs)


def _finish(result: Any, meta: Any) -> Any:
    """Give a DataFrame-reduction result the index and dtype pandas would."""
    if result is None:
        if isinstance(meta, pd.Series):
            return pd.Series(np.nan, index=meta.index, dtype=meta.dtype if meta.dtype.kind in "fcOmM" else "float64",
                             name=meta.name)
        return np.nan
    if isinstance(meta, pd.Series) and isinstance(result, pd.Series):
        result = result.reindex(meta.index)
        if result.dtype != meta.dtype:
            try:
                if not (result.isna().any() and meta.dtype.kind in "iub"):
                    result = result.astype(meta.dtype)
            except (TypeError, ValueError):
                pass
        result.name = meta.name
    return result


def _aggregate_method(parts: list, how: str, kwargs: dict, meta: Any, post: Callable | None = None) -> Any:
    out = _combine_method(parts, how, kwargs)
    if post is not None and out is not None:
        out = post(out)
    return _finish(out, meta)


def _reduction_meta(x: _Frame, how: str, kwargs: dict) -> Any:
    fake = meta_nonempty(x._meta)
    out = getattr(fake, how)(**kwargs)
    return out


def _numeric_view(x: Any, columns: list | None) -> Any:
    if columns is not None:
        x = x[columns]
    return x


def _sum_count_chunk(x: Any, columns: list | None, skipna: bool) -> Any:
    x = _numeric_view(x, columns)
    if _is_frame(x):
        return pd.DataFrame({"sum": x.sum(skipna=skipna), "count": x.count()})
    return pd.Series({"sum": x.sum(skipna=skipna), "count": x.count()}, dtype="float64")


def _sum_count_combine(parts: list) -> Any:
    parts = [p for p in parts]
    if _is_frame(parts[0]):
        return functools.reduce(lambda a, b: a.add(b, fill_value=0), parts)
    return functools.reduce(_operator_add, parts)


def _operator_add(a: Any, b: Any) -> Any:
    return a + b


def _mean_aggregate(parts: list, meta: Any, skipna: bool) -> Any:
    total = _sum_count_combine(parts)
    if _is_frame(total):
        with np.errstate(all="ignore"):
            out = total["sum"] / total["count"].where(total["count"] > 0)
        return _finish(out, meta)
    count = total["count"]
    return np.float64(total["sum"] / count) if count > 0 else np.float64(np.nan)


def _moments_chunk(x: Any, columns: list | None, skipna: bool) -> Any:
    x = _numeric_view(x, columns)
    x = x.astype("float64")
    n = x.count()
    mean = x.mean(skipna=skipna)
    m2 = ((x - mean) ** 2).sum(skipna=skipna)
    if not skipna:
        has_na = x.isna().any()
        m2 = m2.where(~has_na) if _is_frame(x) else (np.nan if has_na else m2)
    if _is_frame(x):
        return pd.DataFrame({"n": n.astype("float64"), "mean": mean, "m2": m2})
    return pd.Series({"n": float(n), "mean": mean, "m2": m2})


def _moments_combine(parts: list) -> Any:
    """Chan et al.'s parallel update for (count, mean, M2), over any number of parts at once."""
    frames = _is_frame(parts[0])
    n = sum(p["n"] for p in parts)
    with np.errstate(all="ignore"):
        if frames:
            weighted = sum(p["mean"].fillna(0) * p["n"] for p in parts)
            mean = weighted / n.where(n > 0)
            m2 = sum(p["m2"].where(p["n"] > 0, 0) + p["n"] * (p["mean"].where(p["n"] > 0, 0) - mean) ** 2
                     for p in parts)
            return pd.DataFrame({"n": n, "mean": mean, "m2": m2})
        weighted = sum((0.0 if p["n"] == 0 else p["mean"] * p["n"]) for p in parts)
        mean = weighted / n if n > 0 else np.nan
        m2 = sum((0.0 if p["n"] == 0 else p["m2"] + p["n"] * (p["mean"] - mean) ** 2) for p in parts)
        return pd.Series({"n": n, "mean": mean, "m2": m2})


def _moments_aggregate(parts: list, how: str, ddof: int, meta: Any) -> Any:
    total = _moments_combine(parts)
    n, m2 = total["n"], total["m2"]
    with np.errstate(all="ignore"):
        if _is_frame(total):
            var = m2 / (n - ddof).where(n - ddof > 0)
        else:
            var = m2 / (n - ddof) if n - ddof > 0 else np.nan
        if how == "std":
            var = np.sqrt(var)
        elif how == "sem":
            var = np.sqrt(var) / np.sqrt(n)
    if _is_frame(total):
        return _finish(var, meta)
    return np.float64(var)


def _size_chunk(x: Any) -> int:
    return int(x.size)


def _sum_list(parts: list) -> int:
    return sum(parts)


def _nunique_chunk(x: Any) -> Any:
    if _is_frame(x):
        return {c: x.iloc[:, i].drop_duplicates() for i, c in enumerate(x.columns)}
    return x.drop_duplicates() if not isinstance(x, pd.Index) else x.unique()


def _nunique_combine(parts: list) -> Any:
    if isinstance(parts[0], dict):
        return {c: concat_parts([p[c] for p in parts]).drop_duplicates() for c in parts[0]}
    return concat_parts(list(parts)).drop_duplicates()


def _nunique_aggregate(parts: list, dropna: bool, meta: Any) -> Any:
    merged = _nunique_combine(parts)
    if isinstance(merged, dict):
        counts = {c: int(v.nunique(dropna=dropna)) for c, v in merged.items()}
        return pd.Series(counts, index=meta.index, dtype="int64")
    return int(merged.nunique(dropna=dropna)) if not isinstance(merged, pd.Index) else int(merged.nunique(dropna=dropna))


def _arg_chunk(x: Any, how: str, skipna: bool) -> Any:
    """(label, value) of the first min/max per column; ``None`` where a partition has no values."""
    if _is_frame(x):
        return {c: _arg_series(x.iloc[:, i], how, skipna) for i, c in enumerate(x.columns)}
    return _arg_series(x, how, skipna)


def _arg_series(s: pd.Series, how: str, skipna: bool) -> Any:
    if len(s) == 0:
        return None
    if not skipna and s.isna().any():
        getattr(s, how)(skipna=False)  # pandas decides: raises for NA with skipna=False
    valid = s.dropna()
    if len(valid) == 0:
        return None
    pos = int(getattr(valid.reset_index(drop=True), how)())
    return (valid.index[pos], valid.iloc[pos])


def _arg_pick(cands: list, how: str) -> Any:
    best = None
    for cand in cands:
        if cand is None:
            continue
        if best is None or (cand[1] < best[1] if how == "idxmin" else cand[1] > best[1]):
            best = cand
    return best


def _arg_combine(parts: list, how: str) -> Any:
    if isinstance(parts[0], dict):
        return {c: _arg_pick([p[c] for p in parts], how) for c in parts[0]}
    return _arg_pick(parts, how)


def _arg_aggregate(parts: list, how: str, meta: Any) -> Any:
    best = _arg_combine(parts, how)
    if isinstance(best, dict):
        missing = [c for c, v in best.items() if v is None]
        if missing:
            raise ValueError(f"{how}: column(s) {missing} have only missing values")
        return pd.Series({c: v[0] for c, v in best.items()}, index=meta.index, dtype=meta.dtype)
    if best is None:
        raise ValueError(f"{how}: the Series has only missing values")
    return best[0]


_SIMPLE = {"sum", "prod", "min", "max", "count", "any", "all"}


def reduce_frame(x: _Frame, how: str, split_every: int | None = None, **kwargs: Any) -> Any:
    """The reduction ``how`` of a lazy DataFrame, Series or Index, as a tree reduction."""
    is_index = isinstance(x, Index)
    if how in _SIMPLE:
        kw = dict(kwargs)
        min_count = kw.pop("min_count", 0)
        if is_index:
            kw.pop("numeric_only", None)
        if isinstance(x, Series):
            kw.pop("numeric_only", None) if not kw.get("numeric_only") else None
        meta = _reduction_meta(x, how, {**kw, **({"min_count": min_count} if how in ("sum", "prod") else {})})
        chunk_kw = dict(kw)
        combine_kw = {k: v for k, v in kw.items() if k == "skipna"}
        if how == "count":
            chunk_kw = {k: v for k, v in kw.items() if k == "numeric_only"}
            combine_how = "sum"
            combine_kw = {}
        else:
            combine_how = how
        if isinstance(meta, pd.Series) and len(meta.index) < len(getattr(x._meta, "columns", [])):
            chunk_kw["numeric_only"] = True
        post = None
        if min_count and how in ("sum", "prod"):
            count = reduce_frame(x, "count", split_every=split_every)
            total = reduce_frame(x, how, split_every=split_every, **kw)
            return _apply_min_count(total, count, min_count, meta)
        chunk = functools.partial(_chunk_method, how=how, kwargs=chunk_kw)
        combine = functools.partial(_combine_method, how=combine_how, kwargs=combine_kw)
        aggregate = functools.partial(_aggregate_method, how=combine_how, kwargs=combine_kw, meta=meta, post=post)
        if how == "count":
            aggregate = functools.partial(_count_aggregate, meta=meta)
        return tree_reduce(x, chunk, combine, aggregate, meta, f"{how}", split_every)
    if how == "mean":
        skipna = kwargs.get("skipna", True)
        meta = _reduction_meta(x, "mean", _drop_index_kwargs(x, kwargs))
        columns = list(meta.index) if isinstance(meta, pd.Series) else None
        _require_numeric(x, columns, how)
        chunk = functools.partial(_sum_count_chunk, columns=columns, skipna=skipna)
        aggregate = functools.partial(_mean_aggregate, meta=meta, skipna=skipna)
        return tree_reduce(x, chunk, _sum_count_combine, aggregate, meta, "mean", split_every)
    if how in ("var", "std", "sem"):
        skipna = kwargs.get("skipna", True)
        ddof = kwargs.get("ddof", 1)
        meta = _reduction_meta(x, how, _drop_index_kwargs(x, kwargs))
        columns = list(meta.index) if isinstance(meta, pd.Series) else None
        _require_numeric(x, columns, how)
        chunk = functools.partial(_moments_chunk, columns=columns, skipna=skipna)
        aggregate = functools.partial(_moments_aggregate, how=how, ddof=ddof, meta=meta)
        return tree_reduce(x, chunk, _moments_combine, aggregate, meta, how, split_every)
    if how == "size":
        return tree_reduce(x, _size_chunk, _sum_list, _sum_list, 0, "size", split_every)
    if how == "nunique":
        dropna = kwargs.get("dropna", True)
        meta = getattr(meta_nonempty(x._meta), "nunique")(dropna=dropna)
        aggregate = functools.partial(_nunique_aggregate, dropna=dropna, meta=meta)
        return tree_reduce(x, _nunique_chunk, _nunique_combine, aggregate, meta, "nunique", split_every)
    if how in ("idxmin", "idxmax"):
        skipna = kwargs.get("skipna", True)
        if isinstance(x._meta, pd.DataFrame):
            meta = getattr(meta_nonempty(x._meta), how)(skipna=skipna)
        else:
            meta = meta_nonempty(x._meta).index[0]
        chunk = functools.partial(_arg_chunk, how=how, skipna=skipna)
        combine = functools.partial(_arg_combine, how=how)
        aggregate = functools.partial(_arg_aggregate, how=how, meta=meta)
        return tree_reduce(x, chunk, combine, aggregate, meta, how, split_every)
    raise ValueError(f"unknown reduction {how!r}")


def _count_aggregate(parts: list, meta: Any) -> Any:
    out = _combine_method(parts, "sum", {})
    if out is None:
        return pd.Series(0, index=meta.index, dtype="int64") if isinstance(meta, pd.Series) else 0
    return _finish(out, meta)


def _drop_index_kwargs(x: _Frame, kwargs: dict) -> dict:
    kw = {k: v for k, v in kwargs.items() if k in ("skipna", "ddof", "numeric_only")}
    if isinstance(x, Series) and not kw.get("numeric_only"):
        kw.pop("numeric_only", None)
    return kw


def _require_numeric(x: _Frame, columns: list | None, how: str) -> None:
    meta = x._meta
    dtypes = [meta.dtypes[c] for c in columns] if columns is not None else [meta.dtype]
    bad = [str(d) for d in dtypes if not (is_numeric_dtype(d) or is_bool_dtype(d))]
    if bad:
        raise NotImplementedError(f"{how} of non-numeric data ({', '.join(bad)}) is not supported lazily; "
                                  f"select numeric columns or use numeric_only=True")


def _apply_min_count_task(total: Any, count: Any, min_count: int) -> Any:
    if isinstance(total, pd.Series):
        return total.where(count >= min_count)
    return total if count >= min_count else np.nan


def _apply_min_count(total: Any, count: Any, min_count: int, meta: Any) -> Any:
    name = f"min_count-{tokenize(total, count, min_count)}"
    layer = {(name, 0): (_apply_min_count_task, (total._name, 0), (count._name, 0), min_count)}
    layers = merge_layers(total, count, {name: layer})
    if isinstance(meta, pd.Series):
        return new_collection(layers, name, meta.astype("float64") if meta.dtype.kind in "iub" else meta,
                              (None, None))
    return Scalar(layers, name, meta)


# ---------------------------------------------------------------- value_counts, unique, nlargest

def _vc_chunk(x: pd.Series, dropna: bool) -> pd.Series:
    return x.value_counts(sort=False, dropna=dropna)


def _vc_combine(parts: list, dropna: bool) -> pd.Series:
    parts = [p for p in parts if len(p)] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    merged = pd.concat(parts)
    return merged.groupby(level=0, sort=False, dropna=dropna, observed=False).sum()


def _vc_aggregate(parts: list, dropna: bool, sort: bool, ascending: bool, normalize: bool, meta: pd.Series) -> pd.Series:
    out = _vc_combine(parts, dropna)
    if normalize:
        total = out.sum()
        out = out / total if total else out.astype("float64")
    if sort:
        out = out.sort_values(ascending=ascending, kind="stable")
    out.name = meta.name
    out.index.name = meta.index.name
    return out


def _hash_split(x: Any, n: int) -> list:
    """Split a partial result into ``n`` pieces by the hash of its index."""
    from .shuffle import hash_index_partitions

    parts = hash_index_partitions(x.index, n)
    return [x.iloc[np.flatnonzero(parts == j)] for j in range(n)]


def value_counts(s: Series, sort: bool = True, ascending: bool = False, dropna: bool = True, normalize: bool = False,
                 split_every: int | None = None, split_out: int = 1) -> Series:
    """Counts of distinct values of lazy Series ``s`` (see :meth:`Series.value_counts`)."""
    meta = meta_nonempty(s._meta).value_counts(normalize=normalize, dropna=dropna).iloc[:0]
    chunk = functools.partial(_vc_chunk, dropna=dropna)
    combine = functools.partial(_vc_combine, dropna=dropna)
    aggregate = functools.partial(_vc_aggregate, dropna=dropna, sort=sort, ascending=ascending,
                                  normalize=normalize and split_out == 1, meta=meta)
    return tree_reduce(s, chunk, combine, aggregate, meta, "value_counts", split_every, split_out=split_out,
                       split_func=_hash_split)


def _unique_chunk(x: pd.Series) -> pd.Series:
    return x.drop_duplicates()


def _unique_combine(parts: list) -> pd.Series:
    return concat_parts(list(parts)).drop_duplicates()


def _unique_aggregate(parts: list) -> pd.Series:
    return _unique_combine(parts).reset_index(drop=True)


def unique(s: Series, split_every: int | None = None) -> Series:
    """Distinct values of ``s`` in order of first appearance (a one-partition Series)."""
    meta = s._meta.reset_index(drop=True)
    return tree_reduce(s, _unique_chunk, _unique_combine, _unique_aggregate, meta, "unique", split_every)


def _nlargest_chunk(x: pd.Series, n: int, largest: bool) -> pd.Series:
    return x.nlargest(n) if largest else x.nsmallest(n)


def _nlargest_combine(parts: list, n: int, largest: bool) -> pd.Series:
    return _nlargest_chunk(concat_parts(list(parts)), n, largest)


def nlargest(s: Series, n: int, largest: bool = True, split_every: int | None = None) -> Series:
    """The ``n`` largest (or smallest) values of ``s``."""
    chunk = functools.partial(_nlargest_chunk, n=n, largest=largest)
    combine = functools.partial(_nlargest_combine, n=n, largest=largest)
    return tree_reduce(s, chunk, combine, combine, s._meta, "nlargest" if largest else "nsmallest", split_every)


# ---------------------------------------------------------------- quantiles

_QUANTILE_POINTS = 1000


def _to_numbers(values: Any) -> tuple[np.ndarray, Any]:
    """Float values for quantile arithmetic, and the dtype to convert results back to."""
    if is_datetime64_any_dtype(values.dtype) or values.dtype.kind == "m":
        valid = values.dropna()
        return np.asarray(valid.array.asi8, dtype="float64"), values.dtype
    return values.dropna().to_numpy(dtype="float64", na_value=np.nan), None


def _quantile_chunk(x: Any, columns: list | None) -> Any:
    if isinstance(x, pd.DataFrame):
        return {c: _quantile_summary(x[c]) for c in columns}
    return _quantile_summary(x)


def _quantile_summary(s: pd.Series) -> tuple[np.ndarray, float]:
    return _values_summary(_to_numbers(s)[0])


def _values_summary(values: np.ndarray, max_points: int | None = _QUANTILE_POINTS) -> tuple[np.ndarray, float]:
    """``(points, weight)``: all values sorted (weight 1) or ``max_points`` evenly spaced ranks.

    ``max_points=None`` keeps every value, for a single partition whose answer should be exact.
    """
    n = len(values)
    if n == 0:
        return (np.array([]), 0.0)
    if max_points is None or n <= max_points:
        return (np.sort(values), 1.0)
    points = np.quantile(values, np.linspace(0, 1, max_points))
    return (points, n / max_points)


def _weighted_quantile(summaries: list, qs: np.ndarray) -> np.ndarray:
    summaries = [s for s in summaries if len(s[0])]
    if not summaries:
        return np.full(len(qs), np.nan)
    if all(s[1] == 1.0 for s in summaries):
        # every partition sent all its values: the answer is exact
        return np.quantile(np.concatenate([s[0] for s in summaries]), qs)
    values = np.concatenate([s[0] for s in summaries])
    weights = np.concatenate([np.full(len(s[0]), s[1]) for s in summaries])
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    # position of each point on the 0..1 scale of the merged distribution (points at cell centres)
    cum = np.cumsum(weights) - weights / 2
    total = weights.sum()
    pos = cum / total
    return np.interp(qs, pos, values)


def _quantile_aggregate(parts: list, qs: list, scalar_q: bool, columns: list | None, dtypes: dict,
                        name: Any) -> Any:
    qarr = np.asarray(qs, dtype="float64")

    def one(summaries: list, dtype: Any) -> Any:
        out = _weighted_quantile(summaries, qarr)
        if dtype is not None:
            return _from_i8(out, dtype)
        return out

    if columns is not None:
        data = {c: one([p[c] for p in parts], dtypes.get(c)) for c in columns}
        if scalar_q:
            return pd.Series({c: v[0] for c, v in data.items()}, name=qs[0])
        return pd.DataFrame(data, index=pd.Index(qs, dtype="float64"))
    values = one(parts, dtypes.get(None))
    if scalar_q:
        return values[0]
    return pd.Series(values, index=pd.Index(qs, dtype="float64"), name=name)


def _from_i8(values: np.ndarray, dtype: Any) -> Any:
    """Float nanosecond-or-other-unit counts back to datetimes/timedeltas of ``dtype``.

    Fractions are truncated toward zero, as pandas does when it casts a float mean or
    interpolated quantile back to int64.
    """
    ints = np.where(np.isnan(values), np.iinfo("i8").min, np.trunc(values)).astype("i8")
    if isinstance(dtype, pd.DatetimeTZDtype):
        naive = ints.view(f"M8[{dtype.unit}]")
        return pd.DatetimeIndex(naive).tz_localize("UTC").tz_convert(dtype.tz)
    return pd.Index(ints.view(dtype))


def quantile(x: _Frame, q: Any = 0.5, numeric_only: bool = False) -> Any:
    """Approximate quantiles ``q`` of a lazy Series or DataFrame (exact with one partition).

    See the module docstring for the error bound. NaNs are ignored, as in pandas.
    """
    scalar_q = is_scalar(q)
    qs = [float(q)] if scalar_q else [float(v) for v in q]
    if any(not 0 <= v <= 1 for v in qs):
        raise ValueError(f"quantiles must be between 0 and 1, got {q}")
    meta_obj = x._meta
    if isinstance(meta_obj, pd.DataFrame):
        numeric = meta_obj.select_dtypes(include=["number", "datetime", "datetimetz", "timedelta"])
        if not numeric_only and len(numeric.columns) != len(meta_obj.columns):
            bad = [c for c in meta_obj.columns if c not in numeric.columns]
            raise TypeError(f"quantile needs numeric or datetime columns; {bad} are not (use numeric_only=True)")
        columns = list(numeric.columns if numeric_only else meta_obj.columns)
        columns = [c for c in columns if not is_bool_dtype(meta_obj[c].dtype)] if numeric_only else columns
        dtypes = {c: meta_obj[c].dtype if meta_obj[c].dtype.kind in "mM" else None for c in columns}
        fake = meta_nonempty(meta_obj)[columns].quantile(q if scalar_q else qs)
        meta = fake.iloc[:0] if isinstance(fake, pd.DataFrame) else fake
    else:
        if not (is_numeric_dtype(meta_obj.dtype) or meta_obj.dtype.kind in "mM") or is_bool_dtype(meta_obj.dtype):
            raise TypeError(f"quantile needs numeric or datetime values, not {meta_obj.dtype}")
        columns = None
        dtypes = {None: meta_obj.dtype if meta_obj.dtype.kind in "mM" else None}
        fake = meta_nonempty(meta_obj).quantile(q if scalar_q else qs)
        meta = fake.iloc[:0] if isinstance(fake, pd.Series) else fake
    if x.npartitions == 1:
        exact = functools.partial(_exact_quantile, qs=qs, scalar_q=scalar_q, columns=columns)
        return tree_reduce(x, exact, None, _first_of, meta, "quantile")
    chunk = functools.partial(_quantile_chunk, columns=columns)
    aggregate = functools.partial(_quantile_aggregate, qs=qs, scalar_q=scalar_q, columns=columns, dtypes=dtypes,
                                  name=getattr(meta_obj, "name", None))
    return tree_reduce(x, chunk, _list_concat, aggregate, meta, "quantile", split_every=1 << 30)


def _first_of(parts: list) -> Any:
    return parts[0]


def _list_concat(parts: list) -> list:
    return list(parts)


def _exact_quantile(x: Any, qs: list, scalar_q: bool, columns: list | None) -> Any:
    if columns is not None:
        x = x[columns]
    return x.quantile(qs[0] if scalar_q else qs)


# ---------------------------------------------------------------- describe
#
# One tree reduction for every described column. Each partition gives, per column, the partial
# statistics of pandas' describer for its dtype (see ``_describe_kind``); partials merge level by
# level and the last step builds each column's Series exactly as pandas does, then joins them
# as pandas does, so row order, column order and dtypes are pandas'.

_CATEGORICAL_ROWS = ["count", "unique", "top", "freq"]


def _describe_kind(dtype: Any) -> str:
    """Which pandas describer handles ``dtype``: 'numeric', 'timedelta', 'datetime' or 'categorical'.

    Mirrors ``pandas.core.methods.describe.select_describe_func`` (bools count as categorical).
    """
    if is_bool_dtype(dtype):
        return "categorical"
    if is_numeric_dtype(dtype):
        return "numeric"
    if dtype.kind == "M":
        return "datetime"
    if dtype.kind == "m":
        return "timedelta"
    return "categorical"


def _describe_chunk(part: Any, columns: list, kinds: list[str], max_points: int | None) -> list[dict]:
    series = [part] if isinstance(part, pd.Series) else [part[c] for c in columns]
    return [_describe_column_chunk(s, kind, max_points) for s, kind in zip(series, kinds)]


def _describe_column_chunk(s: pd.Series, kind: str, max_points: int | None) -> dict:
    """Partial statistics of one column of one partition."""
    if kind == "categorical":
        # exact counts per value; merged later by the value_counts tree helpers
        return {"count": int(s.count()), "vc": _vc_chunk(s, dropna=True)}
    values, _ = _to_numbers(s)
    out = {
        "count": len(values),
        # pandas' mean is also a float64 sum divided by the count (datetimes as integer ticks)
        "sum": float(values.sum()),
        "min": s.min() if len(values) else None,
        "max": s.max() if len(values) else None,
        "q": [_values_summary(values, max_points)],
    }
    if kind != "datetime":
        out["moments"] = _moments_chunk(pd.Series(values, dtype="float64"), None, True)
    return out


def _describe_combine(parts: list) -> list[dict]:
    return [_merge_column_partials([p[i] for p in parts]) for i in range(len(parts[0]))]


def _merge_column_partials(partials: list[dict]) -> dict:
    out: dict = {"count": sum(p["count"] for p in partials)}
    if "vc" in partials[0]:
        out["vc"] = _vc_combine([p["vc"] for p in partials], dropna=True)
        return out
    out["sum"] = sum(p["sum"] for p in partials)
    out["min"] = _extreme([p["min"] for p in partials], min)
    out["max"] = _extreme([p["max"] for p in partials], max)
    # quantile summaries cannot be merged without losing accuracy: keep them all for the end
    out["q"] = [summary for p in partials for summary in p["q"]]
    if "moments" in partials[0]:
        out["moments"] = _moments_combine([p["moments"] for p in partials])
    return out


def _extreme(values: list, pick: Callable) -> Any:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def _describe_aggregate(parts: list, columns: list, kinds: list[str], dtypes: list, pcts: np.ndarray,
                        labels: list[str], rows: list, meta: Any) -> Any:
    merged = _describe_combine(parts)
    described = [_describe_column(m, kind, dtype, name, pcts, labels)
                 for m, kind, dtype, name in zip(merged, kinds, dtypes, columns)]
    if isinstance(meta, pd.Series):
        return described[0]
    # as pandas' DataFrameDescriber: side by side, rows in the order pandas chose
    out = pd.concat(described, axis=1, ignore_index=True, sort=False).reindex(rows)
    out.columns = meta.columns
    return out


def _describe_column(p: dict, kind: str, dtype: Any, name: Any, pcts: np.ndarray, labels: list[str]) -> pd.Series:
    if kind == "categorical":
        return _describe_categorical(p, name)
    count = p["count"]
    mean = p["sum"] / count if count else np.nan
    quantiles = list(_weighted_quantile(p["q"], pcts))
    missing = np.nan
    if kind in ("datetime", "timedelta"):
        mean, *quantiles = _from_i8(np.asarray([mean, *quantiles], dtype="float64"), dtype)
        missing = _from_i8(np.asarray([np.nan]), dtype)[0]
    mn = missing if p["min"] is None else p["min"]
    mx = missing if p["max"] is None else p["max"]
    if kind == "datetime":
        return pd.Series([count, mean, mn, *quantiles, mx], index=["count", "mean", "min", *labels, "max"],
                         name=name)
    std = _std_of(p["moments"])
    if kind == "timedelta":
        std = _from_i8(np.asarray([std]), dtype)[0]
    return pd.Series([count, mean, std, mn, *quantiles, mx], index=["count", "mean", "std", "min", *labels, "max"],
                     name=name, dtype=_numeric_describe_dtype(dtype))


def _std_of(moments: pd.Series) -> float:
    n, m2 = moments["n"], moments["m2"]
    return float(np.sqrt(m2 / (n - 1))) if n > 1 else np.nan


def _numeric_describe_dtype(dtype: Any) -> Any:
    """The dtype pandas gives a numeric column's description (float, Float64, arrow float; else object)."""
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        return None if dtype.kind == "m" else pd.ArrowDtype(pa.float64())
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return pd.Float64Dtype()
    return np.dtype("float64") if dtype.kind in "iufb" else None


def _describe_categorical(p: dict, name: Any) -> pd.Series:
    # pandas' value_counts order: count descending, ties kept in the order the merged counts
    # list them (first appearance; category order for categoricals)
    counts = p["vc"].sort_values(ascending=False, kind="stable")
    unique = int((counts != 0).sum())
    if unique:
        top, freq, dtype = counts.index[0], counts.iloc[0], None
    else:
        top, freq, dtype = np.nan, np.nan, "object"
    return pd.Series([p["count"], unique, top, freq], index=_CATEGORICAL_ROWS, name=name, dtype=dtype)


def _percentile_labels(pcts: np.ndarray) -> list[str]:
    # pandas' own formatting ('25%', '33.3%', ...), read off a one-value describe
    return list(pd.Series([0.0]).describe(percentiles=pcts).index[4:-1])


def describe(x: _Frame, percentiles: Sequence[float] | None = None, include: Any = None, exclude: Any = None,
             split_every: int | None = None) -> Any:
    """Summary statistics of a lazy Series or DataFrame, as pandas' ``describe``, in one tree reduction.

    Columns are chosen as pandas does: by default the numeric, timedelta and datetime columns
    (all columns if there are none); ``include='all'``, ``include=``/``exclude=`` dtype lists as
    in ``DataFrame.select_dtypes``. Numeric and timedelta columns get count, mean, std, min,
    percentiles and max; datetimes the same without std; other columns (strings, objects,
    categoricals, bools) count, unique, top and freq. Percentiles are approximate with more than
    one partition (see :func:`quantile`); everything else is exact up to float rounding, and
    ``top`` breaks ties as pandas does (first appearance; category order for categoricals).
    """
    meta_obj = x._meta
    # pandas validates percentiles/include/exclude and picks the columns and row order; none of
    # that depends on the data, so a describe of the fake partition gives the meta and row order
    fake = meta_nonempty(meta_obj).describe(percentiles=percentiles, include=include, exclude=exclude)
    meta = fake.iloc[:0]
    pcts = np.array([0.25, 0.5, 0.75]) if percentiles is None else np.unique(np.asarray(percentiles, dtype="float64"))
    if isinstance(meta_obj, pd.DataFrame):
        columns = list(meta.columns)
        dtypes = [meta_obj[c].dtype for c in columns]
    else:
        columns, dtypes = [meta_obj.name], [meta_obj.dtype]
    kinds = [_describe_kind(d) for d in dtypes]
    # a single partition sends all its values, so its percentiles are exact
    max_points = None if x.npartitions == 1 else _QUANTILE_POINTS
    chunk = functools.partial(_describe_chunk, columns=columns, kinds=kinds, max_points=max_points)
    aggregate = functools.partial(_describe_aggregate, columns=columns, kinds=kinds, dtypes=dtypes, pcts=pcts,
                                  labels=_percentile_labels(pcts), rows=list(fake.index), meta=meta)
    return tree_reduce(x, chunk, _describe_combine, aggregate, meta, "describe", split_every)
