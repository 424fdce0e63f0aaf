"""Scheduler overhead: microseconds per trivial task, lazyarr next to Dask in the same run.

Graphs (plain dicts, identical for both libraries):

* ``wide``: N independent tasks ``inc(i)`` plus one final ``sum`` of all of them;
* ``chain``: one linear chain ``c0 = 0, c_i = inc(c_{i-1})``.

Each is run by the sync, threads and processes schedulers of both libraries (``dask.local.
get_sync``, ``dask.threaded.get``, ``dask.multiprocessing.get``), and the ``delayed`` path builds
20,000 ``delayed(inc)(i)`` calls into ``delayed(sum)(...)`` and computes them. Timings are the
median of ``--repeat`` runs and include everything a ``get`` call does (graph analysis, ordering,
pool hand-offs; lazyarr's process pool is started once and reused, as its scheduler does;
Dask's ``multiprocessing.get`` starts its own pool on every call, as it does by default).

Usage::

    python benchmarks/task_overhead.py                  # everything, 3 repeats
    python benchmarks/task_overhead.py --sizes 20000 --repeat 5 --no-delayed

Dask is optional (``pip install -e '.[bench]'``); without it only lazyarr's figures print.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def inc(x: int) -> int:
    return x + 1


def wide_graph(n: int) -> tuple[dict, str]:
    dsk: dict = {("x", i): (inc, i) for i in range(n)}
    dsk["total"] = (sum, list(dsk))
    return dsk, "total"


def chain_graph(n: int) -> tuple[dict, str]:
    dsk: dict = {"c-0": 0}
    for i in range(1, n):
        dsk[f"c-{i}"] = (inc, f"c-{i - 1}")
    return dsk, f"c-{n - 1}"


def expected(shape: str, n: int) -> int:
    return n * (n + 1) // 2 if shape == "wide" else n - 1


def time_call(fn: Callable[[], Any], repeat: int, check: Callable[[Any], bool]) -> tuple[float | None, str]:
    """Median seconds of ``repeat`` calls, or ``(None, reason)`` if the call fails."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        try:
            result = fn()
        except BaseException as e:  # noqa: BLE001 -- a failing scheduler is a reported result
            if isinstance(e, KeyboardInterrupt):
                raise
            return None, f"{type(e).__name__}"
        times.append(time.perf_counter() - start)
        if not check(result):
            return None, "wrong result"
    return statistics.median(times), ""


def schedulers() -> dict:
    from lazyarr import multiprocessing as lmp
    from lazyarr import threaded
    from lazyarr.local import get_sync

    ours = {"sync": get_sync, "threads": threaded.get, "processes": lmp.get}
    try:
        import dask.local
        import dask.multiprocessing
        import dask.threaded
    except ImportError:
        theirs = {}
    else:
        theirs = {"sync": dask.local.get_sync, "threads": dask.threaded.get,
                  "processes": dask.multiprocessing.get}
    return {"lazyarr": ours, "dask": theirs}


def fmt(seconds: float | None, n: int, failure: str) -> str:
    if seconds is None:
        return f"failed ({failure})" if failure else "-"
    return f"{seconds / n * 1e6:8.1f}"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "-"
    return f"{ours / theirs:6.2f}"


def run_graphs(sizes: list[int], repeat: int, only: list[str]) -> list[tuple]:
    table = []
    scheds = schedulers()
    for shape, build in (("wide", wide_graph), ("chain", chain_graph)):
        for n in sizes:
            dsk, key = build(n)
            want = expected(shape, n)
            for name in only:
                row = [shape, n, name]
                for lib in ("lazyarr", "dask"):
                    get = scheds[lib].get(name)
                    if get is None:
                        row.append((None, ""))
                        continue
                    row.append(time_call(lambda: get(dsk, key), repeat, lambda r: r == want))
                table.append(tuple(row))
                (ours, of), (theirs, tf) = row[3], row[4]
                print(f"{shape:6} {n:>7} {name:10} {fmt(ours, n, of):>22} {fmt(theirs, n, tf):>22}"
                      f" {ratio(ours, theirs):>7}", flush=True)
    return table


def run_delayed(n: int, repeat: int, dask_repeat: int) -> None:
    """Build ``n`` delayed calls into one sum and compute it, lazyarr then Dask."""
    print(f"\ndelayed: build {n} delayed(inc)(i) into delayed(sum)(...), then compute (threads)")
    print(f"{'library':8} {'build us/task':>14} {'compute us/task':>16} {'total us/task':>14}")
    results = {}
    try:
        from lazyarr import delayed as lazy_delayed
    except ImportError as e:
        print(f"lazyarr  skipped: lazyarr.delayed is not available ({e})")
        lazy_delayed = None
    libs: list = []
    if lazy_delayed is not None:
        libs.append(("lazyarr", lazy_delayed, repeat))
    try:
        from dask import delayed as dask_delayed
    except ImportError:
        pass
    else:
        libs.append(("dask", dask_delayed, dask_repeat))
    want = sum(range(1, n + 1))
    for lib, delayed, reps in libs:
        builds, computes = [], []
        failure = ""
        for _ in range(reps):
            gc.collect()
            try:
                t0 = time.perf_counter()
                total = delayed(sum)([delayed(inc)(i) for i in range(n)])
                t1 = time.perf_counter()
                value = total.compute(scheduler="threads")
                t2 = time.perf_counter()
            except Exception as e:  # noqa: BLE001
                failure = f"{type(e).__name__}: {e}"
                break
            if value != want:
                failure = f"wrong result {value!r}"
                break
            builds.append(t1 - t0)
            computes.append(t2 - t1)
        if failure:
            print(f"{lib:8} failed ({failure})")
            continue
        b, c = statistics.median(builds), statistics.median(computes)
        results[lib] = b + c
        print(f"{lib:8} {b / n * 1e6:14.1f} {c / n * 1e6:16.1f} {(b + c) / n * 1e6:14.1f}")
    if len(results) == 2:
        print(f"ratio lazyarr/dask (total): {results['lazyarr'] / results['dask']:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--schedulers", nargs="+", default=["sync", "threads", "processes"])
    parser.add_argument("--no-delayed", action="store_true")
    parser.add_argument("--delayed-size", type=int, default=20_000)
    parser.add_argument("--dask-delayed-repeat", type=int, default=1,
                        help="Dask's delayed path is quadratic (tens of seconds); 1 run by default")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))  # the default: no help for anyone
    print(f"microseconds per task, median of {args.repeat}; ratio = lazyarr / dask (lower is better)")
    print(f"{'shape':6} {'tasks':>7} {'scheduler':10} {'lazyarr':>22} {'dask':>22} {'ratio':>7}")
    try:
        run_graphs(args.sizes, args.repeat, args.schedulers)
        if not args.no_delayed:
            run_delayed(args.delayed_size, args.repeat, args.dask_delayed_repeat)
    finally:
        from lazyarr import multiprocessing as lmp
        from lazyarr import threaded

        lmp.close_pools()
        threaded.close_pools()


if __name__ == "__main__":
    main()
