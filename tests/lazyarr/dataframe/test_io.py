"""CSV, parquet, delayed, arrays, bags and dicts in and out of lazy frames, and their error messages."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq
from lazyarr.dataframe.io.csv import CSVParseError
from lazyarr.dataframe.utils import MetaMismatchError


@pytest.fixture
def csv_files(tmp_path):
    rs = np.random.RandomState(5)
    frames = []
    for i in range(3):
        n = 400
        df = pd.DataFrame({"id": np.arange(n) + i * n, "x": rs.randn(n), "name": rs.choice(["a", "bb", "ccc"], n),
                           "k": rs.randint(0, 7, n)})
        df.loc[df.index[::11], "x"] = np.nan
        df.to_csv(tmp_path / f"data-{i}.csv", index=False)
        frames.append(df)
    return tmp_path, frames


@pytest.mark.parametrize("engine", ["c", "pyarrow"])
@pytest.mark.parametrize("blocksize", [None, 2000, "5kB"])
def test_read_csv_blocks(csv_files, engine, blocksize):
    path, frames = csv_files
    ddf = dd.read_csv(str(path / "data-*.csv"), blocksize=blocksize, engine=engine)
    expect = pd.concat(frames)
    if blocksize is None:
        assert ddf.npartitions == 3
    else:
        assert ddf.npartitions > 3
    assert_eq(ddf, expect, check_index=False)
    assert len(ddf) == len(expect)
    assert_eq(ddf.groupby("k").x.sum(), expect.groupby("k").x.sum())


def test_read_csv_list_and_kwargs(csv_files):
    path, _frames = csv_files
    files = [str(path / f"data-{i}.csv") for i in range(3)]
    ddf = dd.read_csv(files, blocksize=3000, usecols=["id", "x"], dtype={"id": "float64"})
    expect = pd.concat([pd.read_csv(f, usecols=["id", "x"], dtype={"id": "float64"}) for f in files])
    assert_eq(ddf, expect, check_index=False)
    with_path = dd.read_csv(files[:2], include_path_column=True)
    assert with_path.path.compute().nunique() == 2


def test_read_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no files match"):
        dd.read_csv(str(tmp_path / "nothing-*.csv"))


def test_read_csv_ragged_row_names_file_and_bytes(tmp_path):
    lines = ["a,b,c"] + [f"{i},{i},{i}" for i in range(200)]
    lines[150] = "1,2,3,4"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    ddf = dd.read_csv(str(path), blocksize=300, engine="c", sample=200)
    with pytest.raises(CSVParseError, match=r"bytes \d+-\d+ of .*ragged.csv.*fields"):
        ddf.compute()
    with pytest.raises(CSVParseError, match=r"start of .*ragged.csv"):
        dd.read_csv(str(path))  # the row is within the sample: found at once
    ddf2 = dd.read_csv(str(path), blocksize=300, engine="pyarrow", sample=200)
    with pytest.raises(CSVParseError, match=r"ragged.csv"):
        ddf2.compute()


def test_read_csv_dtype_change_is_an_error_with_fix(tmp_path):
    lines = ["a,b"] + [f"{i},{i}" for i in range(3000)]
    lines[2500] = "7,"  # b is int in the sample, has a missing value later
    path = tmp_path / "change.csv"
    path.write_text("\n".join(lines) + "\n")
    ddf = dd.read_csv(str(path), blocksize=4000, sample=2000)
    assert ddf.dtypes["b"] == "int64"
    with pytest.raises(MetaMismatchError, match=r"partition \d+ \(bytes .*change.csv\).*'b': expected int64, "
                                                r"found float64.*dtype="):
        ddf.compute()
    fixed = dd.read_csv(str(path), blocksize=4000, sample=2000, dtype={"b": "float64"})
    assert_eq(fixed, pd.read_csv(path), check_index=False)


def test_read_csv_pins_float_and_string_columns(tmp_path):
    # a block where "s" is entirely missing must still read as strings
    lines = ["n,s,f"] + [f"{i},word{i},{i}.5" for i in range(100)] + [f"{i},,{i}" for i in range(100, 300)]
    path = tmp_path / "sparse.csv"
    path.write_text("\n".join(lines) + "\n")
    ddf = dd.read_csv(str(path), blocksize=1500, sample=1500)
    assert ddf.npartitions > 2
    assert_eq(ddf, pd.read_csv(path), check_index=False)


@pytest.mark.parametrize("blocksize", [None, 3000])
@pytest.mark.parametrize("parse_dates", [None, ["when"]])
def test_read_csv_same_frame_as_pandas(tmp_path, blocksize, parse_dates):
    # exactly pandas.read_csv of the whole file: values, NaNs, missing strings, dtypes, dates
    rs = np.random.RandomState(3)
    n = 500
    df = pd.DataFrame({"i": rs.randint(-50, 50, n), "f": rs.randn(n).round(4),
                       "s": rs.choice(["a", "bb", "c d", "é"], n),
                       "when": pd.date_range("2024-01-01", periods=n, freq="37min").astype(str)})
    df.loc[df.index[::7], "f"] = np.nan
    df.loc[df.index[::5], "s"] = None
    path = tmp_path / "mixed.csv"
    df.to_csv(path, index=False)
    kwargs = {"parse_dates": parse_dates} if parse_dates else {}
    ddf = dd.read_csv(str(path), blocksize=blocksize, **kwargs)
    assert ddf.npartitions == 1 if blocksize is None else ddf.npartitions > 2
    got = ddf.compute(scheduler="threads").reset_index(drop=True)
    expect = pd.read_csv(path, **kwargs)
    pd.testing.assert_frame_equal(got, expect, check_exact=True)
    pd.testing.assert_series_equal(ddf.dtypes, expect.dtypes)
    # the user's own parser options win over ours, and memory_map works whether or not a block is split
    mapped = dd.read_csv(str(path), blocksize=blocksize, memory_map=True, low_memory=True, **kwargs)
    pd.testing.assert_frame_equal(mapped.compute().reset_index(drop=True), expect, check_exact=True)


@pytest.mark.parametrize("single_file", [False, True])
def test_to_csv_roundtrip(tmp_path, pdf, single_file):
    ddf = dd.from_pandas(pdf[["i", "f", "s"]], npartitions=3)
    target = tmp_path / ("out.csv" if single_file else "out-*.csv")
    written = ddf.to_csv(str(target), single_file=single_file, index=False)
    assert len(written) == (1 if single_file else 3)
    back = dd.read_csv(str(tmp_path / "out*.csv"))
    assert_eq(back, pdf[["i", "f", "s"]], check_index=False)


def test_to_csv_directory(tmp_path, pdf):
    ddf = dd.from_pandas(pdf[["i"]], npartitions=2)
    files = ddf.to_csv(str(tmp_path / "dir"))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["0.part", "1.part"]


def test_parquet_roundtrip(tmp_path, pdf):
    pytest.importorskip("pyarrow")
    ddf = dd.from_pandas(pdf, npartitions=3)
    files = ddf.to_parquet(str(tmp_path / "pq"))
    assert len(files) == 3
    back = dd.read_parquet(str(tmp_path / "pq"))
    assert back.npartitions == 3
    assert_eq(back, pdf)
    with_div = dd.read_parquet(str(tmp_path / "pq"), calculate_divisions=True)
    assert with_div.divisions == ddf.divisions
    assert_eq(dd.read_parquet(str(tmp_path / "pq"), columns=["f", "s"]), pdf[["f", "s"]])
    assert_eq(dd.read_parquet(str(tmp_path / "pq"), columns="f"), pdf["f"])
    filtered = dd.read_parquet(str(tmp_path / "pq"), filters=[("i", ">", 5)])
    assert_eq(filtered, pdf[pdf.i > 5])
    with pytest.raises(KeyError, match="'zz'"):
        dd.read_parquet(str(tmp_path / "pq"), columns=["zz"])


def test_parquet_row_groups(tmp_path, pdf):
    pytest.importorskip("pyarrow")
    ddf = dd.from_pandas(pdf, npartitions=1)
    ddf.to_parquet(str(tmp_path / "rg"), row_group_size=30)
    back = dd.read_parquet(str(tmp_path / "rg"), split_row_groups=True)
    assert back.npartitions == 4
    assert_eq(back, pdf)


def _ranged_parquet(tmp_path) -> str:
    """4 files x 4 row groups of 25 rows; x, s, t and the index increase, so each row group has its own range."""
    pytest.importorskip("pyarrow")
    n = 400
    pdf = pd.DataFrame({"x": np.arange(n), "f": np.arange(n) / 2, "s": [f"k{i:04d}" for i in range(n)],
                        "t": pd.date_range("2020", periods=n, freq="h"), "g": np.arange(n) % 7},
                       index=pd.Index(np.arange(n) * 10, name="idx"))
    pdf.loc[pdf.index[::11], "f"] = np.nan
    dd.from_pandas(pdf, npartitions=4).to_parquet(str(tmp_path / "ranged"), row_group_size=25)
    return str(tmp_path / "ranged")


@pytest.mark.parametrize("filters", [
    [("x", ">=", 350)], [("x", "==", 17)], [("x", "=", 17)], [("x", "in", [3, 390])], [("x", "not in", [3, 390])],
    [("x", "!=", 3)], [("f", ">", 150)], [("f", "!=", 1.0)], [("f", "not in", [1.0])], [("f", "in", [None, 1.0])],
    [("s", "<", "k0030")],
    [("t", ">", pd.Timestamp("2020-01-16"))], [("idx", "<=", 200)], [("g", "==", 3), ("x", "<", 100)],
    [[("x", "<", 20)], [("x", ">", 380)]], [[("x", ">", 100), ("x", "<", 120)], [("s", "==", "k0399")]],
    [("x", ">", 10**6)],
], ids=str)
@pytest.mark.parametrize("split_row_groups", [False, True])
def test_parquet_filters_match_pandas(tmp_path, filters, split_row_groups):
    path = _ranged_parquet(tmp_path)
    expected = pd.read_parquet(path, filters=filters)  # nulls never match, NaN != 1.0 does, as in pyarrow
    assert_eq(dd.read_parquet(path, filters=filters, split_row_groups=split_row_groups), expected)
    assert_eq(dd.read_parquet(path, columns=["s"], filters=filters, split_row_groups=split_row_groups),
              expected[["s"]])


def test_parquet_filters_skip_files_and_row_groups(tmp_path, monkeypatch):
    from lazyarr.dataframe.io import parquet

    path = _ranged_parquet(tmp_path)
    reads = []
    original = parquet._read_piece

    def recording(path, row_groups, *args):
        reads.append((path.rsplit("/", 1)[-1], row_groups))
        return original(path, row_groups, *args)

    monkeypatch.setattr(parquet, "_read_piece", recording)
    full = dd.read_parquet(path)
    assert full.npartitions == 4
    # x >= 350 is only in the last two row groups of the last file
    selective = dd.read_parquet(path, filters=[("x", ">=", 350)])
    assert selective.npartitions == 1
    assert_eq(selective, pd.read_parquet(path, filters=[("x", ">=", 350)]))
    assert reads == [("part.3.parquet", [2, 3])]
    reads.clear()
    by_row_group = dd.read_parquet(path, filters=[[("x", "<", 20)], [("x", ">", 380)]], split_row_groups=True)
    assert by_row_group.npartitions == 2
    by_row_group.compute()
    assert sorted(reads) == [("part.0.parquet", [0]), ("part.3.parquet", [3])]
    # f has missing values in every row group; they never satisfy '>', so min/max still prune
    assert dd.read_parquet(path, filters=[("f", ">", 150)], split_row_groups=True).npartitions == 4
    # missing values satisfy '!=', so nothing can be skipped
    assert dd.read_parquet(path, filters=[("f", "!=", 150)]).npartitions == 4
    # divisions come from the statistics of the row groups kept
    assert dd.read_parquet(path, filters=[("x", ">=", 350)], calculate_divisions=True).divisions == (3500, 3990)


@pytest.mark.parametrize("filters, row_groups_read", [
    ([("dec", "==", 0.1)], 1),  # the float literal is compared as pyarrow casts it, not exactly
    ([("f32", ">=", 3.0)], 1),
    ([("cat", "in", ["c0", "c3"])], 2),
    ([("tz", ">", pd.Timestamp("2020-02-01", tz="US/Eastern"))], 1),
    ([("s", ">", "v30")], 1),
], ids=str)
def test_parquet_statistics_compare_like_pyarrow(tmp_path, filters, row_groups_read):
    import decimal

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    n = 40
    pdf = pd.DataFrame({"cat": pd.Categorical([f"c{i // 10}" for i in range(n)]),
                        "tz": pd.date_range("2020", periods=n, freq="D", tz="US/Eastern"),
                        "f32": np.arange(n, dtype="float32") / 10,
                        "s": pd.Series([f"v{i:02d}" if i % 3 else None for i in range(n)], dtype="str")})
    pdf.loc[pdf.index[::4], ["tz", "f32"]] = None  # missing values in every row group
    table = pa.Table.from_pandas(pdf, preserve_index=False).append_column(
        "dec", pa.array([decimal.Decimal(i) / 10 if i % 5 else None for i in range(n)], pa.decimal128(6, 2)))
    pq.write_table(table, str(tmp_path / "typed.parquet"), row_group_size=10)
    got = dd.read_parquet(str(tmp_path / "typed.parquet"), filters=filters, split_row_groups=True)
    assert got.npartitions == row_groups_read
    expected = pd.read_parquet(str(tmp_path / "typed.parquet"), filters=filters)
    # no stored index: each row group's RangeIndex restarts, so compare the rows only
    pd.testing.assert_frame_equal(got.compute().reset_index(drop=True), expected.reset_index(drop=True))


def test_parquet_filters_nothing_matches_keeps_meta(tmp_path):
    path = _ranged_parquet(tmp_path)
    none = dd.read_parquet(path, filters=[("x", "<", -1)])
    assert none.npartitions == 1
    assert_eq(none, pd.read_parquet(path, filters=[("x", "<", -1)]))


@pytest.mark.parametrize("filters, error, match", [
    ([("zz", "==", 1)], KeyError, "filter column 'zz' not found"),
    ([[("x", ">", 1)], [("zz", "in", [1])]], KeyError, "'zz'"),
    ([("x", "~", 1)], ValueError, "unknown filter operator '~'"),
    ([("x", "like", "a%")], ValueError, "'like'"),
    ([], ValueError, "malformed filters"),
    ([("x", "==")], ValueError, "malformed filter"),
], ids=str)
def test_parquet_filter_errors_name_the_problem(tmp_path, filters, error, match):
    path = _ranged_parquet(tmp_path)
    with pytest.raises(error, match=match):
        dd.read_parquet(path, filters=filters)


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, pdf, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"pip install 'lazyarr\[parquet\]'"):
        dd.read_parquet(str(tmp_path))
    with pytest.raises(ImportError, match="pyarrow"):
        dd.from_pandas(pdf, npartitions=1).to_parquet(str(tmp_path / "x"))


def test_from_delayed_and_meta_check(pdf):
    from lazyarr import delayed

    parts = [delayed(lambda a, b: pdf.iloc[a:b])(a, a + 40) for a in range(0, 120, 40)]
    ddf = dd.from_delayed(parts, meta=pdf.iloc[:0])
    assert ddf.npartitions == 3
    assert_eq(ddf, pdf)
    inferred = dd.from_delayed(parts)
    assert_eq(inferred, pdf)
    bad = parts[:2] + [delayed(lambda: pdf.iloc[80:].astype({"i": "float64"}))()]
    with pytest.raises(MetaMismatchError, match=r"partition 2.*'i': expected int64, found float64"):
        dd.from_delayed(bad, meta=pdf.iloc[:0]).compute()
    missing = parts[:1] + [delayed(lambda: pdf.iloc[40:80].drop(columns="s"))()]
    with pytest.raises(MetaMismatchError, match=r"partition 1.*missing columns \['s'\]"):
        dd.from_delayed(missing, meta=pdf.iloc[:0]).compute()
    with pytest.raises(TypeError, match="Delayed"):
        dd.from_delayed([pdf])


def test_to_delayed(pdf):
    from lazyarr import compute

    ddf = dd.from_pandas(pdf, npartitions=3)
    parts = ddf.to_delayed()
    assert len(parts) == 3
    got = compute(*parts)
    pd.testing.assert_frame_equal(pd.concat(got), pdf)
    assert ddf.f.sum().to_delayed().compute() == pytest.approx(pdf.f.sum())


def test_from_array_numpy():
    x = np.arange(30.0).reshape(10, 3)
    ddf = dd.from_array(x, chunksize=4, columns=["a", "b", "c"])
    assert ddf.npartitions == 3 and ddf.known_divisions
    assert_eq(ddf, pd.DataFrame(x, columns=["a", "b", "c"]))
    s = dd.from_array(np.arange(10), chunksize=3)
    assert_eq(s, pd.Series(np.arange(10)))
    rec = np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "i8"), ("b", "f8")])
    assert_eq(dd.from_array(rec), pd.DataFrame.from_records(rec))
    with pytest.raises(ValueError, match="column names"):
        dd.from_array(x, columns=["a"])


def test_from_array_lazyarr_and_values():
    la = pytest.importorskip("lazyarr.array")
    x = np.arange(40.0).reshape(20, 2)
    arr = la.from_array(x, chunks=(6, 2))
    ddf = dd.from_array(arr, columns=["p", "q"])
    assert ddf.npartitions == 4
    assert_eq(ddf, pd.DataFrame(x, columns=["p", "q"]))
    values = dd.from_pandas(pd.DataFrame(x), npartitions=3).values
    np.testing.assert_array_equal(np.asarray(values.compute()), x)


def test_to_bag(pdf):
    pytest.importorskip("lazyarr.bag")
    pdf = pdf.fillna({"s": "none"})
    ddf = dd.from_pandas(pdf[["i", "s"]], npartitions=3)
    rows = ddf.to_bag().compute()
    assert list(rows) == list(pdf[["i", "s"]].itertuples(index=False, name=None))
    dicts = ddf.to_bag(format="dict").compute()
    assert dicts[0] == {"i": pdf.i.iloc[0], "s": pdf.s.iloc[0]}


def test_from_dict():
    data = {"a": [1, 2, 3, 4], "b": ["w", "x", "y", "z"]}
    assert_eq(dd.from_dict(data, npartitions=2), pd.DataFrame(data))


@pytest.mark.parametrize("suffix, compression", [(".csv.gz", "infer"), (".csv.bz2", "infer"), (".csv.xz", "infer"),
                                                 (".csv.zip", "infer"), (".gzdata", "gzip")])
def test_read_csv_compressed_one_partition_per_file(tmp_path, suffix, compression):
    frames = [pd.DataFrame({"a": np.arange(i * 500, i * 500 + 500), "b": np.linspace(0, 1, 500)}) for i in range(3)]
    paths = []
    for i, frame in enumerate(frames):
        path = tmp_path / f"part-{i}{suffix}"
        frame.to_csv(path, index=False, compression={"method": "gzip"} if compression == "gzip" else "infer")
        paths.append(str(path))
    ddf = dd.read_csv(paths, blocksize=100, compression=compression)
    assert ddf.npartitions == 3
    assert_eq(ddf, pd.concat(frames), check_index=False)


def test_read_csv_unknown_compression_is_named(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame({"a": [1]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="unknown compression 'rar'"):
        dd.read_csv(str(path), compression="rar")
