"""Benchmark: read_csv of 4 CSV files (2*10**6 rows in total) then groupby(key).sum().

References in the same run: pandas (``read_csv`` of each file, concat, groupby-sum) and Dask
(``[bench]`` extra), when importable. The files are written once to a temporary directory
(or ``--dir``). Runs the contenders in turn ``--repeat`` times and prints the median of each
(``--best``: the best) and the ratios.

    python benchmarks/dataframe_read_csv.py
    python benchmarks/dataframe_read_csv.py --rows 200000 --repeat 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import numpy as np
import pandas as pd
from dataframe_common import race


def write_files(directory: str, rows: int, nfiles: int) -> list[str]:
    rng = np.random.default_rng(7)
    paths = []
    per = rows // nfiles
    for i in range(nfiles):
        path = os.path.join(directory, f"part-{i}.csv")
        if not os.path.exists(path):
            pd.DataFrame({
                "key": rng.integers(0, 1000, per),
                "x": rng.random(per).round(6),
                "y": rng.normal(size=per).round(6),
                "z": rng.integers(0, 10**6, per),
            }).to_csv(path, index=False)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2 * 10**6)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--best", action="store_true", help="report the best time instead of the median")
    parser.add_argument("--dir", default=None, help="where to write the CSV files (default: a temporary dir)")
    args = parser.parse_args()

    import lazyarr.dataframe as dd

    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or tmp
        os.makedirs(directory, exist_ok=True)
        paths = write_files(directory, args.rows, args.files)
        size = sum(os.path.getsize(p) for p in paths)
        print(f"{args.rows:,} rows in {args.files} files ({size / 2**20:.0f} MiB), "
              f"{'best' if args.best else 'median'} of {args.repeat} interleaved runs")

        def run_pandas():
            return pd.concat([pd.read_csv(p) for p in paths]).groupby("key").sum()

        def run_ours():
            return dd.read_csv(paths).groupby("key").sum().compute(scheduler="threads")

        funcs = {"pandas": run_pandas, "ours": run_ours}
        try:
            import dask
            import dask.dataframe as ddask
        except ImportError:
            dask = None
        if dask is not None:
            funcs["dask"] = lambda: ddask.read_csv(paths).groupby("key").sum().compute(scheduler="threads")
        timings = race(args.repeat, funcs, stat=min if args.best else statistics.median)
        t_pandas, expect = timings["pandas"]
        t_ours, got = timings["ours"]
        pd.testing.assert_frame_equal(got, expect, check_exact=False)
        print(f"pandas read_csv + groupby    {t_pandas:8.3f} s")
        print(f"lazyarr threads              {t_ours:8.3f} s   {t_ours / t_pandas:5.2f} x pandas")
        if dask is None:
            print("dask                         not installed (pip install 'lazyarr[bench]')")
            return
        t_dask, dask_result = timings["dask"]
        pd.testing.assert_frame_equal(dask_result.sort_index(), expect, check_exact=False)
        print(f"dask threads                 {t_dask:8.3f} s   {t_dask / t_pandas:5.2f} x pandas")
        print(f"lazyarr / dask               {t_ours / t_dask:8.2f}")


if __name__ == "__main__":
    main()
