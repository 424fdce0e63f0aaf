"""groupby through both shuffles, spill-file clean-up, the default choice, stable hashing."""
from __future__ import annotations

import datetime
import gc
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

import lazyarr
import lazyarr.bag as db
from lazyarr.bag.shuffle import _stage_plan, choose_shuffle, stable_hash

from ._bag_data import random_ints, random_records, random_words


def python_groupby(data, key) -> dict:
    groups: dict = {}
    for x in data:
        groups.setdefault(key(x), []).append(x)
    return groups


def check_groups(result: list, expected: dict) -> None:
    assert len(result) == len(expected), "each key appears exactly once"
    assert dict(result) == expected  # values in input order, per key


@pytest.fixture
def spill_root(tmp_path):
    root = tmp_path / "spill"
    root.mkdir()
    with lazyarr.config.set({"temporary-directory": str(root)}):
        yield root


@pytest.mark.parametrize("method", ["disk", "tasks"])
@pytest.mark.parametrize("nin, nout", [(1, 1), (5, None), (4, 9), (9, 2)])
def test_groupby_matches_python(scheduler, spill_root, method, nin, nout):
    words = random_words(nin, 150)
    b = db.from_sequence(words, npartitions=nin)
    g = b.groupby(len, shuffle=method, npartitions=nout)
    assert g.npartitions == (nout or nin)
    check_groups(g.compute(scheduler=scheduler), python_groupby(words, len))
    records = random_records(nin, 80)
    by_name = db.from_sequence(records, npartitions=nin).groupby("name", shuffle=method, npartitions=nout)
    check_groups(by_name.compute(scheduler=scheduler), python_groupby(records, lambda r: r["name"]))
    assert os.listdir(spill_root) == []  # every spill file and directory is gone


def test_tasks_shuffle_in_several_stages(scheduler):
    assert _stage_plan(5, 32) == (5, 1)
    assert _stage_plan(100, 10) == (10, 2)
    assert _stage_plan(30, 3) == (3, 4)
    data = random_ints(3, 400, 0, 10_000)
    b = db.from_sequence(data, npartitions=30)
    g = b.groupby(lambda x: x % 37, shuffle="tasks", max_branch=3)
    graph = g.__lazyarr_graph__()
    stages = {k[1] for k in graph if isinstance(k, tuple) and k[0].startswith("groupby-join")}
    assert stages == {1, 2, 3, 4}
    tasks_with_inputs = [len(v[1]) for k, v in graph.items() if k[0].startswith("groupby-join")]
    assert max(tasks_with_inputs) == 3  # no task gathers more than max_branch pieces
    check_groups(g.compute(scheduler=scheduler), python_groupby(data, lambda x: x % 37))


def test_groups_larger_than_a_partition(scheduler, spill_root):
    data = list(range(1000))
    b = db.from_sequence(data, npartitions=10)
    for method in ("disk", "tasks"):
        got = b.groupby(lambda x: x % 2, shuffle=method, npartitions=4).compute(scheduler=scheduler)
        check_groups(got, {0: data[0::2], 1: data[1::2]})


def test_groupby_then_more_work(scheduler, spill_root):
    data = random_ints(5, 300)
    g = db.from_sequence(data, npartitions=6).groupby(lambda x: x % 7, npartitions=3)
    sizes = g.map(lambda kv: (kv[0], len(kv[1]))).compute(scheduler=scheduler)
    assert dict(sizes) == {k: len(v) for k, v in python_groupby(data, lambda x: x % 7).items()}
    assert g.count().compute(scheduler=scheduler) == 7


def test_unread_spill_files_are_removed_with_the_graph(spill_root):
    b = db.from_sequence(range(100), npartitions=4)
    g = b.groupby(lambda x: x % 10, shuffle="disk", npartitions=4)
    first = g.take(1, compute=False).compute(scheduler="sync")
    assert len(first) == 1
    assert os.listdir(spill_root) != []  # buckets 1..3 were written but not read
    del g
    gc.collect()
    assert os.listdir(spill_root) == []


def test_spill_files_removed_after_a_failure(spill_root):
    def explode(x):
        if x == 77:
            raise ValueError("bad element")
        return x % 3

    g = db.from_sequence(range(100), npartitions=5).groupby(explode, shuffle="disk")
    with pytest.raises(ValueError, match="bad element"):
        g.compute(scheduler="sync")
    del g
    gc.collect()
    assert os.listdir(spill_root) == []


def test_default_shuffle_choice():
    assert choose_shuffle() == "disk"
    assert choose_shuffle("tasks") == "tasks"
    with lazyarr.config.set({"bag.shuffle": "tasks"}):
        assert choose_shuffle() == "tasks"
        assert choose_shuffle("disk") == "disk"

    class FakeClient:
        __lazyarr_client__ = True

        def get(self, dsk, keys, **kwargs):
            return lazyarr.get(dsk, keys)

        def persist(self, collections, **kwargs):
            raise NotImplementedError

    with lazyarr.config.set(scheduler=FakeClient()):
        assert choose_shuffle() == "tasks"
        b = db.from_sequence(range(20), npartitions=3).groupby(lambda x: x % 4)
        assert any(str(k[0]).startswith("groupby-split") for k in b.__lazyarr_graph__())
        assert sorted(b.compute()) == [(k, list(range(k, 20, 4))) for k in range(4)]
    with pytest.raises(ValueError, match="unknown shuffle 'memory'"):
        choose_shuffle("memory")


def test_stable_hash_is_the_same_in_another_process():
    keys = ["word", "", "é漢", b"bytes", 12, -3, 2.5, None, True, ("a", 1, ("b", 2.0)), frozenset({"x", "y"}),
            datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)]
    here = [stable_hash(k) for k in keys]
    code = (
        "import datetime, lazyarr.bag as db\n"
        f"keys = {keys!r}\n"
        "print([db.stable_hash(k) for k in keys])"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert eval(out.stdout) == here
    assert stable_hash(1) == stable_hash(1.0) == stable_hash(True)
    assert stable_hash(("a", 1)) == stable_hash(("a", 1.0))
    assert len({stable_hash(w) % 8 for w in random_words(1, 200)}) == 8  # spreads over the buckets


@pytest.mark.timeout(60)
def test_on_the_distributed_runtime():
    runtime = pytest.importorskip("runtime")
    words = random_words(9, 300)
    with runtime.Client(processes=False, n_workers=2):
        assert choose_shuffle() == "tasks"  # the open client is the configured scheduler
        g = db.from_sequence(words, npartitions=6).groupby(lambda w: w[0], npartitions=4)
        check_groups(g.compute(), python_groupby(words, lambda w: w[0]))
        persisted = db.from_sequence(words, npartitions=3).map(len).persist()
        assert persisted.sum().compute() == sum(map(len, words))
        assert dict(persisted.frequencies().compute()) == dict(Counter(map(len, words)))
    assert choose_shuffle() == "disk"


def test_one_disk_groupby_computed_twice_at_once(spill_root):
    """Both computations of one graph share its spill directory but never each other's files."""
    data = random_ints(11, 2000)
    g = db.from_sequence(data, npartitions=8).groupby(lambda x: x % 13, shuffle="disk", npartitions=5)
    expected = python_groupby(data, lambda x: x % 13)
    start = threading.Barrier(2)

    def run():
        start.wait()
        return g.compute(scheduler="threads")

    with ThreadPoolExecutor(2) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(run) for _ in range(2)]]
    for got in results:
        check_groups(got, expected)
    assert os.listdir(spill_root) == []
