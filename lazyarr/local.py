"""The local scheduling engine shared by the ``sync``, ``threads`` and ``processes`` schedulers.

One loop, in the calling thread, walks a task graph (see :mod:`lazyarr.core`) and hands work to
a parallel backend that is injected: ``submit(fn, args, done)`` runs ``fn(*args)`` somewhere and
calls ``done(outcome)`` from any thread, plus ``num_workers``, how many such calls may run at
once. With ``submit=None`` the engine runs everything itself, in the calling thread: that is
:func:`get_sync`. :mod:`lazyarr.threaded` passes a thread pool, :mod:`lazyarr.multiprocessing`
a process pool.

Preparation (once per call)
---------------------------
1. ``keys`` (one key or nested lists of keys) are validated: a missing key is a ``KeyError``
   naming it.
2. Only the keys reachable from ``keys`` are kept; their dependencies are read once into plain
   lists, in argument order.
3. :func:`lazyarr.order.order_keys` numbers them depth-first from the outputs (a cycle raises
   :class:`lazyarr.core.CycleError` naming its keys here, before anything runs). From then on a
   task *is* its number: index ``i`` is the ``i``-th task in priority order, and every piece of
   state is a list indexed by it.

State (all in the calling thread; passed to callbacks as the ``state`` dict)
----------------------------------------------------------------------------
``keys``, ``tasks``
    the key and computation of task ``i``.
``dependencies``, ``dependents``
    lists of task numbers; a dependency always has a smaller number than its dependents.
``waiting``
    per task, how many of its dependencies have not finished yet. At 0 the task is *ready*.
``refcount``
    per task, how many of its dependents have not finished yet (requested keys count one extra
    so they are never released).
``status``
    per task: ``WAITING``, ``READY`` (in the ``ready`` heap), ``RUNNING`` (handed to a worker
    in a batch) or ``DONE``.
``ready``
    a heap of ready task numbers: the lowest number, i.e. the highest priority, comes first.
``running``
    batch id -> (task numbers of the batch, those whose values leave it), for every batch in
    flight.
``cache``
    key -> value of finished tasks whose value is still needed.
``ntasks``, ``nfinished``
    totals, for progress reporting.

Policy
------
Work goes out in **batches**: a batch starts at the highest-priority ready task and takes the
following task numbers for as long as each one's dependencies are finished or in the batch
itself. Because the numbering is depth-first, such a run is a linear chain or a whole subtree of
a reduction, so one hand-off to a worker (one pickle for a process) carries many trivial tasks,
and the worker runs them in priority order exactly as the sync scheduler would. Two limits keep
the parallelism: a batch may take at most ``ceil(ready / num_workers)`` tasks that other workers
could have run in parallel (ready tasks, and dependents of a task with several dependents) --
chains and joins are free -- and at most as many tasks as fit in ``batch_seconds`` at the task
durations measured so far, starting at one task and doubling, so slow tasks go out one by one
and fast ones in large groups. At most ``num_workers`` batches are in flight.

Memory
------
A value is released as soon as its last dependent has run: inside a batch by the worker, right
after the consuming task (the engine tells it which keys die where), across batches by the
engine when the consuming batch reports back (its ``refcount`` reaches 0). Requested keys are
kept until the end. Together with the depth-first order this keeps the live intermediates of a
wide reduction bounded by the tree depth times the number of batches in flight.

Errors
------
In the sync scheduler a task's exception propagates untouched, straight from the task (so a
debugger's post-mortem lands in the task). In a pool the batch stops at the failing task and
the engine re-raises the same exception in the calling thread; other batches stop at their next
task. ``KeyboardInterrupt`` (pressed or raised by a task) stops the loop at once and the backend's
``abort`` hook discards its pool.

Callbacks
---------
``start(dsk)``, ``start_state(dsk, state)``, ``pretask(key, dsk, state)``,
``posttask(key, result, dsk, state, worker_id)`` and ``finish(dsk, state, errored)``, from
:class:`lazyarr.diagnostics.Callback` objects registered globally or given as ``callbacks=``.
Per-task hooks cost nothing unless some callback defines them. With threads they run in the
worker thread that ran the task, one at a time (under a lock); with processes the engine calls
``pretask`` when a batch is sent and ``posttask`` when it returns (``result`` is ``None`` for
intermediates that lived and died inside the worker).
"""
from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .core import pack_results, validate_keys
from .order import order_keys, ordered_dependencies

__all__ = ["get_sync", "get_async", "run_batch", "execute", "WAITING", "READY", "RUNNING", "DONE"]

WAITING, READY, RUNNING, DONE = 0, 1, 2, 3

_ATOMS = frozenset({str, bytes, int, float})
_NESTING_LIMIT = 100  # deeper nested tasks are evaluated by the iterative evaluator


# --------------------------------------------------------------------------------------------
# Evaluating one computation
# --------------------------------------------------------------------------------------------

def execute(task: Any, data: Mapping, _depth: int = 0) -> Any:
    """Evaluate one computation against ``data`` (key -> value), as :func:`core.execute_task`.

    An atom or literal tuple that is a key of ``data`` is replaced by its value; tasks, lists and
    dicts are evaluated recursively, nested tasks deeper than a hundred levels iteratively.

    >>> from operator import add
    >>> execute((add, 'x', (add, 1, 2)), {'x': 10})
    13
    """
    typ = type(task)
    if typ is tuple:
        if task and callable(task[0]):
            if _depth > _NESTING_LIMIT:
                return _execute_iterative(task, data)
            depth = _depth + 1
            return task[0](*[data.get(a, a) if type(a) in _ATOMS else execute(a, data, depth)
                             for a in task[1:]])
        try:
            return data.get(task, task)
        except TypeError:  # a literal tuple holding something unhashable
            return task
    if typ in _ATOMS:
        return data.get(task, task)
    if typ is list:
        return [data.get(a, a) if type(a) in _ATOMS else execute(a, data, _depth + 1) for a in task]
    if typ is dict:
        return {k: execute(v, data, _depth + 1) for k, v in task.items()}
    return task


_END = object()
_LIST = object()


def _execute_iterative(task: Any, data: Mapping) -> Any:
    """:func:`execute` with an explicit stack, for arbitrarily deep nesting."""
    stack: list = []  # frames [head, argument iterator, evaluated arguments]
    node = task
    while True:
        typ = type(node)
        if typ is tuple and node and callable(node[0]):
            stack.append([node[0], iter(node[1:]), []])
        elif typ is list:
            stack.append([_LIST, iter(node), []])
        elif typ is dict:
            stack.append([tuple(node), iter(node.values()), []])
        else:
            value = execute(node, data)  # a leaf: key, literal or literal tuple
            if not stack:
                return value
            stack[-1][2].append(value)
        while True:
            head, args, values = stack[-1]
            node = next(args, _END)
            if node is not _END:
                break
            stack.pop()
            if head is _LIST:
                value = values
            elif type(head) is tuple:
                value = dict(zip(head, values))
            else:
                value = head(*values)
            if not stack:
                return value
            stack[-1][2].append(value)


# --------------------------------------------------------------------------------------------
# Running one batch (in the calling thread, a pool thread or a worker process)
# --------------------------------------------------------------------------------------------

class Hooks:
    """The per-task callbacks of one computation, called one at a time from any thread."""

    __slots__ = ("pretask", "posttask", "dsk", "state", "lock")

    def __init__(self, pretask: list, posttask: list, dsk: Mapping, state: dict):
        self.pretask = pretask
        self.posttask = posttask
        self.dsk = dsk
        self.state = state
        self.lock = threading.Lock()


def run_batch(keys: list, tasks: list, frees: dict | None, data: dict, exports: list | None,
              stop: list | None, hooks: Hooks | None, catch: bool) -> tuple:
    """Run ``tasks`` in order, storing each value in ``data`` under its key.

    ``frees`` maps a position to the keys to delete from ``data`` once the task at that position
    has run (their last consumer in this batch). ``exports`` names the keys whose values go back
    to the engine (``None``: they stay in ``data``, shared with the engine). ``stop[0]`` set by
    the engine ends the batch before its next task.

    Returns ``('ok', seconds, values)``; with ``catch`` a failing task gives
    ``('error', position, exception, None)`` instead of raising.
    """
    start = time.perf_counter()
    where = [0]
    try:
        if hooks is None:
            if not _run_plain(keys, tasks, frees, data, stop, where):
                return ("stopped", 0.0, None)
        elif not _run_with_hooks(keys, tasks, frees, data, stop, hooks, where):
            return ("stopped", 0.0, None)
    except BaseException as exc:
        if not catch:
            raise
        return ("error", where[0], exc, None)
    values = None if exports is None else [data[k] for k in exports]
    return ("ok", time.perf_counter() - start, values)


def _run_plain(keys: list, tasks: list, frees: dict | None, data: dict, stop: list | None,
               where: list) -> bool:
    """The hot loop; ``where[0]`` is the position of the failing task if one raises."""
    if stop is None and frees is None:
        for pos in range(len(keys)):
            where[0] = pos
            data[keys[pos]] = execute(tasks[pos], data)
        return True
    if stop is None:
        for pos in range(len(keys)):
            where[0] = pos
            data[keys[pos]] = execute(tasks[pos], data)
            if pos in frees:
                for dead in frees[pos]:
                    del data[dead]
        return True
    for pos in range(len(keys)):
        if stop[0]:
            return False
        where[0] = pos
        data[keys[pos]] = execute(tasks[pos], data)
        if frees is not None and pos in frees:
            for dead in frees[pos]:
                del data[dead]
    return True


def _run_with_hooks(keys: list, tasks: list, frees: dict | None, data: dict, stop: list | None,
                    hooks: Hooks, where: list) -> bool:
    worker = threading.get_ident()
    dsk, state, lock = hooks.dsk, hooks.state, hooks.lock
    for pos in range(len(keys)):
        if stop is not None and stop[0]:
            return False
        where[0] = pos
        key = keys[pos]
        if hooks.pretask:
            with lock:
                for f in hooks.pretask:
                    f(key, dsk, state)
        value = data[key] = execute(tasks[pos], data)
        if hooks.posttask:
            with lock:
                for f in hooks.posttask:
                    f(key, value, dsk, state, worker)
        del value
        if frees is not None and pos in frees:
            for dead in frees[pos]:
                del data[dead]
    return True


# --------------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------------

def _unpack_callbacks(callbacks: Iterable | None) -> tuple[list, list, list, list, list]:
    """The globally registered callbacks plus ``callbacks``, split by hook."""
    from .diagnostics.callbacks import active_callbacks, callback_tuple

    hooks: tuple[list, list, list, list, list] = ([], [], [], [], [])
    seen: set = set()
    for cb in list(active_callbacks()) + [callback_tuple(c) for c in (callbacks or ())]:
        if cb in seen:
            continue
        seen.add(cb)
        for slot, f in zip(hooks, cb):
            if f is not None:
                slot.append(f)
    return hooks


# --------------------------------------------------------------------------------------------
# Preparing the graph
# --------------------------------------------------------------------------------------------

def _reachable(dsk: Mapping, flat_keys: list) -> dict:
    """key -> dependency keys, for every key needed to compute ``flat_keys``."""
    deps: dict = {}
    stack = list(reversed(flat_keys))
    while stack:
        key = stack.pop()
        if key in deps:
            continue
        found = deps[key] = ordered_dependencies(dsk, task=dsk[key])
        for d in found:
            if d not in deps:
                stack.append(d)
    return deps


class _Graph:
    """The numbered graph: task ``i`` is the ``i``-th in priority order."""

    __slots__ = ("keys", "tasks", "dependencies", "dependents", "waiting", "refcount", "pinned", "n")

    def __init__(self, dsk: Mapping, flat_keys: list):
        deps_by_key = _reachable(dsk, flat_keys)
        keys = order_keys(deps_by_key, roots=flat_keys)
        number = {k: i for i, k in enumerate(keys)}
        n = len(keys)
        dependencies = [[number[d] for d in deps_by_key[k]] for k in keys]
        dependents: list = [[] for _ in range(n)]
        for i, ds in enumerate(dependencies):
            for d in ds:
                dependents[d].append(i)
        refcount = [len(x) for x in dependents]
        pinned = bytearray(n)
        for k in flat_keys:
            i = number[k]
            if not pinned[i]:
                pinned[i] = 1
                refcount[i] += 1
        self.keys = keys
        self.tasks = [dsk[k] for k in keys]
        self.dependencies = dependencies
        self.dependents = dependents
        self.waiting = [len(ds) for ds in dependencies]
        self.refcount = refcount
        self.pinned = pinned
        self.n = n


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------

Submit = Callable[[Callable, tuple, Callable[[Any], None]], None]


def get_async(submit: Submit | None, num_workers: int, dsk: Mapping, keys: Any, *,
              callbacks: Iterable | None = None, ship_data: bool = False,
              batch_seconds: float = 0.01, abort: Callable[[BaseException, bool], None] | None = None,
              describe_error: Callable[[BaseException, Any, Any], BaseException] | None = None,
              **kwargs: Any) -> Any:
    """Compute ``keys`` of ``dsk`` with an injected parallel backend (see the module docstring).

    ``submit(fn, args, done)`` must run ``fn(*args)`` on a worker and call ``done`` with its
    return value, or with the exception if it could not run it; ``None`` runs every batch in
    the calling thread. ``ship_data`` says workers do not share memory with the caller, so a
    batch carries the values it needs and returns those needed later. ``abort(exc, in_flight)``
    is called when the computation fails (``in_flight``: batches are still running);
    ``describe_error(exc, key, detail)`` may turn a worker's error into the exception to raise.
    ``batch_seconds`` is the work one batch may carry at the measured task durations. Other
    keyword arguments are ignored, so every scheduler accepts the options of the others.
    """
    flat_keys = validate_keys(dsk, keys)
    start_cbs, start_state_cbs, pretask_cbs, posttask_cbs, finish_cbs = _unpack_callbacks(callbacks)
    for f in start_cbs:
        f(dsk)
    state: dict = {"ntasks": 0, "nfinished": 0}
    errored = True
    try:
        graph = _Graph(dsk, flat_keys)
        engine = _Engine(graph, submit, max(1, int(num_workers)), ship_data, batch_seconds, state)
        for f in start_state_cbs:
            f(dsk, state)
        if pretask_cbs or posttask_cbs:
            engine.hooks = Hooks(pretask_cbs, posttask_cbs, dsk, state)
        try:
            engine.run(describe_error)
        except BaseException as exc:
            engine.stop[0] = True
            if abort is not None:
                abort(exc, bool(engine.running))
            raise
        result = pack_results(keys, engine.cache)
        errored = False
        return result
    finally:
        for f in finish_cbs:
            f(dsk, state, errored)


class _Engine:
    """The loop of one computation (the state documented in the module docstring)."""

    def __init__(self, graph: _Graph, submit: Submit | None, num_workers: int, ship_data: bool,
                 batch_seconds: float, state: dict):
        self.g = graph
        self.submit = submit
        self.num_workers = num_workers
        self.ship_data = ship_data
        self.batch_seconds = batch_seconds
        n = graph.n
        self.status = bytearray(n)
        self.ready = [i for i in range(n) if graph.waiting[i] == 0]  # ascending: already a heap
        for i in self.ready:
            self.status[i] = READY
        self.nready = len(self.ready)
        self.running: dict = {}
        self.cache: dict = {}
        self.nfinished = 0
        self.stop = [False]
        self.hooks: Hooks | None = None
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.next_batch = 0
        # adaptive batch size: seconds per task measured so far, largest batch done so far
        self.task_seconds = 0.0
        self.timed_tasks = 0
        self.latest_task_seconds = 0.0
        self.largest_done = 0
        self.state = state
        state.update(
            keys=graph.keys, tasks=graph.tasks, dependencies=graph.dependencies,
            dependents=graph.dependents, waiting=graph.waiting, refcount=graph.refcount,
            status=self.status, ready=self.ready, running=self.running, cache=self.cache,
            ntasks=n, nfinished=0,
        )

    # -- the loop ------------------------------------------------------------------------------

    def run(self, describe_error: Callable | None) -> None:
        n = self.g.n
        if self.submit is None:
            while self.nfinished < n:
                batch = self._take_batch(n, n)
                self._run_inline(batch)
            return
        inbox = self.inbox
        while self.nfinished < n:
            while self.nready and len(self.running) < self.num_workers:
                limit = self._size_limit()
                par = max(1, -(-self.nready // self.num_workers))
                batch = self._take_batch(par, limit)
                if batch is None:
                    break
                self._dispatch(batch)
            if not self.running:
                raise RuntimeError("lazyarr scheduler stalled with tasks left; please report this graph")
            batch_id, outcome = inbox.get()
            self._receive(batch_id, outcome, describe_error)

    def _size_limit(self) -> int:
        """How many tasks the next batch may hold: slow start, then ``batch_seconds`` of work.

        The per-task time is the larger of the average so far and the latest batch's, so a
        switch from fast to slow tasks shrinks batches at once.
        """
        if self.timed_tasks == 0:
            return 1
        grow = max(1, 2 * self.largest_done)
        per_task = max(self.task_seconds / self.timed_tasks, self.latest_task_seconds)
        if per_task <= 0:
            return grow
        return max(1, min(grow, int(self.batch_seconds / per_task)))

    def _take_batch(self, max_parallel: int, max_tasks: int) -> list | None:
        """Pop a batch from the ready heap: runs of consecutive task numbers (module docstring)."""
        ready, status = self.ready, self.status
        dependencies, dependents = self.g.dependencies, self.g.dependents
        n = self.g.n
        members: list = []
        taken = 0  # tasks counted against max_parallel
        while ready and len(members) < max_tasks and taken < max_parallel:
            first = heapq.heappop(ready)
            if status[first] != READY:
                continue  # already taken by an earlier run of this or another batch
            status[first] = RUNNING
            self.nready -= 1
            members.append(first)
            taken += 1
            q = first + 1
            while q < n and len(members) < max_tasks:
                s = status[q]
                if s >= RUNNING:
                    break
                parallel = s == READY
                for d in dependencies[q]:
                    # a dependency is finished, or in this run: the run holds every number
                    # from ``first`` up to ``q``, and dependencies are numbered below ``q``
                    if status[d] != DONE:
                        if d < first:
                            break
                        if not parallel and len(dependents[d]) > 1:
                            parallel = True
                else:
                    if parallel:
                        if taken >= max_parallel:
                            break
                        taken += 1
                        if s == READY:
                            self.nready -= 1
                    status[q] = RUNNING
                    members.append(q)
                    q += 1
                    continue
                break
        return members or None

    # -- building and sending a batch ----------------------------------------------------------

    def _plan(self, members: list) -> tuple[dict | None, list | None, list]:
        """Which keys die where inside the batch, which go back, which come in."""
        g = self.g
        keys, dependents, dependencies, pinned = g.keys, g.dependents, g.dependencies, g.pinned
        inside = set(members) if len(members) > 1 else {members[0]}
        position = {i: p for p, i in enumerate(members)}
        frees: dict = {}
        exports: list = []
        for p, i in enumerate(members):
            ds = dependents[i]
            if pinned[i] or not ds:
                exports.append(i)
                continue
            last = -1
            for j in ds:
                if j not in inside:
                    exports.append(i)
                    break
                if j > last:
                    last = j
            else:
                frees.setdefault(position[last], []).append(keys[i])
        inputs: list = []
        if self.ship_data:
            last_use: dict = {}
            for p, i in enumerate(members):
                for d in dependencies[i]:
                    if d not in inside:
                        last_use[d] = p
            inputs = list(last_use)
            for d, p in last_use.items():
                frees.setdefault(p, []).append(keys[d])
        return frees or None, exports, inputs

    def _dispatch(self, members: list) -> None:
        g = self.g
        batch_id = self.next_batch
        self.next_batch += 1
        keys, tasks = g.keys, g.tasks
        frees, exports, inputs = self._plan(members)
        self.running[batch_id] = (members, exports)
        bkeys = [keys[i] for i in members]
        btasks = [tasks[i] for i in members]
        if self.ship_data:
            cache = self.cache
            data = {keys[d]: cache[keys[d]] for d in inputs}
            export_keys = [keys[i] for i in exports]
            if self.hooks is not None and self.hooks.pretask:
                for k in bkeys:
                    for f in self.hooks.pretask:
                        f(k, self.hooks.dsk, self.state)
            args = (bkeys, btasks, frees, data, export_keys, None, None, True)
        else:
            args = (bkeys, btasks, frees, self.cache, None, self.stop, self.hooks, True)
        inbox = self.inbox
        self.submit(run_batch, args, lambda outcome: inbox.put((batch_id, outcome)))

    def _run_inline(self, members: list) -> None:
        g = self.g
        frees, _, _ = self._plan(members)
        bkeys = [g.keys[i] for i in members]
        btasks = [g.tasks[i] for i in members]
        run_batch(bkeys, btasks, frees, self.cache, None, None, self.hooks, False)
        self._finish_batch(members, None, None)

    # -- receiving a batch ---------------------------------------------------------------------

    def _receive(self, batch_id: int, outcome: Any, describe_error: Callable | None) -> None:
        members, exports = self.running.pop(batch_id)
        if isinstance(outcome, BaseException):
            raise outcome
        kind = outcome[0]
        if kind == "ok":
            _, seconds, values = outcome
            self.task_seconds += seconds
            self.timed_tasks += len(members)
            self.latest_task_seconds = seconds / len(members)
            if len(members) > self.largest_done:
                self.largest_done = len(members)
            self._finish_batch(members, exports, values)
            return
        if kind == "error":
            _, pos, exc, detail = outcome
            key = self.g.keys[members[pos]] if 0 <= pos < len(members) else None
            if describe_error is not None:
                exc = describe_error(exc, key, detail)
            raise exc
        raise RuntimeError(f"unexpected outcome from a worker: {outcome!r}")

    def _finish_batch(self, members: list, exported: list | None, values: list | None) -> None:
        g = self.g
        cache, status, ready = self.cache, self.status, self.ready
        keys, dependencies, dependents, waiting, refcount = (
            g.keys, g.dependencies, g.dependents, g.waiting, g.refcount)
        hooks = self.hooks
        if values is not None:
            for i, v in zip(exported, values):
                cache[keys[i]] = v
            if hooks is not None and hooks.posttask:
                got = dict(zip(exported, values))
                for i in members:
                    for f in hooks.posttask:
                        f(keys[i], got.get(i), hooks.dsk, self.state, None)
        if len(members) == g.n:  # the whole graph in one batch: nothing is left to release
            for i in members:
                status[i] = DONE
            self.nfinished = g.n
            self.state["nfinished"] = g.n
            return
        for i in members:
            status[i] = DONE
        for i in members:
            for j in dependents[i]:
                w = waiting[j] - 1
                waiting[j] = w
                if w == 0 and status[j] == WAITING:
                    status[j] = READY
                    heapq.heappush(ready, j)
                    self.nready += 1
            for d in dependencies[i]:
                r = refcount[d] - 1
                refcount[d] = r
                if r == 0:
                    cache.pop(keys[d], None)
        self.nfinished += len(members)
        self.state["nfinished"] = self.nfinished


# --------------------------------------------------------------------------------------------
# The sync scheduler
# --------------------------------------------------------------------------------------------

def get_sync(dsk: Mapping, keys: Any, **kwargs: Any) -> Any:
    """Compute ``keys`` of ``dsk`` in the calling thread, one task after the other.

    The debugger-friendly scheduler: a task's exception propagates straight from the task.
    ``keys`` is one key or nested lists of keys; the result has the same nesting, lists as
    tuples. ``callbacks=`` adds :class:`lazyarr.diagnostics.Callback` objects; other keyword
    arguments (``num_workers``, ...) are accepted and ignored.

    >>> from operator import add
    >>> get_sync({'x': 1, 'y': (add, 'x', 1)}, ['y', ['x']])
    (2, (1,))
    """
    kwargs.pop("num_workers", None)
    kwargs.pop("pool", None)
    return get_async(None, 1, dsk, keys, **kwargs)
