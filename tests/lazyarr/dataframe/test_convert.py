"""to_datetime and to_numeric: pandas' values and dtypes whatever the partitioning."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq

DAY_FIRST = pd.Series([None, "13/01/2020", "01/02/2020", "", "05/03/2020", "07/04/2021", None, "NaT"] * 3,
                      name="when")


@pytest.mark.parametrize("kwargs", [{"dayfirst": True}, {"format": "%d/%m/%Y"}, {"utc": True, "dayfirst": True},
                                    {"format": "mixed", "dayfirst": True}])
def test_to_datetime_strings(npartitions, scheduler, kwargs):
    ds = dd.from_pandas(DAY_FIRST, npartitions=npartitions)
    assert_eq(dd.to_datetime(ds, **kwargs), pd.to_datetime(DAY_FIRST, **kwargs), scheduler=scheduler)


def test_to_datetime_format_comes_from_the_first_value_of_the_whole_input():
    # '13/01' can only be day first; a partition starting at '01/02' would guess month first
    s = pd.Series(["13/01/2020", "14/01/2020", "01/02/2020", "02/03/2020"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' advice to pass dayfirst=True
        expected = pd.to_datetime(s)
        assert_eq(dd.to_datetime(dd.from_pandas(s, npartitions=2)), expected)
    assert expected.iloc[2] == pd.Timestamp("2020-02-01")


def test_to_datetime_units_errors_and_unparseable_format():
    s = pd.Series(["2020-01-01 10:00:00.5", None, "2020-01-02 11:00:00.25", "junk", "2020-01-03 00:00:00.125"])
    ds = dd.from_pandas(s, npartitions=3)
    assert_eq(dd.to_datetime(ds, errors="coerce"), pd.to_datetime(s, errors="coerce"))
    mixed = pd.Series(["1 Jan 2020", "2020-02-03", "March 5, 2021", None])  # no single format: parsed one by one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert_eq(dd.to_datetime(dd.from_pandas(mixed, npartitions=2), format="mixed"),
                  pd.to_datetime(mixed, format="mixed"))
    missing = pd.Series([None, None, None], dtype=object)
    assert_eq(dd.to_datetime(dd.from_pandas(missing, npartitions=2)), pd.to_datetime(missing))
    with pytest.raises(ValueError, match="junk"):
        dd.to_datetime(dd.from_pandas(pd.Series(["junk", "2020-01-01"]), npartitions=1))


def test_to_datetime_finer_unit_later_is_an_error_with_a_fix():
    s = pd.Series(["2020-01-01 00:00:00.5", "2020-01-01 00:00:00.000000001"], name="t")
    ds = dd.from_pandas(s, npartitions=2)
    with pytest.raises(ValueError, match=r"datetime64\[ns\].*meta="):
        dd.to_datetime(ds).compute()
    assert_eq(dd.to_datetime(ds, meta=("t", "datetime64[ns]")), pd.to_datetime(s))


def test_to_datetime_numbers_frames_categoricals_and_index(npartitions):
    ints = pd.Series([1, 2, 3, 1_600_000_000] * 3)
    assert_eq(dd.to_datetime(dd.from_pandas(ints, npartitions=npartitions), unit="s"), pd.to_datetime(ints, unit="s"))
    floats = ints * 2.0
    assert_eq(dd.to_datetime(dd.from_pandas(floats, npartitions=npartitions), unit="ms"),
              pd.to_datetime(floats, unit="ms"))
    fractions = dd.from_pandas(ints * 1.5, npartitions=npartitions)  # pandas: nanoseconds, seen only in the data
    with pytest.raises(ValueError, match="meta="):
        dd.to_datetime(fractions, unit="s").compute()
    assert_eq(dd.to_datetime(fractions, unit="s", meta=(None, "datetime64[ns]")), pd.to_datetime(ints * 1.5, unit="s"))
    parts = pd.DataFrame({"year": [2020, 2021, 2022] * 3, "month": [1, 2, 3] * 3, "day": [4, 5, 6] * 3})
    assert_eq(dd.to_datetime(dd.from_pandas(parts, npartitions=npartitions)), pd.to_datetime(parts))
    cats = pd.Series(["2020-01-01", "2021-06-30", None] * 3, dtype="category")
    assert_eq(dd.to_datetime(dd.from_pandas(cats, npartitions=npartitions)), pd.to_datetime(cats))
    frame = pd.DataFrame({"x": range(4)}, index=["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04"])
    index = dd.from_pandas(frame, npartitions=2).index
    assert_eq(dd.to_datetime(index), pd.to_datetime(frame.index))
    assert dd.to_datetime("2020-01-01") == pd.Timestamp("2020-01-01")  # not lazy: pandas


DATA = {
    "ints": ["1", "2", "3", "40", "5", "6"],
    "missing": ["1", "2", None, "40", "5", "6"],
    "floats_late": ["1", "2", "3", "40", "5", "6.5"],
    "junk": ["1", "x", "3", "40", "5", "6"],
}


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("kwargs, floats", [({"errors": "coerce"}, "float64"),
                                            ({"errors": "coerce", "dtype_backend": "numpy_nullable"}, "Float64")])
def test_to_numeric_of_strings_is_float_without_reading_the_data(npartitions, data, kwargs, floats):
    s = pd.Series(DATA[data] * 2, name="v")
    ds = dd.from_pandas(s, npartitions=npartitions)
    result = dd.to_numeric(ds, **kwargs)
    assert result.dtype == floats  # decided from the meta alone: ints and floats both fit
    assert_eq(result, pd.to_numeric(s, **kwargs).astype(floats))


@pytest.mark.parametrize("downcast", ["integer", "float"])
def test_to_numeric_downcast_needs_meta(downcast):
    s = pd.Series(DATA["ints"], name="v")
    ds = dd.from_pandas(s, npartitions=3)
    with pytest.raises(ValueError, match="pass meta="):
        dd.to_numeric(ds, downcast=downcast)
    expected = pd.to_numeric(s, downcast=downcast)
    assert_eq(dd.to_numeric(ds, downcast=downcast, meta=("v", expected.dtype)), expected)


def test_to_numeric_numbers_meta_and_errors(scheduler):
    s = pd.Series([1.5, 2, 3, 4])
    ds = dd.from_pandas(s, npartitions=2)
    assert_eq(dd.to_numeric(ds), pd.to_numeric(s), scheduler=scheduler)
    strings = dd.from_pandas(pd.Series(["1", "2", "3", "4"]), npartitions=2)
    assert_eq(dd.to_numeric(strings, meta=(None, "float64")), pd.Series([1.0, 2, 3, 4]))
    with pytest.raises(ValueError, match="Unable to parse string"):
        dd.to_numeric(dd.from_pandas(pd.Series(["1", "x"]), npartitions=2)).compute()
    with pytest.raises(ValueError, match="does not fit the declared int64"):  # a float where ints were declared
        dd.to_numeric(dd.from_pandas(pd.Series(["1", "2.5"]), npartitions=2), meta=(None, "int64")).compute()
    with pytest.raises(TypeError, match="Series or an Index"):
        dd.to_numeric(dd.from_pandas(pd.DataFrame({"a": ["1"]}), npartitions=1))
    assert dd.to_numeric("12") == 12
