"""Shuffles (disk and tasks), set_index, sort_values, merge/join, drop_duplicates, repartition, concat."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

import lazyarr
import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq
from lazyarr.dataframe.shuffle import cleanup_shuffle_dirs, shuffle

METHODS = ["disk", "tasks"]


@pytest.fixture
def tmp_shuffle_dir(tmp_path):
    with lazyarr.config.set({"temporary-directory": str(tmp_path)}):
        yield tmp_path


@pytest.mark.parametrize("method", METHODS)
def test_hash_shuffle_groups_keys_together(pdf, method, scheduler, tmp_shuffle_dir):
    ddf = dd.from_pandas(pdf, npartitions=4)
    out = shuffle(ddf, "g", npartitions=3, method=method)
    parts = [out.get_partition(i).compute(scheduler=scheduler) for i in range(3)]
    assert sum(len(p) for p in parts) == len(pdf)
    owners = {}
    for i, p in enumerate(parts):
        for key in p.g.unique():
            assert owners.setdefault(key, i) == i
    cleanup_shuffle_dirs()  # computing single outputs leaves the others' files until cleanup or exit
    assert list(tmp_shuffle_dir.iterdir()) == []
    assert_eq(out, pdf, sort_results=True, scheduler=scheduler)
    assert list(tmp_shuffle_dir.iterdir()) == []  # a full run removes its files as it reads them


def test_disk_shuffle_twice_gives_same_result(pdf, tmp_shuffle_dir):
    ddf = dd.from_pandas(pdf, npartitions=4)
    out = ddf.shuffle("s", method="disk")
    first = out.compute()
    second = out.compute(scheduler="threads")
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize("method", METHODS)
def test_set_index(pdf, npartitions, method, tmp_shuffle_dir):
    ddf = dd.from_pandas(pdf, npartitions=npartitions, sort=False)
    out = ddf.set_index("i", shuffle_method=method)
    assert out.known_divisions
    assert_eq(out, pdf.set_index("i").sort_index(kind="stable"))
    assert_eq(ddf.set_index("s"), pdf.set_index("s").sort_index(kind="stable"))
    assert_eq(ddf.set_index("t", npartitions=4), pdf.set_index("t").sort_index(kind="stable"))


def test_set_index_missing_keys_go_last(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    assert_eq(ddf.set_index("f"), pdf.set_index("f").sort_index(kind="stable"))


def test_set_index_sorted_and_divisions(pdf):
    sorted_pdf = pdf.sort_values("t")
    ddf = dd.from_pandas(sorted_pdf, npartitions=4, sort=False)
    out = ddf.set_index("t", sorted=True)
    assert out.known_divisions and out.npartitions == 4
    assert_eq(out, sorted_pdf.set_index("t"))
    with pytest.raises(ValueError, match="not sorted"):
        dd.from_pandas(pdf.sample(frac=1, random_state=1), npartitions=3, sort=False).set_index("i", sorted=True)
    out2 = dd.from_pandas(pdf, npartitions=3).set_index("g", divisions=[0, 2, 4])
    assert out2.divisions == (0, 2, 4)
    assert_eq(out2, pdf.set_index("g").sort_index(kind="stable"))
    narrow = dd.from_pandas(pdf, npartitions=3).set_index("g", divisions=[0, 2, 3])
    with pytest.raises(ValueError, match="outside the divisions"):
        narrow.compute()


def test_set_index_by_series(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    out = ddf.set_index(ddf.i * 10)
    expect = pdf.set_index(pdf.i * 10).sort_index(kind="stable")
    assert_eq(out, expect)


def test_set_index_then_loc_reads_few_partitions(pdf):
    ddf = dd.from_pandas(pdf, npartitions=4, sort=False).set_index("i")
    assert_eq(ddf.loc[3], pdf.set_index("i").sort_index(kind="stable").loc[[3]])


@pytest.mark.parametrize("method", METHODS)
def test_sort_values(pdf, npartitions, method, tmp_shuffle_dir):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.sort_values("f", shuffle_method=method), pdf.sort_values("f", kind="stable"), check_divisions=False)
    assert_eq(ddf.sort_values("f", ascending=False), pdf.sort_values("f", ascending=False, kind="stable"))
    assert_eq(ddf.sort_values(["g", "i"]), pdf.sort_values(["g", "i"], kind="stable"))
    assert_eq(ddf.sort_values("s", na_position="first"), pdf.sort_values("s", na_position="first", kind="stable"))
    assert_eq(ddf.f.sort_values(), pdf.f.sort_values(kind="stable"))
    assert_eq(ddf.s.sort_values(ascending=False), pdf.s.sort_values(ascending=False, kind="stable"))
    with pytest.raises(KeyError, match="'zz'"):
        ddf.sort_values("zz")


@pytest.fixture
def right() -> pd.DataFrame:
    return pd.DataFrame({"g": [0, 1, 2, 3, 7], "label": ["zero", "one", "two", "three", "seven"],
                         "w": [0.5, 1.5, 2.5, 3.5, 7.5]})


@pytest.mark.parametrize("how", ["inner", "left", "right", "outer"])
@pytest.mark.parametrize("broadcast", [None, False])
def test_merge_on_column(pdf, right, how, broadcast, tmp_shuffle_dir):
    ddf = dd.from_pandas(pdf, npartitions=4)
    dright = dd.from_pandas(right, npartitions=2)
    got = ddf.merge(dright, on="g", how=how, broadcast=broadcast)
    assert_eq(got, pdf.merge(right, on="g", how=how), sort_results=True, check_index=False)


def test_merge_strategies_by_shape(pdf, right, tmp_shuffle_dir):
    ddf = dd.from_pandas(pdf, npartitions=8)
    one = dd.from_pandas(right, npartitions=1)
    broadcast = ddf.merge(one, on="g")
    assert any("broadcast" in str(k[0]) for k in broadcast.__lazyarr_graph__() if isinstance(k, tuple))
    hashed = ddf.merge(dd.from_pandas(right, npartitions=2), on="g", broadcast=False, shuffle_method="tasks")
    assert any("shuffle" in str(k[0]) for k in hashed.__lazyarr_graph__() if isinstance(k, tuple))
    expect = pdf.merge(right, on="g")
    assert_eq(broadcast, expect, sort_results=True, check_index=False)
    assert_eq(hashed, expect, sort_results=True, check_index=False)
    assert_eq(dd.merge(ddf, right, on="g"), expect, sort_results=True, check_index=False)


def test_merge_left_on_right_on_and_suffixes(pdf, tmp_shuffle_dir):
    other = pdf[["i", "f", "s"]].rename(columns={"i": "key"}).drop_duplicates("key")
    other = other[other.key > 2]  # some left rows find no match: pandas widens "key" to float
    ddf = dd.from_pandas(pdf, npartitions=3)
    dother = dd.from_pandas(other, npartitions=2)
    got = ddf.merge(dother, left_on="i", right_on="key", how="left", broadcast=False)
    expect = pdf.merge(other, left_on="i", right_on="key", how="left")
    assert_eq(got, expect, sort_results=True, check_index=False)


def test_merge_int_float_keys_hash_consistently(tmp_shuffle_dir):
    left = pd.DataFrame({"k": np.arange(40), "a": np.arange(40.0)})
    right = pd.DataFrame({"k": np.arange(0, 40, 2).astype("float64"), "b": np.arange(20)})
    got = dd.from_pandas(left, npartitions=4).merge(dd.from_pandas(right, npartitions=3), on="k", broadcast=False)
    assert_eq(got, left.merge(right, on="k"), sort_results=True, check_index=False)


def test_merge_missing_key_errors(pdf, right):
    ddf = dd.from_pandas(pdf, npartitions=3)
    dright = dd.from_pandas(right, npartitions=1)
    with pytest.raises(KeyError, match="'nope' not found in the right frame"):
        ddf.merge(dright, left_on="g", right_on="nope")
    with pytest.raises(KeyError, match="'zz' not found in the left frame"):
        ddf.merge(dright, on="zz")
    with pytest.raises(ValueError, match="how"):
        ddf.merge(dright, on="g", how="sideways")


def test_join_on_index_with_known_divisions(pdf):
    a = dd.from_pandas(pdf[["i", "f"]], npartitions=3)
    b = dd.from_pandas(pdf[["s"]].iloc[::2], npartitions=4)
    got = a.join(b)
    assert got.known_divisions
    assert not any("shuffle" in str(k[0]) for k in got.__lazyarr_graph__() if isinstance(k, tuple))
    assert_eq(got, pdf[["i", "f"]].join(pdf[["s"]].iloc[::2]))
    assert_eq(a.merge(b, left_index=True, right_index=True, how="inner"),
              pdf[["i", "f"]].merge(pdf[["s"]].iloc[::2], left_index=True, right_index=True))


def test_join_unknown_divisions_and_on(pdf, right, tmp_shuffle_dir):
    a = dd.from_pandas(pdf, npartitions=3, sort=False)
    r = right.set_index("g")
    b = dd.from_pandas(r, npartitions=2, sort=False)
    assert_eq(a.join(b, on="g"), pdf.join(r, on="g"), sort_results=True)
    assert_eq(a[["i"]].join(dd.from_pandas(pdf[["s"]], npartitions=2, sort=False), how="inner"),
              pdf[["i"]].join(pdf[["s"]], how="inner"), sort_results=True)


@pytest.mark.parametrize("keep", ["first", "last", False])
def test_drop_duplicates(pdf, npartitions, keep, tmp_shuffle_dir):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    assert_eq(ddf.drop_duplicates(subset=["g", "s"], keep=keep), pdf.drop_duplicates(subset=["g", "s"], keep=keep),
              sort_results=keep is False)
    assert_eq(ddf.drop_duplicates(subset=["g", "s"], keep=keep, split_out=3),
              pdf.drop_duplicates(subset=["g", "s"], keep=keep), sort_results=True)
    assert_eq(ddf.g.drop_duplicates(keep=keep), pdf.g.drop_duplicates(keep=keep), sort_results=keep is False)
    assert_eq(ddf[["g", "c"]].drop_duplicates(), pdf[["g", "c"]].drop_duplicates())


def test_repartition(pdf):
    ddf = dd.from_pandas(pdf, npartitions=6)
    down = ddf.repartition(npartitions=2)
    assert down.npartitions == 2 and down.known_divisions
    assert_eq(down, pdf)
    up = ddf.repartition(npartitions=15)
    assert up.npartitions >= 12
    assert_eq(up, pdf)
    custom = ddf.repartition(divisions=[0, 37, 100, 238])
    assert custom.divisions == (0, 37, 100, 238)
    assert_eq(custom, pdf)
    with pytest.raises(ValueError, match="cover"):
        ddf.repartition(divisions=[10, 100])
    sized = ddf.repartition(partition_size="2kB")
    assert sized.npartitions > 1
    assert_eq(sized, pdf)
    unknown = dd.from_pandas(pdf, npartitions=2, sort=False).repartition(npartitions=5)
    assert unknown.npartitions == 5
    assert_eq(unknown, pdf)
    with pytest.raises(ValueError, match="exactly one"):
        ddf.repartition()


def test_concat(pdf):
    a = dd.from_pandas(pdf.iloc[:50], npartitions=2)
    b = dd.from_pandas(pdf.iloc[50:], npartitions=3)
    both = dd.concat([a, b])
    assert both.known_divisions and both.npartitions == 5
    assert_eq(both, pdf)
    assert_eq(dd.concat([a, a]), pd.concat([pdf.iloc[:50], pdf.iloc[:50]]))
    extra = dd.from_pandas(pdf.iloc[:30][["i", "f"]].assign(z=1.5), npartitions=2)
    assert_eq(dd.concat([a, extra]), pd.concat([pdf.iloc[:50], pdf.iloc[:30][["i", "f"]].assign(z=1.5)]))
    assert_eq(dd.concat([a, extra], join="inner"),
              pd.concat([pdf.iloc[:50], pdf.iloc[:30][["i", "f"]].assign(z=1.5)], join="inner"))
    assert_eq(dd.concat([a[["i"]], a[["f"]]], axis=1), pd.concat([pdf.iloc[:50][["i"]], pdf.iloc[:50][["f"]]], axis=1))


def test_concat_categoricals_union(pdf):
    a = dd.from_pandas(pd.DataFrame({"c": pd.Categorical(["x", "y"])}), npartitions=1)
    b = dd.from_pandas(pd.DataFrame({"c": pd.Categorical(["z"])}, index=[5]), npartitions=1)
    out = dd.concat([a, b]).compute()
    assert out.c.dtype == "category" and sorted(out.c.cat.categories) == ["x", "y", "z"]
    assert out.c.tolist() == ["x", "y", "z"]
