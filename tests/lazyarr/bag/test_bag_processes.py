"""The bag's default scheduler, ``'processes'``: few, broad tests (a process pool is slow to start).

Worker processes do not share the parent's salted ``hash(str)``, so the string-keyed groupby
here checks that shuffles partition with a process-independent hash.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter

import psutil
import pytest

import lazyarr
import lazyarr.bag as db
from lazyarr.multiprocessing import close_pools

from ._bag_data import random_ints, random_records, random_words


def _service_pids() -> set:
    """multiprocessing's own long-lived helpers: the fork server and the resource tracker."""
    import multiprocessing.forkserver as fs
    import multiprocessing.resource_tracker as rt

    return {getattr(fs._forkserver, "_forkserver_pid", None), getattr(rt._resource_tracker, "_pid", None)}


def _workers() -> set[int]:
    """Our live child processes other than multiprocessing's helpers."""
    skip = _service_pids()
    alive = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.pid not in skip and child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: set[int], seconds: float = 10.0) -> set[int]:
    """The processes among ``pids`` still running after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = {p for p in pids if _running(p)}
        if not pids:
            break
        time.sleep(0.05)
    return pids


@pytest.fixture(scope="module", autouse=True)
def pools_closed_afterwards():
    yield
    close_pools()
    assert _wait_gone(_workers()) == set(), "worker processes left behind"


def test_everything_at_once_on_processes(tmp_path):
    records = random_records(1, 300)
    for i in range(3):
        with open(tmp_path / f"{i}.json", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records[i * 100:(i + 1) * 100])
    names = db.read_text(str(tmp_path / "*.json"), blocksize=2000).map(json.loads).pluck("name")
    words = random_words(2, 500)
    wb = db.from_sequence(words, npartitions=6)
    nums = random_ints(3, 400)
    nb = db.from_sequence(nums, npartitions=5)
    with lazyarr.config.set({"temporary-directory": str(tmp_path)}):
        by_disk = wb.groupby(lambda w: w, shuffle="disk", npartitions=4)
        by_tasks = wb.groupby(lambda w: w[:2], shuffle="tasks", npartitions=7)
    (freqs, disk, tasks, total, std, top, pairs, folded, spilled) = lazyarr.compute(
        names.frequencies(),
        by_disk,
        by_tasks,
        nb.map(lambda x: x * 2).sum(),
        nb.std(ddof=1),
        nb.topk(3, key=abs),
        db.zip(nb, nb.map(str)).filter(lambda p: p[0] > 0).count(),
        wb.foldby(len, lambda acc, w: acc + 1, 0, lambda a, b: a + b),
        wb.str.upper().distinct(),
        scheduler="processes",
    )
    assert dict(freqs) == Counter(r["name"] for r in records)
    expected_disk: dict = {}
    for w in words:
        expected_disk.setdefault(w, []).append(w)
    assert len(disk) == len(expected_disk) and dict(disk) == expected_disk
    expected_tasks: dict = {}
    for w in words:
        expected_tasks.setdefault(w[:2], []).append(w)
    assert len(tasks) == len(expected_tasks) and dict(tasks) == expected_tasks
    assert total == 2 * sum(nums)
    assert std == pytest.approx(statistics.stdev(nums))
    assert [abs(x) for x in top] == sorted((abs(x) for x in nums), reverse=True)[:3]
    assert pairs == sum(1 for x in nums if x > 0)
    assert dict(folded) == Counter(map(len, words))
    assert spilled == list(dict.fromkeys(w.upper() for w in words))
    assert [p for p in os.listdir(tmp_path) if p.startswith("lazyarr-shuffle")] == []


def _shifted(x):
    return x - 3


def test_errors_from_worker_processes(tmp_path):
    b = db.from_sequence(range(8), npartitions=4)
    with pytest.raises(ZeroDivisionError) as info:
        b.map(lambda x: 1 / (x - 3)).compute(scheduler="processes")
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "element 3 of partition 1" in notes
    with pytest.raises(KeyError, match="key 'b' not found .* of partition 0"):
        db.from_sequence([{"a": 1}], npartitions=1).pluck("b").compute(scheduler="processes")
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(b"definitely not gzip")
    with pytest.raises(OSError, match="bad.txt.gz"):
        db.read_text(str(bad)).count().compute(scheduler="processes")
    # the pool still works afterwards
    assert b.map(_shifted).filter(lambda v: v > 0).count().compute(scheduler="processes") == 4


def test_an_error_stops_the_other_workers(tmp_path):
    marker = tmp_path / "slow-started"

    def slow_or_fail(part):
        if part[0] == 0:
            marker.write_text(str(os.getpid()))
            time.sleep(60)
            return part
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        raise RuntimeError("partition one fails")

    b = db.from_sequence([0, 1], npartitions=2).map_partitions(slow_or_fail)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="partition one fails"):
        b.compute(scheduler="processes", num_workers=2)
    assert time.monotonic() - start < 30, "the caller waited for the slow partition"
    slow_pid = int(marker.read_text())
    assert _wait_gone({slow_pid}) == set(), "the slow worker kept running after the error"
