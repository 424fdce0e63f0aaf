"""``groupby``: a full shuffle, so groups may be bigger than any one partition.

Every element goes to output partition ``stable_hash(key) % npartitions``. Two ways to move it:

``'disk'`` (local schedulers)
    Each input partition groups its elements and writes one pickle file per non-empty output
    bucket, ``<dir>/<bucket>-<input>-<run>.pkl``, into a directory under the ``temporary-directory``
    setting (or the system's temporary directory). ``<run>`` is drawn afresh by every execution of
    a spill task, so neither concurrent worker processes nor two computations of the same graph at
    once ever share a file. The barrier task gathers the run tags; output partition ``j`` then
    reads the files of bucket ``j`` named by them, in input order, merges them, and deletes them;
    the last reader removes the directory. Whatever is left (an output partition that was never computed, a failure
    mid-way) is removed when the graph is garbage-collected or at interpreter exit.

``'tasks'`` (the distributed runtime)
    No files: each input partition is split into per-bucket lists in memory and the pieces are
    routed through ``stages`` rounds of at most ``max_branch`` inputs per task (one digit of the
    bucket number per round, base ``k``), so a task never has more than ``k`` inputs however many
    partitions there are.

The bucket comes from :func:`stable_hash`, not ``hash()``: Python salts ``hash(str)`` per process,
so worker processes would disagree about where a key goes.
"""
from __future__ import annotations

import datetime
import os
import pickle
import shutil
import tempfile
import uuid
import weakref
import zlib
from numbers import Number
from operator import getitem
from typing import Any

from .. import config
from ..tokenize import tokenize
from ..utils import funcname
from . import chunk
from .core import Bag

__all__ = ["groupby", "stable_hash", "choose_shuffle"]

_MASK = (1 << 61) - 1
SHUFFLE_METHODS = ("disk", "tasks")


def stable_hash(x: Any) -> int:
    """A hash of ``x`` that is the same in every process (equal keys hash equal).

    Strings and bytes are hashed with CRC-32, numbers with ``hash()`` (not salted, and equal
    for ``1``, ``1.0`` and ``True``), tuples and frozensets from their items, dates by value.
    Other types fall back to ``hash()``; give such keys a process-independent ``__hash__``.

    >>> stable_hash('word') == stable_hash('word'), stable_hash(1) == stable_hash(1.0)
    (True, True)
    >>> stable_hash(('a', 1)) == stable_hash(('a', 1))
    True
    """
    if isinstance(x, str):
        return zlib.crc32(x.encode("utf-8", "surrogatepass"))
    if isinstance(x, (bytes, bytearray)):
        return zlib.crc32(x)
    if x is None:
        return 0x5EED  # hash(None) is the object's address before Python 3.12
    if isinstance(x, Number):
        if x != x:
            return 0x7FF8  # hash(nan) is the object's address
        return hash(x) & _MASK
    if isinstance(x, tuple):
        h = 0x345678
        for item in x:
            h = ((h * 1000003) ^ stable_hash(item)) & _MASK
        return h ^ len(x)
    if isinstance(x, frozenset):
        return sum(stable_hash(item) for item in x) & _MASK
    if isinstance(x, datetime.datetime) and x.utcoffset() is not None:
        return zlib.crc32(x.astimezone(datetime.timezone.utc).isoformat().encode())
    if isinstance(x, (datetime.date, datetime.time, datetime.timedelta)):
        return zlib.crc32(f"{type(x).__name__}{x!r}".encode())
    return hash(x) & _MASK


def choose_shuffle(shuffle: str | None = None) -> str:
    """The shuffle method: ``shuffle``, else the ``bag.shuffle`` setting, else ``'disk'`` when the
    configured scheduler is a local one and ``'tasks'`` otherwise (a cluster has no shared disk).

    >>> choose_shuffle('tasks'), choose_shuffle()
    ('tasks', 'disk')
    """
    if shuffle is None:
        shuffle = config.get("bag.shuffle", None)
    if shuffle is None:
        from ..base import uses_local_scheduler

        return "disk" if uses_local_scheduler() else "tasks"
    if shuffle not in SHUFFLE_METHODS:
        raise ValueError(f"unknown shuffle {shuffle!r}; use 'disk' (local machine) or 'tasks' (distributed)")
    return shuffle


def groupby(bag: Bag, grouper: Any, shuffle: str | None = None, npartitions: int | None = None,
            max_branch: int | None = None) -> Bag:
    """``(key, [elements])`` pairs for each distinct ``grouper(x)``, in ``npartitions`` partitions.

    Elements keep their input order within a group. See the module docstring for ``shuffle``.
    """
    method = choose_shuffle(shuffle)
    if npartitions is None:
        npartitions = bag.npartitions
    if not isinstance(npartitions, int) or npartitions < 1:
        raise ValueError(f"groupby: npartitions must be a positive integer, not {npartitions!r}")
    keyfunc = chunk.getter(grouper)
    if method == "disk":
        return _groupby_disk(bag, keyfunc, npartitions)
    if max_branch is None:
        max_branch = config.get("bag.max-branch", 32)
    if not isinstance(max_branch, int) or max_branch < 2:
        raise ValueError(f"groupby: max_branch must be an integer >= 2, not {max_branch!r}")
    return _groupby_tasks(bag, keyfunc, npartitions, max_branch)


# -- per-partition steps --------------------------------------------------------------------------

def group_partition(seq: Any, grouper: Any, partition: int) -> dict:
    """``{key: [elements]}`` for one partition, in element order."""
    groups: dict = {}
    for x in seq:
        try:
            k = grouper(x)
        except Exception as e:
            chunk.annotate(e, grouper, x, partition)
            raise
        bucket = groups.get(k)
        if bucket is None:
            groups[k] = [x]
        else:
            bucket.append(x)
    return groups


def merge_groups(groups: dict, key: Any, values: list) -> None:
    """Append ``values`` to the group ``key`` of ``groups`` (in place)."""
    existing = groups.get(key)
    if existing is None:
        groups[key] = values
    else:
        existing.extend(values)


# -- disk -----------------------------------------------------------------------------------------

class SpillDirectory(str):
    """The path of a shuffle's spill directory, removed (with anything left in it) when the last
    graph referring to it is garbage-collected, or at exit, in the process that made it.

    Pickles as a plain string, so worker processes never remove it themselves.
    """

    def __new__(cls, path: str) -> "SpillDirectory":
        self = super().__new__(cls, path)
        weakref.finalize(self, _remove_tree, str(path), os.getpid())
        return self

    def __reduce__(self) -> tuple:
        return (str, (str(self),))


def _remove_tree(path: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def _spill_path(directory: str, bucket: int, partition: int, run: str) -> str:
    return os.path.join(directory, f"{bucket}-{partition}-{run}.pkl")


def spill_partition(seq: Any, grouper: Any, nbuckets: int, directory: str, partition: int) -> str:
    """Group one input partition and write each bucket's groups to its own file.

    Returns the run tag in the names of the files written. Each execution of the task draws a new
    tag, so two computations of the same graph at once (or a retried task) never share a file:
    the readers open exactly the files the barrier tells them about.
    """
    buckets: dict = {}
    for k, values in group_partition(seq, grouper, partition).items():
        buckets.setdefault(stable_hash(k) % nbuckets, []).append((k, values))
    run = uuid.uuid4().hex[:12]
    for bucket, items in buckets.items():
        _write_pickle(_spill_path(directory, bucket, partition, run), items)
    return run


def _write_pickle(path: str, items: list) -> None:
    for attempt in range(3):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, "wb") as f:
                pickle.dump(items, f, protocol=pickle.HIGHEST_PROTOCOL)
            return
        except FileNotFoundError:
            # the last reader of a concurrent run of this graph removed the directory meanwhile
            if attempt == 2:
                raise


def spills_done(runs: list) -> list:
    """The barrier between writing and reading: every input partition's run tag, in input order."""
    return list(runs)


def collect_bucket(directory: str, bucket: int, runs: list) -> list:
    """Read, merge and delete the files of one bucket: ``[(key, [elements]), ...]``."""
    groups: dict = {}
    done = []
    for partition, run in enumerate(runs):
        path = _spill_path(directory, bucket, partition, run)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            continue  # that input had nothing for this bucket
        with f:
            items = pickle.load(f)
        for k, values in items:
            merge_groups(groups, k, values)
        done.append(path)
    for path in done:
        os.remove(path)
    try:
        os.rmdir(directory)  # succeeds for the last reader only
    except OSError:
        pass
    return list(groups.items())


def _groupby_disk(bag: Bag, grouper: Any, npartitions: int) -> Bag:
    token = tokenize(bag, grouper, npartitions, "disk")
    root = config.get("temporary-directory", None) or tempfile.gettempdir()
    directory = SpillDirectory(os.path.join(root, f"lazyarr-shuffle-{token[:12]}-{uuid.uuid4().hex[:8]}"))
    spill = f"groupby-spill-{token}"
    barrier = (f"groupby-barrier-{token}", 0)
    name = f"groupby-{funcname(grouper)}-{token}"
    layer: dict = {
        (spill, i): (spill_partition, (bag.name, i), grouper, npartitions, directory, i)
        for i in range(bag.npartitions)
    }
    layer[barrier] = (spills_done, [(spill, i) for i in range(bag.npartitions)])
    for j in range(npartitions):
        layer[(name, j)] = (collect_bucket, directory, j, barrier)
    dsk = dict(bag.__lazyarr_graph__())
    dsk.update(layer)
    return Bag(dsk, name, npartitions)


# -- tasks ----------------------------------------------------------------------------------------

def prepare_partition(seq: Any, grouper: Any, nbuckets: int, partition: int) -> list:
    """``(bucket, key, partition, [elements])`` for each group of one input partition."""
    return [
        (stable_hash(k) % nbuckets, k, partition, values)
        for k, values in group_partition(seq, grouper, partition).items()
    ]


def split_by_digit(items: list, k: int, digit: int) -> list:
    """``k`` lists of ``items``, by digit ``digit`` (base ``k``) of each item's bucket."""
    out: list = [[] for _ in range(k)]
    div = k ** digit
    for item in items:
        out[(item[0] // div) % k].append(item)
    return out


def concat_lists(parts: list) -> list:
    """The lists in ``parts`` concatenated."""
    out: list = []
    for part in parts:
        out.extend(part)
    return out


def finish_groups(items: list) -> list:
    """Merge the pieces of each group, in input-partition order: ``[(key, [elements]), ...]``."""
    pieces: dict = {}
    for _, k, partition, values in items:
        pieces.setdefault(k, []).append((partition, values))
    out = []
    for k, parts in pieces.items():
        parts.sort(key=lambda p: p[0])
        merged: list = []
        for _, values in parts:
            merged.extend(values)
        out.append((k, merged))
    return out


def _stage_plan(slots: int, max_branch: int) -> tuple[int, int]:
    """``(k, stages)`` with ``k <= max_branch`` and ``k ** stages >= slots``."""
    if slots <= max_branch:
        return max(slots, 1), 1
    stages = 1
    while max_branch ** stages < slots:
        stages += 1
    k = 2
    while k ** stages < slots:
        k += 1
    return k, stages


def _digit(p: int, d: int, k: int) -> int:
    return (p // k ** d) % k


def _with_digit(p: int, d: int, value: int, k: int) -> int:
    return p + (value - _digit(p, d, k)) * k ** d


def _groupby_tasks(bag: Bag, grouper: Any, npartitions: int, max_branch: int) -> Bag:
    token = tokenize(bag, grouper, npartitions, max_branch, "tasks")
    nin = bag.npartitions
    k, stages = _stage_plan(max(nin, npartitions), max_branch)
    positions = k ** stages
    prep = f"groupby-prepare-{token}"
    group = f"groupby-group-{token}"
    split = f"groupby-split-{token}"
    join = f"groupby-join-{token}"
    name = f"groupby-{funcname(grouper)}-{token}"
    layer: dict = {(prep, i): (prepare_partition, (bag.name, i), grouper, npartitions, i) for i in range(nin)}

    def source(p: int) -> Any:
        return (prep, p) if p < nin else (list,)

    for stage in range(1, stages + 1):
        digit = stage - 1
        for p in range(positions):
            incoming = source(p) if stage == 1 else (join, stage - 1, p)
            layer[(group, stage, p)] = (split_by_digit, incoming, k, digit)
            for j in range(k):
                layer[(split, stage, j, p)] = (getitem, (group, stage, p), j)
        for p in range(positions):
            mine = _digit(p, digit, k)
            layer[(join, stage, p)] = (
                concat_lists,
                [(split, stage, mine, _with_digit(p, digit, j, k)) for j in range(k)],
            )
    for b in range(npartitions):
        layer[(name, b)] = (finish_groups, (join, stages, b))
    dsk = dict(bag.__lazyarr_graph__())
    dsk.update(layer)
    return Bag(dsk, name, npartitions)
