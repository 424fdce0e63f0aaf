"""LocalCluster (worker processes and threads), scale up and down, and Client() as the default."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from operator import add

import psutil
import pytest

import lazyarr
from lazyarr import config, delayed
from lazyarr.base import get_scheduler
from runtime import Client, LocalCluster
from runtime.cluster import WorkerProcess, default_sizes

pytestmark = pytest.mark.timeout(90)


def slow_inc(x: int, delay: float = 0.05) -> int:
    time.sleep(delay)
    return x + 1


def pid_of_worker(_: object = None) -> int:
    return os.getpid()


def thread_name(_: object = None) -> str:
    return threading.current_thread().name


def live_pids(cluster: LocalCluster) -> set[int]:
    return {w.pid for w in cluster.workers.values() if isinstance(w, WorkerProcess) and w.is_alive()}


# ----------------------------------------------------------------------------------------------
# Worker processes


def test_local_cluster_of_processes(local_cluster):
    workers = local_cluster.workers
    assert sorted(workers) == ["0", "1"]
    pids = live_pids(local_cluster)
    assert len(pids) == 2 and os.getpid() not in pids
    assert local_cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert local_cluster.scheduler_address_to_workers.startswith("tcp://127.0.0.1:")
    with Client(local_cluster, timeout=10) as c:
        info = c.scheduler_info()["workers"]
        assert set(info) == {w.address for w in workers.values()}
        assert {i["nthreads"] for i in info.values()} == {1}
        assert {i["memory_limit"] for i in info.values()} == {10**9}
        seen = {c.submit(pid_of_worker, n, workers=[n], pure=False).result() for n in ("0", "1")}
        assert seen == pids
        assert c.get({"x": 1, "y": (add, "x", 2)}, "y") == 3
    assert "workers=2" in repr(local_cluster)


def test_close_joins_every_process_and_is_idempotent():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1)
    procs = [psutil.Process(w.pid) for w in cluster.workers.values()]
    cluster.close()
    assert cluster.status == "closed"
    assert cluster.workers == {}
    for proc in procs:
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    cluster.close()
    with pytest.raises(RuntimeError, match="closed"):
        cluster.scale(1)
    assert repr(cluster) == "LocalCluster(closed)"


def test_garbage_collected_cluster_closes_its_workers():
    cluster = LocalCluster(n_workers=1, threads_per_worker=1)
    proc = psutil.Process(next(iter(cluster.workers.values())).pid)
    del cluster
    gc.collect()
    proc.wait(10)
    assert not proc.is_running()


def test_workers_exit_when_their_owner_is_killed(cli):
    """The lifeline: if the process owning a LocalCluster dies without cleaning up, its workers go."""
    script = textwrap.dedent("""
        import sys, time
        from runtime import LocalCluster
        cluster = LocalCluster(n_workers=2, threads_per_worker=1)
        print(" ".join(str(w.pid) for w in cluster.workers.values()), flush=True)
        time.sleep(60)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=cli.env())
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) == 2
        workers = [psutil.Process(p) for p in pids]
        owner.kill()
        owner.wait(10)
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers {alive} outlived their owner"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        owner.stdout.close()


def test_scale_up_and_down():
    with LocalCluster(n_workers=1, threads_per_worker=1) as cluster, Client(cluster, timeout=10) as c:
        assert len(c.scheduler_info()["workers"]) == 1
        cluster.scale(3)
        assert sorted(cluster.workers) == ["0", "1", "2"]
        assert len(c.scheduler_info()["workers"]) == 3
        assert len(live_pids(cluster)) == 3
        assert sum(c.gather(c.map(slow_inc, range(12)))) == sum(range(1, 13))
        removed = [cluster.workers[n] for n in ("1", "2")]
        cluster.scale(1)
        assert sorted(cluster.workers) == ["0"]
        assert [w.returncode for w in removed] == [0, 0]
        assert [i["name"] for i in c.scheduler_info()["workers"].values()] == ["0"]
        cluster.scale(0)
        assert c.scheduler_info()["workers"] == {}
        cluster.scale(2)
        assert sorted(cluster.workers) == ["3", "4"]  # fresh names, never reused
        assert c.submit(add, 1, 2).result() == 3


def test_scale_down_mid_graph_recomputes_and_gives_the_right_answer():
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster, timeout=10) as c:
        # Data held on the worker that leaves is moved to the other one (or recomputed)...
        held = c.map(slow_inc, range(10), delay=0.01)
        assert c.gather(held) == list(range(1, 11))
        on_leaving = [i["in_memory"] for i in c.scheduler_info()["workers"].values() if i["name"] == "1"]
        assert on_leaving[0] > 0, "the test needs some data on the worker that leaves"
        # ...and a graph running on both workers must still finish.
        future = c.compute(delayed(sum)([delayed(slow_inc)(i) for i in range(40)]))
        deadline = time.monotonic() + 10
        while not all(i["processing"] for i in c.scheduler_info()["workers"].values()):
            assert time.monotonic() < deadline, "the graph never reached both workers"
            time.sleep(0.01)
        cluster.scale(1)  # retires then closes worker '1' while it has tasks
        assert not future.done()
        assert future.result(timeout=30) == sum(range(1, 41))
        total = c.submit(sum, held)
        assert total.result(timeout=30) == sum(range(1, 11))


def test_invalid_arguments():
    for kwargs in ({"n_workers": -1}, {"n_workers": 1.5}, {"threads_per_worker": 0}, {"n_workers": True}):
        with pytest.raises(ValueError):
            LocalCluster(**kwargs)
    with pytest.raises(ValueError, match="cannot parse"):
        LocalCluster(n_workers=0, memory_limit="lots")
    with LocalCluster(n_workers=0) as cluster:
        for bad in (-1, 1.5, "2"):
            with pytest.raises(ValueError):
                cluster.scale(bad)


def test_memory_limits():
    total = psutil.virtual_memory().total
    with LocalCluster(n_workers=0, memory_limit=None) as cluster:
        assert cluster.memory_limit == total  # 'auto' with no workers: the whole machine
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, memory_limit="auto") as cluster:
        assert cluster.memory_limit == total // 2
        with Client(cluster, timeout=10) as c:
            assert {i["memory_limit"] for i in c.scheduler_info()["workers"].values()} == {total // 2}
    with LocalCluster(n_workers=1, processes=False, memory_limit=0) as cluster, Client(cluster, timeout=10) as c:
        assert [i["memory_limit"] for i in c.scheduler_info()["workers"].values()] == [None]


def test_default_sizes():
    assert default_sizes(None, None, True, cores=1) == (1, 1)
    assert default_sizes(None, None, True, cores=4) == (4, 1)
    assert default_sizes(None, None, True, cores=12) == (4, 3)
    assert default_sizes(None, None, True, cores=7) == (7, 1)
    assert default_sizes(None, None, False, cores=4) == (1, 4)
    assert default_sizes(None, 2, True, cores=8) == (4, 2)
    assert default_sizes(2, 3, True, cores=1) == (2, 3)


# ----------------------------------------------------------------------------------------------
# Worker threads


def test_local_cluster_of_threads():
    children_before = {p.pid for p in psutil.Process().children()}
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=False) as cluster:
        assert {p.pid for p in psutil.Process().children()} == children_before
        with Client(cluster, timeout=10) as c:
            info = c.scheduler_info()["workers"]
            assert len(info) == 2 and {i["nthreads"] for i in info.values()} == {2}
            assert c.submit(pid_of_worker, pure=False).result() == os.getpid()
            assert c.submit(thread_name, pure=False).result().startswith("lazyarr-worker-")
        cluster.scale(1)
        assert len(cluster.workers) == 1


# ----------------------------------------------------------------------------------------------
# Client() without an address


def test_client_without_address_starts_a_machine_sized_cluster_and_is_the_default():
    assert config.get("scheduler", None) is None
    n_workers, threads = default_sizes(None, None, True)
    with Client(timeout=10) as c:
        assert config.get("scheduler") is c
        info = c.scheduler_info()["workers"]
        assert len(info) == n_workers
        assert {i["nthreads"] for i in info.values()} == {threads}
        assert all(i["memory_limit"] for i in info.values())
        # .compute() without a scheduler now runs on the cluster's worker processes
        pid = delayed(pid_of_worker)(1).compute()
        assert pid != os.getpid()
        assert lazyarr.compute(delayed(add)(1, 2))[0] == 3
        cluster = c._cluster
    assert config.get("scheduler", None) is None
    assert cluster.status == "closed"
    # .compute() is local again (checked without running it, so no thread pool is left behind)
    assert get_scheduler(collections=[delayed(pid_of_worker)(2)]) is get_scheduler("threads")


def test_client_processes_false_runs_workers_as_threads():
    with Client(processes=False, timeout=10) as c:
        assert delayed(pid_of_worker)(3).compute() == os.getpid()
        assert delayed(thread_name)(4).compute().startswith("lazyarr-worker-")
        assert len(c.scheduler_info()["workers"]) == 1
    assert config.get("scheduler", None) is None


def test_client_of_a_cluster_object_does_not_close_it(local_cluster):
    with Client(local_cluster, timeout=10) as c:
        assert c.submit(add, 2, 2).result() == 4
    assert local_cluster.status == "running"
    with Client(local_cluster.scheduler_address, timeout=10) as c:
        assert c.submit(add, 3, 3).result() == 6
