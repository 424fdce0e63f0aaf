"""Per-task overhead of the runtime, ours against Dask distributed, on 2 worker processes x 1 thread.

Shapes (trivial tasks, so the time is all overhead):

* ``wide``: N independent ``inc(i)`` plus one ``sum`` of them (N + 1 tasks);
* ``chain``: ``inc(inc(...inc(0)))``, N tasks each waiting on the previous one;

each through three interfaces: ``client.get(graph)``, futures (``client.map`` + ``submit`` /
``gather``, or N chained ``submit`` calls) and ``delayed(...).compute(scheduler=client)`` (with
``optimize_graph=False`` for both libraries, so neither fuses the chain into one task).

Usage::

    python benchmarks/runtime_overhead.py [--n 20000] [--dask-n 2000] [--repeat 3] [--no-dask]
                                          [--ours-cluster local|cli]

Dask is measured on ``--dask-n`` tasks (default 2,000: its per-task cost is flat in N, and 20,000
chained tasks take it about two minutes per run); per-task figures are compared. Printed: median
microseconds per task over the repeats, and ours / Dask.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from runtime_common import dask_cluster, have_dask_distributed, median_time, our_cli_cluster, print_row


def inc(x: int) -> int:
    return x + 1


def wide_graph(n: int) -> tuple[dict, str]:
    dsk: dict = {("x", i): (inc, i) for i in range(n)}
    dsk["total"] = (sum, [("x", i) for i in range(n)])
    return dsk, "total"


def chain_graph(n: int) -> tuple[dict, Any]:
    dsk: dict = {("c", 0): (inc, 0)}
    for i in range(1, n):
        dsk[("c", i)] = (inc, ("c", i - 1))
    return dsk, ("c", n - 1)


def shapes(client: Any, n: int, delayed: Callable, compute: Callable) -> dict[str, tuple[int, Callable[[], Any], Any]]:
    """name -> (tasks, run, expected result) for one client; the same code for both libraries."""

    def get_wide() -> Any:
        dsk, key = wide_graph(n)
        return client.get(dsk, key)

    def get_chain() -> Any:
        dsk, key = chain_graph(n)
        return client.get(dsk, key)

    def futures_wide() -> Any:
        futures = client.map(inc, range(n), pure=False)
        return client.submit(sum, futures, pure=False).result()

    def futures_chain() -> Any:
        future = client.submit(inc, 0, pure=False)
        for _ in range(n - 1):
            future = client.submit(inc, future, pure=False)
        return future.result()

    def delayed_wide() -> Any:
        total = delayed(sum)([delayed(inc)(i) for i in range(n)])
        return compute(total, scheduler=client, optimize_graph=False)[0]

    def delayed_chain() -> Any:
        x = delayed(inc)(0)
        for _ in range(n - 1):
            x = delayed(inc)(x)
        return compute(x, scheduler=client, optimize_graph=False)[0]

    wide_total = sum(range(1, n + 1))
    return {
        "get, wide": (n + 1, get_wide, wide_total),
        "get, chain": (n, get_chain, n),
        "futures, wide": (n + 1, futures_wide, wide_total),
        "futures, chain": (n, futures_chain, n),
        "delayed, wide": (n + 1, delayed_wide, wide_total),
        "delayed, chain": (n, delayed_chain, n),
    }


def measure(client: Any, n: int, repeat: int, delayed: Callable, compute: Callable, label: str) -> dict[str, float]:
    """Median microseconds per task of every shape."""
    out = {}
    for name, (tasks, run, expected) in shapes(client, n, delayed, compute).items():
        result = run()  # warm-up: imports, function caches, connections
        if result != expected:
            raise AssertionError(f"{label} {name}: got {result!r}, expected {expected!r}")
        gc.collect()
        median, times = median_time(run, repeat)
        out[name] = median / tasks * 1e6
        print(f"  {label:5s} {name:15s} {tasks:7,d} tasks  median {median:8.3f} s  "
              f"({', '.join(f'{t:.3f}' for t in times)})", flush=True)
    return out


@contextlib.contextmanager
def our_client(kind: str) -> Iterator[Any]:
    from runtime import Client, LocalCluster

    if kind == "local":
        with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
            yield client
    else:
        with our_cli_cluster(2, 1) as (address, _, _), Client(address) as client:
            yield client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="tasks per shape for ours (default 20,000)")
    parser.add_argument("--dask-n", type=int, default=2_000, help="tasks per shape for Dask (default 2,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per shape (median printed)")
    parser.add_argument("--dask-repeat", type=int, default=1, help="timed runs per shape for Dask")
    parser.add_argument("--no-dask", action="store_true", help="skip Dask")
    parser.add_argument("--ours-cluster", choices=["local", "cli"], default="local",
                        help="ours on a LocalCluster (scheduler in this process, like Dask's LocalCluster) "
                             "or on CLI-started processes (scheduler in its own process)")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    import lazyarr
    from lazyarr import delayed

    print(f"ours: {args.n:,} tasks per shape, {args.ours_cluster} cluster, 2 workers x 1 thread", flush=True)
    with our_client(args.ours_cluster) as client:
        ours = measure(client, args.n, args.repeat, delayed, lazyarr.compute, "ours")

    theirs: dict[str, float] = {}
    if not args.no_dask and have_dask_distributed():
        import dask

        print(f"dask: {args.dask_n:,} tasks per shape (per-task cost is flat in N), LocalCluster, "
              f"2 workers x 1 thread", flush=True)
        with dask_cluster(2, 1) as client:
            theirs = measure(client, args.dask_n, args.dask_repeat, dask.delayed, dask.compute, "dask")
    elif not args.no_dask:
        print("dask: distributed is not installed (pip install -e '.[bench]'); ours only")

    print()
    print("microseconds per task (lower is better); target ours <= 0.1 x Dask")
    for name, value in ours.items():
        print_row(name, value, theirs.get(name), "us/task", "target <= 0.100")
    return 0


if __name__ == "__main__":
    sys.exit(main())
