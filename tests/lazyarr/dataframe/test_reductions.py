"""Tree reductions against pandas, with NaNs, several partitionings and split_every values."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import lazyarr
import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq

NUMERIC = ["i", "f", "g"]


@pytest.mark.parametrize("how", ["sum", "mean", "count", "min", "max", "std", "var", "prod"])
def test_frame_and_series_reductions(pdf, npartitions, how, scheduler):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(getattr(ddf[NUMERIC], how)(), getattr(pdf[NUMERIC], how)(), scheduler=scheduler)
    assert_eq(getattr(ddf.f, how)(), getattr(pdf.f, how)(), scheduler=scheduler)
    assert_eq(getattr(ddf.i, how)(split_every=2), getattr(pdf.i, how)())


@pytest.mark.parametrize("how", ["min", "max", "count", "nunique"])
def test_reductions_on_strings_datetimes(pdf, how):
    ddf = dd.from_pandas(pdf, npartitions=4)
    for col in ["s", "t"]:
        assert_eq(getattr(ddf[col], how)(), getattr(pdf[col], how)())


def test_mixed_frame_min_max_count(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    cols = ["i", "f", "s", "t"]
    for how in ["min", "max", "count"]:
        assert_eq(getattr(ddf[cols], how)(), getattr(pdf[cols], how)())
    assert_eq(ddf.count(), pdf.count())


def test_numeric_only(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.sum(numeric_only=True), pdf.sum(numeric_only=True))
    assert_eq(ddf.mean(numeric_only=True), pdf.mean(numeric_only=True))
    assert_eq(ddf.var(numeric_only=True), pdf.var(numeric_only=True))
    with pytest.raises(TypeError):
        ddf.mean()


def test_skipna_false_and_min_count(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.f.sum(skipna=False), pdf.f.sum(skipna=False))
    assert_eq(ddf.f.mean(skipna=False), pdf.f.mean(skipna=False))
    assert_eq(ddf.f.var(skipna=False), pdf.f.var(skipna=False))
    empty = pdf.f.iloc[:0]
    assert_eq(dd.from_pandas(pdf.f * np.nan, npartitions=2).sum(min_count=1), (pdf.f * np.nan).sum(min_count=1))
    assert_eq(dd.from_pandas(pdf[["f"]], npartitions=2).sum(min_count=200), pdf[["f"]].sum(min_count=200))
    assert len(empty) == 0


def test_var_is_stable_with_large_offset():
    rs = np.random.RandomState(1)
    s = pd.Series(1e9 + rs.rand(10_000))
    ds = dd.from_pandas(s, npartitions=7)
    assert np.isclose(ds.var().compute(), s.var(), rtol=1e-6)
    assert np.isclose(ds.std(ddof=0).compute(), s.std(ddof=0), rtol=1e-6)


def test_ddof_and_sem(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.f.var(ddof=0), pdf.f.var(ddof=0))
    assert_eq(ddf[NUMERIC].std(ddof=2), pdf[NUMERIC].std(ddof=2))
    assert_eq(ddf.f.sem(), pdf.f.sem())


def test_any_all(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq((ddf.i > 8).any(), (pdf.i > 8).any())
    assert_eq((ddf.i >= 0).all(), (pdf.i >= 0).all())


def test_nunique(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.nunique(), pdf.nunique())
    assert_eq(ddf.s.nunique(dropna=False), pdf.s.nunique(dropna=False))
    assert_eq(ddf.c.nunique(), pdf.c.nunique())


def test_value_counts(pdf, npartitions, scheduler):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.s.value_counts(), pdf.s.value_counts(), scheduler=scheduler)
    assert_eq(ddf.i.value_counts(), pdf.i.value_counts())
    assert_eq(ddf.s.value_counts(dropna=False), pdf.s.value_counts(dropna=False))
    assert_eq(ddf.i.value_counts(normalize=True), pdf.i.value_counts(normalize=True))
    assert_eq(ddf.i.value_counts(ascending=True), pdf.i.value_counts(ascending=True))
    assert_eq(ddf.c.value_counts(), pdf.c.value_counts())
    assert_eq(ddf.i.value_counts(split_out=3), pdf.i.value_counts(), sort_results=True)


def test_idxmin_idxmax(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    for how in ["idxmin", "idxmax"]:
        assert_eq(getattr(ddf.f, how)(), getattr(pdf.f, how)())
        assert_eq(getattr(ddf[NUMERIC], how)(), getattr(pdf[NUMERIC], how)())
        assert_eq(getattr(ddf.t, how)(), getattr(pdf.t, how)())


def test_idxmin_all_missing_raises():
    s = pd.Series([np.nan, np.nan, np.nan])
    with pytest.raises(ValueError, match="missing"):
        dd.from_pandas(s, npartitions=2).idxmin().compute()


def test_quantile_exact_with_small_partitions(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.f.quantile(0.3), pdf.f.quantile(0.3))
    assert_eq(ddf.f.quantile([0.1, 0.5, 0.9]), pdf.f.quantile([0.1, 0.5, 0.9]))
    assert_eq(ddf[["f", "i"]].quantile([0.25, 0.75]), pdf[["f", "i"]].quantile([0.25, 0.75]))
    assert_eq(ddf[["f", "i"]].quantile(0.5), pdf[["f", "i"]].quantile(0.5))


def test_quantile_approximate_on_large_partitions():
    rs = np.random.RandomState(2)
    s = pd.Series(rs.randn(50_000))
    ds = dd.from_pandas(s, npartitions=5)
    got = ds.quantile([0.01, 0.25, 0.5, 0.75, 0.99]).compute()
    expect = s.quantile([0.01, 0.25, 0.5, 0.75, 0.99])
    spread = s.max() - s.min()
    assert (abs(got - expect) < spread / 500).all(), (got, expect)


def test_quantile_datetimes(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert ddf.t.quantile(0.5).compute() == pdf.t.quantile(0.5)
    with pytest.raises(TypeError):
        ddf.s.quantile(0.5)


def _describe_frame(pdf: pd.DataFrame) -> pd.DataFrame:
    """The shared frame plus bool, timedelta and tz-aware columns: every pandas describer."""
    df = pdf.copy()
    df["b"] = df.i > 4
    df["td"] = pd.to_timedelta(df.i, unit="s")
    df["tz"] = df.t.dt.tz_localize("UTC").dt.tz_convert("US/Eastern")
    return df


def test_describe(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    # pandas 3 describes numeric and datetime columns by default
    assert_eq(ddf.describe(), pdf.describe(), rtol=1e-6)
    for col in pdf.columns:
        assert_eq(ddf[col].describe(), pdf[col].describe(), rtol=1e-6)
    assert_eq(ddf.f.describe(percentiles=[0.1, 0.9]), pdf.f.describe(percentiles=[0.1, 0.9]))


@pytest.mark.parametrize("kwargs", [
    {}, {"include": "all"}, {"include": ["category", "bool"]}, {"include": ["str", "category"]},
    {"exclude": ["number"]}, {"include": ["datetime", "datetimetz"]}, {"include": ["timedelta"]},
    {"percentiles": [0.1, 0.333, 0.9]}, {"include": "all", "percentiles": []},
], ids=str)
def test_describe_include_exclude(pdf, npartitions, kwargs):
    df = _describe_frame(pdf)
    ddf = dd.from_pandas(df, npartitions=npartitions)
    assert_eq(ddf.describe(**kwargs), df.describe(**kwargs), rtol=1e-6)
    assert_eq(ddf.describe(split_every=2, **kwargs), df.describe(**kwargs), rtol=1e-6)


def test_describe_without_numeric_columns(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf[["s", "c"]].describe(), pdf[["s", "c"]].describe())
    assert_eq(ddf[["s", "c"]].describe(include="all"), pdf[["s", "c"]].describe(include="all"))


@pytest.mark.parametrize("npart", [1, 2, 5, 8])
def test_describe_top_ties_match_pandas(npart):
    # 'b'/'a'/'c' tie; pandas keeps the first to appear, and category order for categoricals
    df = pd.DataFrame({"s": ["b", "a", "a", "b", "c", "c"] * 5 + ["d"],
                       "c": pd.Categorical(["x", "y"] * 15 + ["z"], categories=["y", "x", "z", "w"]),
                       "ci": pd.Categorical([1, 2, 2, 1, 3, 3] * 5 + [1]),
                       "b": [True, False] * 15 + [None]})
    ddf = dd.from_pandas(df, npartitions=npart)
    assert_eq(ddf.describe(), df.describe())
    for col in df.columns:
        assert_eq(ddf[col].describe(), df[col].describe())


def test_describe_object_numbers_have_pandas_dtype():
    # count/unique/top/freq of an object column of ints: pandas infers int64 from the values,
    # which the meta (made from fake strings) cannot know
    s = pd.Series([3, 1, 1, 3, 2, 2, 7], dtype=object)
    pd.testing.assert_series_equal(dd.from_pandas(s, npartitions=3).describe().compute(), s.describe())


def test_describe_nullable_and_arrow_dtypes():
    df = pd.DataFrame({"I": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
                       "F": pd.array([1.5, None, 3, 4, 5, 6], dtype="Float64"),
                       "A": pd.array([1.0, 2, 3, None, 5, 6], dtype="float64[pyarrow]"),
                       "S": pd.array(["a", "b", None, "b", "a", "a"], dtype="string"),
                       "u8": np.arange(6, dtype="uint8"), "f32": np.arange(6, dtype="float32")})
    ddf = dd.from_pandas(df, npartitions=3)
    assert_eq(ddf.describe(), df.describe())
    assert_eq(ddf.describe(include="all"), df.describe(include="all"))


def test_describe_empty_and_missing():
    empty = pd.DataFrame({"a": pd.Series([], dtype="int64"), "s": pd.Series([], dtype="str"),
                          "t": pd.Series([], dtype="M8[ns]"), "td": pd.Series([], dtype="m8[ns]")})
    assert_eq(dd.from_pandas(empty, npartitions=1).describe(include="all"), empty.describe(include="all"))
    df = pd.DataFrame({"x": np.arange(20.0), "s": list("abcdefghij") * 2,
                       "t": pd.date_range("2021", periods=20, freq="D")})
    ddf = dd.from_pandas(df, npartitions=4)
    assert_eq(ddf[ddf.x > 14].describe(include="all"), df[df.x > 14].describe(include="all"))  # empty partitions
    missing = pd.DataFrame({"x": [np.nan] * 4, "s": pd.Series([None] * 4, dtype="str")})
    assert_eq(dd.from_pandas(missing, npartitions=2).describe(include="all"), missing.describe(include="all"))


@pytest.mark.parametrize("kwargs", [{"include": "all", "exclude": ["number"]}, {"include": ["timedelta"]},
                                    {"percentiles": [0.5, 0.5]}, {"percentiles": [1.5]}], ids=str)
def test_describe_errors_are_pandas(pdf, kwargs):
    with pytest.raises(ValueError) as expected:
        pdf.describe(**kwargs)
    with pytest.raises(ValueError, match=re.escape(str(expected.value))):
        dd.from_pandas(pdf, npartitions=2).describe(**kwargs)


def test_describe_is_one_pass(pdf):
    calls = []

    def count_reads(part):
        calls.append(len(part))
        return part

    ddf = dd.from_pandas(pdf, npartitions=5).map_partitions(count_reads, meta=pdf)
    ddf.describe(include="all").compute()
    assert len(calls) == 5  # every column of every partition in one task per partition


def test_describe_large_is_exact_except_percentiles():
    rs = np.random.RandomState(0)
    df = pd.DataFrame({"x": rs.randn(50_000), "s": rs.choice(list("abcdefg"), 50_000)})
    exact_rows = ["count", "unique", "top", "freq", "mean", "std", "min", "max"]
    got = dd.from_pandas(df, npartitions=7).describe(include="all").compute()
    expected = df.describe(include="all")
    pd.testing.assert_frame_equal(got.loc[exact_rows], expected.loc[exact_rows], rtol=1e-9)
    spread = df.x.max() - df.x.min()
    assert (got.loc[["25%", "50%", "75%"], "x"] - expected.loc[["25%", "50%", "75%"], "x"]).abs().max() < spread / 500
    # one partition sends all its values: exact percentiles too
    assert_eq(dd.from_pandas(df, npartitions=1).describe(include="all"), expected)


def test_split_every_config(pdf):
    ddf = dd.from_pandas(pdf, npartitions=12, sort=False)
    with lazyarr.config.set({"dataframe.split-every": 2}):
        s = ddf.f.sum()
        deep = [k for k in s.__lazyarr_graph__() if isinstance(k, tuple) and "combine" in k[0]]
        assert len(deep) >= 6
        assert_eq(s, pdf.f.sum())
    with pytest.raises(ValueError, match="at least 2"):
        ddf.f.sum(split_every=1)


def test_nlargest_unique(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.f.nlargest(5), pdf.f.nlargest(5))
    assert_eq(ddf.f.nsmallest(3), pdf.f.nsmallest(3))
    assert ddf.s.unique().compute().tolist() == pd.Series(pdf.s.unique()).tolist()


def test_reductions_of_empty_partitions(pdf):
    ddf = dd.from_pandas(pdf, npartitions=4)
    sub = ddf[ddf.i > 100]
    expect = pdf[pdf.i > 100]
    assert_eq(sub.f.sum(), expect.f.sum())
    assert_eq(sub.f.count(), expect.f.count())
    assert_eq(sub.f.mean(), expect.f.mean())
    assert len(sub) == 0
    half = ddf[ddf.index < 60]
    assert_eq(half.f.max(), pdf[pdf.index < 60].f.max())
    assert_eq(half.s.min(), pdf[pdf.index < 60].s.min())
