"""groupby aggregations (tree reductions, split_out) and apply/transform (shuffles) against pandas."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq

AGGS = ["sum", "mean", "count", "min", "max", "std", "var", "size", "first", "last", "nunique", "prod"]


@pytest.mark.parametrize("how", AGGS)
def test_single_key_aggregations(pdf, npartitions, how):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    cols = ["g", "i", "f"]
    assert_eq(getattr(ddf[cols].groupby("g"), how)(), getattr(pdf[cols].groupby("g"), how)())
    assert_eq(getattr(ddf.groupby("g").f, how)(), getattr(pdf.groupby("g").f, how)())


@pytest.mark.parametrize("how", ["sum", "mean", "count", "min", "max", "std", "first", "last", "nunique", "size"])
def test_multi_key_and_string_keys(pdf, how):
    ddf = dd.from_pandas(pdf, npartitions=4)
    assert_eq(getattr(ddf.groupby(["g", "s"]).f, how)(), getattr(pdf.groupby(["g", "s"]).f, how)())
    assert_eq(getattr(ddf.groupby("s").i, how)(), getattr(pdf.groupby("s").i, how)())


def test_string_and_datetime_values(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    for how in ["min", "max", "first", "last", "count", "nunique"]:
        assert_eq(getattr(ddf.groupby("g").s, how)(), getattr(pdf.groupby("g").s, how)())
        assert_eq(getattr(ddf.groupby("g").t, how)(), getattr(pdf.groupby("g").t, how)())
    with pytest.raises(TypeError):
        ddf.groupby("g").s.mean()


def test_categorical_key(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.groupby("c").f.sum(), pdf.groupby("c").f.sum())
    assert_eq(ddf.groupby("c").i.mean(), pdf.groupby("c").i.mean())


def test_dropna_keys():
    pdf = pd.DataFrame({"k": [1.0, np.nan, 2.0, 1.0, np.nan, 3.0] * 5, "x": np.arange(30.0)})
    ddf = dd.from_pandas(pdf, npartitions=4)
    assert_eq(ddf.groupby("k").x.sum(), pdf.groupby("k").x.sum())
    assert_eq(ddf.groupby("k", dropna=False).x.sum(), pdf.groupby("k", dropna=False).x.sum())
    assert_eq(ddf.groupby("k", dropna=False).x.var(), pdf.groupby("k", dropna=False).x.var())


def test_agg_forms(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    g, pg = ddf.groupby("g"), pdf.groupby("g")
    assert_eq(g.agg({"f": "sum", "i": ["min", "max", "mean"]}), pg.agg({"f": "sum", "i": ["min", "max", "mean"]}))
    assert_eq(g.agg({"f": "sum", "i": "max"}), pg.agg({"f": "sum", "i": "max"}))
    assert_eq(g[["f", "i"]].agg(["sum", "count", "std"]), pg[["f", "i"]].agg(["sum", "count", "std"]))
    assert_eq(g.agg(total=("f", "sum"), spread=("i", "std"), n=("s", "count"), u=("s", "nunique")),
              pg.agg(total=("f", "sum"), spread=("i", "std"), n=("s", "count"), u=("s", "nunique")))
    assert_eq(g.f.agg(["mean", "size"]), pg.f.agg(["mean", "size"]))
    assert_eq(g.f.agg("mean"), pg.f.agg("mean"))
    assert_eq(g.f.agg(np.sum), pg.f.agg("sum"))


def test_unsupported_agg_and_bad_keys(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(NotImplementedError, match="apply"):
        ddf.groupby("g").f.agg("median")
    with pytest.raises(KeyError, match="'zz'"):
        ddf.groupby("g").agg({"zz": "sum"})
    with pytest.raises(KeyError, match="'zz'"):
        ddf.groupby("g")["zz"]


def test_var_ddof_and_stability():
    rs = np.random.RandomState(3)
    pdf = pd.DataFrame({"k": rs.randint(0, 4, 4000), "x": 1e8 + rs.rand(4000)})
    ddf = dd.from_pandas(pdf, npartitions=6)
    assert_eq(ddf.groupby("k").x.var(), pdf.groupby("k").x.var(), rtol=1e-6)
    assert_eq(ddf.groupby("k").x.std(ddof=0), pdf.groupby("k").x.std(ddof=0), rtol=1e-6)


def test_groupby_by_lazy_series(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.groupby(ddf.i % 3).f.sum(), pdf.groupby(pdf.i % 3).f.sum())
    assert_eq(ddf.f.groupby(ddf.g).max(), pdf.f.groupby(pdf.g).max())
    assert_eq(ddf.groupby([ddf.g, "s"]).f.count(), pdf.groupby([pdf.g, "s"]).f.count())


def test_fast_integer_path_matches_pandas():
    rs = np.random.RandomState(4)
    n = 5000
    pdf = pd.DataFrame({"k": rs.randint(-50, 50, n), "x": rs.rand(n), "y": rs.rand(n)})
    pdf.loc[::17, "x"] = np.nan
    ddf = dd.from_pandas(pdf, npartitions=5)
    assert_eq(ddf.groupby("k").mean(), pdf.groupby("k").mean())
    assert_eq(ddf.groupby("k").sum(), pdf.groupby("k").sum())
    assert_eq(ddf.groupby("k").count(), pdf.groupby("k").count())
    assert_eq(ddf.groupby("k").size(), pdf.groupby("k").size())
    huge = pdf.assign(z=rs.randint(0, 2**62, n))  # int sums beyond float64's exact range: hash path
    assert_eq(dd.from_pandas(huge, npartitions=5).groupby("k").z.sum(), huge.groupby("k").z.sum())
    sparse = pdf.assign(k=pdf.k * 10**9)  # too sparse for bincount: the hash path must agree
    assert_eq(dd.from_pandas(sparse, npartitions=5).groupby("k").mean(), sparse.groupby("k").mean())


@pytest.mark.parametrize("split_out", [2, 5])
def test_split_out(pdf, split_out):
    ddf = dd.from_pandas(pdf, npartitions=4)
    result = ddf.groupby("i").f.mean(split_out=split_out)
    assert result.npartitions == split_out
    assert_eq(result, pdf.groupby("i").f.mean(), sort_results=True)
    assert_eq(ddf.groupby(["i", "s"]).agg({"f": ["sum", "nunique"]}, split_out=split_out),
              pdf.groupby(["i", "s"]).agg({"f": ["sum", "nunique"]}), sort_results=True)


def test_sort_false(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.groupby("g", sort=False).f.sum(), pdf.groupby("g").f.sum(), sort_results=True)


@pytest.mark.parametrize("method", ["disk", "tasks"])
def test_apply_and_transform(pdf, method, scheduler):
    ddf = dd.from_pandas(pdf, npartitions=4)

    def top(g):
        return g.nlargest(2, "i")[["i", "f"]]

    got = ddf.groupby("g").apply(top, meta={"i": "int64", "f": "float64"}, shuffle_method=method)
    expect = pdf.groupby("g").apply(top)
    assert_eq(got, expect, sort_results=True, scheduler=scheduler)
    assert_eq(ddf.groupby("g").f.apply(lambda s: s.max() - s.min(), shuffle_method=method),
              pdf.groupby("g").f.apply(lambda s: s.max() - s.min()), sort_results=True)
    assert_eq(ddf.groupby("g").f.transform("mean", shuffle_method=method),
              pdf.groupby("g").f.transform("mean"), sort_results=True)
    assert_eq(ddf.groupby("g")[["f", "i"]].transform(lambda x: x - x.mean(), shuffle_method=method),
              pdf.groupby("g")[["f", "i"]].transform(lambda x: x - x.mean()), sort_results=True)


def test_apply_by_series_key(pdf):
    ddf = dd.from_pandas(pdf, npartitions=4)
    got = ddf.groupby(ddf.i % 2).f.transform("sum")
    assert_eq(got, pdf.groupby(pdf.i % 2).f.transform("sum"), sort_results=True)
