"""The scheduler's record of what ran where and when: task stream, per-prefix totals, transfers,
worker memory. Feeds the dashboard, ``performance_report`` and ``/metrics``.

Workers attach to each batched ``finished`` report the start and stop time (wall clock) and the
executor thread of every task they ran. The scheduler's loop only appends the raw batch to a
deque (:meth:`TaskStream.finished`, O(1) per batch); the per-event work -- string keys, task
prefixes (:func:`lazyarr.utils.key_split`), counters -- happens lazily, when someone reads
(:meth:`TaskStream.aggregate`), or when more than ``maxlen`` events have piled up unread. So the
hot path pays almost nothing when nobody is looking.

>>> ts = TaskStream(maxlen=10)
>>> ts.finished('tcp://w:1', (('inc-1f2e3d4c5b6a7980', 0),), (8,), starts=(1.0,), stops=(1.5,), threads=(7,))
>>> ts.aggregate()
>>> ts.count, ts.prefix_done['inc'], ts.prefix_seconds['inc']
(1, 1, 0.5)
>>> ts.since(0)['events']
[['tcp://w:1', 0, 1.0, 1.5, 'inc', "('inc-1f2e3d4c5b6a7980', 0)"]]
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from itertools import islice
from typing import Any, Sequence

from lazyarr.utils import key_split

__all__ = ["TaskStream", "prefix_of", "key_str", "prefix_states"]

_prefix_cache: dict = {}


def prefix_of(key: Any) -> str:
    """``key_split(key)``, cached by the key's name (every block of an array shares it)."""
    name = key[0] if type(key) is tuple and key else key
    if type(name) is str:
        prefix = _prefix_cache.get(name)
        if prefix is None:
            if len(_prefix_cache) > 100_000:
                _prefix_cache.clear()
            prefix = _prefix_cache[name] = key_split(name)
        return prefix
    return key_split(key)


def key_str(key: Any) -> str:
    """A key as the dashboard shows it."""
    return key if type(key) is str else str(key)


class TaskStream:
    """Bounded history of finished tasks plus running totals (see the module docstring).

    Thread safety: :meth:`finished`, :meth:`transferred` and :meth:`heartbeat` are called by
    the scheduler's thread and never block on readers (deque appends); everything else may be
    called from any thread (the dashboard's), aggregation being serialised by a lock.
    """

    def __init__(self, maxlen: int = 100_000, series_maxlen: int = 20_000):
        self.maxlen = maxlen
        self._pending: deque = deque()   # raw batches from workers, not yet aggregated
        self._npending = 0
        self._lock = threading.Lock()
        self.events: deque = deque(maxlen=maxlen)   # (worker, thread row, start, stop, prefix, key)
        self.count = 0                                # events ever aggregated
        self.prefix_done: dict = defaultdict(int)     # completions per prefix (cumulative)
        self.prefix_seconds: dict = defaultdict(float)  # execution seconds per prefix
        self.prefix_nbytes: dict = defaultdict(int)   # result bytes per prefix
        self.transfer_bytes = 0                       # bytes received by workers (fetches, scatters)
        self.transfer_count = 0
        self.transfer_by_worker: dict = defaultdict(int)
        self.transfers: deque = deque(maxlen=series_maxlen)  # (time, worker, nbytes)
        self.memory: deque = deque(maxlen=series_maxlen)     # (time, worker, rss bytes)
        self._threads: dict = {}                      # (worker, thread ident) -> small index
        self.started = time.time()

    # ------------------------------------------------------------------ scheduler thread (cheap)

    def finished(self, worker: str, keys: Sequence, nbytes: Sequence, starts: Sequence | None = None,
                 stops: Sequence | None = None, threads: Sequence | None = None) -> None:
        """A worker reported finished tasks (O(1): the batch is kept as is)."""
        n = len(keys)
        if (type(starts) is not tuple or type(stops) is not tuple or len(starts) != n or len(stops) != n
                or (threads is not None and (type(threads) is not tuple or len(threads) != n))):
            return  # an older worker, or a malformed report: nothing to draw
        self._pending.append((worker, keys, nbytes, starts, stops, threads))
        self._npending += len(keys)
        if self._npending > self.maxlen >> 4:
            # nobody has been reading: keep memory bounded (a raw batch holds a task's key, times
            # and sizes as separate objects; 100,000 of them cost the scheduler ~25 MB at peak)
            self.aggregate()

    def transferred(self, worker: str, nbytes: Sequence) -> None:
        """``worker`` received copies of data (from a peer, or scattered by a client)."""
        total = sum(nbytes)
        self.transfers.append((time.time(), worker, total))
        self.transfer_bytes += total
        self.transfer_count += len(nbytes)
        self.transfer_by_worker[worker] += total

    def heartbeat(self, worker: str, metrics: Any) -> None:
        """A worker's heartbeat: sample its memory."""
        if isinstance(metrics, dict) and isinstance(metrics.get("memory"), int):
            self.memory.append((time.time(), worker, metrics["memory"]))

    # ------------------------------------------------------------------ readers

    def aggregate(self) -> None:
        """Turn the raw batches into events and totals."""
        with self._lock:
            pending = self._pending
            events = self.events
            done = self.prefix_done
            seconds = self.prefix_seconds
            sizes = self.prefix_nbytes
            n = 0
            while pending:
                try:
                    worker, keys, nbytes, starts, stops, tids = pending.popleft()
                except IndexError:
                    break
                slots: dict = {}  # thread ident -> row, for this batch
                for i, key in enumerate(keys):
                    start = starts[i]
                    stop = stops[i]
                    if type(start) is not float or type(stop) is not float:
                        continue  # not executed here (a result it already held), or garbage
                    tid = tids[i] if tids is not None else 0
                    slot = slots.get(tid)
                    if slot is None:
                        slot = slots[tid] = self._slot(worker, tid)
                    prefix = prefix_of(key)
                    done[prefix] += 1
                    seconds[prefix] += stop - start
                    nb = nbytes[i]
                    if type(nb) is int:
                        sizes[prefix] += nb
                    events.append((worker, slot, start, stop, prefix, key))  # key as str only when read
                    n += 1
            self.count += n
            self._npending = 0

    def _slot(self, worker: str, tid: Any) -> int:
        """The row of thread ``tid`` of ``worker``: 0, 1, ... in order of appearance."""
        if type(tid) is not int:
            tid = 0
        slot = self._threads.get((worker, tid))
        if slot is None:
            slot = self._threads[(worker, tid)] = sum(1 for w, _ in self._threads if w == worker)
        return slot

    def since(self, since: int = 0, limit: int | None = None) -> dict:
        """Events with index >= ``since`` (at most the ``limit`` most recent), and ``next``, the
        index to ask from next time. ``dropped`` counts events skipped (too old or over the limit)."""
        self.aggregate()
        with self._lock:
            count = self.count
            available = min(len(self.events), max(0, count - max(0, int(since))))
            take = available if limit is None else min(available, max(0, int(limit)))
            recent = list(islice(reversed(self.events), take))
        recent.reverse()
        recent = [[w, slot, start, stop, prefix, key_str(key)] for w, slot, start, stop, prefix, key in recent]
        return {"events": recent, "next": count, "dropped": max(0, count - max(0, int(since))) - take}

    def prefixes(self) -> dict:
        """Per prefix: completions, execution seconds, result bytes."""
        self.aggregate()
        with self._lock:
            return {p: {"done": n, "seconds": self.prefix_seconds[p], "nbytes": self.prefix_nbytes[p]}
                    for p, n in self.prefix_done.items()}

    def memory_since(self, t0: float = 0.0) -> list:
        """``(time, worker, rss)`` samples taken at or after ``t0``."""
        return [s for s in list(self.memory) if s[0] >= t0]

    def transfers_since(self, t0: float = 0.0) -> list:
        """``(time, worker, nbytes)`` transfers seen at or after ``t0``."""
        return [s for s in list(self.transfers) if s[0] >= t0]


def prefix_states(tasks: dict) -> dict:
    """Per task prefix, how many tasks of the scheduler's ``tasks`` are in each state:
    ``{prefix: {'waiting': .., 'processing': .., 'memory': .., 'erred': .., 'released': ..}}``
    (``waiting`` includes ready). Safe to call from another thread (works on a snapshot)."""
    for _ in range(5):
        try:
            snapshot = list(tasks.values())
            break
        except RuntimeError:  # resized meanwhile
            continue
    else:
        snapshot = []
    counts: dict = {}
    for ts in snapshot:
        prefix = prefix_of(ts.key)
        c = counts.get(prefix)
        if c is None:
            c = counts[prefix] = {"waiting": 0, "processing": 0, "memory": 0, "erred": 0, "released": 0}
        st = ts.state
        if st == "ready":
            st = "waiting"
        if st in c:
            c[st] += 1
    return counts
