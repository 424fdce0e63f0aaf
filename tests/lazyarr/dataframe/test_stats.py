"""nlargest/nsmallest of frames, mode, corr/cov and memory_usage against pandas, on several partitionings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq

NUMERIC = ["i", "f", "g"]


@pytest.mark.parametrize("columns", ["i", ["g", "i"], ["f"], ["g", "t"]])
def test_frame_nlargest_nsmallest(pdf, npartitions, scheduler, columns):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    # many ties in i and g: pandas keeps the earliest rows, and so must the tree reduction
    assert_eq(ddf.nlargest(10, columns), pdf.nlargest(10, columns), scheduler=scheduler)
    assert_eq(ddf.nsmallest(7, columns, split_every=2), pdf.nsmallest(7, columns), scheduler=scheduler)


def test_frame_nlargest_more_than_rows_and_errors(pdf):
    ddf = dd.from_pandas(pdf, npartitions=4)
    assert_eq(ddf.nlargest(500, "f"), pdf.nlargest(500, "f"))
    with pytest.raises(KeyError, match="unknown column 'nope'"):
        ddf.nlargest(3, "nope")
    with pytest.raises(TypeError, match="columns="):
        ddf.nsmallest(3)
    with pytest.raises(TypeError):
        ddf.nlargest(3, "s")  # pandas refuses strings, and says so now


@pytest.mark.parametrize("column", ["i", "g", "s", "c", "f", "t"])
def test_mode(pdf, npartitions, column):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf[column].mode(), pdf[column].mode())
    assert_eq(ddf[column].mode(dropna=False), pdf[column].mode(dropna=False))


def test_mode_ties_missing_and_empty(scheduler):
    s = pd.Series([3.0, np.nan, 1.0, np.nan, 3.0, 1.0, np.nan, 2.0], name="x")
    ds = dd.from_pandas(s, npartitions=3)
    assert_eq(ds.mode(), s.mode(), scheduler=scheduler)  # 1 and 3 tie
    assert_eq(ds.mode(dropna=False), s.mode(dropna=False), scheduler=scheduler)  # NaN wins
    cat = pd.Series(pd.Categorical([None, None], categories=["b", "a"]))
    assert_eq(dd.from_pandas(cat, npartitions=2).mode(), cat.mode())
    assert_eq(dd.from_pandas(s.iloc[:0], npartitions=1).mode(), s.iloc[:0].mode())


def _with_gaps() -> pd.DataFrame:
    rs = np.random.RandomState(3)
    df = pd.DataFrame({"a": rs.randn(200), "b": rs.randn(200) * 5 + 1, "c": rs.randint(0, 4, 200),
                       "d": rs.rand(200) > 0.5})
    df["b"] += df["a"]
    df.loc[df.index[::7], "a"] = np.nan
    df.loc[df.index[3:60], "b"] = np.nan  # pairs have different numbers of rows
    return df


@pytest.mark.parametrize("npartitions", [1, 4, 9])
def test_corr_cov_with_missing_values(npartitions, scheduler):
    pdf = _with_gaps()
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.corr(), pdf.corr(), scheduler=scheduler)
    assert_eq(ddf.cov(), pdf.cov(), scheduler=scheduler)
    assert_eq(ddf.cov(ddof=0), pdf.cov(ddof=0))  # pandas ignores ddof when values are missing
    assert_eq(ddf.corr(min_periods=150), pdf.corr(min_periods=150))
    assert_eq(ddf.cov(min_periods=150, split_every=2), pdf.cov(min_periods=150))


@pytest.mark.parametrize("npartitions", [1, 3, 7])
def test_corr_cov_without_missing_values(npartitions):
    pdf = _with_gaps().fillna(0.5)
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.corr(), pdf.corr())
    for ddof in (0, 1, 2):
        assert_eq(ddf.cov(ddof=ddof), pdf.cov(ddof=ddof))
    assert_eq(ddf.cov(min_periods=1000), pdf.cov(min_periods=1000))
    assert_eq(ddf.a.corr(ddf.b), pdf.a.corr(pdf.b))


def test_corr_is_stable_with_large_offsets():
    rs = np.random.RandomState(0)
    x = rs.rand(5000)
    pdf = pd.DataFrame({"x": 1e9 + x, "y": 1e9 - 3 * x + rs.rand(5000) * 0.1})
    ddf = dd.from_pandas(pdf, npartitions=8)
    assert_eq(ddf.corr(), pdf.corr(), rtol=1e-6)
    assert_eq(ddf.cov(), pdf.cov(), rtol=1e-6)
    assert np.isclose(ddf.x.cov(ddf.y).compute(), pdf.x.cov(pdf.y), rtol=1e-6)


def test_corr_constant_column_short_pairs_and_numeric_only(pdf):
    frame = pd.DataFrame({"k": [2.0] * 6, "v": [1.0, 2, 4, 3, 5, 7], "w": [np.nan] * 5 + [1.0]})
    ddf = dd.from_pandas(frame, npartitions=3)
    assert_eq(ddf.corr(), frame.corr())  # constant column and a single-row pair: NaN
    assert_eq(ddf.cov(), frame.cov())
    mixed = dd.from_pandas(pdf, npartitions=3)
    assert_eq(mixed.corr(numeric_only=True), pdf.corr(numeric_only=True))
    with pytest.raises(TypeError, match="numeric_only=True"):
        mixed.corr()
    with pytest.raises(NotImplementedError, match="pearson"):
        mixed[NUMERIC].corr(method="spearman")


@pytest.mark.parametrize("npartitions", [1, 4])
def test_series_corr_cov(npartitions, scheduler):
    pdf = _with_gaps()
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.a.corr(ddf.b), pdf.a.corr(pdf.b), scheduler=scheduler)
    assert_eq(ddf.a.cov(ddf.b), pdf.a.cov(pdf.b), scheduler=scheduler)
    assert_eq(ddf.a.cov(ddf.c, ddof=0), pdf.a.cov(pdf.c, ddof=0))
    assert_eq(ddf.a.corr(ddf.b, min_periods=500), pdf.a.corr(pdf.b, min_periods=500))
    assert_eq(ddf.c.corr(ddf.d.astype(float)), pdf.c.corr(pdf.d.astype(float)))
    with pytest.raises(TypeError, match="lazy Series"):
        ddf.a.corr(pdf.b)


def test_series_corr_of_filtered_frames_aligns_by_index():
    pdf = _with_gaps()
    ddf = dd.from_pandas(pdf, npartitions=4)
    left, right = ddf.a[ddf.c > 0], ddf.b[ddf.c < 3]  # different rows of the same partitions
    assert_eq(left.corr(right), pdf.a[pdf.c > 0].corr(pdf.b[pdf.c < 3]))
    assert_eq(left.cov(right), pdf.a[pdf.c > 0].cov(pdf.b[pdf.c < 3]))


def test_memory_usage(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    parts = [ddf.get_partition(i).compute() for i in range(npartitions)]
    for index, deep in [(True, False), (False, True)]:
        expected = sum(p.memory_usage(index=index, deep=deep) for p in parts)
        assert_eq(ddf.memory_usage(index=index, deep=deep), expected)
        assert_eq(ddf.f.memory_usage(index=index, deep=deep), sum(p.f.memory_usage(index=index, deep=deep)
                                                                     for p in parts))
    # pandas' shape; numeric columns take exactly what pandas says
    result = ddf.memory_usage().compute()
    assert list(result.index) == list(pdf.memory_usage().index)
    assert (result[NUMERIC] == pdf.memory_usage()[NUMERIC]).all()
