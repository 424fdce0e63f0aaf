"""lazyarr collections computed on the runtime: a CLI-started scheduler and two worker processes."""
from __future__ import annotations

import collections
import time
from operator import add

import numpy as np
import pandas as pd
import pytest

import lazyarr
from lazyarr import delayed
from runtime import Client, Future

da = pytest.importorskip("lazyarr.array")
db = pytest.importorskip("lazyarr.bag")
dd = pytest.importorskip("lazyarr.dataframe")

pytestmark = pytest.mark.timeout(90)

TEXT = ["the quick brown fox", "jumps over the lazy dog", "the dog barks", "a fox runs", "over and over"] * 7


def inc(x: int) -> int:
    return x + 1


def double(x: int) -> int:
    return 2 * x


@pytest.fixture
def c(cli_cluster):
    with Client(cli_cluster.address_to_clients, timeout=10, set_as_default=False) as client:
        yield client


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"key": rng.integers(0, 5, 300), "value": rng.random(300), "n": np.arange(300)})


def test_graph_dict(c):
    dsk = {"x": 1, "y": (add, "x", 2), "z": (sum, ["x", "y"]), "w": (inc, "z")}
    assert c.get(dsk, "y") == 3
    assert c.get(dsk, ["w", ["x", "z"]]) == (5, (1, 4))


def test_delayed_pipeline(c):
    parts = [delayed(inc)(i) for i in range(20)]
    total = delayed(sum)([delayed(double)(p) for p in parts])
    expected = sum(2 * (i + 1) for i in range(20))
    assert total.compute(scheduler=c) == expected
    assert total.compute(get=c.get) == expected
    assert lazyarr.compute(total, parts[3], scheduler=c) == (expected, 4)
    (persisted,) = lazyarr.persist(total, scheduler=c)
    assert persisted.compute(scheduler=c) == expected


def test_new_work_on_persisted_collections(c, frame):
    """Persisted collections used in further graphs (issue 6, item 5).

    Fails today: the persisted graph holds Futures as values; lazyarr's ``fuse`` folds such a
    value, which has a single dependent, into a ``Chain`` with that dependent, and the client looks
    for futures only in the plain task spec, not inside a Chain. The Future is then pickled into
    the task and the worker cannot unpickle it ("a Future ... was unpickled where no client is
    active"). The client's ``_prepare``/``_scan`` (or ``fuse``) must keep futures visible.
    """
    (persisted,) = lazyarr.persist(delayed(sum)([delayed(inc)(i) for i in range(5)]), scheduler=c)
    assert (persisted + 1).compute(scheduler=c) == sum(range(1, 6)) + 1
    x = da.arange(1000, chunks=100).persist(scheduler=c)
    assert int((x + 1).sum().compute(scheduler=c)) == sum(range(1, 1001))
    ddf = dd.from_pandas(frame, npartitions=3).persist(scheduler=c)
    pd.testing.assert_series_equal(ddf.groupby("key").value.sum().compute(scheduler=c).sort_index(),
                                   frame.groupby("key").value.sum().sort_index())


def test_new_work_on_persisted_collections_without_fusion(c, frame):
    """The same as above with fusion off: the runtime's handling of futures in graphs works."""
    with lazyarr.config.set({"optimization.fuse.active": False}):
        (persisted,) = lazyarr.persist(delayed(sum)([delayed(inc)(i) for i in range(5)]), scheduler=c)
        assert (persisted + 1).compute(scheduler=c) == sum(range(1, 6)) + 1
        x = da.arange(1000, chunks=100).persist(scheduler=c)
        assert int((x + 1).sum().compute(scheduler=c)) == sum(range(1, 1001))
        ddf = dd.from_pandas(frame, npartitions=3).persist(scheduler=c)
        pd.testing.assert_series_equal(ddf.groupby("key").value.sum().compute(scheduler=c).sort_index(),
                                       frame.groupby("key").value.sum().sort_index())


def test_array_mean(c):
    x = da.from_array(np.arange(100_000, dtype="f8").reshape(400, 250), chunks=(100, 50))
    expected = np.arange(100_000, dtype="f8").mean()
    assert float(x.mean().compute(get=c.get)) == pytest.approx(expected)
    assert float(x.mean().compute(scheduler=c)) == pytest.approx(expected)
    y = (x + 1).sum(axis=0)
    np.testing.assert_allclose(y.compute(scheduler=c), (np.arange(100_000, dtype="f8").reshape(400, 250) + 1).sum(0))


def test_array_random_mean_and_persist(c):
    x = da.random.normal(10, 0.1, size=(200_000,), chunks=(20_000,))
    assert float(x.mean().compute(scheduler=c)) == pytest.approx(10, abs=0.01)
    xp = x.persist(scheduler=c)
    futures = [v for v in xp.__lazyarr_graph__().values() if isinstance(v, Future)]
    assert len(futures) == 10  # the blocks stay on the workers as futures
    assert float(xp.std().compute(scheduler=c)) == pytest.approx(float(x.std().compute(scheduler="sync")))


def test_bag_word_count(c):
    b = db.from_sequence(TEXT, npartitions=5)
    counts = b.map(str.split).flatten().frequencies()
    expected = collections.Counter(word for line in TEXT for word in line.split())
    assert dict(counts.compute(scheduler=c)) == dict(expected)
    top = b.str.split().flatten().frequencies(sort=True).topk(2, key=lambda kv: kv[1]).compute(get=c.get)
    assert [word for word, _ in top] == [w for w, _ in expected.most_common(2)]


def test_dataframe_groupby(c, frame):
    ddf = dd.from_pandas(frame, npartitions=4)
    got = ddf.groupby("key").value.sum().compute(scheduler=c)
    pd.testing.assert_series_equal(got.sort_index(), frame.groupby("key").value.sum().sort_index())
    means = ddf.groupby("key").agg({"value": "mean", "n": "max"}).compute(get=c.get)
    pd.testing.assert_frame_equal(means.sort_index(), frame.groupby("key").agg({"value": "mean", "n": "max"}).sort_index())
    assert ddf[ddf.value > 0.5].n.count().compute(scheduler=c) == (frame.value > 0.5).sum()


# ----------------------------------------------------------------------------------------------
# Named collections


def test_named_collection_across_two_clients(cli_cluster, c):
    b = db.from_sequence(range(5), npartitions=2).map(inc)
    c.set_collection("mybag", b)
    assert "mybag" in c.list_collections()
    with Client(cli_cluster.address_to_clients, timeout=10, set_as_default=False) as other:
        b2 = other.get_collection("mybag")
        assert type(b2) is type(b)
        assert sorted(b2.compute(scheduler=other)) == [1, 2, 3, 4, 5] == sorted(b.compute(scheduler="sync"))
        other.delete_collection("mybag")
    assert "mybag" not in c.list_collections()
    with pytest.raises(KeyError, match="mybag"):
        c.get_collection("mybag")


def test_named_persisted_collections_outlive_the_client_that_stored_them(cli_cluster, frame):
    ddf = dd.from_pandas(frame, npartitions=3)
    expected = frame.groupby("key").value.mean()
    x = da.arange(1000, chunks=100)
    with Client(cli_cluster.address_to_clients, timeout=10, set_as_default=False) as writer:
        writer.set_collection("frame", ddf.persist(scheduler=writer))
        writer.set_collection("arr", x.persist(scheduler=writer))
        writer.set_collection("lazy", delayed(sum)([delayed(inc)(i) for i in range(10)]))
    time.sleep(0.2)  # the writer is gone; what it stored must not be
    with Client(cli_cluster.address_to_clients, timeout=10, set_as_default=False) as reader:
        names = reader.list_collections()
        assert {"frame", "arr", "lazy"} <= set(names)
        got = reader.get_collection("frame")
        assert type(got) is type(ddf)
        pd.testing.assert_frame_equal(got.compute(scheduler=reader), frame)
        with lazyarr.config.set({"optimization.fuse.active": False}):  # see test_new_work_on_persisted_collections
            pd.testing.assert_series_equal(got.groupby("key").value.mean().compute(scheduler=reader).sort_index(),
                                           expected.sort_index())
            arr = reader.get_collection("arr")
            assert type(arr) is type(x)
            assert int(arr.sum().compute(scheduler=reader)) == sum(range(1000))
        assert reader.get_collection("lazy").compute(scheduler=reader) == sum(range(1, 11))
        for name in ("frame", "arr", "lazy"):
            reader.delete_collection(name)
        assert not {"frame", "arr", "lazy"} & set(reader.list_collections())


def test_replacing_a_named_collection(cli_cluster, c):
    c.set_collection("numbers", db.from_sequence([1, 2, 3]))
    with Client(cli_cluster.address_to_clients, timeout=10, set_as_default=False) as other:
        other.set_collection("numbers", db.from_sequence([10, 20]))
    assert sorted(c.get_collection("numbers").compute(scheduler=c)) == [10, 20]
    c.delete_collection("numbers")
