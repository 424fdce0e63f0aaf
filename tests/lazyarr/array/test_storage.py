"""Storing arrays: store into array-likes, npy stacks, memory maps."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import lazyarr.array as da

from _array_helpers import SCHEDULERS, assert_eq

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_store_into_numpy_and_memmap(scheduler, tmp_path):
    values = np.arange(60.0).reshape(6, 10)
    x = da.from_array(values, chunks=(4, 3)) * 2
    out = np.zeros((6, 10))
    assert da.store(x, out, scheduler=scheduler) is None
    np.testing.assert_array_equal(out, values * 2)
    mm = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype="f8", shape=(6, 10))
    x.store(mm, lock=False, scheduler=scheduler)
    mm.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), values * 2)


def test_store_several_sources_regions_and_locks():
    a, b = da.arange(5, chunks=2), da.ones((2, 3), chunks=1)
    t1, t2 = np.zeros(8, dtype=int), np.zeros((4, 3))
    lock = threading.Lock()
    da.store([a, b], [t1, t2], regions=[(slice(3, 8),), (slice(1, 3), slice(None))], lock=lock)
    np.testing.assert_array_equal(t1, [0, 0, 0, 0, 1, 2, 3, 4])
    np.testing.assert_array_equal(t2, [[0, 0, 0], [1, 1, 1], [1, 1, 1], [0, 0, 0]])


def test_store_later():
    out = np.zeros(4)
    pending = da.store(da.arange(4, chunks=3) + 1, out, compute=False)
    assert (out == 0).all()
    pending.compute()
    np.testing.assert_array_equal(out, [1, 2, 3, 4])


def test_store_errors():
    with pytest.raises(ValueError, match=r"shape \(5,\) into a target of shape \(4,\)"):
        da.store(da.ones(5), np.zeros(4))
    with pytest.raises(ValueError, match="region"):
        da.store(da.ones(5), np.zeros(10), regions=(slice(0, 3),))
    with pytest.raises(ValueError, match="2 sources but 1 targets"):
        da.store([da.ones(2), da.ones(2)], [np.zeros(2)])
    with pytest.raises(TypeError, match="item assignment"):
        da.store(da.ones(2), (0, 0))


@pytest.mark.parametrize("axis", [0, 1])
def test_npy_stack_round_trip(tmp_path, axis):
    values = np.arange(35, dtype="i4").reshape(5, 7)
    x = da.from_array(values, chunks=(2, 3))
    da.to_npy_stack(str(tmp_path), x, axis=axis)
    y = da.from_npy_stack(str(tmp_path))
    assert y.chunks[axis] == x.chunks[axis]
    assert len(y.chunks[1 - axis]) == 1
    assert_eq(y, values)
    assert_eq(y.sum(axis=0), values.sum(axis=0))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "info" in files and f"{len(x.chunks[axis]) - 1}.npy" in files


def test_npy_stack_structured_dtype_and_errors(tmp_path):
    values = np.zeros(4, dtype=[("a", "i4"), ("b", "f8")])
    values["a"] = [1, 2, 3, 4]
    x = da.from_array(values, chunks=3)
    x.to_npy_stack(str(tmp_path / "s"))
    y = da.from_npy_stack(str(tmp_path / "s"))
    assert y.dtype == values.dtype
    np.testing.assert_array_equal(y.compute()["a"], [1, 2, 3, 4])
    with pytest.raises(FileNotFoundError, match="no info file"):
        da.from_npy_stack(str(tmp_path))
    (tmp_path / "s" / "1.npy").unlink()
    with pytest.raises(FileNotFoundError, match="1.npy"):
        da.from_npy_stack(str(tmp_path / "s"))
