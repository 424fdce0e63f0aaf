"""Meta helpers for lazyarr.dataframe: empty and fake-nonempty pandas objects, meta checks, assert_eq.

The **meta** of a lazy frame is an empty pandas object with the right columns, dtypes and index
type. Operations infer the meta of their result by running the pandas operation on a small
*nonempty* fake built from the input metas (:func:`meta_nonempty`) and keeping zero rows of the
answer, because many pandas operations behave differently (or fail) on empty inputs.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
    is_timedelta64_dtype,
)

__all__ = [
    "make_meta",
    "meta_nonempty",
    "check_meta",
    "is_dataframe_like",
    "is_series_like",
    "is_index_like",
    "concat_parts",
    "assert_eq",
    "raise_unknown_columns",
    "MetaMismatchError",
    "enforce_dtypes",
]

PANDAS_TYPES = (pd.DataFrame, pd.Series, pd.Index)


class MetaMismatchError(ValueError):
    """A partition's columns or dtypes differ from the collection's declared meta."""


def is_dataframe_like(x: Any) -> bool:
    """Is ``x`` a pandas DataFrame (or a lazy one)?"""
    return isinstance(x, pd.DataFrame) or type(x).__name__ == "DataFrame" and hasattr(x, "_meta")


def is_series_like(x: Any) -> bool:
    """Is ``x`` a pandas Series (or a lazy one)?"""
    return isinstance(x, pd.Series) or type(x).__name__ == "Series" and hasattr(x, "_meta")


def is_index_like(x: Any) -> bool:
    """Is ``x`` a pandas Index (or a lazy one)?"""
    return isinstance(x, pd.Index) or type(x).__name__ == "Index" and hasattr(x, "_meta")


def make_meta(x: Any, index: Any = None) -> Any:
    """An empty pandas object describing ``x``.

    ``x`` may be a pandas object (its zero-row slice), a dict or list of ``(name, dtype)`` pairs
    (a DataFrame), a ``(name, dtype)`` tuple (a Series), a dtype (a nameless Series) or a scalar
    (returned as a numpy scalar of its type).

    >>> make_meta({'a': 'i8', 'b': 'f8'}).dtypes.tolist()
    [dtype('int64'), dtype('float64')]
    >>> make_meta(('x', 'f8'))
    Series([], Name: x, dtype: float64)
    """
    if hasattr(x, "_meta") and isinstance(x._meta, PANDAS_TYPES):
        return x._meta
    if isinstance(x, (pd.DataFrame, pd.Series)):
        return x.iloc[:0]
    if isinstance(x, pd.Index):
        return x[:0]
    idx = index if index is not None else pd.RangeIndex(0)
    if isinstance(x, Mapping):
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in x.items()}, index=idx[:0])
    if isinstance(x, list) and all(isinstance(p, tuple) and len(p) == 2 for p in x):
        return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in x}, columns=[c for c, _ in x], index=idx[:0])
    if isinstance(x, tuple) and len(x) == 2:
        return pd.Series([], dtype=x[1], name=x[0], index=idx[:0])
    if isinstance(x, (np.dtype, pd.api.extensions.ExtensionDtype)) or (isinstance(x, str) and _is_dtype_str(x)):
        return pd.Series([], dtype=x, index=idx[:0])
    if np.isscalar(x) or x is None:
        return _scalar_meta(x)
    raise TypeError(f"cannot make a meta from {type(x).__name__}: give a pandas object, dict, (name, dtype) or dtype")


def _is_dtype_str(text: str) -> bool:
    try:
        pd.api.types.pandas_dtype(text)
        return True
    except TypeError:
        return False


def _scalar_meta(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x
    if isinstance(x, (bool, int, float, complex)):
        return np.array(x).dtype.type(x)
    return x


# ---------------------------------------------------------------- nonempty fakes

def _nonempty_values(dtype: Any, n: int = 2) -> Any:
    """``n`` sample values of ``dtype`` as an array pandas accepts for that dtype."""
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        if len(cats):
            return pd.Categorical([cats[0]] * n, categories=cats, ordered=dtype.ordered)
        return pd.Categorical(["foo"] * n, categories=["foo"], ordered=dtype.ordered)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pd.array([pd.Timestamp("2000-01-01", tz=dtype.tz)] * n).astype(dtype)
    if is_datetime64_any_dtype(dtype):
        return pd.array([pd.Timestamp("2000-01-01")] * n).astype(dtype)
    if is_timedelta64_dtype(dtype):
        return pd.array([pd.Timedelta("1D")] * n).astype(dtype)
    if isinstance(dtype, pd.PeriodDtype):
        return pd.array([pd.Period("2000", freq=dtype.freq)] * n, dtype=dtype)
    if isinstance(dtype, pd.IntervalDtype):
        sub = dtype.subtype if dtype.subtype is not None else np.dtype("int64")
        return pd.arrays.IntervalArray.from_breaks(np.arange(n + 1).astype(sub), closed=dtype.closed)
    if is_bool_dtype(dtype):
        return pd.array([True, False] * (n // 2) + [True] * (n % 2), dtype=dtype)
    if is_numeric_dtype(dtype):
        return pd.array([1] * n, dtype=dtype)
    if isinstance(dtype, pd.StringDtype) or dtype == object or str(dtype) == "str":
        return pd.array(["foo"] * n, dtype=dtype)
    try:
        return pd.array([dtype.na_value] * n, dtype=dtype)
    except Exception:
        return pd.array([None] * n, dtype=object)


def _nonempty_index(idx: pd.Index, n: int = 2) -> pd.Index:
    if isinstance(idx, pd.RangeIndex):
        return pd.RangeIndex(n, name=idx.name)
    if isinstance(idx, pd.MultiIndex):
        levels = [_nonempty_index(lvl, 1) for lvl in idx.levels]
        return pd.MultiIndex(levels=levels, codes=[[0] * n] * len(levels), names=idx.names)
    if isinstance(idx, pd.DatetimeIndex):
        return pd.date_range("2000-01-01", periods=n, freq=idx.freq or "D", tz=idx.tz, name=idx.name,
                             unit=getattr(idx, "unit", "ns"))
    if isinstance(idx, pd.CategoricalIndex):
        return pd.CategoricalIndex(_nonempty_values(idx.dtype, n), name=idx.name)
    values = _nonempty_values(idx.dtype, n)
    if is_numeric_dtype(idx.dtype) and not is_bool_dtype(idx.dtype):
        values = pd.array(np.arange(n), dtype=idx.dtype)
    elif isinstance(idx.dtype, pd.StringDtype) or idx.dtype == object:
        values = pd.array([f"foo{i}" for i in range(n)], dtype=idx.dtype)
    return pd.Index(values, name=idx.name, dtype=idx.dtype)


def meta_nonempty(x: Any, n: int = 2) -> Any:
    """A small nonempty pandas object with the same columns, dtypes and index type as meta ``x``.

    >>> meta_nonempty(make_meta({'a': 'i8'})).shape
    (2, 1)
    """
    if isinstance(x, pd.DataFrame):
        index = _nonempty_index(x.index, n)
        data = {i: pd.Series(_nonempty_values(dt, n), dtype=dt, index=index) for i, dt in enumerate(x.dtypes)}
        out = pd.DataFrame(data, index=index)
        out.columns = x.columns
        return out
    if isinstance(x, pd.Series):
        return pd.Series(_nonempty_values(x.dtype, n), index=_nonempty_index(x.index, n), name=x.name, dtype=x.dtype)
    if isinstance(x, pd.Index):
        return _nonempty_index(x, n)
    return x


# ---------------------------------------------------------------- checks

def _describe_dtypes(x: Any) -> dict:
    if isinstance(x, pd.DataFrame):
        return {c: x.dtypes.iloc[i] for i, c in enumerate(x.columns)}
    return {getattr(x, "name", None): x.dtype}


def _dtypes_match(found: Any, expected: Any) -> bool:
    if found == expected:
        return True
    if isinstance(expected, pd.CategoricalDtype) and isinstance(found, pd.CategoricalDtype):
        # categories may be discovered per partition ("unknown categories")
        return True
    return False


def check_meta(part: Any, meta: Any, where: str = "") -> Any:
    """Return ``part`` if its type, columns and dtypes agree with ``meta``, else raise.

    ``where`` names the partition (e.g. ``"partition 3 (bytes 0-1000 of data.csv)"``) in the
    :class:`MetaMismatchError` message, which also lists every column that differs.
    """
    if not isinstance(meta, PANDAS_TYPES):
        return part
    place = f" in {where}" if where else ""
    if type(part) is not type(meta):
        raise MetaMismatchError(
            f"expected a {type(meta).__name__}{place}, got a {type(part).__name__}; pass meta= describing the output"
        )
    if isinstance(meta, pd.DataFrame):
        found_cols, want_cols = list(part.columns), list(meta.columns)
        if found_cols != want_cols:
            missing = [c for c in want_cols if c not in found_cols]
            extra = [c for c in found_cols if c not in want_cols]
            detail = []
            if missing:
                detail.append(f"missing columns {missing}")
            if extra:
                detail.append(f"unexpected columns {extra}")
            if not detail:
                detail.append(f"columns in order {found_cols}, expected {want_cols}")
            raise MetaMismatchError(f"partition columns differ from meta{place}: " + "; ".join(detail))
    found, want = _describe_dtypes(part), _describe_dtypes(meta)
    bad = [(c, want[c], found[c]) for c in want if c in found and not _dtypes_match(found[c], want[c])]
    if bad:
        lines = ", ".join(f"{c!r}: expected {e}, found {f}" for c, e, f in bad)
        hint = {str(c): str(f) if str(f) != "int64" else "float64" for c, _, f in bad}
        raise MetaMismatchError(
            f"partition dtypes differ from meta{place}: {lines}. Pass dtype={hint!r} (or meta=) "
            f"so every partition agrees"
        )
    return part


def _normalize_multiindex(ix: pd.MultiIndex) -> Any:
    from ..tokenize import normalize_token

    return ("MultiIndex", list(ix.names), [normalize_token(lvl) for lvl in ix.levels],
            [normalize_token(np.asarray(c)) for c in ix.codes])


def _register_tokenizers() -> None:
    """Teach lazyarr.tokenize about MultiIndex (whose values have no single backing array)."""
    from ..tokenize import normalize_token

    normalize_token.dispatch(pd.Index)  # load the pandas handlers first
    normalize_token.register(pd.MultiIndex, _normalize_multiindex)


_register_tokenizers()


def _lossless(found: Any, want: Any) -> bool:
    if found == want:
        return False
    if want == object:
        return True
    found_kind = getattr(found, "kind", None)
    want_kind = getattr(want, "kind", None)
    if want_kind == "f" and found_kind in "iubf" and isinstance(want, np.dtype) and isinstance(found, np.dtype):
        return True
    if want_kind in "iu" and found_kind in "iu" and isinstance(want, np.dtype) and isinstance(found, np.dtype):
        return np.can_cast(found, want)
    return False


def enforce_dtypes(out: Any, meta: Any) -> Any:
    """Cast ``out`` to ``meta``'s dtypes where that loses nothing (int -> float, anything -> object)."""
    if isinstance(meta, pd.DataFrame) and isinstance(out, pd.DataFrame) and list(out.columns) == list(meta.columns):
        changes = {c: meta.dtypes.iloc[i] for i, c in enumerate(meta.columns)
                   if _lossless(out.dtypes.iloc[i], meta.dtypes.iloc[i])}
        return out.astype(changes) if changes else out
    if isinstance(meta, pd.Series) and isinstance(out, pd.Series) and _lossless(out.dtype, meta.dtype):
        return out.astype(meta.dtype)
    return out


def raise_unknown_columns(missing: Iterable, available: Iterable) -> None:
    """Raise a KeyError naming the unknown columns and listing the available ones."""
    missing = list(missing)
    available = list(available)
    noun = "column" if len(missing) == 1 else "columns"
    shown = ", ".join(repr(m) for m in missing)
    raise KeyError(f"unknown {noun} {shown}; available columns: {available}")


# ---------------------------------------------------------------- concatenation

def _unify_categoricals(parts: list) -> list:
    """Give categorical columns the union of categories across ``parts`` so concat keeps them."""
    first = parts[0]
    if isinstance(first, pd.DataFrame):
        cols = [c for i, c in enumerate(first.columns) if isinstance(first.dtypes.iloc[i], pd.CategoricalDtype)]
        if not cols:
            return parts
        parts = [p.copy(deep=False) for p in parts]
        for c in cols:
            dtypes = [p[c].dtype for p in parts]
            if all(d == dtypes[0] for d in dtypes) or not all(isinstance(d, pd.CategoricalDtype) for d in dtypes):
                continue
            union = pd.api.types.union_categoricals([p[c].array for p in parts], ignore_order=True).categories
            for p in parts:
                p[c] = p[c].cat.set_categories(union)
        return parts
    if isinstance(first, pd.Series) and isinstance(first.dtype, pd.CategoricalDtype):
        if all(p.dtype == first.dtype for p in parts) or \
                not all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            return parts
        union = pd.api.types.union_categoricals([p.array for p in parts], ignore_order=True).categories
        return [p.cat.set_categories(union) for p in parts]
    return parts


def concat_parts(parts: list, ignore_index: bool = False) -> Any:
    """Concatenate the partitions of one collection in order, keeping dtypes stable.

    Empty partitions are left out when there are nonempty ones (their all-missing columns would
    otherwise widen dtypes), and categorical columns get the union of categories.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("no partitions to concatenate")
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    if isinstance(first, pd.Index):
        nonempty = [p for p in parts if len(p)] or parts[:1]
        return nonempty[0].append(nonempty[1:]) if len(nonempty) > 1 else nonempty[0]
    if not isinstance(first, (pd.DataFrame, pd.Series)):
        return parts
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        return first
    if len(nonempty) == 1:
        return nonempty[0]
    nonempty = _unify_categoricals(nonempty)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pd.concat(nonempty, ignore_index=ignore_index, sort=False)


# ---------------------------------------------------------------- testing

def _compute(x: Any, scheduler: Any) -> Any:
    from ..base import is_lazyarr_collection

    if is_lazyarr_collection(x):
        return x.compute(scheduler=scheduler)
    return x


def _widened_by_missing(meta_dtype: Any, values: Any) -> bool:
    """pandas turns ints/bools into floats/objects where values are missing; meta shows the clean dtype."""
    return getattr(meta_dtype, "kind", None) in ("i", "u", "b") and bool(pd.isna(values).any())


def _check_lazy_consistency(lazy: Any, result: Any) -> None:
    """The computed result agrees with what the lazy object promised (meta, divisions)."""
    meta = getattr(lazy, "_meta", None)
    if isinstance(meta, (pd.DataFrame, pd.Series)) and isinstance(result, (pd.DataFrame, pd.Series)):
        if type(meta) is not type(result):
            raise AssertionError(f"meta is a {type(meta).__name__} but the result is a {type(result).__name__}")
        if isinstance(meta, pd.DataFrame):
            assert list(meta.columns) == list(result.columns), (
                f"meta columns {list(meta.columns)} != result columns {list(result.columns)}"
            )
            for i, c in enumerate(meta.columns):
                m, r = meta.dtypes.iloc[i], result.dtypes.iloc[i]
                assert _dtypes_match(r, m) or _widened_by_missing(m, result.iloc[:, i]), (
                    f"column {c!r}: meta dtype {m} != result dtype {r}")
        else:
            assert _dtypes_match(result.dtype, meta.dtype) or _widened_by_missing(meta.dtype, result), (
                f"meta dtype {meta.dtype} != result dtype {result.dtype}")
    divisions = getattr(lazy, "divisions", None)
    if divisions and divisions[0] is not None and isinstance(result, (pd.DataFrame, pd.Series)) and len(result):
        idx = result.index
        if idx.hasnans:  # set_index puts missing keys at the end, after the divisions
            idx = idx.dropna()
        if not len(idx):
            return
        assert idx.is_monotonic_increasing, "known divisions but the computed index is not sorted"
        assert divisions[0] <= idx[0] and idx[-1] <= divisions[-1], (
            f"index range [{idx[0]}, {idx[-1]}] outside divisions [{divisions[0]}, {divisions[-1]}]"
        )


def assert_eq(a: Any, b: Any, check_names: bool = True, check_dtype: bool = True, check_index: bool = True,
              sort_results: bool = False, check_divisions: bool = True, scheduler: Any = "sync",
              **kwargs: Any) -> bool:
    """Assert that ``a`` and ``b`` (lazy collections or pandas objects or scalars) are equal.

    Lazy arguments are computed on ``scheduler`` and checked against their own meta (columns,
    dtypes) and divisions. Then the pandas results are compared with pandas' testing functions,
    including dtypes and index unless told otherwise. ``sort_results`` sorts rows first (for
    operations such as merge whose row order is not pandas'); ``check_index=False`` drops the index.
    """
    ra, rb = _compute(a, scheduler), _compute(b, scheduler)
    if check_divisions:
        if hasattr(a, "_meta"):
            _check_lazy_consistency(a, ra)
        if hasattr(b, "_meta"):
            _check_lazy_consistency(b, rb)
    if isinstance(ra, (pd.DataFrame, pd.Series)) or isinstance(rb, (pd.DataFrame, pd.Series)):
        if not check_index:
            ra, rb = ra.reset_index(drop=True), rb.reset_index(drop=True)
        if sort_results:
            ra, rb = _sort_rows(ra), _sort_rows(rb)
            if not check_index:
                ra, rb = ra.reset_index(drop=True), rb.reset_index(drop=True)
        if isinstance(ra, pd.DataFrame):
            pd.testing.assert_frame_equal(ra, rb, check_names=check_names, check_dtype=check_dtype, **kwargs)
        else:
            pd.testing.assert_series_equal(ra, rb, check_names=check_names, check_dtype=check_dtype, **kwargs)
        return True
    if isinstance(ra, pd.Index) or isinstance(rb, pd.Index):
        if sort_results:
            ra, rb = ra.sort_values(), rb.sort_values()
        pd.testing.assert_index_equal(ra, rb, exact=check_dtype, check_names=check_names, **kwargs)
        return True
    if isinstance(ra, float) or isinstance(rb, float) or isinstance(ra, np.floating):
        if pd.isna(ra) and pd.isna(rb):
            return True
        rtol = kwargs.get("rtol", 1e-7)
        assert np.isclose(ra, rb, rtol=rtol, atol=kwargs.get("atol", 0)), f"{ra!r} != {rb!r}"
        return True
    assert ra == rb or (pd.isna(ra) and pd.isna(rb)), f"{ra!r} != {rb!r}"
    if check_dtype and hasattr(rb, "dtype") and hasattr(ra, "dtype"):
        assert ra.dtype == rb.dtype, f"dtype {ra.dtype} != {rb.dtype}"
    return True


def _sort_rows(x: Any) -> Any:
    if isinstance(x, pd.Series):
        frame = x.to_frame(name="__value__")
    else:
        frame = x
    idx_names = [f"__level_{i}__" for i in range(frame.index.nlevels)]  # level names may repeat: (ix, ix)
    tmp = frame.copy(deep=False)
    tmp.index = tmp.index.set_names(idx_names)
    value_cols = [f"__col_{i}__" for i in range(frame.shape[1])]
    tmp.columns = value_cols
    tmp = tmp.reset_index()
    cols = value_cols + idx_names
    tmp = tmp.reset_index(drop=True)
    for c in cols:  # unorderable mixtures sort by their text
        if tmp[c].dtype == object:
            tmp[c] = tmp[c].astype(str)
    order = tmp.sort_values(cols, kind="stable", na_position="last").index.to_numpy()
    return x.iloc[order]


def apply_and_enforce(func: Callable, *args: Any, _meta: Any = None, **kwargs: Any) -> Any:
    """Run ``func`` and give its result the names of the ``meta=`` the user declared.

    A Series gets meta's name; a DataFrame with as many columns as meta gets meta's column names.
    """
    out = func(*args, **kwargs)
    if isinstance(_meta, (pd.DataFrame, pd.Series)) and isinstance(out, (pd.DataFrame, pd.Series)):
        if isinstance(out, pd.DataFrame) and isinstance(_meta, pd.DataFrame) and len(out.columns) == len(_meta.columns):
            if list(out.columns) != list(_meta.columns):
                out = out.copy(deep=False)
                out.columns = _meta.columns
        elif isinstance(out, pd.Series) and isinstance(_meta, pd.Series) and out.name != _meta.name:
            out = out.rename(_meta.name)
    return out
