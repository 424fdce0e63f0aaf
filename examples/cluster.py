"""A cluster by hand: ``lazyarr-scheduler`` and two ``lazyarr-worker`` processes, then the headline
examples computed on it, then a clean shutdown.

Run it inside the venv::

    python examples/cluster.py

It starts the commands exactly as you would in terminals (here through ``subprocess``, with
``python -m runtime``, which is what the ``lazyarr-scheduler`` / ``lazyarr-worker`` scripts run),
reads the addresses they print, connects a Client, and stops everything with SIGTERM at the end,
even if an example fails.
"""
from __future__ import annotations

import collections
import os
import select
import signal
import subprocess
import sys
import time
from operator import add

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def start(args: list[str], roles: list[str], timeout: float = 30.0) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start ``python -m runtime <args>``; return it and the ``<role>: <address>`` lines it printed."""
    env = dict(os.environ)
    # This checkout, and this directory so the workers can import the functions defined below.
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.Popen([sys.executable, "-m", "runtime", *args], stdout=subprocess.PIPE, env=env, bufsize=0)
    found: dict[str, str] = {}
    pending = b""
    deadline = time.monotonic() + timeout
    while set(roles) - found.keys():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"'{' '.join(args)}' did not start (exit code {proc.poll()})")
        if select.select([proc.stdout], [], [], 0.1)[0]:
            pending += os.read(proc.stdout.fileno(), 4096)
            *lines, pending = pending.split(b"\n")
            for line in lines:
                words = line.decode().split()  # e.g. "lazyarr-scheduler clients: tcp://127.0.0.1:41234"
                if len(words) == 3 and words[1].rstrip(":") in roles:
                    found[words[1].rstrip(":")] = words[2]
    return proc, found  # stdout stays open (a few more lines may come); logs go to stderr


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (a clean shutdown), then kill if it does not exit within 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


def inc(x: int) -> int:
    time.sleep(0.1)
    return x + 1


def graph_dict(client) -> None:
    """A task graph is a plain dict; ``client.get`` computes keys of it on the cluster."""
    dsk = {"x": 1, "y": (add, "x", 2), "z": (sum, ["x", "y"])}
    print("graph dict:      client.get(dsk, 'y') =", client.get(dsk, "y"),
          "  client.get(dsk, ['z', 'x']) =", client.get(dsk, ["z", "x"]))


def delayed_pipeline(client) -> None:
    """Ordinary function calls made lazy; 8 x 0.1 s of sleeping runs on 2 single-threaded workers."""
    from lazyarr import delayed

    total = delayed(sum)([delayed(inc)(i) for i in range(8)])
    start_time = time.perf_counter()
    result = total.compute(scheduler=client)
    print(f"delayed:         sum of 8 x inc(0.1 s sleep) = {result} in {time.perf_counter() - start_time:.2f} s")


def array_mean(client) -> None:
    """A chunked random array reduced on the workers; only the mean comes back."""
    import lazyarr.array as da

    x = da.random.normal(10, 0.1, size=(4 * 10**6,), chunks=(5 * 10**5,))
    print(f"array:           mean of {x.size:,} normal(10, 0.1) samples = {float(x.mean().compute(get=client.get)):.5f}"
          f" (std {float(x.std().compute(scheduler=client)):.5f})")


def bag_pipeline(client) -> None:
    """Word counts over a bag of lines."""
    import lazyarr.bag as db

    lines = ["the quick brown fox", "jumps over the lazy dog", "the dog sleeps"] * 100
    counts = db.from_sequence(lines, npartitions=6).str.split().flatten().frequencies(sort=True)
    result = counts.compute(scheduler=client)
    assert dict(result) == collections.Counter(" ".join(lines).split())
    print("bag:             word frequencies, most common first =", result[:4])


def dataframe_groupby(client) -> None:
    """A pandas frame split in partitions, grouped and aggregated on the workers."""
    import numpy as np
    import pandas as pd

    import lazyarr.dataframe as dd

    rng = np.random.default_rng(0)
    pdf = pd.DataFrame({"key": rng.choice(list("abc"), 10_000), "value": rng.random(10_000)})
    result = dd.from_pandas(pdf, npartitions=4).groupby("key").value.mean().compute(scheduler=client)
    print("dataframe:       mean value by key =", {k: round(v, 4) for k, v in result.sort_index().items()})


def named_collection(address: str, client) -> None:
    """One client stores a collection under a name; another client gets it back and computes it."""
    import lazyarr.bag as db
    from lazyarr.distributed import Client

    client.set_collection("squares", db.from_sequence(range(10), npartitions=2).map(lambda x: x * x))
    with Client(address, set_as_default=False) as other:
        squares = other.get_collection("squares")
        print("named:           another client got 'squares' ->", squares.sum().compute(scheduler=other))
    client.delete_collection("squares")


def main() -> None:
    from lazyarr.distributed import Client

    procs: list[subprocess.Popen] = []
    try:
        scheduler, addresses = start(["scheduler", "--host", "127.0.0.1"], ["workers", "clients"])
        procs.append(scheduler)
        print("scheduler:      ", addresses)
        for i in range(2):
            worker, found = start(["worker", addresses["workers"], "--nthreads", "1", "--name", f"w{i}",
                                   "--log-level", "warning"], ["address"])
            procs.append(worker)
            print(f"worker w{i}:      ", found["address"])
        with Client(addresses["clients"]) as client:
            while len(client.scheduler_info()["workers"]) < 2:
                time.sleep(0.05)
            info = client.scheduler_info()["workers"]
            print("scheduler_info:  ", {i["name"]: f"{i['nthreads']} thread(s)" for i in info.values()})
            graph_dict(client)
            delayed_pipeline(client)
            for example in (array_mean, bag_pipeline, dataframe_groupby):
                example(client)
            named_collection(addresses["clients"], client)
    finally:
        for proc in reversed(procs):
            stop(proc)
    print("all processes stopped:", all(p.returncode is not None for p in procs))


if __name__ == "__main__":
    main()
