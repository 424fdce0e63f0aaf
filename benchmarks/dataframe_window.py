"""Benchmark: operations across partition boundaries (cumsum, shift, diff, rolling, resample,
groupby cumsum and shift) on a 10**7-row time-indexed frame in 20 partitions.

The frame has a datetime index at 1-second steps (known divisions, from ``from_pandas``), two
float columns and an int key with 1,000 groups. Each operation's result is reduced with
``.sum()`` and computed on the threads scheduler; references in the same run, interleaved:
pandas on the whole frame and Dask (``[bench]`` extra), when importable. The reduced results are
checked against pandas', and before timing every operation's full result is checked equal to
pandas' on the first ``--check-rows`` rows (in as many partitions). Prints the best of
``--repeat`` runs for each and our time over Dask's.

    python benchmarks/dataframe_window.py            # issue sizes
    python benchmarks/dataframe_window.py --rows 1000000 --repeat 3
    python benchmarks/dataframe_window.py --ops shift,diff
"""
from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from dataframe_common import race

# name -> the operation, written once for pandas, Dask and us (the same API)
OPS: dict[str, Callable] = {
    "cumsum": lambda df: df.x.cumsum(),
    "shift": lambda df: df.x.shift(1),
    "diff": lambda df: df.x.diff(),
    "rolling(100).mean": lambda df: df[["x", "y"]].rolling(100).mean(),
    "rolling('1h').sum": lambda df: df[["x", "y"]].rolling("1h").sum(),
    "resample('1h').mean": lambda df: df.resample("1h").mean(),
    "groupby.cumsum": lambda df: df.groupby("key").x.cumsum(),
    "groupby.shift": lambda df: df.groupby("key").x.shift(1),
}


def make_frame(rows: int, groups: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    index = pd.date_range("2024-01-01", periods=rows, freq="s", name="time")
    return pd.DataFrame({"key": rng.integers(0, groups, rows), "x": rng.random(rows), "y": rng.random(rows)},
                        index=index)


def assert_same(got, expect, what: str) -> None:
    if isinstance(expect, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expect, check_freq=False, obj=what)
    elif isinstance(expect, pd.Series):
        pd.testing.assert_series_equal(got, expect, check_freq=False, obj=what)
    else:
        assert np.isclose(got, expect, rtol=1e-9), (what, got, expect)


def check(pdf: pd.DataFrame, npartitions: int, ops: list[str]) -> None:
    """Every operation's full result equal to pandas' (floating-point sums to a tolerance)."""
    import lazyarr
    import lazyarr.dataframe as dd

    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    for op in ops:
        (got,) = lazyarr.compute(OPS[op](ddf), scheduler="threads")
        assert_same(got, OPS[op](pdf), op)


def reduced(result):
    """A number (or one per column) standing for a result."""
    return result.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10**7)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--npartitions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--check-rows", type=int, default=200_000,
                        help="rows of the full-result check against pandas (0: skip it)")
    parser.add_argument("--ops", default=",".join(OPS), help="comma-separated subset of: " + ", ".join(OPS))
    args = parser.parse_args()
    ops = args.ops.split(",")
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        parser.error(f"unknown ops {unknown}; choose from {list(OPS)}")

    import lazyarr
    import lazyarr.dataframe as dd

    pdf = make_frame(args.rows, args.groups)
    if args.check_rows:
        check(pdf.iloc[:args.check_rows], args.npartitions, ops)
        print(f"full results equal pandas' on the first {min(args.check_rows, args.rows):,} rows")
    ddf = dd.from_pandas(pdf, npartitions=args.npartitions)
    try:
        import dask
        import dask.dataframe as ddask
    except ImportError:
        dask = None
    dask_df = ddask.from_pandas(pdf, npartitions=args.npartitions) if dask is not None else None
    warnings.filterwarnings("ignore", message="`meta` is not specified")  # Dask's groupby shift
    print(f"{args.rows:,} rows at 1 s steps, {args.groups} groups, {args.npartitions} partitions, "
          f"threads scheduler, best of {args.repeat}; results reduced with .sum()")
    print(f"{'operation':22s} {'ours':>8s} {'dask':>8s} {'pandas':>8s} {'ours/dask':>10s} {'ours/pandas':>12s}")
    for op in ops:
        func = OPS[op]
        funcs = {
            "pandas": lambda func=func: reduced(func(pdf)),
            "ours": lambda func=func: lazyarr.compute(reduced(func(ddf)), scheduler="threads")[0],
        }
        if dask is not None:
            funcs["dask"] = lambda func=func: dask.compute(reduced(func(dask_df)), scheduler="threads")[0]
        timings = race(args.repeat, funcs)
        t_pandas, expect = timings["pandas"]
        t_ours, got = timings["ours"]
        assert_same(got, expect, f"{op} (ours, reduced)")
        line = f"{op:22s} {t_ours:8.3f}"
        if dask is not None:
            t_dask, dask_got = timings["dask"]
            assert_same(dask_got, expect, f"{op} (dask, reduced)")
            line += f" {t_dask:8.3f} {t_pandas:8.3f} {t_ours / t_dask:10.2f}"
        else:
            line += f" {'-':>8s} {t_pandas:8.3f} {'-':>10s}"
        print(line + f" {t_ours / t_pandas:12.2f}", flush=True)
    if dask is None:
        print("dask not installed (pip install 'lazyarr[bench]')")


if __name__ == "__main__":
    main()
