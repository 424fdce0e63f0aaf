"""loc/iloc, the .str/.dt/.cat accessors and categorize."""
from __future__ import annotations

import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq


def _partitions_read(frame) -> int:
    return sum(1 for k in frame.__lazyarr_graph__() if isinstance(k, tuple) and str(k[0]).startswith("loc-"))


def test_loc_label_and_range_touch_only_needed_partitions(pdf):
    ddf = dd.from_pandas(pdf, npartitions=6)
    one = ddf.loc[40]
    assert one.npartitions == 1 and _partitions_read(one) == 1
    assert_eq(one, pdf.loc[[40]])
    rng = ddf.loc[30:90]
    assert rng.npartitions < 6
    assert_eq(rng, pdf.loc[30:90])
    assert_eq(ddf.loc[:50], pdf.loc[:50])
    assert_eq(ddf.loc[200:], pdf.loc[200:])
    assert_eq(ddf.loc[31:33], pdf.loc[31:33])
    assert_eq(ddf.loc[1000:2000], pdf.loc[1000:2000])
    assert_eq(ddf.f.loc[10:20], pdf.f.loc[10:20])


def test_loc_lists_masks_and_columns(pdf):
    ddf = dd.from_pandas(pdf, npartitions=5)
    assert_eq(ddf.loc[[2, 100, 236]], pdf.loc[[2, 100, 236]])
    assert_eq(ddf.loc[ddf.f > 0], pdf.loc[pdf.f > 0])
    assert_eq(ddf.loc[10:60, ["f", "s"]], pdf.loc[10:60, ["f", "s"]])
    assert_eq(ddf.loc[:, "f"], pdf.loc[:, "f"])
    with pytest.raises(KeyError, match="'zz'"):
        ddf.loc[:, ["zz"]]


def test_loc_unknown_divisions(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3, sort=False)
    assert_eq(ddf.loc[20:40], pdf.loc[20:40])
    assert_eq(ddf.loc[[4, 8]], pdf.loc[[4, 8]])


def test_loc_datetime_index(pdf):
    tdf = pdf.set_index("t")
    ddf = dd.from_pandas(tdf, npartitions=4)
    assert_eq(ddf.loc["2020-01-02":"2020-01-03"], tdf.loc["2020-01-02":"2020-01-03"])


def test_iloc_columns(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.iloc[:, [0, 2]], pdf.iloc[:, [0, 2]])
    assert_eq(ddf.iloc[:, 1], pdf.iloc[:, 1])
    assert_eq(ddf.iloc[:, 1:3], pdf.iloc[:, 1:3])
    with pytest.raises(NotImplementedError, match="column selection"):
        ddf.iloc[3]


def test_str_accessor(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.s.str.upper(), pdf.s.str.upper())
    assert_eq(ddf.s.str.len(), pdf.s.str.len())
    assert_eq(ddf.s.str.contains("an"), pdf.s.str.contains("an"))
    assert_eq(ddf.s.str.slice(0, 2), pdf.s.str.slice(0, 2))
    assert_eq(ddf.s.str.split("a", n=1, expand=True), pdf.s.str.split("a", n=1, expand=True))
    with pytest.raises(ValueError, match="n="):
        ddf.s.str.split("a", expand=True)
    with pytest.raises(AttributeError):
        ddf.f.str


def test_dt_accessor(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.t.dt.hour, pdf.t.dt.hour)
    assert_eq(ddf.t.dt.day_name(), pdf.t.dt.day_name())
    assert_eq(ddf.t.dt.floor("D"), pdf.t.dt.floor("D"))
    assert_eq(ddf.t.dt.tz_localize("UTC").dt.tz_convert("US/Eastern"),
              pdf.t.dt.tz_localize("UTC").dt.tz_convert("US/Eastern"))


def test_cat_accessor_and_categorize(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.c.cat.codes, pdf.c.cat.codes)
    assert ddf.c.cat.known
    assert list(ddf.c.cat.categories) == ["lo", "mid", "hi"]
    cat = ddf.categorize()
    assert cat.dtypes["s"] == "category"
    expect = pdf.astype({"s": pd.CategoricalDtype(sorted(pdf.s.dropna().unique()))})
    assert_eq(cat, expect)
    only = ddf.categorize(columns=["s"])
    assert list(only.s.cat.categories) == sorted(pdf.s.dropna().unique())
    with pytest.raises(KeyError, match="'zz'"):
        ddf.categorize(columns=["zz"])
