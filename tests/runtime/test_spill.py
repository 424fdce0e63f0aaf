"""SpillBuffer: LRU spilling to disk, zero-copy NumPy round trips, unpicklable values, threads."""
from __future__ import annotations

import errno
import logging
import os
import random
import threading

import numpy as np
import pandas as pd
import pytest

import lazyarr
from runtime import spill as spill_module
from runtime.spill import SpillBuffer, SpillError

pytestmark = pytest.mark.timeout(60)


def files_in(buf: SpillBuffer) -> list[str]:
    return sorted(os.listdir(buf.directory))


class Point:
    """A plain picklable object (pickled by reference to this module)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


@pytest.fixture
def buf(tmp_path):
    with SpillBuffer(target=100, directory=tmp_path, sizeof=len) as b:
        yield b


def test_lru_order(buf):
    for key in "abcd":
        buf[key] = key.encode() * 25          # four values of 25: exactly at target
    assert buf.spilled_count == 0 and buf.fast_bytes == 100
    assert buf["a"] == b"a" * 25              # a is now the most recently used
    buf["e"] = b"e" * 25                      # 125 > 100: the least recently used (b) goes
    assert buf.spilled_keys() == ["b"]
    assert buf.fast_keys() == ["c", "d", "a", "e"]
    buf["f"] = b"f" * 50                      # 150 > 100: c, then d
    assert buf.spilled_keys() == ["b", "c", "d"]
    assert buf.fast_bytes == 100
    # Reading b back makes it most recent and pushes out the least recent (a).
    assert buf["b"] == b"b" * 25
    assert buf.fast_keys() == ["e", "f", "b"] and buf.spilled_keys() == ["c", "d", "a"]
    assert len(files_in(buf)) == buf.spilled_count == 3
    assert buf.spilled_bytes == sum(os.path.getsize(os.path.join(buf.directory, f)) for f in files_in(buf))


def test_contains_len_iter_do_not_read_back(buf):
    buf["a"] = b"x" * 80
    buf["b"] = b"y" * 80                      # a goes to disk
    assert buf.spilled_keys() == ["a"]
    assert "a" in buf and "b" in buf and "zz" not in buf
    assert len(buf) == 2 and sorted(buf) == ["a", "b"] and buf.weight("a") == 80
    assert buf.metrics["unspills"] == 0 and buf.spilled_keys() == ["a"]
    with pytest.raises(KeyError):
        buf["zz"]
    with pytest.raises(KeyError):
        buf.weight("zz")


def test_overwrite_delete_pop_clear_remove_files(buf):
    buf["a"] = b"1" * 90
    buf["b"] = b"2" * 90                      # a on disk
    buf["a"] = b"3" * 10                      # replaces the spilled value: its file goes
    assert buf.spilled_keys() == [] and files_in(buf) == [] and buf["a"] == b"3" * 10
    buf["c"] = b"4" * 95                      # pushes out a and b
    assert set(buf.spilled_keys()) == {"a", "b"} and len(files_in(buf)) == 2
    del buf["b"]
    assert len(files_in(buf)) == 1 and "b" not in buf
    assert buf.pop("a") == b"3" * 10 and files_in(buf) == []
    assert buf.fast_keys() == ["c"]           # pop read a without moving it into memory
    assert buf.pop("a", "gone") == "gone"
    with pytest.raises(KeyError):
        del buf["a"]
    buf.update({"d": b"5" * 60, "e": b"6" * 60})
    assert buf.spilled_count == 2
    buf.clear()
    assert len(buf) == 0 and files_in(buf) == [] and buf.fast_bytes == buf.spilled_bytes == 0


@pytest.mark.parametrize("make", [
    lambda: np.arange(300_000, dtype="f8"),
    lambda: np.arange(240_000, dtype="i4").reshape(400, 600),
    lambda: np.asfortranarray(np.random.default_rng(0).random((300, 500))),
    lambda: np.random.default_rng(1).integers(0, 255, size=(100, 100, 30), dtype="u1"),
    lambda: (np.arange(400_000, dtype="c16") * 1j)[::2],   # not contiguous: pickled in band
], ids=["f8", "i4-2d", "fortran", "u1-3d", "strided-complex"])
def test_numpy_round_trip(tmp_path, make):
    original = make()
    with SpillBuffer(target=1, directory=tmp_path) as buf:
        buf[("x", 0)] = original                # larger than target: straight to disk
        assert buf.fast_bytes == 0 and buf.spilled_count == 1
        back = buf[("x", 0)]
        assert back.dtype == original.dtype and back.shape == original.shape
        assert back.tobytes(order="A") == original.tobytes(order="A")
        if original.flags.c_contiguous or original.flags.f_contiguous:
            assert back.flags.f_contiguous == original.flags.f_contiguous
        assert buf.spilled_count == 1             # still bigger than target: stays on disk


def test_numpy_zero_copy_path(tmp_path):
    """The array's memory is written raw and read back into a buffer the array uses directly."""
    original = np.random.default_rng(2).random(250_000)   # 2 MB
    with SpillBuffer(target=1, directory=tmp_path) as buf:
        buf["a"] = original
        (name,) = files_in(buf)
        with open(os.path.join(buf.directory, name), "rb") as f:
            on_disk = f.read()
        assert original.tobytes() in on_disk     # the raw body, not a pickled copy of it
        assert len(on_disk) < original.nbytes + 1024
        back = buf["a"]
        assert np.array_equal(back, original)
        assert not back.flags.owndata
        base = back
        while getattr(base, "base", None) is not None:
            base = base.base
        assert isinstance(base, (bytearray, memoryview)) and memoryview(base).nbytes == original.nbytes


def test_pandas_round_trip(tmp_path):
    df = pd.DataFrame({
        "i": np.arange(50_000),
        "f": np.linspace(0, 1, 50_000),
        "s": [f"row-{i}" for i in range(50_000)],
        "t": pd.date_range("2024-01-01", periods=50_000, freq="s"),
        "c": pd.Categorical(np.arange(50_000) % 7),
    }).set_index("i")
    series = df["f"] * 2
    with SpillBuffer(target=10, directory=tmp_path) as buf:
        buf["df"] = df
        buf["series"] = series
        assert buf.spilled_count == 2 and buf.fast_bytes == 0
        pd.testing.assert_frame_equal(buf["df"], df)
        pd.testing.assert_series_equal(buf["series"], series)


def test_plain_objects_and_lambdas(buf):
    values = {
        "dict": {"a": [1, 2, 3], "b": ("x", None)},
        "set": {1, 2, 3},
        "point": Point(1, [2, 3]),
        "func": lambda x: x + 41,                 # needs cloudpickle
        "bytes": b"\x00" * 70,
    }
    for key, value in values.items():
        buf[key] = value
    buf.spill(10**9)
    assert buf.spilled_count == len(values) and buf.fast_bytes == 0
    for key, value in values.items():
        if key == "func":
            assert buf[key](1) == 42
        else:
            assert buf[key] == value


def test_any_hashable_key_maps_to_a_safe_file_name(buf):
    keys = [("x", 1), ("x", (2, 3)), "../../etc/passwd", "", 7, None, 2.5, frozenset({1}),
            "a/b\\c:d*e?f", "é" * 300, ("y", "../..")]
    for i, key in enumerate(keys):
        buf[key] = str(i).encode() * 10
    buf.spill(10**9)
    assert buf.spilled_count == len(keys)
    names = files_in(buf)
    assert len(names) == len(keys) == len(set(names))
    assert all(os.sep not in n and not n.startswith(".") and len(n) < 80 for n in names)
    assert sorted(os.listdir(os.path.dirname(buf.directory))) == [os.path.basename(buf.directory)]
    for i, key in enumerate(keys):
        assert buf[key] == str(i).encode() * 10


def test_unpicklable_value_stays_in_memory(buf, caplog):
    lock = threading.Lock()
    with caplog.at_level(logging.WARNING, logger="runtime.spill"):
        buf["lock"] = lock
        buf["lock"]                               # sizeof=len fails on a lock: weight 0
        assert buf.weight("lock") == 0
        buf["a"] = b"a" * 60
        buf["b"] = b"b" * 60                      # 120 > 100: passes over the lock, spills a
        assert buf.spilled_keys() == ["a"]
        assert buf.spill(10**9) == 60             # b goes, the lock cannot
    assert buf.unspillable_count == 1 and buf.metrics["spill_failures"] == 1
    assert buf.fast_keys() == ["lock"] and buf["lock"] is lock
    assert buf.evict() == 0
    failures = [r for r in caplog.records if "stays in memory" in r.getMessage()]
    assert len(failures) == 1 and "lock" in failures[0].getMessage()
    del buf["lock"]
    assert buf.unspillable_count == 0


def test_big_unpicklable_value_evicts_others(tmp_path):
    with SpillBuffer(target=100, directory=tmp_path, sizeof=lambda v: 150 if isinstance(v, type(threading.Lock())) else len(v)) as buf:
        buf["a"] = b"a" * 50
        buf["lock"] = threading.Lock()            # over target and unpicklable: kept, others go
        assert buf.fast_keys() == ["lock"] and buf.spilled_keys() == ["a"] and buf.fast_bytes == 150
        assert buf["a"] == b"a" * 50


def test_write_failure_keeps_value(buf, monkeypatch):
    def disk_full(path, frames):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spill_module, "_write_frames", disk_full)
    buf["a"] = b"a" * 80
    buf["b"] = b"b" * 80
    assert buf.spilled_count == 0 and buf.unspillable_count == 2
    assert buf["a"] == b"a" * 80 and files_in(buf) == []


def test_corrupt_spill_file_raises_clear_error(buf):
    buf["k"] = b"k" * 200                       # over target: straight to disk
    (name,) = files_in(buf)
    with open(os.path.join(buf.directory, name), "r+b") as f:
        f.truncate(20)
    with pytest.raises(SpillError, match="key 'k'.*truncated"):
        buf["k"]


def test_evict_and_spill_report_bytes(tmp_path):
    with SpillBuffer(target=None, directory=tmp_path, sizeof=len) as buf:
        assert buf.evict() == 0
        buf.update({"a": b"1" * 10, "b": b"2" * 20, "c": b"3" * 30})
        assert buf.spilled_count == 0             # no target: only spills on request
        assert buf.evict() == 10 and buf.spilled_keys() == ["a"]
        assert buf.spill(25) == 50 and buf.fast_bytes == 0
        assert buf.spill(1) == 0


def test_close_removes_directory_and_is_idempotent(tmp_path):
    buf = SpillBuffer(target=10, directory=tmp_path, sizeof=len)
    buf.update({i: b"x" * 8 for i in range(10)})
    assert buf.spilled_count == 9 and os.path.isdir(buf.directory)
    directory = buf.directory
    buf.close()
    buf.close()
    assert not os.path.exists(directory) and os.listdir(tmp_path) == []
    assert len(buf) == 0
    with pytest.raises(RuntimeError, match="closed"):
        buf["a"] = b"1"


def test_default_directory_follows_config(tmp_path):
    with lazyarr.config.set({"temporary-directory": str(tmp_path / "scratch")}):
        with SpillBuffer(target=0) as buf:
            buf["a"] = b"abc"
            assert os.path.dirname(buf.directory) == str(tmp_path / "scratch")
            assert buf.spilled_count == 1
    assert os.listdir(tmp_path / "scratch") == []


def test_garbage_collected_buffer_removes_directory(tmp_path):
    buf = SpillBuffer(target=0, directory=tmp_path)
    buf["a"] = b"abc"
    del buf
    import gc

    gc.collect()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("target, error", [(-1, ValueError), ("lots", ValueError), (True, TypeError),
                                           ([1], TypeError)])
def test_bad_target(target, error, tmp_path):
    with pytest.raises(error, match="target|size"):
        SpillBuffer(target, directory=tmp_path)
    assert os.listdir(tmp_path) == []


def test_bad_sizeof(tmp_path):
    with pytest.raises(TypeError, match="sizeof"):
        SpillBuffer(10, directory=tmp_path, sizeof=3)


def test_target_string(tmp_path):
    with SpillBuffer("1 KiB", directory=tmp_path) as buf:
        assert buf.target == 1024


def test_concurrent_readers_and_writers(tmp_path):
    target = 64 * 1024
    with SpillBuffer(target=target, directory=tmp_path) as buf:
        errors: list = []
        nkeys = 40

        def expected(key: int) -> np.ndarray:
            return np.full(2048, key, dtype="f8")   # 16 KiB each: 4 fit in memory

        for key in range(nkeys):
            buf[key] = expected(key)

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for _ in range(300):
                    key = rng.randrange(nkeys)
                    if rng.random() < 0.3:
                        buf[key] = expected(key)
                    else:
                        value = buf[key]
                        if not np.array_equal(value, expected(key)):
                            errors.append((key, value[:3]))
                    if rng.random() < 0.05:
                        buf.evict()
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,), name=f"spill-test-{i}") for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert len(buf) == nkeys and buf.fast_bytes <= target
        assert len(files_in(buf)) == buf.spilled_count == nkeys - len(buf.fast_keys())
        for key in range(nkeys):
            assert np.array_equal(buf[key], expected(key))


def test_three_times_target_round_trip(tmp_path):
    """3 x target of NumPy data stored and read back correctly, memory never above target."""
    target = 8 * 2**20
    chunk = 2**17                                   # 1 MiB of float64 each
    n = 24
    rng = np.random.default_rng(3)
    seeds = rng.integers(0, 2**31, size=n)
    with SpillBuffer(target=target, directory=tmp_path) as buf:
        for i in range(n):
            buf[("chunk", i)] = np.random.default_rng(seeds[i]).random(chunk)
            assert buf.fast_bytes <= target
        fit = target // buf.weight(("chunk", 0))    # 8, or 7 if sizeof adds some overhead
        assert fit in (7, 8)
        assert buf.spilled_count == n - fit and buf.fast_bytes == fit * buf.weight(("chunk", 0))
        assert buf.spilled_bytes >= (n - fit) * chunk * 8
        order = list(range(n))
        random.Random(0).shuffle(order)
        for i in order * 2:
            value = buf[("chunk", i)]
            assert np.array_equal(value, np.random.default_rng(seeds[i]).random(chunk))
            assert buf.fast_bytes <= target
        assert len(buf) == n and len(files_in(buf)) == buf.spilled_count == n - fit
        assert buf.metrics["unspills"] >= n - fit
