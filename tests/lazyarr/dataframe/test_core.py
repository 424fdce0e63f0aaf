"""Types, meta, creation from pandas, row-wise operations, alignment and error messages."""
from __future__ import annotations

import sys
import subprocess

import numpy as np
import pandas as pd
import pytest

import lazyarr
import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq
from lazyarr.dataframe.core import AlignmentError
from lazyarr.dataframe.utils import MetaMismatchError, check_meta, make_meta, meta_nonempty


def test_import_lazyarr_does_not_import_pandas():
    code = "import sys, lazyarr; lazyarr.config; assert 'pandas' not in sys.modules, 'pandas imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_from_pandas_divisions_and_meta(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert ddf.npartitions <= npartitions
    assert ddf.known_divisions
    assert ddf.divisions[0] == pdf.index.min() and ddf.divisions[-1] == pdf.index.max()
    assert list(ddf.columns) == list(pdf.columns)
    assert (ddf.dtypes == pdf.dtypes).all()
    assert len(ddf._meta) == 0
    assert_eq(ddf, pdf)


def test_from_pandas_partitions_are_views(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    part = ddf.__lazyarr_graph__()[(ddf._name, 0)]
    assert np.shares_memory(part["f"].to_numpy(), pdf["f"].to_numpy())


def test_from_pandas_unsorted_and_duplicates():
    pdf = pd.DataFrame({"x": range(12)}, index=[3, 1, 2, 2, 2, 2, 5, 5, 0, 9, 9, 9])
    ddf = dd.from_pandas(pdf, npartitions=4)
    assert_eq(ddf, pdf.sort_index(kind="stable"))
    # equal labels never straddle partitions
    parts = [ddf.get_partition(i).compute() for i in range(ddf.npartitions)]
    seen = [set(p.index) for p in parts]
    for a in range(len(seen)):
        for b in range(a + 1, len(seen)):
            assert not seen[a] & seen[b]
    unsorted = dd.from_pandas(pdf, npartitions=3, sort=False)
    assert not unsorted.known_divisions
    assert_eq(unsorted, pdf)


def test_from_pandas_chunksize_and_series(pdf):
    ddf = dd.from_pandas(pdf.f, chunksize=50)
    assert isinstance(ddf, dd.Series) and ddf.npartitions == 3
    assert_eq(ddf, pdf.f)
    with pytest.raises(ValueError, match="exactly one"):
        dd.from_pandas(pdf, npartitions=2, chunksize=3)


def test_from_pandas_same_data_same_name(pdf):
    assert dd.from_pandas(pdf, npartitions=2)._name == dd.from_pandas(pdf.copy(), npartitions=2)._name
    other = pdf.copy()
    other.iloc[0, 1] = 123.0
    assert dd.from_pandas(other, npartitions=2)._name != dd.from_pandas(pdf, npartitions=2)._name


def test_repr_and_html(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    text = repr(ddf)
    assert "npartitions=3" in text and "float64" in text and "category" in text
    assert "<table" in ddf._repr_html_()
    assert "npartitions=3" in repr(ddf.f)


def test_head_reads_only_first_partition(pdf):
    ddf = dd.from_pandas(pdf, npartitions=4)
    calls = []

    def spy(part):
        calls.append(len(part))
        return part

    spied = ddf.map_partitions(spy, meta=ddf._meta)
    head = spied.head(3)
    assert_eq(head, pdf.head(3))
    assert len(calls) == 1
    assert_eq(ddf.tail(4), pdf.tail(4))
    with pytest.warns(UserWarning, match="only"):
        ddf.head(1000)
    assert len(ddf.head(1000, npartitions=-1)) == len(pdf)


def test_len_and_size(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert len(ddf) == len(pdf)
    assert len(ddf[ddf.f > 0]) == (pdf.f > 0).sum()
    assert ddf.size.compute() == pdf.size
    assert ddf.f.size.compute() == pdf.f.size


def test_column_selection(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.f, pdf.f)
    assert_eq(ddf["s"], pdf["s"])
    assert_eq(ddf[["f", "i"]], pdf[["f", "i"]])
    assert "f" in dir(ddf)


def test_unknown_column_errors(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(KeyError, match="'nope'.*available columns.*'f'"):
        ddf["nope"]
    with pytest.raises(KeyError, match="'zz'"):
        ddf[["f", "zz"]]
    with pytest.raises(AttributeError):
        ddf.nope
    with pytest.raises(KeyError, match="'nope'"):
        ddf.groupby("nope")
    with pytest.raises(KeyError, match="'nope'"):
        ddf.drop(columns=["nope"])
    with pytest.raises(KeyError, match="'nope'"):
        ddf.astype({"nope": float})


def test_arithmetic_and_comparisons(pdf, npartitions, scheduler):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.f + ddf.i, pdf.f + pdf.i, scheduler=scheduler)
    assert_eq(ddf.f * 2 - 1, pdf.f * 2 - 1, scheduler=scheduler)
    assert_eq(1 / (ddf.i + 1), 1 / (pdf.i + 1), scheduler=scheduler)
    assert_eq(ddf.i // 3, pdf.i // 3)
    assert_eq(ddf.i % 3 == 0, pdf.i % 3 == 0)
    assert_eq((ddf.f > 0) & (ddf.i < 5), (pdf.f > 0) & (pdf.i < 5))
    assert_eq(~(ddf.f > 0), ~(pdf.f > 0))
    assert_eq(-ddf.f, -pdf.f)
    assert_eq(abs(ddf.f), abs(pdf.f))
    assert_eq(ddf[["f", "i"]] * 10, pdf[["f", "i"]] * 10)
    assert_eq(ddf.f.add(ddf.i, fill_value=0), pdf.f.add(pdf.i, fill_value=0))
    assert_eq(ddf.t - pd.Timestamp("2020-01-01"), pdf.t - pd.Timestamp("2020-01-01"))
    assert_eq(ddf.s + "!", pdf.s + "!")


def test_scalar_arithmetic_with_reductions(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.f - ddf.f.mean(), pdf.f - pdf.f.mean())
    assert_eq((ddf.f.max() - ddf.f.min()) * 2, (pdf.f.max() - pdf.f.min()) * 2)
    assert_eq(ddf.f.mean() + 1, pdf.f.mean() + 1)


def test_boolean_filter_and_where_mask(pdf, npartitions):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf[ddf.f > 0], pdf[pdf.f > 0])
    assert_eq(ddf[(ddf.s == "apple") | ddf.f.isna()], pdf[(pdf.s == "apple") | pdf.f.isna()])
    assert_eq(ddf.f.where(ddf.f > 0, -1), pdf.f.where(pdf.f > 0, -1))
    assert_eq(ddf.f.mask(ddf.i > 5), pdf.f.mask(pdf.i > 5))
    assert_eq(ddf[["f", "i"]].where(ddf[["f", "i"]] > 0), pdf[["f", "i"]].where(pdf[["f", "i"]] > 0))
    with pytest.raises(TypeError, match="boolean"):
        ddf[ddf.f]


def test_assign_and_setitem(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.assign(z=ddf.f * 2, w=1, v=lambda d: d.i + 1),
              pdf.assign(z=pdf.f * 2, w=1, v=lambda d: d.i + 1))
    d2 = ddf.copy()
    d2["new"] = d2.i * 3
    p2 = pdf.copy()
    p2["new"] = p2.i * 3
    assert_eq(d2, p2)
    with pytest.raises(TypeError, match="pandas"):
        ddf.assign(z=pdf.f)
    with pytest.raises(TypeError, match="line up"):
        ddf.assign(z=[1, 2, 3])


def test_rowwise_methods(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.f.fillna(0), pdf.f.fillna(0))
    assert_eq(ddf.fillna({"f": -1.0}), pdf.fillna({"f": -1.0}))
    assert_eq(ddf.dropna(), pdf.dropna())
    assert_eq(ddf.dropna(subset=["s"]), pdf.dropna(subset=["s"]))
    assert_eq(ddf.isna(), pdf.isna())
    assert_eq(ddf.notna(), pdf.notna())
    assert_eq(ddf.f.isnull(), pdf.f.isnull())
    assert_eq(ddf.rename(columns={"f": "F"}), pdf.rename(columns={"f": "F"}))
    assert_eq(ddf.f.rename("g2"), pdf.f.rename("g2"))
    assert_eq(ddf.drop(columns=["s", "t"]), pdf.drop(columns=["s", "t"]))
    assert_eq(ddf.drop("c", axis=1), pdf.drop("c", axis=1))
    assert_eq(ddf.i.isin([1, 3]), pdf.i.isin([1, 3]))
    assert_eq(ddf.s.isin(["apple"]), pdf.s.isin(["apple"]))
    assert_eq(ddf.f.between(-0.5, 0.5), pdf.f.between(-0.5, 0.5))
    assert_eq(ddf.f.clip(-1, 1), pdf.f.clip(-1, 1))
    assert_eq(ddf.f.abs(), pdf.f.abs())
    assert_eq(ddf.f.round(2), pdf.f.round(2))
    assert_eq(ddf.i.astype("float32"), pdf.i.astype("float32"))
    assert_eq(ddf.astype({"i": "int32"}), pdf.astype({"i": "int32"}))
    assert_eq(ddf.select_dtypes("number"), pdf.select_dtypes("number"))
    assert_eq(ddf.query("i > 4"), pdf.query("i > 4"))
    assert_eq(ddf.i.map({1: "one"}), pdf.i.map({1: "one"}))
    assert_eq(ddf.reset_index(), pdf.reset_index(), check_index=False)
    with pytest.raises(TypeError, match="list-like"):
        ddf.i.isin(3)


def test_apply_rows_and_map_partitions(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.apply(lambda r: r.i * 2 + 1, axis=1, meta=("x", "int64")),
              pdf.apply(lambda r: r.i * 2 + 1, axis=1).rename("x"))
    inferred = ddf[["i", "f"]].apply(lambda r: r.i + r.f, axis=1)
    assert_eq(inferred, pdf[["i", "f"]].apply(lambda r: r.i + r.f, axis=1))
    with pytest.raises(NotImplementedError, match="axis=1"):
        ddf.apply(lambda c: c, axis=0)
    assert_eq(ddf.map_partitions(lambda p: p.assign(z=p.i + 1)), pdf.assign(z=pdf.i + 1))
    lengths = ddf.map_partitions(len).compute()
    assert lengths.sum() == len(pdf) and len(lengths) == 3
    assert_eq(dd.map_partitions(lambda a, b: a + b, ddf.f, ddf.i), pdf.f + pdf.i)
    assert_eq(ddf.f.apply(lambda v: v * 2, meta=("f", "f8")), pdf.f.apply(lambda v: v * 2))


def test_meta_inference_failure_asks_for_meta(pdf):
    ddf = dd.from_pandas(pdf, npartitions=2)

    def bad(part):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match="meta="):
        ddf.map_partitions(bad)


def test_alignment_known_divisions(pdf):
    a = dd.from_pandas(pdf, npartitions=3)
    b = dd.from_pandas(pdf, npartitions=5)
    assert_eq(a.f + b.i, pdf.f + pdf.i)
    assert_eq(a.assign(z=b.f), pdf.assign(z=pdf.f))


def test_alignment_unknown_divisions_error(pdf):
    a = dd.from_pandas(pdf, npartitions=3, sort=False)
    b = dd.from_pandas(pdf.iloc[::-1], npartitions=3, sort=False)
    with pytest.raises(AlignmentError, match="unknown divisions"):
        a.f + b.f
    # the same source is fine
    assert_eq(a.f + a.i, pdf.f + pdf.i)
    assert_eq(a[a.f > 0].f + a.i, (pdf[pdf.f > 0].f + pdf.i))


def test_pandas_operand_rejected(pdf):
    ddf = dd.from_pandas(pdf, npartitions=2)
    with pytest.raises(TypeError, match="from_pandas"):
        ddf.f + pdf.f


def test_index_collection(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.index, pdf.index)
    assert ddf.index.max().compute() == pdf.index.max()
    assert ddf.index.min().compute() == pdf.index.min()
    assert isinstance(ddf.index, dd.Index)


def test_meta_helpers():
    meta = make_meta({"a": "i8", "b": "f8", "c": "str"})
    fake = meta_nonempty(meta)
    assert len(fake) == 2 and (fake.dtypes == meta.dtypes).all()
    assert make_meta(("x", "f8")).name == "x"
    part = pd.DataFrame({"a": [1.5], "b": [1.0], "c": ["x"]})
    with pytest.raises(MetaMismatchError, match="partition 4.*'a': expected int64, found float64"):
        check_meta(part, meta, "partition 4")
    with pytest.raises(MetaMismatchError, match="missing columns \\['c'\\]"):
        check_meta(part[["a", "b"]], meta, "partition 1")


def test_partitions_selection(pdf):
    ddf = dd.from_pandas(pdf, npartitions=4)
    assert_eq(ddf.partitions[1], ddf.get_partition(1).compute())
    sub = ddf.partitions[1:3]
    assert sub.npartitions == 2 and sub.divisions == ddf.divisions[1:4]


def test_persist_and_compute_together(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    p = (ddf.f * 2).persist(scheduler="sync")
    assert_eq(p, pdf.f * 2)
    total, n = lazyarr.compute(ddf.f.sum(), ddf.i.count(), scheduler="threads")
    assert np.isclose(total, pdf.f.sum()) and n == pdf.i.count()


def test_assert_eq_detects_differences(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(AssertionError):
        assert_eq(ddf.f + 1, pdf.f)
    with pytest.raises(AssertionError):
        assert_eq(ddf.i.astype("int32"), pdf.i)


def test_meta_override(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    out = ddf.map_partitions(lambda p: p.f.astype("float32"), meta=("f", "float32"))
    assert out.dtype == np.float32
    assert_eq(out, pdf.f.astype("float32"))
