"""cumsum/cumprod/cummax/cummin and groupby cumulative ops, shift and diff against pandas, on many partitionings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq

from .conftest import make_frame

CUMULATIVE = ["cumsum", "cumprod", "cummax", "cummin"]


def frame(n: int = 60) -> pd.DataFrame:
    """Numbers with missing stretches (an all-missing start, a gap longer than a partition), nullable ints, bools."""
    pdf = make_frame(n)
    pdf["f"] = pdf["f"] / 4 + 1  # keeps cumprod in range
    pdf.loc[pdf.index[:3], "f"] = np.nan
    pdf.loc[pdf.index[20:40], "f"] = np.nan
    pdf["n"] = pd.array([1, None, 2, 1] * (n // 4), dtype="Int64")
    pdf["b"] = pdf["i"] > 3
    pdf["td"] = pd.to_timedelta(pdf["i"], unit="s")
    pdf["oc"] = pd.Categorical(pdf["s"], categories=["date", "cherry", "banana", "apple"], ordered=True)
    pdf["none"] = np.nan
    return pdf


NUMERIC = ["i", "f", "n", "b", "none"]
ORDERED = {"cumsum": ["td"], "cumprod": [], "cummax": ["t", "s", "oc"], "cummin": ["t", "s", "oc"]}


@pytest.mark.parametrize("how", CUMULATIVE)
@pytest.mark.parametrize("skipna", [True, False])
def test_cumulative_matches_pandas(layout, how, skipna):
    pdf = frame()
    ddf = layout(pdf)
    cols = NUMERIC + ORDERED[how]
    assert_eq(getattr(ddf[cols], how)(skipna=skipna), getattr(pdf[cols], how)(skipna=skipna))
    assert_eq(getattr(ddf.f, how)(skipna=skipna), getattr(pdf.f, how)(skipna=skipna))


@pytest.mark.parametrize("how", CUMULATIVE)
def test_cumulative_on_threads_and_axis1(scheduler, how):
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=5)
    assert_eq(getattr(ddf[["i", "f"]], how)(), getattr(pdf[["i", "f"]], how)(), scheduler=scheduler)
    assert_eq(getattr(ddf[["i", "f"]], how)(axis=1), getattr(pdf[["i", "f"]], how)(axis=1), scheduler=scheduler)


def test_cumulative_keeps_partitioning_and_lines_up():
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=4).clear_divisions()
    out = ddf.f.cumsum()
    assert out.npartitions == 4 and out.divisions == ddf.divisions
    assert_eq(ddf.f - out, pdf.f - pdf.f.cumsum())  # rows line up with the source: no alignment needed
    assert_eq(ddf.cumsum(numeric_only=True), pdf.cumsum(numeric_only=True))


def test_cumulative_partitions_run_in_parallel():
    ddf = dd.from_pandas(frame(), npartitions=4)
    graph = ddf.f.cumsum().__lazyarr_graph__()
    name = ddf.f.cumsum()._name
    # each partition's own cumsum depends only on that partition; just the small states are chained
    locals_ = [k for k in graph if k[0] == f"{name}-local"]
    carries = [k for k in graph if k[0] == f"{name}-carry"]
    assert len(locals_) == 4 and len(carries) == 3


def test_cumulative_errors():
    ddf = dd.from_pandas(frame(), npartitions=2)
    with pytest.raises(TypeError):
        ddf.c.cumsum()  # pandas cannot add categoricals: raised when the operation is written
    with pytest.raises(ValueError, match="no axis"):
        ddf.f.cumsum(axis=2)


# ---------------------------------------------------------------- groupby

KEYS = {
    "column": lambda f: "g",
    "columns": lambda f: ["g", "s"],
    "series": lambda f: f.i % 3,
}


@pytest.mark.parametrize("how, key", [("cumsum", "column"), ("cumprod", "series"), ("cummax", "columns"),
                                      ("cummin", "series")])
def test_groupby_cumulative(layout, how, key):
    pdf = frame()
    ddf = layout(pdf)
    cols = ["i", "f", "n"] + (["t"] if how in ("cummax", "cummin") else [])
    pk, dk = KEYS[key](pdf), KEYS[key](ddf)
    assert_eq(getattr(ddf.groupby(dk)[cols], how)(), getattr(pdf.groupby(pk)[cols], how)())
    assert_eq(getattr(ddf.groupby(dk).f, how)(skipna=False), getattr(pdf.groupby(pk).f, how)(skipna=False))


def test_groupby_cumulative_missing_and_categorical_keys(scheduler):
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=6)
    for dropna in (True, False):
        assert_eq(ddf.groupby("s", dropna=dropna).f.cumsum(), pdf.groupby("s", dropna=dropna).f.cumsum(),
                  scheduler=scheduler)
        assert_eq(ddf.groupby("s", dropna=dropna).cumcount(), pdf.groupby("s", dropna=dropna).cumcount(),
                  scheduler=scheduler)
    assert_eq(ddf.groupby("c").i.cummax(), pdf.groupby("c", observed=True).i.cummax(), scheduler=scheduler)
    assert_eq(ddf.i.groupby(ddf.g).cumsum(), pdf.i.groupby(pdf.g).cumsum(), scheduler=scheduler)
    unnamed = dd.from_pandas(pdf.f.rename(None), npartitions=6)
    assert_eq(unnamed.groupby(ddf.g).cumsum(), pdf.f.rename(None).groupby(pdf.g).cumsum())


@pytest.mark.parametrize("ascending", [True, False])
def test_groupby_cumcount(layout, ascending):
    pdf = frame()
    ddf = layout(pdf)
    assert_eq(ddf.groupby("g").cumcount(ascending=ascending), pdf.groupby("g").cumcount(ascending=ascending))
    assert_eq(ddf.groupby(["g", "c"]).f.cumcount(ascending=ascending),
              pdf.groupby(["g", "c"], observed=True).f.cumcount(ascending=ascending))


@pytest.mark.parametrize("periods", [0, 1, 3, -2, 70])
def test_groupby_shift_and_diff(layout, periods):
    pdf = frame()
    ddf = layout(pdf)
    assert_eq(ddf.groupby("g").shift(periods), pdf.groupby("g").shift(periods))
    assert_eq(ddf.groupby("s", dropna=False).f.diff(periods), pdf.groupby("s", dropna=False).f.diff(periods))
    assert_eq(ddf.groupby(ddf.i % 2).f.shift(periods, fill_value=0.5),
              pdf.groupby(pdf.i % 2).f.shift(periods, fill_value=0.5))


def test_groupby_shift_errors():
    ddf = dd.from_pandas(frame(), npartitions=2)
    with pytest.raises(NotImplementedError, match="freq"):
        ddf.groupby("g").shift(1, freq="h")
    with pytest.raises(TypeError, match="periods must be an integer"):
        ddf.groupby("g").diff(1.5)
