"""Shuffle-based operations on the distributed runtime: the client is the default scheduler, so
shuffles take the 'tasks' path (pieces travel between workers), never the local disk path."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq
from lazyarr.dataframe.shuffle import shuffle_method

runtime = pytest.importorskip("runtime")

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def client():
    with runtime.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        with runtime.Client(cluster) as c:  # default scheduler while open
            yield c


def test_shuffles_on_the_runtime(client):
    assert shuffle_method() == "tasks"
    rng = np.random.default_rng(3)
    left = pd.DataFrame({"k": rng.integers(0, 50, 2000), "x": rng.random(2000)})
    right = pd.DataFrame({"k": np.arange(0, 50, 2), "y": np.arange(25.0)})
    dl = dd.from_pandas(left, npartitions=4)
    dr = dd.from_pandas(right, npartitions=2)
    assert_eq(dl.merge(dr, on="k", how="left", broadcast=False), left.merge(right, on="k", how="left"),
              sort_results=True, check_index=False, scheduler=client)
    assert_eq(dl.set_index("x"), left.set_index("x").sort_index(), scheduler=client)
    assert_eq(dl.groupby("k").x.transform("sum"), left.groupby("k").x.transform("sum"), sort_results=True,
              scheduler=client)
    assert_eq(dl.groupby("k").x.mean(split_out=2), left.groupby("k").x.mean(), sort_results=True,
              scheduler=client)
