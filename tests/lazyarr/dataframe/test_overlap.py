"""map_overlap, shift, diff and pct_change against pandas, on partitionings with short and empty partitions."""
from __future__ import annotations

import importlib

import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq

from .conftest import make_frame, split_rows


def frame(n: int = 60) -> pd.DataFrame:
    pdf = make_frame(n)[["i", "f", "s", "t"]]
    pdf["n"] = pd.array([1, None, 3, 4] * (n // 4), dtype="Int64")
    return pdf


@pytest.mark.parametrize("periods", [0, 1, 3, -1, -4, 59, 200])
@pytest.mark.parametrize("patch", [False, True])
def test_shift_diff_pct_change(monkeypatch, layout, periods, patch):
    if patch:  # partitions from 50,000 rows on patch their edge rows instead of concatenating: force it
        monkeypatch.setattr(importlib.import_module("lazyarr.dataframe.overlap"), "_PATCH_ROWS", 0)
    pdf = frame()
    ddf = layout(pdf)
    assert_eq(ddf.shift(periods), pdf.shift(periods))
    assert_eq(ddf.f.shift(periods, fill_value=0.0), pdf.f.shift(periods, fill_value=0.0))
    assert_eq(ddf[["i", "f", "n", "t"]].diff(periods), pdf[["i", "f", "n", "t"]].diff(periods))
    assert_eq(ddf.f.pct_change(periods), pdf.f.pct_change(periods))


def test_shift_on_threads_axis1_and_alignment(scheduler):
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=6).clear_divisions()
    assert_eq(ddf.f - ddf.f.shift(2), pdf.f - pdf.f.shift(2), scheduler=scheduler)
    assert_eq(ddf[["i", "f"]].shift(1, axis=1), pdf[["i", "f"]].shift(1, axis=1), scheduler=scheduler)
    assert_eq(ddf[["i", "f"]].diff(axis=1), pdf[["i", "f"]].diff(axis=1), scheduler=scheduler)


def test_shift_with_freq_moves_the_index():
    pdf = frame().set_index("t")
    ddf = dd.from_pandas(pdf, npartitions=4)
    hourly = ddf.shift(3, freq="h")
    assert hourly.divisions == tuple(d + pd.Timedelta("3h") for d in ddf.divisions)
    assert_eq(hourly, pdf.shift(3, freq="h"))
    business = ddf.f.shift(1, freq="B")
    assert not business.known_divisions  # calendar offsets can map two labels to one
    assert_eq(business, pdf.f.shift(1, freq="B"))
    assert_eq(ddf.f + ddf.f.shift(-2, freq="h"), pdf.f + pdf.f.shift(-2, freq="h"))
    with pytest.raises(NotImplementedError, match="infer"):
        ddf.shift(1, freq="infer")


def test_shift_errors():
    ddf = dd.from_pandas(frame(), npartitions=2)
    with pytest.raises(TypeError, match="periods must be an integer"):
        ddf.shift(1.5)
    with pytest.raises(ValueError, match="fill_method must be None"):
        ddf.f.pct_change(fill_method="pad")
    with pytest.raises(NotImplementedError, match="freq"):
        ddf.f.pct_change(freq="h")


def _spread(x: pd.DataFrame) -> pd.Series:
    return x.f.rolling(3, center=True, min_periods=1).max() - x.i


@pytest.mark.parametrize("before, after", [(0, 0), (2, 0), (0, 1), (1, 1), (5, 5)])
def test_map_overlap_rows(layout, before, after):
    pdf = frame()
    ddf = layout(pdf)
    expected = pdf.f.rolling(before + 1, min_periods=1).sum().shift(-after)
    result = ddf.map_overlap(lambda x: x.f.rolling(before + 1, min_periods=1).sum().shift(-after), before, after)
    assert_eq(result, expected)  # the borrowed rows give every row its full window
    assert_eq(dd.map_overlap(_spread, ddf, 1, 1), _spread(pdf))


@pytest.mark.parametrize("span", ["2h", pd.Timedelta("5h")])
def test_map_overlap_time_span(layout, span):
    pdf = frame().set_index("t")
    ddf = layout(pdf)
    assert_eq(ddf[["i", "f"]].map_overlap(lambda x: x.rolling(span).sum(), span, 0),
              pdf[["i", "f"]].rolling(span).sum())
    backwards = ddf.f.map_overlap(lambda x: x[::-1].rolling(span).sum()[::-1], 0, span)
    assert_eq(backwards, pdf.f[::-1].rolling(span).sum()[::-1])


def test_map_overlap_arguments(scheduler):
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=5)
    offset = ddf.i.mean()
    assert_eq(ddf.map_overlap(lambda x, c, scale=1: (x.f.diff() - c) * scale, 1, 0, offset, scale=2),
              (pdf.f.diff() - pdf.i.mean()) * 2, scheduler=scheduler)
    assert_eq(ddf.f.map_overlap(lambda a, b: a.shift(1) + b.shift(-1), 1, 1, ddf.i),
              pdf.f.shift(1) + pdf.i.shift(-1), scheduler=scheduler)
    named = ddf.map_overlap(lambda x: x.f.diff(), 1, 0, meta=("change", "f8"))
    assert named._meta.name == "change"
    assert_eq(named, pdf.f.diff().rename("change"), scheduler=scheduler)


def test_map_overlap_errors():
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(ValueError, match="one row per input row"):
        ddf.map_overlap(lambda x: x.iloc[1:], 1, 0).compute()
    with pytest.raises(TypeError, match="Series or DataFrame"):
        ddf.map_overlap(lambda x: len(x), 1, 0)
    with pytest.raises(ValueError, match="non-negative"):
        ddf.map_overlap(lambda x: x, -1, 0)
    with pytest.raises(TypeError, match="needs a datetime or timedelta index"):
        ddf.map_overlap(lambda x: x, "2h", 0)
    with pytest.raises(ValueError, match="not a fixed time span"):
        dd.from_pandas(pdf.set_index("t"), npartitions=2).map_overlap(lambda x: x, "MS", 0)
    by_time = pdf.set_index("t")
    unsorted = split_rows(pd.concat([by_time.iloc[30:], by_time.iloc[:30]]), [30, 30])
    with pytest.raises(ValueError, match="sorted across partitions"):
        unsorted.f.rolling("2h").sum().compute()
