"""Benchmark: building and optimizing the graph of ``((x + 1) * 2).sum()``, lazyarr vs Dask.

``x = ones((N,), chunks=1)`` for N = 10,000 and 50,000 blocks. The time covers building the
expression and producing the optimized task dict a scheduler receives (lazyarr:
``collections_to_graph``; Dask: ``dask.optimize`` then the graph as a dict), with the number of tasks left after
blockwise fusion. Best of ``--repeat`` runs.

    python benchmarks/array_graph_build.py [--sizes 10000 50000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import time


def best_of(repeat: int, func) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = func()
        best = min(best, time.perf_counter() - start)
    return best, count


def ours(n: int) -> int:
    import lazyarr.array as da
    from lazyarr.base import collections_to_graph

    x = da.ones((n,), chunks=1)
    return len(collections_to_graph([((x + 1) * 2).sum()]))


def dask_version(n: int) -> int:
    import dask
    import dask.array as dda

    x = dda.ones((n,), chunks=1)
    (optimized,) = dask.optimize(((x + 1) * 2).sum())
    return len(dict(optimized.__dask_graph__()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        import dask  # noqa: F401

        have_dask = True
    except ImportError:
        have_dask = False
    ours(100)
    print(f"build + optimize ((x + 1) * 2).sum(), x = ones((N,), chunks=1); best of {args.repeat}")
    for n in args.sizes:
        t_ours, tasks_ours = best_of(args.repeat, lambda: ours(n))
        line = f"  N={n:>7,}: lazyarr {t_ours:7.3f} s ({tasks_ours:,} tasks)"
        if have_dask:
            t_dask, tasks_dask = best_of(args.repeat, lambda: dask_version(n))
            line += f"   Dask {t_dask:7.3f} s ({tasks_dask:,} tasks)   ratio {t_ours / t_dask:5.3f}"
        print(line)
    if not have_dask:
        print("  Dask: not installed (pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
