"""Word count over a synthetic text corpus: lazyarr.bag vs one process with Counter vs dask.bag.

    .venv/bin/python benchmarks/bag_wordcount.py [--size-mb 400] [--files 8] [--repeat 3]

The corpus (``--files`` files, ``--size-mb`` MB in total, words drawn from a 10,000-word
vocabulary with Zipf-like frequencies, seeded) is generated once and cached under
``--data-dir`` (default: ``<tmp>/lazyarr-benchmarks/``). Then, on the same files:

* lazyarr: ``read_text(...).str.split().flatten().frequencies().topk(10, key=1)`` on the
  ``'processes'`` scheduler;
* Counter: one process, ``for line in file: counter.update(line.split())`` (the sequential
  reference; with 2 cores, 0.5 x this is the floor);
* Dask: the same pipeline with ``dask.bag`` on Dask's ``'processes'`` scheduler (with the
  ``[bench]`` extra installed).

Each figure is the best of ``--repeat`` rounds, the contenders taking turns within a round so
that load from other programs hits them alike; lazyarr's first (cold: pool start-up included)
run is printed too. All results must equal the Counter's exactly, or the script fails.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import tempfile
import time
from collections import Counter
from operator import itemgetter

VOCABULARY = 10_000
WORDS_PER_LINE = 12
TOP = 10


def vocabulary(seed: int) -> list[str]:
    """10,000 distinct lowercase words of 2 to 10 letters."""
    import random
    import string

    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 10))))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered


def generate(directory: str, size_mb: float, nfiles: int, seed: int) -> list[str]:
    """Write the corpus into ``directory`` (if not there already) and return the file paths."""
    import numpy as np

    paths = [os.path.join(directory, f"part-{i:03d}.txt") for i in range(nfiles)]
    stamp = os.path.join(directory, "corpus.json")
    spec = {"size_mb": size_mb, "files": nfiles, "seed": seed, "vocabulary": VOCABULARY, "format": 2}
    if os.path.exists(stamp) and all(os.path.exists(p) for p in paths):
        with open(stamp) as f:
            if json.load(f) == spec:
                return paths
    os.makedirs(directory, exist_ok=True)
    words = vocabulary(seed)
    weights = 1.0 / np.arange(1, VOCABULARY + 1)
    weights /= weights.sum()
    mean_bytes = float(np.dot(weights, [len(w) + 1 for w in words]))
    per_file = int(size_mb * 1e6 / nfiles / mean_bytes)
    table = np.array([w + " " for w in words] + [w + "\n" for w in words], dtype=object)
    rng = np.random.default_rng(seed)
    print(f"generating {nfiles} files of ~{size_mb / nfiles:.0f} MB in {directory} ...", flush=True)
    for path in paths:
        text_parts = []
        for start in range(0, per_file, 2_000_000):  # in chunks, to bound memory
            n = min(2_000_000, per_file - start)
            idx = rng.choice(VOCABULARY, size=n, p=weights)
            line_end = (np.arange(start, start + n) % WORDS_PER_LINE) == WORDS_PER_LINE - 1
            text_parts.append("".join(table[idx + VOCABULARY * line_end]))
        partial = path + ".tmp"
        with open(partial, "w") as f:
            f.writelines(text_parts)
        os.replace(partial, path)
    with open(stamp, "w") as f:
        json.dump(spec, f)
    return paths


def top_words(counts: Counter) -> list[tuple[str, int]]:
    return heapq.nlargest(TOP, counts.items(), key=itemgetter(1))


def run_counter(paths: list[str]) -> list:
    counts: Counter = Counter()
    for path in paths:
        with open(path) as f:
            for line in f:
                counts.update(line.split())
    return top_words(counts)


def run_lazyarr(pattern: str) -> list:
    import lazyarr.bag as db

    return db.read_text(pattern).str.split().flatten().frequencies().topk(TOP, key=1).compute(scheduler="processes")


def run_dask(pattern: str) -> list:
    import dask.bag as ddb

    return ddb.read_text(pattern).str.split().flatten().frequencies().topk(TOP, key=1).compute(scheduler="processes")


def interleaved(contenders: dict, repeat: int) -> dict:
    """Run each contender once per round, ``repeat`` rounds, so that load from other programs
    on the machine hits them alike. Returns ``{name: (times, result)}``."""
    out: dict = {name: ([], None) for name in contenders}
    for _ in range(repeat):
        for name, (func, arg) in contenders.items():
            start = time.perf_counter()
            result = func(arg)
            out[name][0].append(time.perf_counter() - start)
            out[name] = (out[name][0], result)
    return out


def same(result: list, expected: list) -> bool:
    return sorted(map(tuple, result)) == sorted(expected) and [c for _, c in result] == [c for _, c in expected]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=400.0, help="total corpus size in MB (default 400)")
    parser.add_argument("--files", type=int, default=8, help="number of files (default 8)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender; the best is reported")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "lazyarr-benchmarks"))
    parser.add_argument("--no-dask", action="store_true", help="skip Dask even if it is installed")
    args = parser.parse_args(argv)

    directory = os.path.join(args.data_dir, f"wordcount-{args.size_mb:g}mb-{args.files}f-seed{args.seed}")
    paths = generate(directory, args.size_mb, args.files, args.seed)
    pattern = os.path.join(directory, "part-*.txt")
    total = sum(os.path.getsize(p) for p in paths) / 1e6
    print(f"corpus: {len(paths)} files, {total:.0f} MB, cores: {os.cpu_count()}")

    contenders: dict = {"Counter": (run_counter, paths), "lazyarr": (run_lazyarr, pattern)}
    if not args.no_dask:
        try:
            import dask.bag  # noqa: F401
        except ImportError:
            print("Dask: not installed (pip install -e '.[bench]'), skipped")
        else:
            contenders["Dask"] = (run_dask, pattern)
    runs = interleaved(contenders, args.repeat)
    expected = runs["Counter"][1]
    counter_time = min(runs["Counter"][0])
    ours_times, ours = runs["lazyarr"]
    ours_time = min(ours_times)
    print(f"Counter (1 process)        : {counter_time:7.2f} s")
    print(f"lazyarr.bag (processes)    : {ours_time:7.2f} s   (first run {ours_times[0]:.2f} s)"
          f"   {ours_time / counter_time:.2f} x Counter")
    ok = same(ours, expected)
    if not ok:
        print(f"  MISMATCH: lazyarr {ours} != Counter {expected}")
    dask_time = None
    if "Dask" in runs:
        dask_times, theirs = runs["Dask"]
        dask_time = min(dask_times)
        print(f"dask.bag (processes)       : {dask_time:7.2f} s   {dask_time / counter_time:.2f} x Counter")
        if not same(theirs, expected):
            print(f"  MISMATCH: dask {theirs} != Counter {expected}")
            ok = False
    print()
    for name, (times, _) in runs.items():
        print(f"runs of {name:8}: " + ", ".join(f"{t:.2f}" for t in times) + " s")
    print(f"lazyarr / Counter = {ours_time / counter_time:.2f}   (target <= 0.60)")
    if dask_time is not None:
        print(f"lazyarr / Dask    = {ours_time / dask_time:.2f}   (target <= 0.70)")
    print(f"top {TOP}: {expected}")
    print("results equal the Counter's" if ok else "RESULTS DIFFER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
