"""groupby by the index (level=, the index's name, ddf.index), as_index=False, sort=False and observed=,
against pandas on several partitionings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq
from lazyarr.dataframe import groupby as groupby_module
from lazyarr.dataframe.core import AlignmentError

from .conftest import split_rows

AGGS = ["sum", "mean", "count", "min", "max", "std", "var", "size", "first", "last", "nunique", "prod"]
NUMERIC_ONLY = {"sum", "mean", "std", "var", "prod"}

# the same grouping spelled the ways pandas accepts: each gives pandas.groupby(**kwargs) of the frame
KEY_FORMS = {
    "level=0": lambda f: {"level": 0},
    "level=name": lambda f: {"level": "ix"},
    "index name": lambda f: {"by": "ix"},
    ".index": lambda f: {"by": f.index},
    "[.index, col]": lambda f: {"by": [f.index, "k"]},
    "[col, index name]": lambda f: {"by": ["k", "ix"]},
}


def make_keyed(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """A frame with an unsorted, duplicated integer index named 'ix' and int, float (with NaN),
    string and categorical (one category unused) columns."""
    rs = np.random.RandomState(seed)
    df = pd.DataFrame({
        "k": rs.randint(0, 4, n),
        "x": rs.randn(n),
        "i": rs.randint(-5, 5, n),
        "s": rs.choice(["a", "b", "c"], n),
        "c": pd.Categorical(rs.choice(["lo", "hi"], n), categories=["lo", "mid", "hi"]),
    }, index=pd.Index(rs.randint(0, 12, n) * 2, name="ix"))
    df.iloc[::7, 1] = np.nan
    return df


@pytest.fixture(params=["1part", "unsorted", "sorted", "ragged"])
def keyed(request) -> tuple:
    """(lazy frame, the pandas frame with its rows in the same order): one partition; an unsorted index in 4
    partitions (unknown divisions); sorted by index (known divisions); ragged with empty partitions."""
    pdf = make_keyed()
    if request.param == "1part":
        return dd.from_pandas(pdf, npartitions=1, sort=False), pdf
    if request.param == "unsorted":
        return dd.from_pandas(pdf, npartitions=4, sort=False), pdf
    if request.param == "sorted":
        pdf = pdf.sort_index(kind="stable")
        return dd.from_pandas(pdf, npartitions=4), pdf
    return split_rows(pdf, [0, 1, 0, 30, len(pdf) - 41, 0, 10]), pdf


def _frame_for(how: str, frame):
    return frame[["k", "x", "i"]] if how in NUMERIC_ONLY else frame[["k", "x", "i", "s"]]


# ---------------------------------------------------------------- grouping by the index

def _check(got, expect, how: str, **kwargs) -> None:
    assert_eq(getattr(got, how)(), getattr(expect, how)(), rtol=1e-9, **kwargs)


@pytest.mark.parametrize("how", AGGS)
def test_index_key_aggregations(keyed, how):
    ddf, pdf = keyed
    ddf, pdf = _frame_for(how, ddf), _frame_for(how, pdf)
    for form in KEY_FORMS:  # the single-key spellings resolve to one key: each is checked on one result
        got, expect = ddf.groupby(**KEY_FORMS[form](ddf)), pdf.groupby(**KEY_FORMS[form](pdf))
        if form == "level=0":
            _check(got, expect, how)
        if form in (".index", "[.index, col]", "[col, index name]"):
            _check(got.x, expect.x, how)
    _check(ddf.groupby(level="ix")[["x", "k"]], pdf.groupby(level="ix")[["x", "k"]], how)


def test_series_grouped_by_its_index(keyed, scheduler):
    ddf, pdf = keyed
    for s, ps in [(ddf.x, pdf.x), (ddf.x.rename(None), pdf.x.rename(None))]:
        for how, keys in [("sum", lambda f: {"level": 0}), ("std", lambda f: {"by": "ix"}),
                          ("nunique", lambda f: {"by": f.index}), ("size", lambda f: {"level": "ix"})]:
            _check(s.groupby(**keys(s)), ps.groupby(**keys(ps)), how, scheduler=scheduler)


def test_index_key_agg_forms_and_split_out(keyed):
    ddf, pdf = keyed
    for form in [".index", "[col, index name]"]:
        g, pg = ddf.groupby(**KEY_FORMS[form](ddf)), pdf.groupby(**KEY_FORMS[form](pdf))
        assert_eq(g.agg({"x": ["sum", "mean"], "i": "max", "s": "nunique"}),
                  pg.agg({"x": ["sum", "mean"], "i": "max", "s": "nunique"}))
        assert_eq(g.agg(total=("x", "sum"), spread=("i", "std"), n=("s", "count")),
                  pg.agg(total=("x", "sum"), spread=("i", "std"), n=("s", "count")))
        assert_eq(g[["x", "i"]].agg(["min", "size"]), pg[["x", "i"]].agg(["min", "size"]))
        assert_eq(g.x.mean(split_out=3), pg.x.mean(), sort_results=True)
        assert_eq(g.s.nunique(split_out=2), pg.s.nunique(), sort_results=True)


def test_key_derived_from_the_index(keyed):
    ddf, pdf = keyed
    # an Index key lines up with the rows by position, as in pandas
    assert_eq(ddf.groupby(ddf.index // 6).x.sum(), pdf.groupby(pdf.index // 6).x.sum())
    assert_eq(ddf.groupby([ddf.index % 4, "k"]).i.max(), pdf.groupby([pdf.index % 4, "k"]).i.max())
    assert_eq(ddf.groupby(ddf.index // 6).x.transform("max"), pdf.groupby(pdf.index // 6).x.transform("max"),
              sort_results=True)


def test_index_with_the_fast_integer_path(monkeypatch):
    """An integer index is a compact integer key: sums and counts come from bincount, in pandas' order."""
    calls = []
    original = groupby_module._bincount_chunk

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(groupby_module, "_bincount_chunk", spy)
    pdf = make_keyed()[["x", "i"]]
    ddf = dd.from_pandas(pdf, npartitions=3, sort=False)
    for sort in [True, False]:
        calls.clear()
        assert_eq(ddf.groupby(level=0, sort=sort).mean(), pdf.groupby(level=0, sort=sort).mean())
        assert calls and all(calls)


# ---------------------------------------------------------------- as_index=False

@pytest.mark.parametrize("how", AGGS)
def test_as_index_false_aggregations(how):
    """The keys become columns in the last step: one ragged partitioning with empty partitions suffices."""
    pdf = make_keyed()
    ddf = split_rows(pdf, [0, 1, 0, 30, len(pdf) - 41, 0, 10])
    ddf, pdf = _frame_for(how, ddf), _frame_for(how, pdf)
    key_sets = [
        (lambda f: {"by": "k"}),
        (lambda f: {"level": 0}),
        (lambda f: {"by": (f.i % 3).rename(None)}),  # unnamed: becomes an 'index' column
        (lambda f: {"by": [(f.i % 3).rename(None), (f.k * 2).rename(None)]}),  # 'level_0', 'level_1'
        (lambda f: {"by": f.i % 3}),  # named like a value column: not inserted
    ]
    for j, keys in enumerate(key_sets):
        got = ddf.groupby(as_index=False, **keys(ddf))
        expect = pdf.groupby(as_index=False, **keys(pdf))
        _check(got, expect, how)
        if j % 2 == 0:
            _check(got.x, expect.x, how)


def test_as_index_false_agg_forms(keyed, scheduler):
    ddf, pdf = keyed
    for keys in ["k", ["k", "ix"]]:
        g, pg = ddf.groupby(keys, as_index=False), pdf.groupby(keys, as_index=False)
        assert_eq(g.agg(total=("x", "sum"), top=("i", "max"), u=("s", "nunique")),
                  pg.agg(total=("x", "sum"), top=("i", "max"), u=("s", "nunique")), scheduler=scheduler)
        assert_eq(g.agg({"x": ["sum", "mean"], "i": "size"}), pg.agg({"x": ["sum", "mean"], "i": "size"}))
        assert_eq(g[["x", "i"]].agg(["sum", "count"]), pg[["x", "i"]].agg(["sum", "count"]))
        assert_eq(g.x.agg(["mean", "size"]), pg.x.agg(["mean", "size"]))
        assert_eq(g.size(), pg.size())
        assert_eq(g.x.size(), pg.x.size())
        # the index restarts in each of the split_out partitions
        got = g.x.sum(split_out=3)
        assert got.npartitions == 3
        assert_eq(got, pg.x.sum(), sort_results=True, check_index=False)


def test_as_index_false_row_wise_operations(keyed, scheduler):
    """transform and the cumulative operations ignore as_index in pandas; apply puts the keys in columns."""
    ddf, pdf = keyed
    g, pg = ddf.groupby("k", as_index=False), pdf.groupby("k", as_index=False)
    assert_eq(g.x.cumsum(), pg.x.cumsum(), scheduler=scheduler)
    assert_eq(g.cumcount(), pg.cumcount(), scheduler=scheduler)
    assert_eq(g[["x", "i"]].shift(2), pg[["x", "i"]].shift(2), scheduler=scheduler)
    assert_eq(g.x.transform("mean"), pg.x.transform("mean"), sort_results=True, scheduler=scheduler)
    # apply: pandas' result per partition of whole groups, so the index restarts in each partition
    assert_eq(g.x.apply(lambda s: s.max() - s.min()), pg.x.apply(lambda s: s.max() - s.min()),
              sort_results=True, check_index=False, scheduler=scheduler)


# ---------------------------------------------------------------- row-wise operations with index keys

def test_cumulative_with_index_keys(keyed, scheduler):
    ddf, pdf = keyed
    for form in ["level=0", "[.index, col]"]:
        g, pg = ddf.groupby(**KEY_FORMS[form](ddf)), pdf.groupby(**KEY_FORMS[form](pdf))
        assert_eq(g.x.cumsum(), pg.x.cumsum(), scheduler=scheduler)
        assert_eq(g[["x", "i"]].cummax(), pg[["x", "i"]].cummax(), scheduler=scheduler)
        assert_eq(g.i.cumprod(), pg.i.cumprod(), scheduler=scheduler)
        assert_eq(g.cumcount(ascending=False), pg.cumcount(ascending=False), scheduler=scheduler)
        assert_eq(g.x.shift(2), pg.x.shift(2), scheduler=scheduler)
        assert_eq(g[["x", "i"]].diff(-1), pg[["x", "i"]].diff(-1), scheduler=scheduler)
    assert_eq(ddf.groupby("ix").x.cumsum(), pdf.groupby("ix").x.cumsum(), scheduler=scheduler)
    assert_eq(ddf.x.groupby(level=0).cummin(), pdf.x.groupby(level=0).cummin(), scheduler=scheduler)


# the shuffle method does not depend on the keys (test_groupby.py runs both everywhere): one per scheduler
@pytest.mark.parametrize("scheduler,method", [("sync", "tasks"), ("threads", "disk")])
def test_apply_and_transform_with_index_keys(keyed, scheduler, method):
    ddf, pdf = keyed
    for form in ["level=0", "[col, index name]"]:
        g, pg = ddf.groupby(**KEY_FORMS[form](ddf)), pdf.groupby(**KEY_FORMS[form](pdf))
        assert_eq(g.x.transform("sum", shuffle_method=method), pg.x.transform("sum"), sort_results=True,
                  scheduler=scheduler)
        assert_eq(g[["x", "i"]].transform(lambda v: v - v.mean(), shuffle_method=method),
                  pg[["x", "i"]].transform(lambda v: v - v.mean()), sort_results=True, scheduler=scheduler)
        assert_eq(g.x.apply(lambda s: s.max() - s.min(), shuffle_method=method),
                  pg.x.apply(lambda s: s.max() - s.min()), sort_results=True, scheduler=scheduler)

    def top(frame):
        return frame.nlargest(1, "i")[["i", "x"]]

    got = ddf.groupby(level=0).apply(top, meta={"i": "int64", "x": "float64"}, shuffle_method=method)
    assert_eq(got, pdf.groupby(level=0).apply(top), sort_results=True, scheduler=scheduler)
    assert_eq(ddf.x.groupby(level="ix").transform("count", shuffle_method=method),
              pdf.x.groupby(level="ix").transform("count"), sort_results=True, scheduler=scheduler)


# ---------------------------------------------------------------- missing keys, categories, sort=False

def _nan_keyed() -> pd.DataFrame:
    rs = np.random.RandomState(1)
    n = 60
    return pd.DataFrame({"kf": rs.choice([1.0, np.nan, 2.0], n), "x": rs.randn(n), "i": rs.randint(0, 5, n)},
                        index=pd.Index(rs.choice([3.0, 1.0, np.nan, 2.0], n), name="ix"))


@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("dropna", [True, False])
def test_missing_keys(dropna, sort):
    pdf = _nan_keyed()
    for ddf in [dd.from_pandas(pdf, npartitions=3, sort=False), split_rows(pdf, [0, 7, 0, 40, 13])]:
        for keys in [{"level": 0}, {"by": ["ix", "kf"]}]:
            g = ddf.groupby(dropna=dropna, sort=sort, **keys)
            pg = pdf.groupby(dropna=dropna, sort=sort, **keys)
            for how in ["sum", "count", "mean", "var", "size", "first", "nunique"]:
                assert_eq(getattr(g.x, how)(), getattr(pg.x, how)())
            flat = ddf.groupby(dropna=dropna, sort=sort, as_index=False, **keys)
            assert_eq(flat.agg(t=("x", "sum"), u=("i", "nunique")),
                      pdf.groupby(dropna=dropna, sort=sort, as_index=False, **keys).agg(t=("x", "sum"),
                                                                                         u=("i", "nunique")))
            assert_eq(g.x.cumsum(), pg.x.cumsum())
            assert_eq(g.x.transform("sum"), pg.x.transform("sum"), sort_results=True)


def _categorical_keyed() -> pd.DataFrame:
    rs = np.random.RandomState(2)
    n = 60
    return pd.DataFrame({
        "x": rs.randn(n),
        "c": pd.Categorical(rs.choice(["u", "v"], n), categories=["w", "v", "u"]),
    }, index=pd.CategoricalIndex(rs.choice(["lo", "hi"], n), categories=["lo", "mid", "hi"], name="ix"))


@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("observed", [True, False])
def test_categorical_keys(observed, sort):
    pdf = _categorical_keyed()
    ddf = dd.from_pandas(pdf, npartitions=4, sort=False)
    for keys in [{"level": 0}, {"by": "c"}, {"by": ["ix", "c"]}, {"by": [ddf.index, "c"]}]:
        pkeys = {"by": [pdf.index, "c"]} if "by" in keys and isinstance(keys["by"], list) \
            and not isinstance(keys["by"][0], str) else keys
        g = ddf.groupby(observed=observed, sort=sort, **keys)
        pg = pdf.groupby(observed=observed, sort=sort, **pkeys)
        for how in ["sum", "count", "mean", "min", "size", "first", "nunique"]:
            assert_eq(getattr(g.x, how)(), getattr(pg.x, how)())
        assert_eq(g.x.nunique(split_out=2), pg.x.nunique(), sort_results=True)
        assert_eq(g.cumcount(), pg.cumcount())
        if "level" not in keys and not isinstance(keys["by"], list):  # as_index=False needs column keys here
            flat = ddf.groupby(observed=observed, sort=sort, as_index=False, **keys)
            pflat = pdf.groupby(observed=observed, sort=sort, as_index=False, **keys)
            assert_eq(flat.x.sum(), pflat.x.sum())
            assert_eq(flat.size(), pflat.size())


def test_sort_false_is_order_of_first_appearance(keyed):
    """pandas' sort=False lists groups as they first appear; the partials keep that order through the
    tree (also on the bincount path for integer keys)."""
    ddf, pdf = keyed
    for keys in ["k", "s", ["s", "k"], "ix"]:
        for how in ["sum", "mean", "size", "nunique", "max"]:
            assert_eq(getattr(ddf.groupby(keys, sort=False).x, how)(), getattr(pdf.groupby(keys, sort=False).x, how)())
    assert_eq(ddf.groupby("k", sort=False).agg(n=("i", "count"), t=("x", "sum")),
              pdf.groupby("k", sort=False).agg(n=("i", "count"), t=("x", "sum")))


# ---------------------------------------------------------------- errors

def test_key_errors():
    pdf = make_keyed()
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(ValueError, match="both an index level and a column label"):
        ddf.assign(ix=1).groupby("ix")
    with pytest.raises(TypeError, match="supply one of 'by' and 'level'"):
        ddf.groupby()
    with pytest.raises(TypeError, match="not both"):
        ddf.groupby("k", level=0)
    with pytest.raises(ValueError, match="only valid with MultiIndex"):
        ddf.groupby(level=1)
    with pytest.raises(ValueError, match="only valid with MultiIndex"):
        ddf.groupby(level=[0, 0])
    with pytest.raises(ValueError, match="level name zz is not the name of the index"):
        ddf.groupby(level="zz")
    with pytest.raises(TypeError, match="as_index=False only valid with DataFrame"):
        ddf.x.groupby(level=0, as_index=False)
    with pytest.raises(KeyError, match="unknown column 'zz'"):
        ddf.groupby(["k", "zz"])
    with pytest.raises(KeyError, match="'zz'"):
        ddf.x.groupby("zz")
    with pytest.raises(TypeError, match="groupby keys are"):
        ddf.groupby(pdf.index)
    with pytest.raises(AlignmentError):
        ddf.groupby(dd.from_pandas(pdf, npartitions=2, sort=False).index)
    multi = dd.from_pandas(pdf.set_index("k", append=True), npartitions=1, sort=False)
    for keys in [{"level": 0}, {"by": "ix"}, {"by": multi.index}]:
        with pytest.raises(NotImplementedError, match="MultiIndex"):
            multi.groupby(**keys)
