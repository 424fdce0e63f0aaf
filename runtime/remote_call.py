"""Calls outside the task system: ``client.run`` on workers (or their nannies), ``client.upload_file``
and the opt-in ``client.run_on_scheduler``.

A call is ``(function, args, kwargs)`` pickled by the client (:func:`pack_call`); the scheduler
forwards those bytes unopened to each target, which runs it (:func:`run_call`) and answers with
``(ok, pickled result or (exception, traceback))``. The client turns the answers into
``{worker address: result}`` (:func:`unpack_results`). A function that takes a keyword named
like one of the target's context names (``lazyarr_worker`` / ``dask_worker`` on a worker or
nanny, ``lazyarr_scheduler`` / ``dask_scheduler`` on the scheduler) gets the object running it,
as Dask passes ``dask_worker``.

Targets run each call in a thread of its own (:class:`CallThreads`), never in their I/O thread:
a slow call must not stop heartbeats or the serving of data.

>>> ok, result = run_call(pack_call(divmod, (7, 2), {}), {})
>>> ok, protocol.deserialize(result)
(True, (3, 1))
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import threading
import traceback
import zipfile
from typing import Any, Callable

from lazyarr.utils import funcname

from . import protocol
from .errors import SerializationError
from .futures import remote_exception

__all__ = ["pack_call", "run_call", "unpack_results", "accepts_keyword", "CallThreads", "ON_ERROR",
           "import_file", "UPLOAD_SUFFIXES"]

logger = logging.getLogger("runtime.remote_call")

#: What ``client.run(..., on_error=)`` may do with a failed call.
ON_ERROR = ("raise", "return", "ignore")
#: The kinds of file ``client.upload_file`` sends.
UPLOAD_SUFFIXES = (".py", ".zip", ".egg")
#: Workers of one process (``LocalCluster(processes=False)``) share sys.path and sys.modules.
_import_lock = threading.Lock()


def accepts_keyword(function: Callable, name: str) -> bool:
    """Does ``function`` declare a parameter ``name`` that can be passed by keyword?

    >>> accepts_keyword(lambda x, dask_worker=None: x, 'dask_worker'), accepts_keyword(len, 'dask_worker')
    (True, False)
    """
    try:
        parameter = inspect.signature(function).parameters.get(name)
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return parameter is not None and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                        inspect.Parameter.KEYWORD_ONLY)


def pack_call(function: Callable, args: tuple, kwargs: dict) -> Any:
    """``(function, args, kwargs)`` pickled for the wire; :class:`SerializationError` naming the
    function if it (or an argument) cannot be pickled, before anything is sent."""
    if not callable(function):
        raise TypeError(f"the first argument must be a function, not {type(function).__name__}")
    try:
        return protocol.serialize((function, tuple(args), dict(kwargs)))
    except SerializationError as e:
        raise SerializationError(f"cannot send {funcname(function)} to run on the cluster: {e}") from e


def run_call(payload: Any, context: dict) -> tuple[bool, Any]:
    """Unpickle and run a call; ``(True, pickled result)`` or ``(False, pickled (exception, traceback))``.

    ``context`` maps keyword names to objects passed to a function that declares them. A
    coroutine function is run to completion (as Dask awaits ``async def`` functions).
    """
    try:
        function, args, kwargs = protocol.deserialize(payload)
        extra = {name: value for name, value in context.items() if accepts_keyword(function, name)}
        result = function(*args, **{**kwargs, **extra})
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
    except BaseException as e:  # a call must never kill the thread running it
        return False, protocol.exception_payload(e, traceback.format_exc())
    try:
        return True, protocol.serialize(result)
    except SerializationError as e:
        return False, protocol.exception_payload(SerializationError(
            f"the result of {funcname(function)} cannot be pickled to be sent back: {e}"), "")


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def unpack_results(results: Any, on_error: str, what: str = "the call") -> dict:
    """``{worker address: value}`` from the answers ``[[address, ok, payload], ...]`` of one call.

    ``on_error``: ``'raise'`` the first failure's exception (its remote traceback as
    ``__cause__``), ``'return'`` it as that worker's value, or ``'ignore'`` (leave the worker out).

    >>> ok = protocol.serialize(1)
    >>> bad = protocol.exception_payload(ZeroDivisionError('x'), '')
    >>> unpack_results([['w1', True, ok], ['w2', False, bad]], 'ignore')
    {'w1': 1}
    """
    out: dict = {}
    for address, ok, payload in results:
        if ok:
            out[address] = protocol.deserialize(payload)
            continue
        if on_error == "ignore":
            continue
        exc = remote_exception(payload, f"{what} on {address}")
        if on_error == "raise":
            raise exc
        out[address] = exc
    return out


class CallThreads:
    """Runs calls in threads of their own and joins them at :meth:`close`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._threads: set = set()
        self._lock = threading.Lock()

    def start(self, target: Callable[[], Any]) -> None:
        """Run ``target()`` in a new thread."""
        thread = threading.Thread(target=self._run, args=(target,), name=f"{self.name}-call", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, target: Callable[[], Any]) -> None:
        try:
            target()
        except Exception:
            logger.exception("%s: a call failed", self.name)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def close(self, timeout: float = 10.0) -> list[str]:
        """Wait up to ``timeout`` seconds for the calls still running; names of those that are stuck."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return [t.name for t in threads if t.is_alive()]


def import_file(path: str) -> list:
    """Make an uploaded file importable and import what it holds (``client.upload_file``).

    A ``.py`` file's directory goes on ``sys.path`` and the module is imported (reloaded if it
    was imported before, so a new version replaces the old one). A ``.zip`` or ``.egg`` goes on
    ``sys.path`` itself and each top-level module or package in it is imported. Returns the modules.
    """
    name, suffix = os.path.splitext(os.path.basename(path))
    if suffix == ".py":
        entry, names = os.path.dirname(path), [name]
    elif suffix in (".zip", ".egg"):
        entry, names = path, _top_level_names(path)
    else:
        raise ValueError(f"cannot import {path!r}: only {', '.join(UPLOAD_SUFFIXES)} files can be uploaded")
    with _import_lock:
        return _import_names(path, suffix, entry, names)


def _import_names(path: str, suffix: str, entry: str, names: list[str]) -> list:
    if entry not in sys.path:
        sys.path.insert(0, entry)
    if suffix == ".py":
        # a new version of the same size within the same second would pass for the cached old one
        with contextlib.suppress(OSError):
            os.remove(importlib.util.cache_from_source(path))
    importlib.invalidate_caches()
    modules = []
    for module_name in names:
        old = sys.modules.get(module_name)
        if old is not None and suffix != ".py":
            # a package from an earlier archive of the same name: import it afresh from this one
            for loaded in [m for m in sys.modules if m == module_name or m.startswith(module_name + ".")]:
                del sys.modules[loaded]
            old = None
        modules.append(importlib.reload(old) if old is not None else importlib.import_module(module_name))
    return modules


def _top_level_names(path: str) -> list[str]:
    """Modules (``x.py``) and packages (``x/__init__.py``) at the root of a zip archive."""
    names = []
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            parts = member.split("/")
            if len(parts) == 1 and parts[0].endswith(".py"):
                names.append(parts[0][:-3])
            elif len(parts) == 2 and parts[1] == "__init__.py":
                names.append(parts[0])
    return sorted(set(names))
