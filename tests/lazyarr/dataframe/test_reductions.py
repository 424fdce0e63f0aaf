"""Tree reductions against pandas, with NaNs, several partitionings and split_every values."""
from __future__ import annotations

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


def test_describe(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.describe(), pdf[NUMERIC].describe(), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="datetime"):
        ddf.t.describe()
    assert_eq(ddf.f.describe(), pdf.f.describe())
    assert_eq(ddf.s.describe(), pdf.s.describe())
    assert_eq(ddf.f.describe(percentiles=[0.1, 0.9]), pdf.f.describe(percentiles=[0.1, 0.9]))


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
