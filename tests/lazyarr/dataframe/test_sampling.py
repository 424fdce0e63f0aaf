"""sample: per-partition fractions, deterministic for a seed, rows from the input in their order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lazyarr.dataframe as dd
from lazyarr.dataframe import assert_eq


@pytest.mark.parametrize("replace", [False, True])
def test_sample_is_deterministic_and_a_subset(pdf, npartitions, scheduler, replace):
    ddf = dd.from_pandas(pdf, npartitions=npartitions)
    a = ddf.sample(frac=0.3, replace=replace, random_state=42)
    assert_eq(a, ddf.sample(frac=0.3, replace=replace, random_state=42), scheduler=scheduler)
    got = a.compute(scheduler=scheduler)
    assert a.divisions == ddf.divisions  # rows keep their order: known divisions stay valid
    assert got.index.is_monotonic_increasing
    assert set(got.index) <= set(pdf.index)
    pd.testing.assert_frame_equal(got, pdf.loc[got.index])  # the sampled rows are the input's rows
    sizes = [len(ddf.get_partition(i).compute()) for i in range(npartitions)]
    assert len(got) == sum(round(0.3 * n) for n in sizes)
    if not replace:
        assert got.index.is_unique
    other = ddf.sample(frac=0.3, replace=replace, random_state=7).compute()
    assert not got.index.equals(other.index)


def test_sample_upsampling_series_and_random_state_objects(pdf):
    ddf = dd.from_pandas(pdf, npartitions=3)
    up = ddf.f.sample(frac=2.0, replace=True, random_state=1).compute()
    assert len(up) == 2 * len(pdf) and not up.index.is_unique
    state = np.random.RandomState(5)
    first, second = ddf.sample(frac=0.5, random_state=state), ddf.sample(frac=0.5, random_state=state)
    assert not first.compute().index.equals(second.compute().index)  # the state advances
    assert len(ddf.sample(frac=0.5).compute()) == len(ddf.sample(frac=0.5, random_state=3).compute())
    assert len(ddf.sample(frac=0.0, random_state=1).compute()) == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 5}, "'n'.*frac"),
    ({}, "frac"),
    ({"frac": -0.1}, "non-negative"),
    ({"frac": 1.5}, "replace=True"),
])
def test_sample_errors(pdf, kwargs, match):
    ddf = dd.from_pandas(pdf, npartitions=3)
    with pytest.raises(ValueError, match=match):
        ddf.sample(**kwargs)
