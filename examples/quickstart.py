"""lazyarr in five minutes: the headline examples end to end, printing their results.

Run it with the README's first command, or ``python examples/quickstart.py`` inside the venv.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from operator import add


def graph_dict() -> None:
    """A task graph is a plain dict; ``get`` evaluates keys of it."""
    from lazyarr.core import get

    dsk = {"x": 1, "y": 2, "z": (add, "x", "y"), "w": (sum, ["x", "y", "z"])}
    print("graph dict:      get(dsk, 'z') =", get(dsk, "z"), "  get(dsk, ['w', 'z']) =", get(dsk, ["w", "z"]))


def delayed_pipeline() -> None:
    """``delayed`` turns ordinary function calls into a graph; threads run them in parallel."""
    from lazyarr import delayed

    def inc(x: int) -> int:
        time.sleep(0.25)
        return x + 1

    data = [1, 2, 3, 4, 5, 6, 7, 8]
    total = delayed(sum)([delayed(inc)(i) for i in data])
    for scheduler in ("sync", "threads"):
        start = time.perf_counter()
        result = total.compute(scheduler=scheduler)
        print(f"delayed:         8 x inc(sleep 0.25 s) summed = {result} on {scheduler!r} "
              f"in {time.perf_counter() - start:.2f} s")


def array_mean() -> None:
    """A chunked random array far larger than one chunk, reduced in parallel."""
    import lazyarr.array as da

    x = da.random.normal(10, 0.1, size=(2 * 10**7,), chunks=(10**6,))
    start = time.perf_counter()
    mean = x.mean().compute()
    print(f"array:           mean of {x.size:,} normal(10, 0.1) samples in {x.numblocks[0]} chunks "
          f"= {mean:.5f} ({time.perf_counter() - start:.2f} s)")


def bag_pipeline(directory: str) -> None:
    """JSON lines read as text, parsed and counted, on the processes scheduler."""
    import lazyarr.bag as db

    names = ["alice", "bob", "carol", "alice", "dan", "alice", "bob"]
    for part in range(3):
        with open(os.path.join(directory, f"people-{part}.json"), "w") as f:
            for i, name in enumerate(names):
                f.write(json.dumps({"name": name, "id": part * 100 + i}) + "\n")
    pattern = os.path.join(directory, "*.json")
    counts = db.read_text(pattern).map(json.loads).pluck("name").frequencies(sort=True).compute()
    print("bag:             name frequencies =", counts)


def dataframe_groupby() -> None:
    """A pandas frame split into partitions, grouped and aggregated lazily."""
    import numpy as np
    import pandas as pd

    import lazyarr.dataframe as dd

    rng = np.random.default_rng(0)
    pdf = pd.DataFrame({"key": rng.integers(0, 4, 100_000), "value": rng.random(100_000)})
    df = dd.from_pandas(pdf, npartitions=8)
    result = df.groupby("key").value.mean().compute()
    expected = pdf.groupby("key").value.mean()
    print("dataframe:       groupby('key').value.mean() =", result.round(4).to_dict(),
          "(matches pandas)" if np.allclose(result.sort_index(), expected) else "(MISMATCH)")


def main() -> None:
    graph_dict()
    delayed_pipeline()
    array_mean()
    with tempfile.TemporaryDirectory() as directory:
        bag_pipeline(directory)
    dataframe_groupby()


if __name__ == "__main__":
    main()
