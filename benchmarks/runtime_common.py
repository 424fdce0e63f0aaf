"""Helpers shared by the ``benchmarks/runtime_*.py`` scripts: clusters, timing, memory, printing.

Ours and Dask's are set up the same way: a scheduler plus ``n_workers`` worker processes with
one thread each, on 127.0.0.1. Dask's figures are printed only when ``distributed`` imports
(install the ``[bench]`` extra).
"""
from __future__ import annotations

import contextlib
import os
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def have_dask_distributed() -> bool:
    """Can Dask's distributed be imported (the ``[bench]`` extra)?"""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls of ``fn`` and all the times."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def ratio(ours: float, theirs: float | None) -> str:
    """``ours / theirs`` formatted, or ``'-'`` without a Dask figure."""
    if theirs is None or theirs == 0:
        return "-"
    return f"{ours / theirs:.3f}"


def print_row(label: str, ours: float, dask: float | None, unit: str, target: str = "") -> None:
    """One aligned result line: ours, Dask's, their ratio, and the target."""
    dask_text = f"{dask:12,.1f}" if dask is not None else f"{'-':>12}"
    print(f"{label:34s} ours {ours:12,.1f} {unit:8s} dask {dask_text} {unit:8s} "
          f"ratio {ratio(ours, dask):>7s}  {target}", flush=True)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def start_cli(args: list[str], roles: list[str], timeout: float = 30.0) -> tuple[subprocess.Popen, dict[str, str]]:
    """Run ``python -m runtime <args>``; wait for its ``<role>: <address>`` lines; returns (process, addresses)."""
    proc = subprocess.Popen([sys.executable, "-m", "runtime", *args], stdout=subprocess.PIPE,
                            env=_env(), bufsize=0)
    found: dict[str, str] = {}
    fd = proc.stdout.fileno()
    pending = b""
    deadline = time.monotonic() + timeout
    try:
        while set(roles) - found.keys():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{args[0]} printed no {roles} within {timeout} s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{args[0]} exited with code {proc.wait()}")
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                words = line.decode().split()
                if len(words) == 3 and words[0].startswith("lazyarr-") and words[1].rstrip(":") in roles:
                    found[words[1].rstrip(":")] = words[2]
    except BaseException:
        stop_process(proc)
        raise
    # Our commands print only a few lines: the pipe stays open (closed by stop_process) and never fills.
    return proc, found


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, wait, then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.contextmanager
def our_cli_cluster(n_workers: int = 2, nthreads: int = 1) -> Iterator[tuple[str, subprocess.Popen, list[str]]]:
    """Our scheduler and workers as separate processes started by the CLI.

    Yields (address for clients, scheduler process, worker addresses).
    """
    from runtime import Client

    procs: list[subprocess.Popen] = []
    try:
        sched, addrs = start_cli(["scheduler", "--log-level", "warning"], ["workers", "clients"])
        procs.append(sched)
        worker_addresses = []
        for i in range(n_workers):
            proc, found = start_cli(["worker", addrs["workers"], "--nthreads", str(nthreads), "--name", f"bench-{i}",
                                     "--log-level", "warning"], ["address"])
            procs.append(proc)
            worker_addresses.append(found["address"])
        with Client(addrs["clients"], timeout=30) as client:
            deadline = time.monotonic() + 30
            while len(client.scheduler_info()["workers"]) < n_workers:
                if time.monotonic() > deadline:
                    raise TimeoutError("workers did not register")
                time.sleep(0.02)
        yield addrs["clients"], sched, worker_addresses
    finally:
        for proc in reversed(procs):
            stop_process(proc)


@contextlib.contextmanager
def dask_cluster(n_workers: int = 2, nthreads: int = 1) -> Iterator[Any]:
    """Dask's LocalCluster with ``n_workers`` processes of ``nthreads`` threads, and a Client of it."""
    import logging

    import distributed

    logging.getLogger("distributed").setLevel(logging.ERROR)
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=nthreads, processes=True,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            yield client


class PeakRSS:
    """Samples a process's resident memory every ``interval`` seconds in a thread; ``.peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self.interval = interval
        self.baseline = self._proc.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak = max(self.peak, self._proc.memory_info().rss)
            except Exception:
                return

    def current(self) -> int:
        """RSS now."""
        return self._proc.memory_info().rss

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, self.current())
        except Exception:
            pass
