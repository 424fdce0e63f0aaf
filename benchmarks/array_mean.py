"""Benchmark: mean of random normal values, lazyarr vs plain NumPy threads vs Dask.

    random.normal(10, 0.1, size=(2*10**8,), chunks=(10**6,)).mean()   with the threads scheduler

The physical reference is plain NumPy doing the same work: each chunk is generated with the same
bit generator (SFC64, per-chunk SeedSequence) and summed, in a pool of as many threads as
lazyarr's scheduler uses. Dask (if installed, ``pip install -e '.[bench]'``) runs the same
expression in the same process. Each figure is the best of ``--repeat`` runs.

    python benchmarks/array_mean.py [--n 200000000] [--chunk 1000000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def best_of(repeat: int, func) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = func()
        best = min(best, time.perf_counter() - start)
    return best, value


def ours(n: int, chunk: int) -> float:
    import lazyarr.array as da

    return float(da.random.normal(10, 0.1, size=(n,), chunks=(chunk,)).mean().compute(scheduler="threads"))


def numpy_reference(n: int, chunk: int, workers: int) -> float:
    entropy = np.random.SeedSequence().entropy
    sizes = [chunk] * (n // chunk) + ([n % chunk] if n % chunk else [])

    def one(i: int) -> float:
        seq = np.random.SeedSequence(entropy, spawn_key=(0, i))
        return np.random.Generator(np.random.SFC64(seq)).normal(10, 0.1, sizes[i]).sum()

    with ThreadPoolExecutor(workers) as pool:
        return float(sum(pool.map(one, range(len(sizes)))) / n)


def dask_version(n: int, chunk: int) -> float | None:
    try:
        import dask.array as dda
    except ImportError:
        return None
    return float(dda.random.normal(10, 0.1, size=(n,), chunks=(chunk,)).mean().compute(scheduler="threads"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2 * 10**8)
    parser.add_argument("--chunk", type=int, default=10**6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from lazyarr.threaded import default_num_workers

    workers = default_num_workers()
    runs = {
        "NumPy reference": lambda: numpy_reference(args.n, args.chunk, workers),
        "lazyarr": lambda: ours(args.n, args.chunk),
    }
    try:
        import dask.array  # noqa: F401

        runs["Dask"] = lambda: dask_version(args.n, args.chunk)
    except ImportError:
        pass
    print(f"mean of {args.n:,} normal values in chunks of {args.chunk:,}; {workers} threads; "
          f"best of {args.repeat}, runs interleaved")
    ours(args.chunk * 4, args.chunk)  # warm up imports and thread pools
    numpy_reference(args.chunk * 4, args.chunk, workers)
    best = dict.fromkeys(runs, float("inf"))
    values = {}
    for _ in range(args.repeat):  # interleaved, so that a busy moment hurts every contender alike
        for label, run in runs.items():
            seconds, values[label] = best_of(1, run)
            best[label] = min(best[label], seconds)
    ref = best["NumPy reference"]
    for label in runs:
        extra = f"   {best[label] / ref:5.2f} x NumPy" if label != "NumPy reference" else f"   ({workers}-thread pool)"
        print(f"  {label:<16}: {best[label]:7.3f} s   mean={values[label]:.6f}{extra}")
    if "Dask" in runs:
        print(f"  lazyarr / Dask  : {best['lazyarr'] / best['Dask']:5.2f}")
    else:
        print("  Dask: not installed (pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
