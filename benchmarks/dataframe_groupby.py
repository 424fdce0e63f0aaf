"""Benchmark: groupby(key).mean() and a column sum on a 2*10**7-row frame in 20 partitions.

The frame has an int key with 1,000 groups and two float columns. Timed: computing both results
in one call on the threads scheduler, from a frame made with ``from_pandas(npartitions=20)``
(construction timed separately). References in the same run: pandas on the whole frame (the
sequential limit) and Dask (``[bench]`` extra), when importable. Prints the best of ``--repeat``
runs for each and the ratios.

    python benchmarks/dataframe_groupby.py            # issue sizes
    python benchmarks/dataframe_groupby.py --rows 2000000 --repeat 3
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from dataframe_common import race


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2 * 10**7)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--npartitions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cluster", action="store_true",
                        help="also time the runtime's LocalCluster against Dask distributed's (data not persisted)")
    args = parser.parse_args()

    import lazyarr
    import lazyarr.dataframe as dd

    rng = np.random.default_rng(42)
    pdf = pd.DataFrame({
        "key": rng.integers(0, args.groups, args.rows),
        "x": rng.random(args.rows),
        "y": rng.random(args.rows),
    })
    print(f"{args.rows:,} rows, {args.groups} groups, {args.npartitions} partitions, best of {args.repeat}")

    def run_pandas():
        return pdf.groupby("key").mean(), pdf["x"].sum()

    start = time.perf_counter()
    ddf = dd.from_pandas(pdf, npartitions=args.npartitions)
    t_build = time.perf_counter() - start

    def run_ours():
        return lazyarr.compute(ddf.groupby("key").mean(), ddf.x.sum(), scheduler="threads")

    funcs = {"pandas": run_pandas, "ours": run_ours}
    try:
        import dask
        import dask.dataframe as ddask
    except ImportError:
        dask = None
    if dask is not None:
        dask_df = ddask.from_pandas(pdf, npartitions=args.npartitions)
        funcs["dask"] = lambda: dask.compute(dask_df.groupby("key").mean(), dask_df.x.sum(), scheduler="threads")
        funcs["dask1"] = lambda: dask.compute(dask_df.groupby("key").mean(split_out=1), dask_df.x.sum(),
                                              scheduler="threads")
    timings = race(args.repeat, funcs)
    t_pandas, (expect_mean, expect_sum) = timings["pandas"]
    t_ours, (got_mean, got_sum) = timings["ours"]
    pd.testing.assert_frame_equal(got_mean, expect_mean)
    assert np.isclose(got_sum, expect_sum), (got_sum, expect_sum)
    print(f"pandas (whole frame)      {t_pandas:8.3f} s")
    print(f"lazyarr threads           {t_ours:8.3f} s   {t_ours / t_pandas:5.2f} x pandas"
          f"   (from_pandas: {t_build:.3f} s, not included)")
    if dask is None:
        print("dask                      not installed (pip install 'lazyarr[bench]')")
        return
    t_dask, (dask_mean, _) = timings["dask"]
    t_dask1, _ = timings["dask1"]
    pd.testing.assert_frame_equal(dask_mean.sort_index(), expect_mean)
    print(f"dask threads              {t_dask:8.3f} s   {t_dask / t_pandas:5.2f} x pandas")
    print(f"dask threads split_out=1  {t_dask1:8.3f} s   {t_dask1 / t_pandas:5.2f} x pandas")
    print(f"lazyarr / dask            {t_ours / t_dask:8.2f}")
    if args.cluster:
        cluster_race(pdf, args, expect_mean)


def cluster_race(pdf: pd.DataFrame, args: argparse.Namespace, expect_mean: pd.DataFrame) -> None:
    """The same computation on local clusters (2 worker processes), the frame sent with the graph."""
    import logging
    import warnings

    import lazyarr
    import lazyarr.dataframe as dd
    import runtime

    ddf = dd.from_pandas(pdf, npartitions=args.npartitions)
    with runtime.LocalCluster(n_workers=2, threads_per_worker=1) as cluster, \
            runtime.Client(cluster, set_as_default=False) as client:
        timings = race(args.repeat, {"ours": lambda: lazyarr.compute(ddf.groupby("key").mean(), ddf.x.sum(),
                                                                      scheduler=client)})
    t_ours, (got, _) = timings["ours"]
    pd.testing.assert_frame_equal(got, expect_mean)
    print(f"lazyarr LocalCluster      {t_ours:8.3f} s")
    try:
        import dask
        import dask.dataframe as ddask
        from distributed import Client, LocalCluster
    except ImportError:
        return
    logging.getLogger("distributed").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Sending large graph")
    dask_df = ddask.from_pandas(pdf, npartitions=args.npartitions)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as c:
        timings = race(args.repeat, {"dask": lambda: dask.compute(dask_df.groupby("key").mean(), dask_df.x.sum(),
                                                                  scheduler=c)})
    t_dask, _ = timings["dask"]
    print(f"dask distributed          {t_dask:8.3f} s")
    print(f"lazyarr / dask (cluster)  {t_ours / t_dask:8.2f}")


if __name__ == "__main__":
    main()
