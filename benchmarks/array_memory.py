"""Benchmark: peak resident memory of ``x.sum()`` over random data far larger than memory.

``x = random.random(size, chunks=100 MB)`` with 50 GB of logical size by default. Every block
is generated and reduced inside one task and freed at once, so the peak stays near
(threads x block size) + interpreter. Each measurement runs in a fresh subprocess that reports
its own peak RSS (``resource.getrusage``); Dask runs the same way if installed.

    python benchmarks/array_memory.py [--gb 50] [--chunk-mb 100] [--skip-dask]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
lib, n, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
import numpy as np
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if lib == "lazyarr":
    import lazyarr.array as da
    total = float(da.random.random(size=(n,), chunks=(chunk,)).sum().compute(scheduler="threads"))
else:
    import dask.array as dda
    total = float(dda.random.random(size=(n,), chunks=(chunk,)).sum().compute(scheduler="threads"))
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_kb": peak, "baseline_kb": baseline, "seconds": elapsed, "mean": total / n}))
"""


def measure(lib: str, n: int, chunk: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, lib, str(n), str(chunk)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=50.0, help="logical size of x in GB (1e9 bytes)")
    parser.add_argument("--chunk-mb", type=float, default=100.0, help="block size in MB (1e6 bytes)")
    parser.add_argument("--limit-mb", type=float, default=1000.0, help="the peak RSS budget")
    parser.add_argument("--skip-dask", action="store_true", help="measure lazyarr only (Dask is slower here)")
    args = parser.parse_args()
    n = int(args.gb * 1e9 / 8)
    chunk = int(args.chunk_mb * 1e6 / 8)
    print(f"x.sum(), x = random.random({n:,} float64 = {args.gb:g} GB, chunks of {args.chunk_mb:g} MB)")
    ours = measure("lazyarr", n, chunk)
    peak = ours["peak_kb"] / 1024
    verdict = "OK" if peak < args.limit_mb else "OVER BUDGET"
    print(f"  lazyarr: peak RSS {peak:7.1f} MiB (interpreter + numpy {ours['baseline_kb'] / 1024:.1f} MiB), "
          f"{ours['seconds']:.1f} s, mean {ours['mean']:.6f}  [{verdict}: budget {args.limit_mb:g} MB]")
    if args.skip_dask:
        return
    try:
        import dask  # noqa: F401
    except ImportError:
        print("  Dask: not installed (pip install -e '.[bench]')")
        return
    theirs = measure("dask", n, chunk)
    print(f"  Dask   : peak RSS {theirs['peak_kb'] / 1024:7.1f} MiB, {theirs['seconds']:.1f} s, mean {theirs['mean']:.6f}")


if __name__ == "__main__":
    main()
