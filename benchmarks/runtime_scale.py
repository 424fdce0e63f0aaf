"""Scale: a graph of N trivial tasks plus a tree reduction (fan-in 32), scheduler in its own process.

Measured, for ours and (at N <= 100,000) Dask's distributed:

* **submission**: from calling ``client.get(graph, 'total')`` until the scheduler holds every task
  (polled every ``--poll`` seconds through a second client, so it is exact to that granularity);
* **total**: until the result is back at the client;
* **scheduler memory per task**: (peak RSS of the scheduler process during the run - its RSS
  before) / number of tasks, sampled every 20 ms with psutil, and the RSS left after the run.

Both schedulers run as their own processes started by their command lines (``lazyarr-scheduler``
/ ``dask scheduler``), with 2 worker processes x 1 thread.

Usage::

    python benchmarks/runtime_scale.py [--n 1000000] [--dask-n 100000] [--no-dask]

Dask is slow here (100,000 tasks took it about three minutes on the reference machine, 1,000,000
about thirty), so it runs at ``--dask-n`` (default min(N, 100,000)); per-task figures are
compared. Targets: memory per task <= 0.3 x Dask's, total time <= 0.1 x Dask's (per task).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from runtime_common import PeakRSS, have_dask_distributed, our_cli_cluster, stop_process

FAN_IN = 32


def inc(x: int) -> int:
    return x + 1


def tree_graph(n: int) -> tuple[dict, Any, int]:
    """N leaves ``inc(i)`` summed by a tree of fan-in 32; returns (graph, root key, task count)."""
    dsk: dict = {("x", i): (inc, i) for i in range(n)}
    level = [("x", i) for i in range(n)]
    depth = 0
    while len(level) > 1:
        depth += 1
        nxt = []
        for j in range(0, len(level), FAN_IN):
            key = ("sum", depth, j // FAN_IN)
            dsk[key] = (sum, level[j:j + FAN_IN])
            nxt.append(key)
        level = nxt
    return dsk, level[0], len(dsk)


def run(client: Any, count_tasks: Callable[[], int], scheduler_pid: int, n: int, poll: float) -> dict[str, float]:
    """Submit the graph, time submission and completion, and sample the scheduler's memory."""
    dsk, root, ntasks = tree_graph(n)
    result: dict = {}

    def compute() -> None:
        try:
            result["value"] = client.get(dsk, root)
        except BaseException as e:  # reported by the main thread
            result["error"] = e
        result["end"] = time.perf_counter()

    with PeakRSS(scheduler_pid) as rss:
        baseline = rss.baseline
        start = time.perf_counter()
        thread = threading.Thread(target=compute, name="bench-get")
        thread.start()
        submitted = None
        while thread.is_alive():
            thread.join(poll)
            if submitted is None:
                try:
                    held = count_tasks()
                except Exception:
                    held = 0
                if held >= ntasks or not thread.is_alive():
                    submitted = time.perf_counter()
        thread.join()
    if "error" in result:
        raise result["error"]
    expected = sum(range(1, n + 1))
    if result["value"] != expected:
        raise AssertionError(f"got {result['value']}, expected {expected}")
    time.sleep(1.0)
    after = rss.current()
    try:
        left = count_tasks()
    except Exception:
        left = -1
    return {"tasks": ntasks, "left": left, "submission": (submitted or result["end"]) - start, "total": result["end"] - start,
            "peak": rss.peak, "baseline": baseline, "after": after,
            "bytes_per_task": (rss.peak - baseline) / ntasks}


def report(label: str, r: dict[str, float]) -> None:
    print(f"{label}: {r['tasks']:,} tasks  submission {r['submission']:.2f} s  total {r['total']:.2f} s "
          f"({r['total'] / r['tasks'] * 1e6:.1f} us/task)  scheduler RSS {r['baseline'] / 2**20:.0f} MiB before, "
          f"{r['peak'] / 2**20:.0f} MiB peak, {r['after'] / 2**20:.0f} MiB after  "
          f"-> {r['bytes_per_task']:.0f} B/task; tasks still held after release: {r['left']}", flush=True)


def ours(n: int, poll: float) -> dict[str, float]:
    from runtime import Client

    with our_cli_cluster(2, 1) as (address, sched, _):
        with Client(address, timeout=60) as client, Client(address, timeout=60, set_as_default=False) as watcher:
            client.get({"warm": (inc, 1)}, "warm")
            return run(client, lambda: watcher.scheduler_info()["tasks"], sched.pid, n, poll)


@contextlib.contextmanager
def dask_processes() -> Iterator[tuple[str, int]]:
    """``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` as processes; yields (address, pid)."""
    tmp = tempfile.mkdtemp(prefix="lazyarr-bench-")
    path = os.path.join(tmp, "scheduler.json")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    procs = []
    try:
        procs.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--dashboard-address", ":0", "--scheduler-file", path], **quiet))
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise TimeoutError("dask scheduler did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        with open(path) as f:
            address = json.load(f)["address"]
        procs.append(subprocess.Popen([dask, "worker", "--scheduler-file", path, "--nworkers", "2", "--nthreads", "1",
                                       "--no-dashboard"], **quiet))
        yield address, procs[0].pid
    finally:
        for proc in reversed(procs):
            stop_process(proc, timeout=30)
        with contextlib.suppress(OSError):
            os.remove(path)
            os.rmdir(tmp)


def dask_run(n: int, poll: float) -> dict[str, float]:
    import distributed

    with dask_processes() as (address, pid):
        with distributed.Client(address) as client, distributed.Client(address) as watcher:
            client.wait_for_workers(2, timeout=60)
            client.get({"warm": (inc, 1)}, "warm")
            count = lambda: watcher.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))  # noqa: E731
            return run(client, count, pid, n, poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="leaf tasks for ours (default 1,000,000)")
    parser.add_argument("--dask-n", type=int, default=None, help="leaf tasks for Dask (default min(N, 100,000))")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between checks of the scheduler's task count")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args(argv)
    dask_n = args.dask_n or min(args.n, 100_000)

    mine = ours(args.n, args.poll)
    report("ours", mine)
    theirs = None
    if not args.no_dask and have_dask_distributed():
        print(f"dask: running at {dask_n:,} leaves (Dask is only run at 100,000 or fewer by default: it takes "
              f"minutes per 100,000 tasks); per-task figures are compared", flush=True)
        theirs = dask_run(dask_n, args.poll)
        report("dask", theirs)

    print()
    rows = [("submission (us/task)", lambda r: r["submission"] / r["tasks"] * 1e6, ""),
            ("total (us/task)", lambda r: r["total"] / r["tasks"] * 1e6, "target <= 0.1"),
            ("scheduler memory (B/task)", lambda r: r["bytes_per_task"], "target <= 0.3")]
    for label, value, target in rows:
        o = value(mine)
        d = value(theirs) if theirs else None
        ratio = f"{o / d:.3f}" if d else "-"
        dask_text = "-" if d is None else format(d, "10,.1f")
        print(f"{label:28s} ours {o:10,.1f}   dask {dask_text:>10s}   ratio {ratio}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
