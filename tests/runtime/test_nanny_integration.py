"""Nannies wired in: ``lazyarr-worker`` and LocalCluster run workers under them, deaths are
reported to the scheduler with their reason, killed workers come back, ``client.restart()``."""
from __future__ import annotations

import os
import signal
import time
from concurrent.futures import CancelledError
from operator import add

import psutil
import pytest

from runtime import Client, LocalCluster

pytestmark = pytest.mark.timeout(90)


def worker_pid(_: object = None) -> int:
    return os.getpid()


def slow(x: int, delay: float = 5.0) -> int:
    time.sleep(delay)
    return x


def worker_children(proc: psutil.Process) -> list[psutil.Process]:
    return [p for p in proc.children() if p.status() != psutil.STATUS_ZOMBIE]


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.02)


def test_lazyarr_worker_runs_under_a_nanny_that_restarts_a_killed_worker(cli):
    sched = cli.start(["scheduler"], ["workers", "clients"], with_logs=True)
    group = None
    try:
        group = cli.start(["worker", sched.addresses["workers"], "--nworkers", "2", "--nthreads", "1",
                           "--name", "grp", "--memory-limit", "0"], ["address"])
        with Client(sched.addresses["clients"], timeout=10) as c:
            workers = cli.wait_for_workers(c, 2)
            nanny = psutil.Process(group.proc.pid)
            children = worker_children(nanny)
            assert len(children) == 2  # the command is the nanny; each worker is its child
            pids = {c.submit(worker_pid, i, workers=[f"grp-{i}"], pure=False).result(timeout=20) for i in range(2)}
            assert pids == {p.pid for p in children}
            victim = next(a for a, info in workers.items() if info["name"] == "grp-0")
            old = c.submit(worker_pid, 0, workers=["grp-0"], pure=False).result(timeout=20)
            start = time.monotonic()
            os.kill(old, signal.SIGKILL)
            wait_until(lambda: victim not in c.scheduler_info()["workers"], 5, "the dead worker removed")
            assert time.monotonic() - start < 3
            # the nanny starts it again, under the same name, and it rejoins
            wait_until(lambda: sorted(i["name"] for i in c.scheduler_info()["workers"].values()) == ["grp-0", "grp-1"],
                       20, "the restarted worker rejoining")
            new = c.submit(worker_pid, 1, workers=["grp-0"], pure=False).result(timeout=20)
            assert new != old and new in {p.pid for p in worker_children(nanny)}
        assert cli.stop(group) == 0
        for child in children:
            assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        if group is not None:
            cli.stop(group)
        cli.stop(sched)
    assert any(victim in line and "killed by SIGKILL (reported by its nanny)" in line for line in sched.output), \
        sched.output


def test_no_nanny_runs_the_worker_in_the_command_itself(cli):
    sched = cli.start(["scheduler"], ["workers", "clients"])
    worker = None
    try:
        worker = cli.start(["worker", sched.addresses["workers"], "--nthreads", "1", "--no-nanny"], ["address"])
        with Client(sched.addresses["clients"], timeout=10) as c:
            cli.wait_for_workers(c, 1)
            assert c.submit(worker_pid, pure=False).result(timeout=20) == worker.proc.pid
            assert not worker_children(psutil.Process(worker.proc.pid))
    finally:
        if worker is not None:
            cli.stop(worker)
        cli.stop(sched)


def test_client_restart_replaces_cli_workers_and_cancels_work(cli):
    sched = cli.start(["scheduler"], ["workers", "clients"])
    group = None
    try:
        group = cli.start(["worker", sched.addresses["workers"], "--nworkers", "2", "--nthreads", "1",
                           "--memory-limit", "0"], ["address"])
        with Client(sched.addresses["clients"], timeout=10) as c:
            before = set(cli.wait_for_workers(c, 2))
            done = c.submit(add, 1, 2)
            assert done.result(timeout=20) == 3
            running = c.submit(slow, 1, pure=False)
            old_pids = {p.pid for p in worker_children(psutil.Process(group.proc.pid))}
            assert c.restart(timeout=30) == 2
            after = c.scheduler_info()["workers"]
            assert len(after) == 2 and not set(after) & before
            assert not {p.pid for p in worker_children(psutil.Process(group.proc.pid))} & old_pids
            with pytest.raises(CancelledError, match="restarted"):
                running.result(timeout=10)
            with pytest.raises(CancelledError):
                done.result(timeout=10)
            assert c.scheduler_info()["tasks"] == 0
            assert c.submit(add, 2, 3, pure=False).result(timeout=20) == 5
    finally:
        if group is not None:
            cli.stop(group)
        cli.stop(sched)


def test_local_cluster_uses_nannies_and_restarts():
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        handles = list(cluster.workers.values())
        old = {h.pid for h in handles}
        assert all(h.nanny.status == "running" for h in handles)
        assert {c.submit(worker_pid, i, pure=False).result(timeout=20) for i in range(8)} <= old
        assert c.restart(timeout=30) == 2
        assert not {h.pid for h in handles} & old
        assert c.submit(add, 1, 1, pure=False).result(timeout=20) == 2


def test_restart_with_thread_workers_keeps_them_and_drops_their_data():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        kept = c.submit(add, 1, 2)
        assert kept.result(timeout=20) == 3
        assert c.restart(timeout=30) == 2
        with pytest.raises(CancelledError):
            kept.result(timeout=10)
        wait_until(lambda: all(i["in_memory"] == 0 for i in c.scheduler_info()["workers"].values()), 10,
                   "the workers' data freed")
        assert c.submit(add, 1, 2).result(timeout=20) == 3
