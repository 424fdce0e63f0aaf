"""rolling windows (rows and time spans) against pandas, on partitionings with short and empty partitions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq

from .conftest import make_frame

METHODS = ["sum", "mean", "min", "max", "std", "var", "count", "median"]


def frame(n: int = 60) -> pd.DataFrame:
    pdf = make_frame(n)[["i", "f", "t"]]
    pdf.loc[pdf.index[20:30], "f"] = np.nan
    return pdf


def by_time(n: int = 60) -> pd.DataFrame:
    """An hourly datetime index with a gap, so that windows hold varying numbers of rows."""
    pdf = frame(n).set_index("t")
    return pdf.set_axis(pdf.index.where(pdf.index.hour % 7 != 3, pdf.index + pd.Timedelta("20min")))


@pytest.mark.parametrize("window", [1, 3, 12, 100])
@pytest.mark.parametrize("center", [False, True])
def test_rolling_rows(layout, window, center):
    pdf = frame()
    ddf = layout(pdf)
    for how in METHODS:
        assert_eq(getattr(ddf[["i", "f"]].rolling(window, center=center), how)(),
                  getattr(pdf[["i", "f"]].rolling(window, center=center), how)())
    assert_eq(ddf.f.rolling(window, min_periods=1, center=center).sum(),
              pdf.f.rolling(window, min_periods=1, center=center).sum())


@pytest.mark.parametrize("window", ["90min", "5h", "3D"])
@pytest.mark.parametrize("center", [False, True])
def test_rolling_time_span(layout, window, center):
    pdf = by_time()
    ddf = layout(pdf)
    for how in METHODS:
        assert_eq(getattr(ddf.rolling(window, center=center), how)(),
                  getattr(pdf.rolling(window, center=center), how)())
    assert_eq(ddf.i.rolling(window, closed="both").sum(), pdf.i.rolling(window, closed="both").sum())


def _change(window) -> float:
    values = np.asarray(window)  # an array (raw=True) or a Series
    return values[-1] - values[0]


def test_rolling_apply_agg_and_others(scheduler):
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=9)
    r, pr = ddf[["i", "f"]].rolling(4), pdf[["i", "f"]].rolling(4)
    for raw in (True, False):
        assert_eq(r.apply(_change, raw=raw), pr.apply(_change, raw=raw), scheduler=scheduler)
    assert_eq(r.agg(["sum", "max"]), pr.agg(["sum", "max"]), scheduler=scheduler)
    assert_eq(r.agg({"i": "mean", "f": "min"}), pr.agg({"i": "mean", "f": "min"}), scheduler=scheduler)
    assert_eq(ddf.f.rolling(5).agg("mean"), pdf.f.rolling(5).agg("mean"), scheduler=scheduler)
    assert_eq(r.std(ddof=0), pr.std(ddof=0), scheduler=scheduler)
    assert_eq(r.quantile(0.25), pr.quantile(0.25), scheduler=scheduler)
    for how in ("sem", "skew", "kurt"):
        assert_eq(getattr(r, how)(), getattr(pr, how)(), scheduler=scheduler)


def test_rolling_win_type():
    pytest.importorskip("scipy")
    pdf = frame()
    ddf = dd.from_pandas(pdf, npartitions=7)
    assert_eq(ddf.f.rolling(5, win_type="triang").mean(), pdf.f.rolling(5, win_type="triang").mean())
    assert_eq(ddf.i.rolling(4, win_type="gaussian", center=True).sum(std=2),
              pdf.i.rolling(4, win_type="gaussian", center=True).sum(std=2))


def test_rolling_keeps_partitioning():
    ddf = dd.from_pandas(frame(), npartitions=5)
    out = ddf.f.rolling(3).mean()
    assert out.divisions == ddf.divisions
    assert "window=3" in repr(ddf.rolling(3))


def test_rolling_errors():
    ddf = dd.from_pandas(frame(), npartitions=3)
    with pytest.raises(Exception, match="non-numeric"):
        ddf.rolling(3).sum()  # the datetime column: pandas' error, raised when the operation is written
    with pytest.raises(ValueError, match="window must be an integer"):
        ddf.rolling("2h")  # a time span on an integer index
    with pytest.raises(ValueError):
        ddf.rolling(-1)
    with pytest.raises(NotImplementedError, match="BaseIndexer"):
        ddf.rolling(pd.api.indexers.FixedForwardWindowIndexer(window_size=2))
