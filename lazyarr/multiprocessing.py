"""The ``'processes'`` scheduler: the shared engine of :mod:`lazyarr.local` on a process pool.

The default scheduler of bags, whose pure-Python tasks hold the GIL. Every batch of tasks is
serialized with cloudpickle (so lambdas and locally defined functions work) together with the
values it needs; the worker runs the batch exactly as the sync scheduler would and sends back
only the values needed later. Shipping a batch rather than a task amortises the pickling and
inter-process round trip over many small tasks, and a linear chain travels to one process whole.

Start method: ``forkserver`` where available (Linux, macOS), else ``spawn``. Plain ``fork`` is
not used by default: it copies a process that may have other threads (our own thread pools,
the runtime's sockets) in the middle of holding a lock, and the child can deadlock on it. The
forkserver is a clean single-threaded process with lazyarr preloaded, so forking workers from it
is both safe and fast. Config ``multiprocessing.context`` overrides the choice.

Pools are reused across calls (one per calling thread and size) and owned by this module: closed
at interpreter exit or by :func:`close_pools`. A pool whose computation fails or is interrupted
while batches run is terminated at once (its workers are killed), so nothing keeps running
after the error reaches you. A worker's exception is re-raised with its type, and the
worker-side traceback is attached as a note (a chained cause on Python 3.10).
"""
from __future__ import annotations

import multiprocessing as _mp
from multiprocessing import context as _mp_context
from multiprocessing import spawn as _mp_spawn
import pickle
import random
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import cloudpickle

from . import config
from .local import get_async
from .threaded import PoolCache

__all__ = ["get", "close_pools", "pools", "RemoteTraceback", "RemoteError", "WorkerDiedError"]



class RemoteTraceback(Exception):
    """The text of a traceback from a worker process (used as ``__cause__`` on Python 3.10)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class RemoteError(Exception):
    """Stands in for a worker's exception that could not be pickled back."""


class WorkerDiedError(RuntimeError):
    """A worker process ended abruptly (crash, ``os._exit``, killed) while running tasks."""


config.update_defaults({"multiprocessing": {"context": None}})


def _context() -> Any:
    """The multiprocessing context for new pools (config ``multiprocessing.context``)."""
    method = config.get("multiprocessing.context", None)
    available = _mp.get_all_start_methods()
    if method is None:
        method = "forkserver" if "forkserver" in available else "spawn"
    elif method not in available:
        raise ValueError(
            f"config multiprocessing.context={method!r} is not a start method of this platform; "
            f"use one of {', '.join(map(repr, available))}"
        )
    ctx = _without_main(_mp.get_context(method))
    if method == "forkserver":
        ctx.set_forkserver_preload(["lazyarr.multiprocessing"])
    return ctx


_launch_lock = threading.Lock()


def _preparation_data_without_main(name: str) -> dict:
    data = _original_preparation_data(name)
    data.pop("init_main_from_path", None)
    data.pop("init_main_from_name", None)
    return data


def _popen_without_main(base: type, process_obj: Any) -> Any:
    # The launch reads spawn.get_preparation_data at call time; the lock keeps the swap from
    # leaking into a concurrent launch elsewhere in this process.
    with _launch_lock:
        _mp_spawn.get_preparation_data = _preparation_data_without_main
        try:
            return base._Popen(process_obj)
        finally:
            _mp_spawn.get_preparation_data = _original_preparation_data


_original_preparation_data = _mp_spawn.get_preparation_data


class _SpawnProcess(_mp_context.SpawnProcess):
    _start_method = "spawn"

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _popen_without_main(_mp_context.SpawnProcess, process_obj)


class _SpawnContext(_mp_context.SpawnContext):
    Process = _SpawnProcess


if sys.platform != "win32":

    class _ForkServerProcess(_mp_context.ForkServerProcess):
        _start_method = "forkserver"

        @staticmethod
        def _Popen(process_obj: Any) -> Any:
            return _popen_without_main(_mp_context.ForkServerProcess, process_obj)

    class _ForkServerContext(_mp_context.ForkServerContext):
        Process = _ForkServerProcess


def _without_main(ctx: Any) -> Any:
    """``ctx`` whose new processes do not re-import the parent's ``__main__`` module.

    Spawned and forkserver children normally re-run the user's script (as ``__mp_main__``) so
    that functions defined there can be unpickled, which breaks every script that lacks an
    ``if __name__ == '__main__':`` guard. Our workers receive everything by cloudpickle (it pickles
    ``__main__`` functions by value), so they never need the script: the main-module entries are
    dropped from the data each child is prepared with. Fork children share the parent's memory and
    need nothing.
    """
    method = ctx.get_start_method()
    if method == "spawn":
        return _SpawnContext()
    if method == "forkserver":
        return _ForkServerContext()
    return ctx


def _initialize_worker() -> None:
    """Give each worker its own random state (forked workers would otherwise share one)."""
    random.seed()
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed()


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers and wait for them: nothing of it keeps running."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        try:
            proc.kill()
        except Exception:
            pass
    for proc in processes:
        proc.join(5)
    pool.shutdown(wait=True)


#: The process pools of this module.
pools = PoolCache(
    lambda n: ProcessPoolExecutor(n, mp_context=_context(), initializer=_initialize_worker),
    _terminate,
)


def close_pools() -> None:
    """Shut down every worker pool this module started (new ones are made when needed)."""
    pools.close()


# --------------------------------------------------------------------------------------------
# Deeply nested tasks
# --------------------------------------------------------------------------------------------

_DEEP = 200  # nesting beyond which pickle itself would recurse too deep


class _Flat:
    """A deeply nested computation as a flat postfix program, so pickle never recurses.

    ``ops`` holds, in post-order, ``(0, value)`` for a leaf, ``(1, func, nargs)`` for a task,
    ``(2, n)`` for a list and ``(3, keys)`` for a dict; :meth:`rebuild` replays them with a
    value stack.
    """

    __slots__ = ("ops",)

    def __init__(self, ops: list):
        self.ops = ops

    def __getstate__(self) -> list:
        return self.ops

    def __setstate__(self, ops: list) -> None:
        self.ops = ops

    @classmethod
    def encode(cls, task: Any) -> "_Flat":
        ops: list = []
        stack: list = [(task, False)]
        while stack:
            node, expanded = stack.pop()
            typ = type(node)
            if typ is tuple and node and callable(node[0]):
                if expanded:
                    ops.append((1, node[0], len(node) - 1))
                else:
                    stack.append((node, True))
                    stack.extend((arg, False) for arg in reversed(node[1:]))
            elif typ is list:
                if expanded:
                    ops.append((2, len(node)))
                else:
                    stack.append((node, True))
                    stack.extend((arg, False) for arg in reversed(node))
            elif typ is dict:
                if expanded:
                    ops.append((3, tuple(node)))
                else:
                    stack.append((node, True))
                    stack.extend((arg, False) for arg in reversed(list(node.values())))
            else:
                ops.append((0, node))
        return cls(ops)

    def rebuild(self) -> Any:
        values: list = []
        for op in self.ops:
            kind = op[0]
            if kind == 0:
                values.append(op[1])
                continue
            n = op[2] if kind == 1 else (op[1] if kind == 2 else len(op[1]))
            args = values[len(values) - n:] if n else []
            del values[len(values) - n:]
            if kind == 1:
                values.append((op[1], *args))
            elif kind == 2:
                values.append(args)
            else:
                values.append(dict(zip(op[1], args)))
        return values[0]


def _nesting_depth(task: Any, limit: int) -> int:
    """Depth of nested tasks/lists/dicts in ``task``, counting no further than ``limit``."""
    stack = [(task, 0)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        typ = type(node)
        if typ is tuple and node and callable(node[0]):
            stack.extend((arg, depth + 1) for arg in node[1:])
        elif typ is list:
            stack.extend((arg, depth + 1) for arg in node)
        elif typ is dict:
            stack.extend((arg, depth + 1) for arg in node.values())
    return deepest


def _flatten_deep_tasks(args: tuple) -> tuple:
    tasks = [(_Flat.encode(t) if _nesting_depth(t, _DEEP) > _DEEP else t) for t in args[1]]
    return (args[0], tasks) + tuple(args[2:])


def _short(obj: Any, limit: int = 160) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[: limit - 5] + " ...)"


# --------------------------------------------------------------------------------------------
# Worker side
# --------------------------------------------------------------------------------------------

def _remote(blob: bytes) -> bytes:
    """Run one pickled batch in a worker process; return its pickled outcome."""
    fn, args = pickle.loads(blob)
    tasks = args[1]
    for i, task in enumerate(tasks):
        if type(task) is _Flat:
            tasks[i] = task.rebuild()
    outcome = fn(*args)
    if outcome[0] == "error":
        _, pos, exc, _ = outcome
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            return cloudpickle.dumps(("error", pos, exc, text))
        except Exception:
            stand_in = RemoteError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
            return cloudpickle.dumps(("error", pos, stand_in, text))
    try:
        return cloudpickle.dumps(outcome)
    except Exception as err:
        keys, exports, values = args[0], args[4], outcome[2]
        for key, value in zip(exports, values):
            try:
                cloudpickle.dumps(value)
            except Exception as e:
                problem = TypeError(
                    f"the result of task {key!r}, a {type(value).__name__}, cannot be pickled "
                    f"to send it back from the worker process: {e}"
                )
                return cloudpickle.dumps(("error", keys.index(key), problem, None))
        problem = TypeError(f"the results of a batch cannot be pickled: {err}")
        return cloudpickle.dumps(("error", 0, problem, None))


# --------------------------------------------------------------------------------------------
# Calling side
# --------------------------------------------------------------------------------------------

def _pickling_error(args: tuple, err: Exception) -> TypeError:
    """A clear error naming the task (and the part of it) that cannot be pickled."""
    keys, tasks, _, data = args[0], args[1], args[2], args[3]
    for key, task in zip(keys, tasks):
        try:
            cloudpickle.dumps(task)
        except Exception as e:
            part = _unpicklable_part(task)
            return TypeError(
                f"task {_short(key)} cannot be sent to a worker process: {_short(part)} cannot be "
                f"pickled ({e})"
            )
    for key, value in data.items():
        try:
            cloudpickle.dumps(value)
        except Exception as e:
            return TypeError(
                f"the value of {_short(key)}, a {type(value).__name__}, cannot be sent to a worker "
                f"process: {e}"
            )
    return TypeError(f"a batch of tasks cannot be sent to a worker process: {err}")


def _unpicklable_part(obj: Any) -> Any:
    """The innermost element of a task (function, argument, ...) that fails to pickle."""
    while isinstance(obj, (tuple, list, dict, _Flat)):
        if isinstance(obj, _Flat):
            items = [part for op in obj.ops for part in op[1:]]
        else:
            items = list(obj.values()) if isinstance(obj, dict) else list(obj)
        for item in items:
            try:
                cloudpickle.dumps(item)
            except Exception:
                obj = item
                break
        else:
            return obj
    return obj


def _outcome(future: Future, keys: list) -> Any:
    try:
        return pickle.loads(future.result())
    except BrokenProcessPool as e:
        shown = ", ".join(repr(k) for k in keys[:3]) + (", ..." if len(keys) > 3 else "")
        return WorkerDiedError(
            f"a worker process died while running task(s) {shown}; the pool has been discarded ({e})"
        )
    except BaseException as e:
        return e


def _describe_error(exc: BaseException, key: Any, detail: Any) -> BaseException:
    if detail:
        text = f"Traceback in the worker process (task {key!r}):\n{detail.rstrip()}"
        if hasattr(exc, "add_note"):
            exc.add_note(text)
        else:  # Python 3.10
            exc.__cause__ = RemoteTraceback(text)
    return exc


def get(dsk: Mapping, keys: Any, num_workers: int | None = None, pool: Executor | None = None,
        **kwargs: Any) -> Any:
    """Compute ``keys`` of ``dsk`` on a pool of worker processes.

    Tasks and the values they need are cloudpickled to the workers in batches. ``num_workers``
    defaults to config ``num-workers``, else the number of cores. ``pool`` may be your own
    ``concurrent.futures.ProcessPoolExecutor``; it is used as is and never shut down here.
    ``keys`` is one key or nested lists of keys; the result has the same nesting, lists as
    tuples. ``callbacks=`` adds :class:`lazyarr.diagnostics.Callback` objects (per-task hooks are
    called in this process, when a batch is sent and when it returns).

    >>> from operator import add
    >>> get({'x': 1, 'y': (add, 'x', 1)}, 'y')  # doctest: +SKIP
    2
    """
    pool, num_workers, own = pools.choose(pool, num_workers)
    if not hasattr(pool, "submit"):
        raise TypeError(f"pool= must be a concurrent.futures.Executor, not {type(pool).__name__}")
    executor = pool

    def submit(fn: Callable, args: tuple, done: Callable) -> None:
        try:
            blob = cloudpickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        except (RecursionError, pickle.PicklingError, TypeError, AttributeError, ValueError) as e:
            args = _flatten_deep_tasks(args)
            try:
                blob = cloudpickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as e2:
                raise _pickling_error(args, e2) from e
        future = executor.submit(_remote, blob)
        batch_keys = args[0]
        future.add_done_callback(lambda f: done(_outcome(f, batch_keys)))

    def abort(exc: BaseException, in_flight: bool) -> None:
        if own and (in_flight or isinstance(exc, (KeyboardInterrupt, WorkerDiedError))):
            pools.discard(executor)

    kwargs.setdefault("batch_seconds", 0.05)
    return get_async(submit, num_workers, dsk, keys, ship_data=True, abort=abort,
                     describe_error=_describe_error, **kwargs)
