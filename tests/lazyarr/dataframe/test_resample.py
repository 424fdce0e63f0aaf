"""resample against pandas: fixed and calendar rules, closed/label/origin/offset, on partitionings whose
boundaries fall inside bins, with empty partitions, long gaps, a tz-aware index and missing values."""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq

from .conftest import split_rows

AGGS = ["sum", "min", "count", "last", "std"]


def frame(n: int = 150, seed: int = 0, tz: str | None = None) -> pd.DataFrame:
    """Irregular times over about 100 days, some on whole hours and days, with a 25-day gap in the middle."""
    rs = np.random.RandomState(seed)
    minutes = np.sort(rs.randint(0, 60 * 24 * 75, n))
    minutes[n // 2:] += 60 * 24 * 25
    times = pd.Timestamp("2024-01-01 05:07") + pd.to_timedelta(minutes, unit="min")
    times = times.where(np.arange(n) % 4 != 0, times.floor("h")).where(np.arange(n) % 9 != 0, times.floor("D"))
    index = pd.DatetimeIndex(times, name="t")
    if tz:
        index = index.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    pdf = pd.DataFrame({
        "i": rs.randint(0, 10, n),
        "f": rs.randn(n),
        "b": rs.rand(n) > 0.5,
        "s": rs.choice(["x", "y", "z"], n),
    }, index=index)
    pdf.loc[pdf.index[::7], "f"] = np.nan
    pdf.loc[pdf.index[3::11], "s"] = np.nan
    return pdf[pdf.index.notna()]


def _lay_out(pdf: pd.DataFrame, how: str):
    n = len(pdf)
    if how == "1part":
        return dd.from_pandas(pdf, npartitions=1), pdf
    if how == "7parts":
        return dd.from_pandas(pdf, npartitions=7), pdf
    if how == "ragged":  # empty and one-row partitions, some within the gap
        return split_rows(pdf, [1, 2, 0, 30, 1, n // 2 - 34, 0, 0, 10, n - n // 2 - 10], known_divisions=True), pdf
    # a filter keeps the divisions, which then only bound the rows
    ddf = dd.from_pandas(pdf, npartitions=5)
    return ddf[ddf.i > 2], pdf[pdf.i > 2]


@pytest.fixture(params=["1part", "7parts", "ragged", "filtered"])
def layout(request):
    """A function making a (lazy, pandas) pair: one partition, seven even ones, ragged ones with empty
    partitions, or a filtered frame with loose divisions."""
    return lambda pdf: _lay_out(pdf, request.param)


@pytest.fixture(params=["7parts", "ragged", "filtered"])
def split(request):
    """As ``layout``, without the single partition."""
    return lambda pdf: _lay_out(pdf, request.param)


def check_partitions(result) -> None:
    """Each output partition lies within its divisions."""
    parts = result.to_delayed()
    for j, part in enumerate(parts):
        index = part.compute(scheduler="sync").index
        if len(index):
            lo, hi = result.divisions[j], result.divisions[j + 1]
            assert lo <= index[0] and (index[-1] < hi or (j == len(parts) - 1 and index[-1] == hi))


@pytest.mark.parametrize("rule", ["30min", "h", "17min", "D", "7D", "W", "ME", "MS", "QE", "YE", "B", "2W"])
@pytest.mark.parametrize("closed,label", [("left", "right"), ("right", "left")])
def test_rules(split, rule, closed, label):
    ddf, pdf = split(frame())
    r, pr = ddf.resample(rule, closed=closed, label=label), pdf.resample(rule, closed=closed, label=label)
    # the bool column becomes floats when any bin is empty, in every partition
    assert_eq(r[["i", "f", "b"]].agg(AGGS), pr[["i", "f", "b"]].agg(AGGS))


@pytest.mark.parametrize("rule", ["h", "17min", "D", "W", "ME", "B", "2W"])
def test_first_bin_resampled_apart(monkeypatch, split, rule):
    """Partitions from 250,000 rows on resample their own rows and the first bin (shared with the previous
    partition's last rows) apart instead of concatenating; forced here for small ones."""
    monkeypatch.setattr(importlib.import_module("lazyarr.dataframe.resample"), "_SPLIT_ROWS", 0)
    ddf, pdf = split(frame())
    for closed, label in [("left", "right"), ("right", "left")]:
        r, pr = ddf.resample(rule, closed=closed, label=label), pdf.resample(rule, closed=closed, label=label)
        assert_eq(r[["i", "f", "b"]].agg(AGGS), pr[["i", "f", "b"]].agg(AGGS))
        assert_eq(r[["i", "f"]].ohlc(), pr[["i", "f"]].ohlc())
        assert_eq(r.agg({"f": "mean", "s": "last"}), pr.agg({"f": "mean", "s": "last"}))
        assert_eq(r.size(), pr.size())


def test_every_method(scheduler):
    ddf, pdf = _lay_out(frame(), "ragged")
    for rule in ("6h", "W"):
        r, pr = ddf.resample(rule), pdf.resample(rule)
        num, pnum = r[["i", "f"]], pr[["i", "f"]]
        for how in ("sum", "prod", "mean", "median", "std", "var", "sem", "ohlc"):
            assert_eq(getattr(num, how)(), getattr(pnum, how)(), scheduler=scheduler)
        for how in ("min", "max", "count", "size", "nunique", "first", "last"):
            assert_eq(getattr(r, how)(), getattr(pr, how)(), scheduler=scheduler)
        assert_eq(num.quantile(0.3), pnum.quantile(0.3), scheduler=scheduler)
        assert_eq(num.sum(min_count=1), pnum.sum(min_count=1), scheduler=scheduler)
        assert_eq(r.std(ddof=0, numeric_only=True), pr.std(ddof=0, numeric_only=True), scheduler=scheduler)
        assert_eq(r.agg({"f": "mean", "i": ["min", "count"], "s": "last"}),
                  pr.agg({"f": "mean", "i": ["min", "count"], "s": "last"}), scheduler=scheduler)
        assert_eq(r.agg(total=("i", "sum"), top=("f", "max")), pr.agg(total=("i", "sum"), top=("f", "max")),
                  scheduler=scheduler)
        assert_eq(r.i.agg(lambda x: x.max() - x.min()), pr.i.agg(lambda x: x.max() - x.min()),
                  scheduler=scheduler)


def test_series(layout):
    ddf, pdf = layout(frame())
    for rule in ("h", "ME", "B"):
        assert_eq(ddf.f.resample(rule).mean(), pdf.f.resample(rule).mean())
        assert_eq(ddf.i.resample(rule).ohlc(), pdf.i.resample(rule).ohlc())
        assert_eq(ddf.s.resample(rule).first(), pdf.s.resample(rule).first())


@pytest.mark.parametrize("rule", ["h", "D", "7D", "W", "ME", "B"])
def test_tz_aware(split, rule):
    # US/Eastern moves its clocks on 10 March 2024, within the data; '7D' bins start from the first row's date
    ddf, pdf = split(frame(tz="US/Eastern"))
    for closed in ("left", "right"):
        r, pr = ddf.resample(rule, closed=closed), pdf.resample(rule, closed=closed)
        assert_eq(r[["i", "f"]].agg(["sum", "min", "count"]), pr[["i", "f"]].agg(["sum", "min", "count"]))


@pytest.mark.parametrize("origin", ["epoch", "start", "end", "end_day", pd.Timestamp("2023-12-31 23:55")])
@pytest.mark.parametrize("offset", [None, "4min"])
def test_origin_and_offset(origin, offset):
    ddf, pdf = _lay_out(frame(), "7parts")
    for rule, closed in (("17min", None), ("7h", "left"), ("7h", "right"), ("2D", None)):
        kw = {"closed": closed, "origin": origin, "offset": offset}
        assert_eq(ddf.resample(rule, **kw).f.count(), pdf.resample(rule, **kw).f.count())


@pytest.mark.parametrize("how", ["7parts", "ragged"])
def test_pandas_extra_empty_bins(how):
    # pandas starts with an empty bin for 'B' closed on the right when the first row is intraday ...
    ddf, pdf = _lay_out(frame().iloc[1:], how)
    assert pdf.resample("B", closed="right").size().iloc[0] == 0
    assert_eq(ddf.resample("B", closed="right").i.min(), pdf.resample("B", closed="right").i.min())
    # ... and for origin='end', closed='left' when the rows span a whole number of periods
    ddf, pdf = _lay_out(frame().iloc[:-1], how)
    assert pdf.resample("h", closed="left", origin="end").size().iloc[0] == 0
    assert_eq(ddf.resample("h", closed="left", origin="end").i.min(),
              pdf.resample("h", closed="left", origin="end").i.min())


def test_origin_from_rows_with_loose_divisions():
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=5)
    late = ddf[ddf.index > pdf.index[3]]  # the divisions still start at the first row
    with pytest.raises(ValueError, match="origin='epoch' or a Timestamp"):
        late.resample("17min", origin="start").sum().compute()
    expected = pdf[pdf.index > pdf.index[3]].resample("17min", origin="epoch").sum()
    assert_eq(late.resample("17min", origin="epoch").sum(), expected)
    # 'h' bins do not depend on the day they start from
    assert_eq(late.resample("h").sum(), pdf[pdf.index > pdf.index[3]].resample("h").sum())


def test_empty_bins_between_partitions():
    index = pd.DatetimeIndex(["2024-01-01 00:10", "2024-01-01 00:20", "2024-01-01 05:30", "2024-01-01 09:00"],
                             name="t")
    pdf = pd.DataFrame({"i": [1, 2, 3, 4], "b": [True, False, True, True]}, index=index)
    ddf = split_rows(pdf, [2, 0, 1, 1], known_divisions=True)
    r, pr = ddf.resample("h"), pdf.resample("h")
    for how in ("sum", "prod", "count", "size", "nunique", "min", "first", "mean"):
        assert_eq(getattr(r, how)(), getattr(pr, how)())
    assert r.sum().compute().i.tolist() == [3, 0, 0, 0, 0, 3, 0, 0, 0, 4]
    assert r.prod().compute().i.tolist() == [2, 1, 1, 1, 1, 3, 1, 1, 1, 4]
    assert r.i.min().compute().dtype == np.float64
    # no empty bin: the dtypes stay
    full = dd.from_pandas(pdf.iloc[:2], npartitions=2)
    assert_eq(full.resample("h").min(), pdf.iloc[:2].resample("h").min())
    assert full.resample("h").i.min().compute().dtype == np.int64


def test_divisions(layout):
    ddf, pdf = layout(frame())
    for rule, closed in (("D", "right"), ("W", None), ("2W", None)):
        result = ddf.resample(rule, closed=closed).count()
        assert result.known_divisions
        assert result.npartitions <= ddf.npartitions
        check_partitions(result)
        assert_eq(result, pdf.resample(rule, closed=closed).count())


def test_no_rows():
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=3)
    # pandas' dtypes for no rows, which may differ from the meta's (a sum of bools stays bool)
    pd.testing.assert_frame_equal(ddf[ddf.i > 100].resample("h").sum().compute(),
                                  pdf[pdf.i > 100].resample("h").sum())
    assert_eq(ddf[ddf.i > 100].resample("ME").size(), pdf[pdf.i > 100].resample("ME").size())


def test_errors():
    pdf = frame()
    with pytest.raises(TypeError, match="DatetimeIndex"):
        dd.from_pandas(pdf.reset_index(), npartitions=2).resample("h")
    with pytest.raises(ValueError, match=r"known divisions.*set_index\(column, sorted=True\)"):
        dd.from_pandas(pdf, npartitions=2).clear_divisions().resample("h")
    with pytest.raises(NotImplementedError, match="one q"):
        dd.from_pandas(pdf, npartitions=2).resample("h").f.quantile([0.1, 0.9])
    with pytest.raises(TypeError):  # as in pandas: no mean of strings
        dd.from_pandas(pdf, npartitions=2).resample("h").s.mean()
    r = dd.from_pandas(pdf, npartitions=2).resample("h")
    assert "rule=h" in repr(r)
