"""explode, melt, get_dummies, pivot_table and known/unknown categories, against pandas."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq


@pytest.fixture
def lists(pdf) -> pd.DataFrame:
    n = len(pdf)
    return pdf.assign(L=[[1, 2], [], [3], np.nan] * (n // 4), W=[["a", "b"], ["c"], [], ["d"]] * (n // 4))


# ---------------------------------------------------------------- explode

def test_explode(lists, npartitions, scheduler):
    ddf = dd.from_pandas(lists, npartitions=npartitions)
    assert_eq(ddf.explode("L"), lists.explode("L"), scheduler=scheduler)
    assert_eq(ddf.explode(["L", "W"]).drop(columns="W"), lists.explode(["L", "W"]).drop(columns="W"))
    assert_eq(ddf.L.explode(), lists.L.explode(), scheduler=scheduler)
    assert ddf.explode("L").divisions == ddf.divisions
    flat = ddf.explode("L", ignore_index=True)
    assert not flat.known_divisions
    assert_eq(flat, lists.explode("L", ignore_index=True), check_index=False)
    with pytest.raises(KeyError, match="unknown column 'nope'"):
        ddf.explode("nope")


def test_explode_strings_stay_object(lists):
    # pandas 3 makes an all-strings explosion 'str', which only the whole column can tell
    ddf = dd.from_pandas(lists, npartitions=3)
    out = ddf.explode("W")
    assert out.W.dtype == object
    assert_eq(out, lists.explode("W").astype({"W": object}))
    assert_eq(ddf.s.explode(), lists.s.explode())  # str values explode to themselves


# ---------------------------------------------------------------- melt

@pytest.mark.parametrize("kwargs", [
    {"id_vars": "i"},
    {"id_vars": ["i", "s"], "value_vars": ["f", "g"]},
    {"id_vars": "g", "value_vars": "c", "var_name": "V", "value_name": "W"},
    {"value_vars": ["i", "s", "t"]},
    {"id_vars": ["t"], "value_vars": ["f", "i"], "ignore_index": False},
])
def test_melt_matches_pandas_row_order(pdf, npartitions, scheduler, kwargs):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    expected = pd.melt(pdf, **kwargs)
    check_index = not kwargs.get("ignore_index", True)  # otherwise positions restart per partition
    assert_eq(dd.melt(ddf, **kwargs), expected, check_index=check_index, scheduler=scheduler)
    assert_eq(ddf.melt(**kwargs), expected, check_index=check_index)


def test_melt_errors_and_nothing_to_unpivot(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(KeyError, match="nope"):
        dd.melt(ddf, id_vars="nope")
    frame = pdf[["i"]]
    assert_eq(dd.melt(dd.from_pandas(frame, npartitions=2), id_vars="i"), pd.melt(frame, id_vars="i"),
              check_index=False)


# ---------------------------------------------------------------- get_dummies

def test_get_dummies(pdf, npartitions, scheduler):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    frame = pdf[["i", "c"]]
    assert_eq(dd.get_dummies(ddf[["i", "c"]]), pd.get_dummies(frame), scheduler=scheduler)
    kwargs = {"prefix": "p", "dummy_na": True, "drop_first": True, "dtype": float}
    assert_eq(dd.get_dummies(ddf.c, **kwargs), pd.get_dummies(pdf.c, **kwargs))
    known = ddf.categorize(columns=["s"])
    pknown = pdf.assign(s=pdf.s.astype(pd.CategoricalDtype(sorted(pdf.s.dropna().unique()))))
    assert_eq(dd.get_dummies(known, columns=["s", "c"], prefix_sep="/"),
              pd.get_dummies(pknown, columns=["s", "c"], prefix_sep="/"))


def test_get_dummies_partitions_with_fewer_categories():
    # concat of frames with different categories: partitions hold only some of the meta's categories
    a = pd.DataFrame({"k": pd.Categorical(["x", "y"])}, index=[0, 1])
    b = pd.DataFrame({"k": pd.Categorical(["z", "z"])}, index=[2, 3])
    ddf = dd.concat([dd.from_pandas(a, npartitions=1), dd.from_pandas(b, npartitions=1)])
    expected = pd.get_dummies(pd.concat([a, b]).astype({"k": pd.CategoricalDtype(["x", "y", "z"])}))
    assert_eq(dd.get_dummies(ddf), expected)


def test_get_dummies_needs_known_categories(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(ValueError, match=r"categorize\(columns=\['s'\]\)"):
        dd.get_dummies(ddf)  # a string column: pandas would encode it, its values are unknown
    unknown = ddf.s.astype("category")
    assert not unknown.cat.known
    with pytest.raises(ValueError, match="unknown"):
        dd.get_dummies(unknown)
    with pytest.raises(ValueError, match="not categorical"):
        dd.get_dummies(ddf, columns=["i"])
    with pytest.raises(KeyError, match="nope"):
        dd.get_dummies(ddf, columns=["nope"])


def test_astype_category_makes_unknown_categories_and_categorize_finds_them(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    unknown = ddf.astype({"s": "category"})
    assert not unknown.s.cat.known and ddf.c.cat.known
    assert ddf.astype({"c": "category"}).c.cat.known  # a categorical keeps its categories
    assert ddf.s.astype(pd.CategoricalDtype(["apple"])).cat.known
    assert_eq(unknown, pdf.astype({"s": "category"}))
    known = unknown.categorize()  # picks up columns with unknown categories
    assert known.s.cat.known
    assert list(known.s.cat.categories) == sorted(pdf.s.dropna().unique())


def test_categorize_named_categorical_keeps_order_of_occurring_categories():
    pdf = pd.DataFrame({"k": pd.Categorical(["b", "c", "b"], categories=["c", "a", "b"], ordered=True)})
    out = dd.from_pandas(pdf, npartitions=2).categorize(columns=["k"])
    assert out.k.dtype == pd.CategoricalDtype(["c", "b"], ordered=True)
    assert_eq(out, pdf.astype({"k": out.k.dtype}))


# ---------------------------------------------------------------- pivot_table

@pytest.fixture
def sales() -> pd.DataFrame:
    rs = np.random.RandomState(2)
    n = 90
    df = pd.DataFrame({"shop": rs.randint(0, 6, n).astype(float),
                       "item": pd.Categorical(rs.choice(["pen", "ink", "cap"], n), categories=["pen", "ink", "cap"]),
                       "qty": rs.randint(1, 9, n), "price": rs.rand(n) * 10})
    df.loc[df.index[::10], "shop"] = np.nan  # missing keys are left out, as pandas does
    df.loc[df.index[::7], "price"] = np.nan
    df.loc[df.index[5::17], "item"] = np.nan
    return df


@pytest.mark.parametrize("aggfunc", ["mean", "sum", "count", "first", "last"])
@pytest.mark.parametrize("values", ["qty", ["price", "qty"]])
def test_pivot_table(sales, npartitions, scheduler, aggfunc, values):
    ddf = dd.from_pandas(sales, npartitions=npartitions)
    expected = pd.pivot_table(sales, index="shop", columns="item", values=values, aggfunc=aggfunc, observed=False)
    assert_eq(dd.pivot_table(ddf, index="shop", columns="item", values=values, aggfunc=aggfunc), expected,
              scheduler=scheduler)
    assert_eq(ddf.pivot_table(index="shop", columns="item", values=values, aggfunc=aggfunc, split_every=2),
              expected)


def test_pivot_table_unobserved_categories(sales):
    wider = sales.astype({"item": pd.CategoricalDtype(["pen", "ink", "cap", "box"])})
    ddf = dd.from_pandas(wider, npartitions=3)
    for aggfunc in ("sum", "count"):  # pandas keeps the column, filled with zeros
        assert_eq(ddf.pivot_table(index="shop", columns="item", values="qty", aggfunc=aggfunc),
                  wider.pivot_table(index="shop", columns="item", values="qty", aggfunc=aggfunc, observed=False))
    with pytest.raises(ValueError, match=r"no values for \['box'\].*categorize"):
        ddf.pivot_table(index="shop", columns="item", values="qty", aggfunc="mean").compute()
    trimmed = ddf.categorize(columns=["item"])
    assert_eq(trimmed.pivot_table(index="shop", columns="item", values="qty", aggfunc="mean"),
              sales.pivot_table(index="shop", columns="item", values="qty", aggfunc="mean", observed=False))


def test_pivot_table_without_any_complete_row_raises():
    pdf = pd.DataFrame({"k": [np.nan, np.nan], "c": pd.Categorical(["x", "y"]), "v": [1, 2]})
    assert pd.pivot_table(pdf, index="k", columns="c", values="v", aggfunc="sum", observed=False).shape == (0, 0)
    with pytest.raises(ValueError, match=r"no values for \['x', 'y'\]"):
        dd.pivot_table(dd.from_pandas(pdf, npartitions=2), index="k", columns="c", values="v", aggfunc="sum").compute()


def test_pivot_table_errors(sales):
    ddf = dd.from_pandas(sales, npartitions=2)
    with pytest.raises(ValueError, match="'index' must be the name of an existing column"):
        ddf.pivot_table(index="nope", columns="item", values="qty")
    with pytest.raises(ValueError, match="'columns' must be the name"):
        ddf.pivot_table(index="shop", columns=["item"], values="qty")
    with pytest.raises(ValueError, match="'values' must refer"):
        ddf.pivot_table(index="shop", columns="item", values=None)
    with pytest.raises(ValueError, match="aggfunc"):
        ddf.pivot_table(index="shop", columns="item", values="qty", aggfunc="median")
    with pytest.raises(ValueError, match="not categorical"):
        ddf.pivot_table(index="item", columns="shop", values="qty")
    with pytest.raises(ValueError, match="unknown"):
        ddf.assign(item=ddf.item.astype(str).astype("category")).pivot_table(index="shop", columns="item",
                                                                              values="qty")
