"""Start-up: ``Client(LocalCluster(n_workers=2))`` started and closed, ours against Dask's.

Each run starts a scheduler and two worker processes, connects a client, waits until both workers
are registered (``LocalCluster`` returns only then, in both libraries), and closes everything,
joining every process. One untimed run first (so neither side pays this process's own imports),
then the median of ``--repeat`` timed runs.

Usage::

    python benchmarks/runtime_startup.py [--repeat 7] [--no-dask]

Target: ours <= 0.5 x Dask's.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable

from runtime_common import have_dask_distributed, print_row


def ours_once() -> float:
    from runtime import Client, LocalCluster

    start = time.perf_counter()
    with LocalCluster(n_workers=2) as cluster, Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
    return time.perf_counter() - start


def dask_once() -> float:
    import distributed

    start = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
    return time.perf_counter() - start


def measure(once: Callable[[], float], repeat: int, label: str) -> float:
    once()  # warm-up, untimed
    times = [once() for _ in range(repeat)]
    print(f"{label}: " + ", ".join(f"{t:.3f}" for t in times) + f"  -> median {statistics.median(times):.3f} s",
          flush=True)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs (median printed)")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args(argv)

    ours = measure(ours_once, args.repeat, "ours")
    dask = None
    if not args.no_dask and have_dask_distributed():
        logging.getLogger("distributed").setLevel(logging.ERROR)
        dask = measure(dask_once, args.repeat, "dask")
    print()
    print_row("Client(LocalCluster(n_workers=2))", ours * 1000, dask * 1000 if dask else None, "ms", "target <= 0.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
