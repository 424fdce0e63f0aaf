"""Shared data for the dataframe tests: a frame with ints, floats with NaN, strings, categoricals, datetimes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rs = np.random.RandomState(seed)
    df = pd.DataFrame({
        "i": rs.randint(0, 10, n),
        "f": rs.randn(n),
        "g": rs.randint(0, 5, n),
        "s": rs.choice(["apple", "banana", "cherry", "date"], n),
        "c": pd.Categorical(rs.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"]),
        "t": pd.date_range("2020-01-01", periods=n, freq="h"),
    }, index=pd.Index(np.arange(n) * 2, name="idx"))
    df.loc[df.index[::9], "f"] = np.nan
    df.loc[df.index[5::13], "s"] = np.nan
    return df


@pytest.fixture
def pdf() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(params=[1, 3, 7], ids=lambda n: f"{n}parts")
def npartitions(request) -> int:
    return request.param


@pytest.fixture(params=["sync", "threads"])
def scheduler(request) -> str:
    return request.param
