"""Benchmark: merge of a 10**7-row and a 10**6-row frame on a key column, and set_index on a
shuffled 10**7-row column: time and peak memory, lazyarr against Dask (``[bench]`` extra).

Each case runs in a fresh subprocess, which builds its inputs, notes its resident memory, then
computes while a sampling thread records the peak resident memory. Reported: wall time, the
peak *increase* over the resident inputs, and that increase as a multiple of the input size.
The results are reduced (row count and a column sum) rather than gathered into one pandas
frame, as a larger-than-memory workflow would.

    python benchmarks/dataframe_shuffle.py
    python benchmarks/dataframe_shuffle.py --rows 1000000
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

CASES = ["merge-auto", "merge-hash", "set_index"]


def _make_inputs(rows: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(11)
    small = rows // 10
    left = pd.DataFrame({"key": rng.integers(0, small, rows), "x": rng.random(rows), "y": rng.random(rows)})
    right = pd.DataFrame({"key": rng.permutation(small), "z": rng.random(small)})
    shuffled = pd.DataFrame({"v": rng.permutation(rows).astype("float64"), "w": rng.random(rows)})
    return left, right, shuffled


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class PeakSampler:
    """Samples this process's resident memory every few milliseconds in a thread it joins."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(self.interval)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def run_case(library: str, case: str, rows: int, npartitions: int) -> dict:
    import numpy as np

    left, right, shuffled = _make_inputs(rows)
    if case.startswith("merge"):
        inputs = int(left.memory_usage(deep=True).sum() + right.memory_usage(deep=True).sum())
    else:
        inputs = int(shuffled.memory_usage(deep=True).sum())
    if library == "lazyarr":
        import lazyarr
        import lazyarr.dataframe as dd

        dl = dd.from_pandas(left, npartitions=npartitions)
        dr = dd.from_pandas(right, npartitions=max(1, npartitions // 10))
        ds = dd.from_pandas(shuffled, npartitions=npartitions)
        compute = lazyarr.compute
        kw = {"scheduler": "threads"}
    else:
        import dask
        import dask.dataframe as dd

        dl = dd.from_pandas(left, npartitions=npartitions)
        dr = dd.from_pandas(right, npartitions=max(1, npartitions // 10))
        ds = dd.from_pandas(shuffled, npartitions=npartitions)
        compute = dask.compute
        kw = {"scheduler": "threads"}
    base = _rss()
    start = time.perf_counter()
    with PeakSampler() as sampler:
        if case == "merge-auto":
            merged = dl.merge(dr, on="key")
            n, total = compute(merged.z.count(), merged.z.sum(), **kw)
        elif case == "merge-hash":
            merged = dl.merge(dr, on="key", broadcast=False)
            n, total = compute(merged.z.count(), merged.z.sum(), **kw)
        else:
            indexed = ds.set_index("v")
            n, total = compute(indexed.w.count(), indexed.index.max(), **kw)
    elapsed = time.perf_counter() - start
    if case.startswith("merge"):
        expect = left.merge(right, on="key")
        assert n == len(expect) and np.isclose(total, expect.z.sum()), (n, total)
    else:
        assert n == rows and total == shuffled.v.max(), (n, total)
    return {"time": elapsed, "peak": sampler.peak - base, "inputs": inputs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10**7)
    parser.add_argument("--npartitions", type=int, default=20)
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child[0], args.child[1], args.rows, args.npartitions)))
        return
    try:
        import dask  # noqa: F401

        libraries = ["lazyarr", "dask"]
    except ImportError:
        libraries = ["lazyarr"]
    print(f"left {args.rows:,} rows, right {args.rows // 10:,} rows, {args.npartitions} partitions")
    print(f"{'case':12s} {'library':8s} {'time':>8s} {'peak increase':>14s} {'x input':>8s}")
    results: dict = {}
    for case in CASES:
        for lib in libraries:
            if lib == "dask" and case == "merge-hash":
                continue
            cmd = [sys.executable, __file__, "--rows", str(args.rows), "--npartitions", str(args.npartitions),
                   "--child", lib, case]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
            if out.returncode != 0:
                print(f"{case:12s} {lib:8s} failed:\n{out.stderr[-2000:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[(case, lib)] = r
            print(f"{case:12s} {lib:8s} {r['time']:7.2f}s {r['peak'] / 2**20:11.0f} MiB {r['peak'] / r['inputs']:7.2f}x")
    for case in CASES:
        if (case, "lazyarr") in results and (case, "dask") in results:
            a, b = results[(case, "lazyarr")], results[(case, "dask")]
            print(f"{case}: lazyarr / dask time {a['time'] / b['time']:.2f}, peak memory {a['peak'] / max(b['peak'], 1):.2f}")


if __name__ == "__main__":
    main()
