"""Futures: handles on keys computed (or held) on the cluster, and ``as_completed`` / ``wait``.

A :class:`Future` refers to one key for one client. All futures of a client for the same key share
one :class:`FutureState`; the client counts them, and when the last one is garbage collected (or
cancelled) it tells the scheduler it no longer wants the key, so the data is freed.

Futures pickle as their key: unpickled inside ``client.get_collection`` (or wherever a client is
current) they become futures of that client.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import namedtuple
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Callable

from .errors import CancelledError, ClientClosedError, RemoteTraceback

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

__all__ = ["Future", "FutureState", "as_completed", "wait", "DoneAndNotDone", "remote_exception"]

PENDING, FINISHED, ERROR, CANCELLED, LOST = "pending", "finished", "error", "cancelled", "lost"

_local = threading.local()


class FutureState:
    """The status of one key as one client sees it (shared by that client's futures of the key)."""

    __slots__ = ("key", "status", "event", "payload", "blame", "callbacks", "_exception")

    def __init__(self, key: Any):
        self.key = key
        self.status = PENDING
        self.event = threading.Event()
        self.payload: Any = None       # pickled (exception, traceback) when erred
        self.blame: Any = None         # key of the task that raised
        self.callbacks: list = []
        self._exception: BaseException | None = None

    def finish(self) -> None:
        self.status = FINISHED
        self.event.set()

    def fail(self, payload: Any = None, blame: Any = None, exception: BaseException | None = None) -> None:
        self.status = ERROR
        self.payload = payload
        self.blame = blame
        self._exception = exception
        self.event.set()

    def cancel(self) -> None:
        self.status = CANCELLED
        self.event.set()

    def lose(self) -> None:
        self.status = LOST
        self.event.clear()

    def exception(self) -> BaseException:
        """The exception, unpickled once, with the worker's traceback as its ``__cause__``."""
        if self._exception is None:
            exc = remote_exception(self.payload, f"task {self.blame!r}")
            if self.blame is not None and self.blame != self.key:
                _add_note(exc, f"(raised by task {self.blame!r}, on which {self.key!r} depends)")
            self._exception = exc
        return self._exception


def remote_exception(payload: Any, what: str) -> BaseException:
    """The exception in a pickled ``(exception, traceback)`` from a worker (a failed task or
    ``client.run`` call: ``what`` names it), the worker's traceback as its ``__cause__``.

    >>> from runtime.protocol import exception_payload
    >>> exc = remote_exception(exception_payload(KeyError('k'), 'Traceback ...'), 'task x')
    >>> type(exc).__name__, type(exc.__cause__).__name__
    ('KeyError', 'RemoteTraceback')
    """
    from .protocol import deserialize

    try:
        exc, tb = deserialize(payload)
    except Exception as e:
        exc, tb = RuntimeError(f"{what} failed, but its exception could not be unpickled here: "
                               f"{type(e).__name__}: {e}"), ""
    if not isinstance(exc, BaseException):
        exc = RuntimeError(repr(exc))
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
    return exc


def _add_note(exc: BaseException, note: str) -> None:
    try:
        exc.add_note(note)
    except AttributeError:  # Python < 3.11
        pass


class Future:
    """A remote computation (or scattered data) under ``key``, owned by ``client``.

    >>> # fut = client.submit(add, 1, 2); fut.result()  ->  3
    """

    __slots__ = ("key", "client", "_state", "__weakref__")

    def __init__(self, key: Any, client: "Client"):
        self.key = key
        self.client = client
        self._state: FutureState = client._ref(key)

    def __del__(self) -> None:
        try:
            self.client._unref(self.key)
        except Exception:
            pass  # interpreter shutdown

    @property
    def status(self) -> str:
        """``'pending'``, ``'finished'``, ``'error'``, ``'cancelled'`` or ``'lost'``."""
        return self._state.status

    def done(self) -> bool:
        """Has it finished, failed or been cancelled?"""
        return self._state.event.is_set()

    def cancelled(self) -> bool:
        """Was it cancelled?"""
        return self._state.status == CANCELLED

    def _wait(self, timeout: float | None) -> None:
        if not self._state.event.wait(timeout):
            raise TimeoutError(f"future {self.key!r} was not done within {timeout} s")

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the result and bring it here; re-raises the task's exception if it failed."""
        self._wait(timeout)
        state = self._state
        if state.status == ERROR:
            raise state.exception()
        if state.status == CANCELLED:
            raise CancelledError(f"future {self.key!r} was cancelled")
        return self.client._gather_keys([self.key], timeout=timeout)[self.key]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception the task raised, or None if it succeeded."""
        self._wait(timeout)
        if self._state.status == ERROR:
            return self._state.exception()
        if self._state.status == CANCELLED:
            raise CancelledError(f"future {self.key!r} was cancelled")
        return None

    def cancel(self) -> bool:
        """Stop wanting this key (for every future of this client on it); True if cancelled."""
        return self.client.cancel([self])

    def add_done_callback(self, fn: Callable[["Future"], Any]) -> None:
        """Call ``fn(future)`` when the future is done (at once if it already is).

        Callbacks run in the client's I/O thread: keep them short.
        """
        state = self._state
        with self.client._lock:
            if not state.event.is_set():
                state.callbacks.append((fn, self))
                return
        _run_callback(fn, self)

    def __lazyarr_tokenize__(self) -> Any:
        return ("Future", self.key)

    def __reduce__(self) -> Any:
        collecting = getattr(_local, "collecting", None)
        if collecting is not None:
            collecting.append(self.key)
        return (_restore_future, (self.key,))

    def __repr__(self) -> str:
        return f"<Future: {self.status}, key: {self.key!r}>"

    def __hash__(self) -> int:
        return hash(("Future", self.key))

    def __eq__(self, other: Any) -> bool:
        return type(other) is Future and other.key == self.key and other.client is self.client


def _run_callback(fn: Callable, future: Future) -> None:
    try:
        fn(future)
    except Exception:
        import logging

        logging.getLogger("runtime.client").exception("a future's done callback raised")


def _restore_future(key: Any) -> Future:
    """Unpickle a future for the client that is unpickling (``get_collection``) or the default."""
    client = getattr(_local, "client", None)
    if client is None:
        from lazyarr import config

        from .client import Client

        current = config.get("scheduler", None)
        if isinstance(current, Client) and not current.closed:
            client = current
    if client is None:
        raise ClientClosedError(f"a Future (key {key!r}) was unpickled where no client is active; "
                                f"use client.get_collection or open a Client first")
    return Future(key, client)


class _Unpickling:
    """Context: futures unpickled in this thread belong to ``client``."""

    def __init__(self, client: "Client"):
        self.client = client

    def __enter__(self) -> None:
        self.previous = getattr(_local, "client", None)
        _local.client = self.client

    def __exit__(self, *exc: Any) -> None:
        _local.client = self.previous


class _Collecting:
    """Context: the keys of futures pickled in this thread are appended to ``keys``."""

    def __init__(self) -> None:
        self.keys: list = []

    def __enter__(self) -> list:
        self.previous = getattr(_local, "collecting", None)
        _local.collecting = self.keys
        return self.keys

    def __exit__(self, *exc: Any) -> None:
        _local.collecting = self.previous


def futures_in(obj: Any) -> list:
    """The futures inside nested lists, tuples, sets and dict values (in order)."""
    found: list = []
    stack = [obj]
    while stack:
        x = stack.pop()
        if type(x) is Future:
            found.append(x)
        elif type(x) in (list, tuple, set, frozenset):
            stack.extend(reversed(list(x)))
        elif type(x) is dict:
            stack.extend(reversed(list(x.values())))
    return found


class as_completed(Iterator):
    """Iterate over futures in the order they finish (failed and cancelled ones included).

    ``with_results=True`` yields ``(future, result)`` pairs (the exception object for failures).
    More futures may be added while iterating with :meth:`add`.
    """

    def __init__(self, futures: Iterable[Future] = (), with_results: bool = False):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self.with_results = with_results
        for f in futures:
            self.add(f)

    def add(self, future: Future) -> None:
        """Also yield ``future`` when it is done."""
        if type(future) is not Future:
            raise TypeError(f"as_completed expects futures, not {type(future).__name__}")
        with self._lock:
            self._pending += 1
        future.add_done_callback(self._queue.put)

    def count(self) -> int:
        """How many futures have not been yielded yet."""
        return self._pending

    def is_empty(self) -> bool:
        """Have all futures been yielded?"""
        return self._pending == 0

    def __iter__(self) -> "as_completed":
        return self

    def __next__(self) -> Any:
        with self._lock:
            if self._pending == 0:
                raise StopIteration
        future = self._queue.get()
        with self._lock:
            self._pending -= 1
        if not self.with_results:
            return future
        if future.status == ERROR:
            return future, future.exception()
        if future.status == CANCELLED:
            return future, CancelledError(future.key)
        return future, future.result()


DoneAndNotDone = namedtuple("DoneAndNotDone", ["done", "not_done"])

FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED = "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"


def wait(fs: Any, timeout: float | None = None, return_when: str = ALL_COMPLETED) -> DoneAndNotDone:
    """Wait until the futures are done (``return_when``: ``'ALL_COMPLETED'``,
    ``'FIRST_COMPLETED'``, ``'FIRST_EXCEPTION'``); raises ``TimeoutError`` if the condition
    is not met within ``timeout`` seconds. Returns ``(done, not_done)`` sets.
    """
    futures = [fs] if type(fs) is Future else futures_in(fs)
    if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
        raise ValueError(f"return_when must be one of ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, "
                         f"not {return_when!r}")
    deadline = None if timeout is None else time.monotonic() + timeout
    if return_when == ALL_COMPLETED:
        for f in futures:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not f._state.event.wait(left):
                raise TimeoutError(f"{sum(not g.done() for g in futures)} of {len(futures)} futures "
                                   f"not done within {timeout} s")
    else:
        done_event = threading.Event()

        def check(_: Any = None) -> None:
            if return_when == FIRST_COMPLETED and any(f.done() for f in futures):
                done_event.set()
            if return_when == FIRST_EXCEPTION and (any(f.status == ERROR for f in futures)
                                                    or all(f.done() for f in futures)):
                done_event.set()

        for f in futures:
            f.add_done_callback(check)
        check()
        if not done_event.wait(timeout) and futures:
            raise TimeoutError(f"wait({return_when}) not satisfied within {timeout} s")
    done = {f for f in futures if f.done()}
    return DoneAndNotDone(done, {f for f in futures if f not in done})
