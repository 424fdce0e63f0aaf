"""read_text and to_textfiles: globs, byte-range blocks on line boundaries, compression, errors."""
from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import random
from collections import Counter

import pytest

import lazyarr.bag as db

from ._bag_data import random_records, random_words


def write(path, text: str, opener=open, encoding="utf-8", newline="") -> str:
    with opener(path, "wt", encoding=encoding, newline=newline) as f:
        f.write(text)
    return str(path)


def python_lines(path, encoding="utf-8") -> list[str]:
    with open(path, encoding=encoding) as f:
        return f.readlines()


def random_text(seed: int, nlines: int) -> str:
    """Lines of random lengths: empty ones, long ones, non-ASCII, some without a final newline."""
    rng = random.Random(seed)
    alphabet = "abc xyz é€漢\t"
    lines = []
    for _ in range(nlines):
        n = rng.choice([0, 1, 2, 5, 17, 90])
        lines.append("".join(rng.choice(alphabet) for _ in range(n)))
    text = "\n".join(lines)
    return text if rng.random() < 0.5 else text + "\n"


def test_seed_pipeline(tmp_path, scheduler):
    records = random_records(1, 120)
    for i in range(3):
        write(tmp_path / f"{i}.json", "".join(json.dumps(r) + "\n" for r in records[i * 40:(i + 1) * 40]))
    write(tmp_path / "notes.txt", "not json\n")
    got = db.read_text(str(tmp_path / "*.json")).map(json.loads).pluck("name").frequencies().compute(scheduler=scheduler)
    assert dict(got) == Counter(r["name"] for r in records)


def test_paths_globs_lists_and_directories(tmp_path, scheduler):
    a = write(tmp_path / "a.txt", "1\n2\n")
    b = write(tmp_path / "b.txt", "3\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    c = write(sub / "c.txt", "4\n5")
    assert db.read_text(str(tmp_path / "*.txt")).npartitions == 2
    assert db.read_text([c, a]).compute(scheduler=scheduler) == ["4\n", "5", "1\n", "2\n"]
    assert db.read_text(sub).compute(scheduler=scheduler) == ["4\n", "5"]
    assert db.read_text(tmp_path / "b.txt").compute(scheduler=scheduler) == ["3\n"]
    got = db.read_text([a, b], include_path=True).compute(scheduler=scheduler)
    assert got == [("1\n", a), ("2\n", a), ("3\n", b)]


@pytest.mark.parametrize("seed", range(4))
def test_blocks_split_on_line_boundaries(tmp_path, seed):
    text = random_text(seed, 120)
    path = write(tmp_path / "big.txt", text)
    size = os.path.getsize(path)
    expected = python_lines(path)
    for blocksize in (1, 2, 3, 7, 50, 333, size - 1, size, 10 * size):
        b = db.read_text(path, blocksize=blocksize)
        assert b.npartitions == (max(1, -(-size // blocksize)) if blocksize < size else 1)
        assert b.compute(scheduler="sync") == expected, blocksize


def test_blocksize_accepts_strings_and_many_files(tmp_path, scheduler):
    paths = [write(tmp_path / f"{i}.txt", random_text(10 + i, 200)) for i in range(3)]
    b = db.read_text(str(tmp_path / "*.txt"), blocksize="1kB")
    assert b.npartitions > 3
    assert b.compute(scheduler=scheduler) == [line for p in paths for line in python_lines(p)]


def test_universal_newlines_and_custom_delimiter(tmp_path, scheduler):
    path = write(tmp_path / "mixed.txt", "a\r\nb\rc\nd\r\n\r\ne")
    expected = python_lines(path)
    assert expected == ["a\n", "b\n", "c\n", "d\n", "\n", "e"]
    assert db.read_text(path).compute(scheduler=scheduler) == expected
    assert db.read_text(path, blocksize=3).compute(scheduler=scheduler) == expected
    crlf = write(tmp_path / "crlf.txt", "x\r\ny\r\nz\r\n")
    assert db.read_text(crlf, linedelimiter="\r\n").compute(scheduler=scheduler) == ["x\r\n", "y\r\n", "z\r\n"]
    for blocksize in (1, 2, 4, 5):
        got = db.read_text(crlf, linedelimiter="\r\n", blocksize=blocksize).compute(scheduler=scheduler)
        assert got == ["x\r\n", "y\r\n", "z\r\n"], blocksize
    bars = write(tmp_path / "bars.txt", "p|q||r")
    assert db.read_text(bars, linedelimiter="|", blocksize=2).compute(scheduler=scheduler) == ["p|", "q|", "|", "r"]


def test_other_encodings(tmp_path, scheduler):
    text = "naïve\nœuvre\n€\n"
    latin = write(tmp_path / "l.txt", "naïve\ncafé\n", encoding="latin-1")
    assert db.read_text(latin, encoding="latin-1", blocksize=3).compute(scheduler=scheduler) == ["naïve\n", "café\n"]
    utf16 = write(tmp_path / "u.txt", text, encoding="utf-16")
    b = db.read_text(utf16, encoding="utf-16", blocksize=4)
    assert b.npartitions == 1  # not splittable at byte offsets: read whole
    assert b.compute(scheduler=scheduler) == text.splitlines(keepends=True)


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_compressed_files_are_read_whole(tmp_path, scheduler, suffix, opener):
    text = random_text(7, 300)
    paths = [write(tmp_path / f"{i}.txt{suffix}", text, opener=opener) for i in range(2)]
    b = db.read_text(str(tmp_path / f"*{suffix}"), blocksize=100)
    assert b.npartitions == 2
    plain = write(tmp_path / "plain.txt", text)
    assert b.compute(scheduler=scheduler) == python_lines(plain) * 2
    named = write(tmp_path / "zipped.data", text, opener=opener)
    kind = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}[suffix]
    assert db.read_text(named, compression=kind).compute(scheduler=scheduler) == python_lines(plain)
    assert paths


def test_to_textfiles_round_trip(tmp_path, scheduler):
    words = random_words(3, 100)
    b = db.from_sequence(words, npartitions=4)
    paths = b.to_textfiles(str(tmp_path / "out" / "*.txt"), scheduler=scheduler)
    assert paths == [str(tmp_path / "out" / f"{i}.txt") for i in range(4)]
    assert db.read_text(paths).map(str.rstrip).compute(scheduler=scheduler) == words
    assert not (open(paths[0]).read()).endswith("\n")

    gz = b.to_textfiles(str(tmp_path / "gz" / "part-*.txt.gz"), name_function=lambda i: f"{i:03d}",
                        last_endline=True, scheduler=scheduler)
    assert os.path.basename(gz[2]) == "part-002.txt.gz"
    with gzip.open(gz[0], "rt") as f:
        assert f.read().endswith("\n")
    assert db.read_text(str(tmp_path / "gz" / "*.gz")).compute(scheduler=scheduler) == [w + "\n" for w in words]

    directory = b.to_textfiles(tmp_path / "dir", scheduler=scheduler)
    assert [os.path.basename(p) for p in directory] == ["0.part", "1.part", "2.part", "3.part"]

    lazy = b.to_textfiles([str(tmp_path / f"explicit{i}.txt") for i in range(4)], compute=False)
    assert not os.path.exists(tmp_path / "explicit0.txt")
    lazy.compute(scheduler=scheduler)
    assert os.path.exists(tmp_path / "explicit3.txt")


def test_json_lines_round_trip(tmp_path, scheduler):
    records = random_records(4, 50)
    b = db.from_sequence(records, npartitions=3)
    b.map(json.dumps).to_textfiles(str(tmp_path / "*.jsonl"), scheduler=scheduler)
    back = db.read_text(str(tmp_path / "*.jsonl")).map(json.loads).compute(scheduler=scheduler)
    assert back == records


# -- bad input --------------------------------------------------------------------------------------

def test_glob_matching_nothing_names_the_pattern(tmp_path):
    pattern = str(tmp_path / "nothing-*.json")
    with pytest.raises(FileNotFoundError, match="no files match the pattern .*nothing-\\*\\.json"):
        db.read_text(pattern)
    with pytest.raises(FileNotFoundError, match="no such file .*missing.txt"):
        db.read_text(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="empty"):
        db.read_text([])


def test_malformed_gzip_names_the_file(tmp_path, scheduler):
    bad = tmp_path / "broken.json.gz"
    bad.write_bytes(b"this is not gzip at all\n")
    with pytest.raises(OSError, match="broken.json.gz.*gzip"):
        db.read_text(str(bad)).compute(scheduler=scheduler)
    good = gzip.compress(b"line one\nline two\n" * 100)
    truncated = tmp_path / "truncated.txt.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(EOFError, match="truncated.txt.gz"):
        db.read_text(str(truncated)).compute(scheduler=scheduler)


def test_undecodable_file_is_named(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(UnicodeDecodeError) as info:
        db.read_text(str(path), blocksize=100).compute(scheduler="sync")
    assert any("latin.txt" in note for note in info.value.__notes__)


def test_bad_arguments(tmp_path):
    path = write(tmp_path / "a.txt", "x\n")
    with pytest.raises(ValueError, match="unknown compression"):
        db.read_text(path, compression="zip")
    with pytest.raises(LookupError):
        db.read_text(path, encoding="no-such-codec")
    with pytest.raises(ValueError, match="linedelimiter"):
        db.read_text(path, linedelimiter="")
    b = db.from_sequence([1, 2], npartitions=1)
    with pytest.raises(TypeError, match="writes strings.*map\\(str\\)"):
        b.to_textfiles(str(tmp_path / "*.out"), scheduler="sync")
    with pytest.raises(ValueError, match="2 paths given for 1 partitions"):
        b.to_textfiles(["x", "y"])


def test_delimiter_search_across_read_chunks(tmp_path, monkeypatch):
    from lazyarr.bag import text

    monkeypatch.setattr(text, "_SCAN", 3)  # the delimiter search reads 3 bytes at a time
    lines = [f"{'x' * (i % 11)}line{i}\r\n" for i in range(60)]
    path = write(tmp_path / "crlf.txt", "".join(lines))
    for blocksize in (1, 4, 9, 50):
        got = db.read_text(path, linedelimiter="\r\n", blocksize=blocksize).compute(scheduler="sync")
        assert got == lines, blocksize
        assert db.read_text(path, blocksize=blocksize).compute(scheduler="sync") == python_lines(path)
