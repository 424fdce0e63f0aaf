"""read_json / to_json (files and line blocks) and read_table, against pandas."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq
from lazyarr.dataframe.utils import MetaMismatchError


@pytest.fixture
def frame(pdf) -> pd.DataFrame:
    # JSON keeps numbers and strings; categoricals and datetimes come back as strings and integers
    return pdf.reset_index(drop=True)[["i", "f", "g", "s"]]


@pytest.fixture
def json_dir(tmp_path, frame):
    dd.from_pandas(frame, npartitions=3).to_json(str(tmp_path / "part-*.json"))
    return tmp_path


def _expected(json_dir) -> pd.DataFrame:
    files = sorted(json_dir.glob("part-*.json"))
    return pd.concat([pd.read_json(f, orient="records", lines=True) for f in files])


def test_to_json_one_line_delimited_file_per_partition(json_dir, frame):
    files = sorted(os.listdir(json_dir))
    assert files == ["part-0.json", "part-1.json", "part-2.json"]
    assert_eq(_expected(json_dir), frame, check_index=False)


@pytest.mark.parametrize("blocksize", [None, 300, "1kB"])
def test_read_json_blocks(json_dir, frame, blocksize, scheduler):
    ddf = dd.read_json(str(json_dir / "part-*.json"), blocksize=blocksize)
    assert ddf.npartitions == 3 if blocksize is None else ddf.npartitions > 3
    assert_eq(ddf, _expected(json_dir), check_index=False, scheduler=scheduler)
    assert_eq(ddf, frame, check_index=False)
    assert_eq(ddf.groupby("g").f.sum(), frame.groupby("g").f.sum())


def test_read_json_pins_float_and_string_columns(tmp_path):
    # the second half has only missing floats and strings: alone, pandas would read them as other dtypes
    lines = [f'{{"a": {i}, "x": 1.5, "s": "w"}}' for i in range(20)]
    lines += [f'{{"a": {i}, "x": null, "s": null}}' for i in range(20, 40)]
    path = tmp_path / "gaps.json"
    path.write_text("\n".join(lines) + "\n")
    ddf = dd.read_json(str(path), blocksize=200)
    assert ddf.npartitions > 2
    assert_eq(ddf, pd.read_json(path, lines=True), check_index=False)


def test_read_json_dtype_change_names_block_and_fix(tmp_path):
    lines = [f'{{"a": {i}}}' for i in range(50)] + ['{"a": null}']
    path = tmp_path / "ints.json"
    path.write_text("\n".join(lines) + "\n")
    ddf = dd.read_json(str(path), blocksize=200, sample=100)  # the meta sees only integers
    with pytest.raises(MetaMismatchError, match=r"bytes .* of .*ints.json.*'a': expected int64, found float64"):
        ddf.compute()
    assert_eq(dd.read_json(str(path), blocksize=200, sample=100, dtype={"a": "float64"}),
              pd.read_json(path, lines=True), check_index=False)
    assert_eq(dd.read_json(str(path), blocksize=200), pd.read_json(path, lines=True), check_index=False)


def test_read_json_other_orients_compression_and_path_column(tmp_path, frame):
    ddf = dd.from_pandas(frame, npartitions=2)
    ddf.to_json(str(tmp_path / "split"), orient="split")
    assert sorted(os.listdir(tmp_path / "split")) == ["0.part", "1.part"]
    assert_eq(dd.read_json(str(tmp_path / "split" / "*.part"), orient="split"), frame)
    ddf.to_json(str(tmp_path / "z-*.json.gz"), compression="gzip")
    packed = dd.read_json(str(tmp_path / "z-*.json.gz"), blocksize=100)
    assert packed.npartitions == 2  # a compressed file cannot be split
    assert_eq(packed, frame, check_index=False)
    with_path = dd.read_json(str(tmp_path / "z-*.json.gz"), include_path_column="file")
    assert with_path.file.compute().nunique() == 2


def test_read_json_errors(tmp_path, json_dir):
    with pytest.raises(FileNotFoundError, match="no files match"):
        dd.read_json(str(tmp_path / "nothing-*.json"))
    with pytest.raises(ValueError, match="line-delimited"):
        dd.read_json(str(json_dir / "part-*.json"), orient="split", blocksize=100)
    with pytest.raises(ValueError, match="orient='records'"):
        dd.read_json(str(json_dir / "part-*.json"), orient="split", lines=True)
    with pytest.raises(ValueError, match="orient='records'"):
        dd.from_pandas(pd.DataFrame({"a": [1]}), npartitions=1).to_json(str(tmp_path / "x"), orient="split",
                                                                         lines=True)


def test_to_json_lazy_and_read_table(tmp_path, frame):
    ddf = dd.from_pandas(frame, npartitions=2)
    names = ddf.to_json(str(tmp_path / "out"), compute=False)
    assert not os.path.exists(tmp_path / "out" / "0.part")
    written = names.compute().tolist()
    assert [os.path.basename(p) for p in written] == ["0.part", "1.part"]
    tsv = tmp_path / "data.tsv"
    frame.assign(note=np.where(frame.i > 4, "a,b", "c")).to_csv(tsv, sep="\t", index=False)
    expected = pd.read_table(tsv)
    assert_eq(dd.read_table(str(tsv), blocksize=700), expected, check_index=False)
    assert dd.read_table(str(tsv), blocksize=700).npartitions > 1
    assert_eq(dd.read_table(str(tsv), sep="\t", usecols=["i", "note"]), pd.read_table(tsv, usecols=["i", "note"]),
              check_index=False)
