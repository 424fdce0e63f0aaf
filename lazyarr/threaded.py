"""The ``'threads'`` scheduler: the shared engine of :mod:`lazyarr.local` on a thread pool.

The default scheduler of arrays, dataframes and delayed values. Threads share memory, so batches
read their inputs from, and leave their results in, the engine's cache; nothing is copied.
Numeric code that releases the GIL (numpy, pandas) runs in parallel; pure-Python tasks take
turns, and the engine's batching keeps the hand-off cost to a few per cent.

Pools are reused across calls: one pool per calling thread and size (a computation started
from inside a task, i.e. from a pool thread, gets its own pool instead of waiting on the busy
one). This module owns them: pools of threads that have ended are closed on the next call, all
of them at interpreter exit, and :func:`close_pools` closes them on demand. The pool of a call
that is interrupted (``KeyboardInterrupt``) is discarded at once; its threads end after their
current task.
"""
from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from . import config
from .local import get_async

__all__ = ["get", "default_num_workers", "close_pools", "pools", "PoolCache"]

class PoolCache:
    """Executors kept for reuse, one per calling thread and size, owned (and closed) by the cache.

    A computation started from inside a task runs in a pool thread, so it gets a pool of its
    own rather than queueing behind the busy one. Pools of threads that have ended, and broken
    pools, are dropped on the next :meth:`get`; :meth:`close` (also run at interpreter exit)
    shuts every pool down.
    """

    def __init__(self, make: Callable[[int], Executor], destroy: Callable[[Executor], None]):
        self._make = make
        self._destroy = destroy  # ends a pool at once, for discard() and broken pools
        self._pools: dict[tuple[threading.Thread, int], Executor] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    def get(self, num_workers: int) -> Executor:
        """The calling thread's pool of ``num_workers`` workers, made on first use."""
        me = threading.current_thread()
        idle, broken = [], []
        with self._lock:
            for key, pool in list(self._pools.items()):
                if getattr(pool, "_broken", False):
                    broken.append(self._pools.pop(key))
                elif not key[0].is_alive():
                    idle.append(self._pools.pop(key))
            pool = self._pools.get((me, num_workers))
            if pool is None:
                pool = self._pools[(me, num_workers)] = self._make(num_workers)
        for old in idle:
            old.shutdown(wait=False, cancel_futures=True)
        for old in broken:
            self._destroy(old)
        return pool

    def choose(self, pool: Any, num_workers: int | None) -> tuple[Any, int, bool]:
        """``(pool, num_workers, owned)`` for one ``get`` call: the caller's pool as is, else ours.

        ``num_workers`` defaults to the size of the caller's pool, else :func:`default_num_workers`.
        """
        if pool is not None:
            return pool, num_workers or _pool_size(pool) or default_num_workers(), False
        if num_workers is None:
            num_workers = default_num_workers()
        if num_workers < 1:
            raise ValueError(f"num_workers must be at least 1, not {num_workers}")
        return self.get(num_workers), num_workers, True

    def discard(self, pool: Executor) -> None:
        """Forget ``pool`` and end it at once (after an interrupt or a failure)."""
        with self._lock:
            for key, p in list(self._pools.items()):
                if p is pool:
                    del self._pools[key]
        self._destroy(pool)

    def close(self, wait: bool = True) -> None:
        """Shut down every pool (new ones are made when needed)."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=True)

    def __len__(self) -> int:
        return len(self._pools)


def default_num_workers() -> int:
    """Config ``num-workers`` if set, else the number of cores this process may use."""
    configured = config.get("num-workers", None)
    if configured:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: The thread pools of this module.
pools = PoolCache(
    lambda n: ThreadPoolExecutor(n, thread_name_prefix="lazyarr-threads"),
    # threads cannot be killed: stop taking work; they end after their current task
    lambda pool: pool.shutdown(wait=False, cancel_futures=True),
)


def close_pools(wait: bool = True) -> None:
    """Shut down every thread pool this module created (they are made again when needed)."""
    pools.close(wait)


def _call(fn: Callable, args: tuple, done: Callable) -> None:
    """Run ``fn(*args)`` in a pool thread and report its outcome; never lets an error escape."""
    try:
        outcome = fn(*args)
    except BaseException as exc:  # a failure of the engine's own code: report, don't hang
        outcome = exc
    done(outcome)


def _submitter(pool: Any) -> Callable:
    if hasattr(pool, "submit"):
        return lambda fn, args, done: pool.submit(_call, fn, args, done)
    if hasattr(pool, "apply_async"):  # multiprocessing.pool.ThreadPool
        return lambda fn, args, done: pool.apply_async(_call, (fn, args, done))
    raise TypeError(f"pool= must be a concurrent.futures.Executor or a ThreadPool, not {type(pool).__name__}")


def _pool_size(pool: Any) -> int | None:
    for attr in ("_max_workers", "_processes"):
        size = getattr(pool, attr, None)
        if isinstance(size, int) and size > 0:
            return size
    return None


def get(dsk: Mapping, keys: Any, num_workers: int | None = None, pool: Any = None, **kwargs: Any) -> Any:
    """Compute ``keys`` of ``dsk`` on a pool of threads.

    ``num_workers`` defaults to config ``num-workers``, else the number of cores. ``pool`` may be
    your own ``concurrent.futures.ThreadPoolExecutor`` (or ``multiprocessing.pool.ThreadPool``);
    it is used as is and never shut down here. ``keys`` is one key or nested lists of keys; the
    result has the same nesting, lists as tuples. ``callbacks=`` adds
    :class:`lazyarr.diagnostics.Callback` objects.

    >>> from operator import add
    >>> get({'x': 1, 'y': (add, 'x', 1)}, 'y')
    2
    """
    pool, num_workers, own = pools.choose(pool, num_workers)
    submit = _submitter(pool)

    def abort(exc: BaseException, in_flight: bool) -> None:
        if own and isinstance(exc, KeyboardInterrupt):
            pools.discard(pool)

    kwargs.setdefault("batch_seconds", 0.005)
    return get_async(submit, num_workers, dsk, keys, abort=abort, **kwargs)
