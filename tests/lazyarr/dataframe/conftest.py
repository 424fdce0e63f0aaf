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


def split_rows(pdf: pd.DataFrame, sizes: list, known_divisions: bool = False):
    """A lazy frame whose partitions hold ``sizes`` consecutive rows of ``pdf`` (0: an empty partition).

    With ``known_divisions`` an empty partition gets a boundary between its neighbours' index values
    (so sizes must not start or end with 0, and neighbouring index values must be 2 units apart).
    """
    import lazyarr.dataframe as dd
    from lazyarr import delayed

    edges = np.cumsum([0] + list(sizes))
    assert edges[-1] == len(pdf), f"sizes add up to {edges[-1]}, not {len(pdf)}"
    parts = [delayed(pdf.iloc[a:b]) for a, b in zip(edges[:-1], edges[1:])]
    divisions = None
    if known_divisions:
        idx = pdf.index
        divisions = [idx[a] if a < b else idx[a - 1] + (idx[a] - idx[a - 1]) // 2
                     for a, b in zip(edges[:-1], edges[1:])] + [idx[-1]]
    return dd.from_delayed(parts, meta=pdf.iloc[:0], divisions=divisions)


LAYOUTS = ["1part", "7parts", "ragged", "ragged-known"]


@pytest.fixture(params=LAYOUTS)
def layout(request):
    """A function making a lazy frame of a pandas one: one partition, seven even ones (known divisions),
    or ragged ones with empty and one-row partitions (unknown or known divisions)."""
    import lazyarr.dataframe as dd

    def make(pdf: pd.DataFrame):
        n = len(pdf)
        if request.param == "1part":
            return dd.from_pandas(pdf, npartitions=1)
        if request.param == "7parts":
            return dd.from_pandas(pdf, npartitions=7)
        if request.param == "ragged":
            return split_rows(pdf, [0, 1, 0, 2, n - 16, 0, 3, 10])
        return split_rows(pdf, [1, 0, 2, n - 14, 0, 1, 10], known_divisions=True)

    return make
