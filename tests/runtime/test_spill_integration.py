"""Memory limits wired into workers: spilling to disk, pausing, clean-up.

The main test runs a graph whose intermediates total three times the cluster's memory limit on
two worker processes, all of them alive until a final reduction, and checks that it completes,
that it spilled, that the spill directories are gone afterwards, and how high the workers'
memory went against their limit (printed; run with ``-s`` to see it).
"""
from __future__ import annotations

import glob
import os
import threading
import time

import numpy as np
import psutil
import pytest

from runtime import Client, LocalCluster, Scheduler, Worker, wait

pytestmark = pytest.mark.timeout(90)

LIMIT = 150 * 10**6
CHUNK = 1_250_000          # float64: 10 MB a chunk
NCHUNKS = 90               # 900 MB of intermediates = 3 x (2 workers x 150 MB)


def make_chunk(i):
    return np.full(CHUNK, float(i))


def chunk_sum(x):
    return float(x.sum())


class Sampler:
    """Polls the RSS of the processes under this one whose command line has ``marker`` (the
    workers of one cluster: they are given its scheduler's address), and the spill files under
    ``directory``."""

    def __init__(self, marker, directory, interval=0.02):
        self.marker = marker
        self.directory = directory
        self.interval = interval
        self.peak_rss: dict = {}
        self.max_files = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spill-test-sampler")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = psutil.Process()
        while not self._stop.wait(self.interval):
            for proc in me.children(recursive=True):
                try:
                    if self.marker not in " ".join(proc.cmdline()):
                        continue
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                self.peak_rss[proc.pid] = max(rss, self.peak_rss.get(proc.pid, 0))
            files = glob.glob(os.path.join(self.directory, "lazyarr-spill-*", "*"))
            self.max_files = max(self.max_files, len(files))


def test_graph_needing_three_times_the_memory_limit_completes(tmp_path, monkeypatch):
    # Worker processes read the configuration from the environment: spill under tmp_path.
    monkeypatch.setenv("LAZYARR_TEMPORARY_DIRECTORY", str(tmp_path))
    expected = float(CHUNK) * sum(range(NCHUNKS))
    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=LIMIT) as cluster, \
            Client(cluster, timeout=30, set_as_default=False) as c, \
            Sampler(cluster.scheduler_address_to_workers, str(tmp_path)) as sampler:
        start = time.monotonic()
        chunks = c.map(make_chunk, range(NCHUNKS))    # held by this client until the end
        wait(chunks, timeout=60)
        sums = c.map(chunk_sum, chunks)
        total = c.submit(sum, sums)
        assert total.result(timeout=60) == expected
        elapsed = time.monotonic() - start
        info = c.scheduler_info()["workers"]
        assert {w["memory_limit"] for w in info.values()} == {LIMIT}
        assert len(info) == 2, "a worker died (killed for its memory?)"
        del chunks, sums, total
    assert sampler.peak_rss, "no worker process found"
    assert sampler.max_files > 0, "nothing was spilled"
    assert glob.glob(os.path.join(str(tmp_path), "lazyarr-spill-*")) == [], "spill directories left behind"
    peak = max(sampler.peak_rss.values())
    print(f"\nspill test: {NCHUNKS * CHUNK * 8 / 1e6:.0f} MB of intermediates on 2 workers limited to "
          f"{LIMIT / 1e6:.0f} MB each; peak worker RSS {peak / 1e6:.0f} MB ({peak / LIMIT:.0%} of the limit); "
          f"up to {sampler.max_files} spill files at once; {elapsed:.1f} s")
    assert peak < LIMIT, f"a worker's memory went to {peak / 1e6:.0f} MB, over its {LIMIT / 1e6:.0f} MB limit"


# ----------------------------------------------------------------------------------------------
# Worker-level: one scheduler and worker threads in this process


def _wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def test_worker_above_pause_starts_no_task_until_memory_drops(tmp_path, caplog):
    """This process's memory is far above a 20 MB limit: the worker pauses at its first reading,
    holds a task it was sent without starting it, and starts it once memory is back under."""
    scheduler = Scheduler(dashboard_address=None)
    try:
        with Worker(scheduler.address_to_workers, nthreads=1, memory_limit=20 * 10**6) as w, \
                Client(scheduler.address_to_clients, timeout=10, set_as_default=False) as c:
            _wait_until(lambda: w._paused)
            _wait_until(lambda: scheduler.sync(lambda s: s.workers[w.address].paused))
            # Restricted to this worker, so the scheduler sends it despite the pause.
            future = c.submit(os.getpid, workers=[w.address], pure=False)
            _wait_until(lambda: future.key in w.tasks)
            time.sleep(0.5)
            assert not future.done() and w.tasks[future.key].state == "ready"
            w.memory_policy.limit = 10**12      # as if memory had dropped far under the limit
            assert future.result(timeout=10) == os.getpid()
            _wait_until(lambda: not scheduler.sync(lambda s: s.workers[w.address].paused))
    finally:
        scheduler.close()


def test_paused_worker_gets_no_root_tasks_others_run_them():
    scheduler = Scheduler(dashboard_address=None)
    workers = []
    try:
        workers = [Worker(scheduler.address_to_workers, nthreads=1, memory_limit=20 * 10**6, name="tight"),
                   Worker(scheduler.address_to_workers, nthreads=1, name="roomy")]
        tight, roomy = workers
        with Client(scheduler.address_to_clients, timeout=10, set_as_default=False) as c:
            _wait_until(lambda: scheduler.sync(lambda s: len(s.workers) == 2 and s.workers[tight.address].paused))
            futures = [c.submit(time.sleep, 0.001, pure=False) for _ in range(20)]
            c.gather(futures)
            assert not any(f.key in tight.data for f in futures)
            assert all(f.key in roomy.data for f in futures)
    finally:
        for w in workers:
            w.close()
        scheduler.close()


def test_worker_spills_past_target_and_removes_its_files_on_close(tmp_path):
    from lazyarr import config

    with config.set({"temporary-directory": str(tmp_path),
                     # only the target threshold: this test process's RSS must not pause the worker
                     "distributed.worker.memory.spill": False, "distributed.worker.memory.pause": False,
                     "distributed.worker.memory.terminate": False}):
        scheduler = Scheduler(dashboard_address=None)
        try:
            with Worker(scheduler.address_to_workers, nthreads=1, memory_limit=50 * 10**6) as w, \
                    Client(scheduler.address_to_clients, timeout=10, set_as_default=False) as c:
                futures = c.map(make_chunk, range(8))          # 80 MB against a 30 MB target
                wait(futures, timeout=30)
                assert w.data.spilled_count > 0 and w.data.fast_bytes <= 30 * 10**6
                directory = w.data.directory
                assert os.listdir(directory)
                # read back transparently, by the client and by tasks
                assert float(futures[0].result()[0]) == 0.0
                assert c.submit(chunk_sum, futures[1]).result() == float(CHUNK)
                _wait_until(lambda: c.scheduler_info()["workers"][w.address]["spilled_bytes"] > 0)
                assert c.scheduler_info()["workers"][w.address]["paused"] is False
                del futures
            assert not os.path.exists(directory)
        finally:
            scheduler.close()


_HOLDER = """
import os, signal, sys, time
from runtime.spill import SpillBuffer
buf = SpillBuffer(target=0, directory=sys.argv[1])
buf["k"] = b"x" * 1000          # on disk at once
print(buf.directory, flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()                  # alive until the test closes our stdin
"""


def test_spill_directories_of_killed_processes_are_removed_by_the_next_buffer(tmp_path, monkeypatch, cli):
    import subprocess
    import sys

    from runtime import spill

    def holder(mode):
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), mode], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=cli.env())
        return proc, proc.stdout.readline().strip()

    killed, dead_dir = holder("kill")
    assert killed.wait(20) < 0 and os.listdir(dead_dir)      # SIGKILL: its files stay behind
    alive, live_dir = holder("wait")
    try:
        monkeypatch.setattr(spill, "STALE_AFTER", 0.0)
        with spill.SpillBuffer(target=10, directory=tmp_path) as buf:
            assert not os.path.exists(dead_dir)                  # nobody held it: removed
            assert os.listdir(live_dir)                          # locked by a live process: kept
            assert os.path.isdir(buf.directory)
    finally:
        alive.stdin.close()
        alive.wait(20)
        killed.stdout.close()
        alive.stdout.close()
    assert not os.path.exists(live_dir)                          # closed cleanly by its owner
