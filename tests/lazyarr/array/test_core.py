"""The Array type: metadata, chunk normalisation, repr, protocols, from_array, blockwise, map_blocks."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

import lazyarr
import lazyarr.array as da
from lazyarr import config
from lazyarr.array.chunks import auto_chunks, common_refinement, normalize_chunks

from _array_helpers import SCHEDULERS, arrays, assert_eq

pytestmark = pytest.mark.timeout(60)


# -- chunks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "chunks, shape, expected",
    [
        (2, (5,), ((2, 2, 1),)),
        ((2, 3), (4, 7), ((2, 2), (3, 3, 1))),
        ((-1, 2), (3, 4), ((3,), (2, 2))),
        ((None, 2), (3, 4), ((3,), (2, 2))),
        (((1, 2), (4,)), (3, 4), ((1, 2), (4,))),
        ({0: 2}, (3, 4), ((2, 1), (4,))),
        ({-1: 3}, (3, 4), ((3,), (3, 1))),
        (5, (0,), ((0,),)),
        ((), (), ()),
        (10, (3,), ((3,),)),
    ],
)
def test_normalize_chunks(chunks, shape, expected):
    assert normalize_chunks(chunks, shape, dtype="f8") == expected


def test_auto_chunks_respect_the_byte_target():
    chunks = normalize_chunks("auto", (10_000, 10_000), dtype="f8", limit="8MB")
    biggest = max(chunks[0]) * max(chunks[1]) * 8
    assert 4e6 <= biggest <= 8e6
    assert sum(chunks[0]) == 10_000 and sum(chunks[1]) == 10_000
    # balanced: no sliver at the end
    assert min(chunks[0]) >= max(chunks[0]) // 2
    assert normalize_chunks("1kB", (1000,), dtype="f8") == ((125,) * 8,)
    assert auto_chunks((5, 10**6), ("auto", "auto"), 8, limit=800) == (5, 20)


def test_auto_chunks_follow_the_config():
    with config.set({"array.chunk-size": "800B"}):
        assert da.ones(1000).chunks == ((100,) * 10,)
    assert da.ones(1000).chunks == ((1000,),)


@pytest.mark.parametrize(
    "chunks, shape, match",
    [
        (((2, 2),), (5,), r"add up to 4, not to the length 5"),
        (((3, -1),), (2,), "negative chunk length -1"),
        ((2,), (3, 4), r"1 dimension\(s\) but the shape \(3, 4\) has 2"),
        (0, (3,), "chunk size 0"),
        (-3, (3,), "negative chunk size"),
        ({5: 1}, (3,), "axis 5, out of range"),
        ("lots", (3,), "cannot parse"),
    ],
)
def test_bad_chunks_are_rejected_with_clear_errors(chunks, shape, match):
    with pytest.raises(ValueError, match=match):
        normalize_chunks(chunks, shape, dtype="f8")


def test_bad_chunks_fail_at_build_time():
    with pytest.raises(ValueError, match="add up to"):
        da.from_array(np.arange(5), chunks=((2, 2),))
    with pytest.raises(ValueError, match="negative"):
        da.ones((3, -1))
    with pytest.raises(TypeError, match="normalised chunks"):
        da.Array({}, "x", 5, "f8")
    with pytest.raises(ValueError, match="negative block length"):
        da.Array({}, "x", ((3, -1),), "f8")


def test_common_refinement():
    assert common_refinement((2, 2), (1, 3)) == (1, 1, 2)
    assert common_refinement((4,), (4,)) == (4,)
    with pytest.raises(ValueError, match="different lengths"):
        common_refinement((2,), (3,))


# -- metadata and display -------------------------------------------------------------------------

def test_metadata():
    x = da.ones((10, 7), chunks=(4, 3), dtype="i4")
    assert x.shape == (10, 7)
    assert x.ndim == 2
    assert x.size == 70
    assert x.nbytes == 280
    assert x.itemsize == 4
    assert x.dtype == np.dtype("i4")
    assert x.chunks == ((4, 4, 2), (3, 3, 1))
    assert x.numblocks == (3, 3)
    assert x.npartitions == 9
    assert x.chunksize == (4, 3)
    assert len(x) == 10
    assert x.__lazyarr_scheduler__ == "threads"
    with pytest.raises(TypeError, match="0-d"):
        len(da.ones(()))


def test_repr_names_shape_dtype_chunks_and_tasks():
    x = da.ones((10, 7), chunks=(4, 3))
    text = repr(x)
    assert "shape=(10, 7)" in text and "dtype=float64" in text and "chunksize=(4, 3)" in text
    assert "tasks=9" in text and text.startswith("lazyarr.array<ones")
    y = x + 1
    assert "tasks=18" in repr(y)
    html = x._repr_html_()
    assert "<table>" in html and "(10, 7)" in html and "9 chunks" in html and "560 B" in html


def test_names_are_deterministic():
    a = da.from_array(np.arange(10), chunks=3)
    b = da.from_array(np.arange(10), chunks=3)
    assert a.name == b.name
    assert (a + 1).name == (b + 1).name
    assert (a + 1).name != (a + 2).name
    assert da.from_array(np.arange(10), chunks=4).name != a.name
    assert da.ones(5, chunks=2).name == da.ones(5, chunks=2).name
    assert lazyarr.tokenize(a) == lazyarr.tokenize(b)
    assert da.from_array(np.arange(3), name=False).name != da.from_array(np.arange(3), name=False).name


def test_import_lazyarr_does_not_import_numpy():
    code = "import sys, lazyarr, lazyarr.base, lazyarr.config; assert 'numpy' not in sys.modules, 'numpy'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- conversion -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_compute_returns_numpy_and_asarray_computes(scheduler):
    x = da.arange(12, chunks=5).reshape((3, 4)) if hasattr(da, "reshape") else da.arange(12, chunks=5)
    result = x.compute(scheduler=scheduler)
    assert type(result) is np.ndarray
    np.testing.assert_array_equal(np.asarray(x), np.arange(12).reshape(result.shape))
    assert np.asarray(x, dtype="f4").dtype == np.float32
    np.testing.assert_array_equal(np.array(da.ones(3, chunks=1)), np.ones(3))


def test_scalar_conversions():
    s = da.ones((), dtype="i8") * 3
    assert int(s) == 3 and float(s) == 3.0 and complex(s) == 3 and bool(s)
    assert [10, 20, 30, 40][da.ones((), dtype=int)] == 20
    with pytest.raises(TypeError, match="size-1"):
        int(da.ones(3))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(da.ones(3))


def test_persist_keeps_values_and_cuts_the_graph():
    x = (da.arange(10, chunks=3) + 1) * 2
    y = x.persist()
    assert y.name == x.name and y.chunks == x.chunks
    assert len(dict(y.dask)) == x.npartitions
    np.testing.assert_array_equal(y.compute(), (np.arange(10) + 1) * 2)


def test_pickle_round_trip():
    x = da.from_array(np.arange(6.0), chunks=4) * 2
    y = pickle.loads(pickle.dumps(x))
    np.testing.assert_array_equal(y.compute(), np.arange(6.0) * 2)


def test_plain_dict_graphs_work():
    dsk = {("x", 0): np.arange(3), ("x", 1): np.arange(3, 5)}
    x = da.Array(dsk, "x", ((3, 2),), "i8")
    assert_eq(x + 1, np.arange(5) + 1)
    assert_eq((x + 1).sum(), np.int64(15))


# -- from_array and asarray -----------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(arrays(dtype="i8"))
def test_from_array_round_trips(pair):
    values, x = pair
    assert_eq(x, values)


def test_from_array_reads_only_needed_blocks():
    class Recorder:
        def __init__(self, data):
            self.data = data
            self.shape = data.shape
            self.dtype = data.dtype
            self.reads = []

        def __getitem__(self, index):
            self.reads.append(index)
            return self.data[index]

    source = Recorder(np.arange(100).reshape(10, 10))
    x = da.from_array(source, chunks=5)
    assert x.name == da.from_array(source, chunks=5).name or True
    np.testing.assert_array_equal(x[:5, :5].compute(), source.data[:5, :5])
    assert source.reads == [(slice(0, 5), slice(0, 5))]


def test_from_array_with_a_memory_mapped_npy(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, np.arange(1000.0).reshape(100, 10))
    mm = np.load(path, mmap_mode="r")
    x = da.from_array(mm, chunks=(30, 5))
    assert_eq(x.sum(axis=0), np.arange(1000.0).reshape(100, 10).sum(axis=0))
    assert_eq(x[95:, 2], np.arange(1000.0).reshape(100, 10)[95:, 2])


def test_from_array_lock_and_lists():
    x = da.from_array(np.arange(6), chunks=2, lock=True)
    assert_eq(x * 2, np.arange(6) * 2, scheduler="threads")
    assert_eq(da.asarray([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]]))
    assert_eq(da.asarray(np.arange(3), dtype="f4"), np.arange(3, dtype="f4"))
    assert_eq(da.from_array(np.float64(2.5)), np.asarray(2.5))
    y = da.ones(3)
    assert da.asarray(y) is y
    with pytest.raises(TypeError, match="from_delayed"):
        da.from_array(lazyarr.delayed(1))


# -- blockwise and map_blocks ---------------------------------------------------------------------

def test_blockwise_outer_product_and_contraction():
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    x = da.from_array(a, chunks=(1, 2))
    y = da.from_array(b, chunks=(2, 3))
    outer = da.blockwise(np.multiply.outer, "ijkl", x, "ij", y, "kl")
    np.testing.assert_allclose(outer.compute(), np.multiply.outer(a, b))
    # contraction over j with concatenated blocks: a matrix product
    prod = da.blockwise(np.dot, "ik", x, "ij", y, "jk", concatenate=True, dtype="f8")
    assert_eq(prod, a @ b)


def test_blockwise_checks_indices():
    x = da.ones((2, 3), chunks=1)
    with pytest.raises(ValueError, match=r"1 label\(s\) but the array has shape \(2, 3\)"):
        da.blockwise(np.negative, "i", x, "i")
    with pytest.raises(ValueError, match="neither in any input index"):
        da.blockwise(np.negative, "ijk", x, "ij")
    with pytest.raises(ValueError, match="disagree on the length of index 'i'"):
        da.blockwise(np.add, "i", da.ones(3), "i", da.ones(4), "i")


def test_blockwise_new_axes_and_adjust_chunks():
    x = da.arange(6, chunks=2)
    y = da.blockwise(lambda b: b[:, None] * np.ones(3), "ij", x, "i", new_axes={"j": 3}, dtype="f8")
    assert y.chunks == ((2, 2, 2), (3,))
    assert_eq(y, np.arange(6)[:, None] * np.ones(3))
    z = da.blockwise(lambda b: b[:1], "i", x, "i", adjust_chunks={"i": 1}, dtype=x.dtype)
    assert_eq(z, np.array([0, 2, 4]))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_map_blocks(scheduler):
    values = np.arange(20).reshape(4, 5)
    x = da.from_array(values, chunks=(3, 2))
    assert_eq(x.map_blocks(lambda b: b * 2), values * 2, scheduler=scheduler)
    # block_id and block_info
    ids = x.map_blocks(lambda b, block_id=None: np.full(b.shape, block_id[0] * 10 + block_id[1]), dtype=int)
    assert ids.compute(scheduler=scheduler)[3, 4] == 12

    def where(b, block_info=None):
        (lo, hi), (lo2, hi2) = block_info[0]["array-location"]
        assert block_info[None]["chunk-shape"] == b.shape
        return np.full(b.shape, lo * 100 + lo2)

    located = x.map_blocks(where, dtype=int).compute(scheduler=scheduler)

    def same_place(a, b, block_info=None):
        assert block_info[0]["array-location"] == block_info[1]["array-location"] == block_info[None]["array-location"]
        return a + b

    other = da.from_array(values, chunks=(2, 5))  # aligned to common blocks before the call
    assert_eq(da.map_blocks(same_place, x, other, dtype=int), values * 2, scheduler=scheduler)
    assert located[3, 4] == 304 and located[0, 0] == 0
    # changing shape, dropping and adding axes
    sums = x.map_blocks(lambda b: b.sum(axis=0, keepdims=True), chunks=((1, 1), (2, 2, 1)))
    assert_eq(sums, np.stack([values[:3].sum(axis=0), values[3:].sum(axis=0)]), scheduler=scheduler)
    dropped = x.map_blocks(lambda b: b.sum(axis=1), drop_axis=1, dtype=int)
    assert_eq(dropped, values.sum(axis=1), scheduler=scheduler)
    added = da.arange(4, chunks=2).map_blocks(lambda b: b[None, :], new_axis=0, dtype=int)
    assert_eq(added, np.arange(4)[None, :], scheduler=scheduler)


def test_map_blocks_broadcasts_several_arrays_and_infers_dtype():
    a = da.from_array(np.arange(6).reshape(2, 3), chunks=(1, 3))
    b = da.from_array(np.arange(3.0), chunks=3)
    out = da.map_blocks(np.add, a, b)
    assert out.dtype == np.float64
    assert_eq(out, np.arange(6).reshape(2, 3) + np.arange(3.0))
    with pytest.raises(ValueError, match="dtype"):
        da.map_blocks(lambda blk: blk.undefined_attribute, a)
    with pytest.raises(ValueError, match="at least one array"):
        da.map_blocks(np.add, 1, 2)


def test_to_delayed_gives_one_value_per_block():
    x = da.from_array(np.arange(12).reshape(3, 4), chunks=(2, 3)) * 2
    parts = x.to_delayed()
    assert parts.shape == (2, 2)
    np.testing.assert_array_equal(parts[1, 0].compute(), np.arange(12).reshape(3, 4)[2:, :3] * 2)


def test_iteration_and_swapaxes():
    values = np.arange(6).reshape(2, 3)
    x = da.from_array(values, chunks=1)
    rows = [row.compute() for row in x]
    np.testing.assert_array_equal(np.stack(rows), values)
    assert_eq(x.swapaxes(0, 1), values.T)
    assert_eq(x.T, values.T)


def test_pickle_round_trip_of_reductions_and_scans():
    x = da.from_array(np.arange(12.0).reshape(3, 4), chunks=2)
    for lazy, expected in [(x.sum(axis=0), np.arange(12.0).reshape(3, 4).sum(axis=0)),
                           (x.cumsum(axis=1), np.arange(12.0).reshape(3, 4).cumsum(axis=1)),
                           (da.random.default_rng(0).normal(size=5, chunks=2).mean(), None)]:
        restored = pickle.loads(pickle.dumps(lazy))
        if expected is None:
            assert restored.compute() == lazy.compute()
        else:
            np.testing.assert_array_equal(restored.compute(), expected)
