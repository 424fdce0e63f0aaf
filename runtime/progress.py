"""Progress of computations on a cluster: :func:`progress` (a live bar for futures or persisted
collections), the client side of ``lazyarr.diagnostics`` callbacks (:class:`CallbackWatch`, used
by ``Client.get``), and the scheduler's side of both (:class:`ProgressTracker`).

The client polls the scheduler with ``progress`` ops. The first poll of a *session* names the
keys (the tasks a ``get`` sent, or the futures' keys, whose dependencies the scheduler adds);
the scheduler keeps that set and, on each poll, looks only at the tasks not yet done, so
following a 100,000-task graph costs O(remaining) per poll and O(n) in total.

>>> from runtime.progress import format_bar
>>> format_bar(3, 4, 0, 1.5, width=8)
'[######  ]  75% | 3/4 tasks | 1.5s'
"""
from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any, Sequence

from .task_stream import prefix_of

__all__ = ["progress", "ProgressTracker", "CallbackWatch", "format_bar"]

_DONE_STATES = ("memory", "released", "forgotten")
_SESSION_IDLE = 300.0   # seconds without a poll after which the scheduler drops a session
_MAX_SESSIONS = 64      # per client


# ----------------------------------------------------------------------------------------------
# scheduler side


class _Session:
    __slots__ = ("remaining", "total", "done", "erred", "prefix_total", "prefix_done", "prefix_erred",
                 "last_poll")

    def __init__(self, tss: list, now: float):
        self.remaining = tss
        self.total = len(tss)
        self.done = 0
        self.erred = 0
        self.prefix_total: dict = {}
        self.prefix_done: dict = {}
        self.prefix_erred: dict = {}
        for ts in tss:
            p = prefix_of(ts.key)
            self.prefix_total[p] = self.prefix_total.get(p, 0) + 1
        self.last_poll = now


class ProgressTracker:
    """The scheduler's progress sessions and its answers to ``progress`` and ``task-stream`` ops
    (called in the scheduler's thread; returns messages like the state machine's events)."""

    def __init__(self) -> None:
        self._sessions: dict = {}   # (client, pid) -> _Session

    def handle(self, scheduler: Any, client: str, op: dict) -> list:
        """Answer a client's diagnostics op with a ``reply``."""
        rid = op["rid"]
        if op["op"] == "task-stream":
            result = _task_stream_reply(scheduler, op)
        else:
            result = self.poll(scheduler.state, client, op)
        return [(("c", client), {"op": "reply", "rid": rid, "ok": True, "result": result})]

    def poll(self, state: Any, client: str, op: dict) -> dict:
        """One poll of session ``op['pid']``: counts, and (``want_keys``) the keys done since the
        last poll with one holder each. ``end`` closes the session."""
        now = time.monotonic()
        sid = (client, op["pid"])
        session = self._sessions.get(sid)
        if session is None:
            self._expire(client, now)  # also where sessions of vanished clients go
            session = self._sessions[sid] = _Session(self._closure(state, op.get("keys") or (),
                                                                   bool(op.get("dependencies", True))), now)
        session.last_poll = now
        want_keys = bool(op.get("want_keys"))
        done_keys: list = []
        holders: list = []
        still: list = []
        for ts in session.remaining:
            st = ts.state
            if st in _DONE_STATES:
                session.done += 1
                p = prefix_of(ts.key)
                session.prefix_done[p] = session.prefix_done.get(p, 0) + 1
                if want_keys:
                    done_keys.append(ts.key)
                    who = ts.who_has
                    holders.append(next(iter(who)).address if who else None)
            elif st == "erred":
                session.erred += 1
                p = prefix_of(ts.key)
                session.prefix_erred[p] = session.prefix_erred.get(p, 0) + 1
            else:
                still.append(ts)
        session.remaining = still
        result = {"total": session.total, "done": session.done, "erred": session.erred,
                  "prefixes": {p: [n, session.prefix_done.get(p, 0), session.prefix_erred.get(p, 0)]
                               for p, n in session.prefix_total.items()}}
        if want_keys:
            result["keys"] = done_keys
            result["workers"] = holders
        if op.get("end") or not still:
            self._sessions.pop(sid, None)
        return result

    @staticmethod
    def _closure(state: Any, keys: Sequence, dependencies: bool) -> list:
        tasks = state.tasks
        seen: set = set()
        out: list = []
        stack = [tasks[k] for k in keys if k in tasks]
        while stack:
            ts = stack.pop()
            if id(ts) in seen:
                continue
            seen.add(id(ts))
            out.append(ts)
            if dependencies:
                stack.extend(ts.deps)
        return out

    def client_removed(self, client: str) -> None:
        """A client closed: drop its sessions (they hold the scheduler's task objects)."""
        for sid in [sid for sid in self._sessions if sid[0] == client]:
            del self._sessions[sid]

    def _expire(self, client: str, now: float) -> None:
        stale = [sid for sid, s in self._sessions.items() if now - s.last_poll > _SESSION_IDLE]
        mine = [sid for sid in self._sessions if sid[0] == client]
        if len(mine) >= _MAX_SESSIONS:
            stale.extend(mine[: len(mine) - _MAX_SESSIONS + 1])
        for sid in stale:
            self._sessions.pop(sid, None)


def _task_stream_reply(scheduler: Any, op: dict) -> dict:
    """Everything a performance report needs, recorded since ``op['since']`` / ``op['t0']``."""
    stream = scheduler.task_stream
    t0 = float(op.get("t0") or 0.0)
    out = stream.since(int(op.get("since") or 0), op.get("limit"))
    out.update({
        "now": time.time(),
        "prefixes": stream.prefixes(),
        "transfer_bytes": stream.transfer_bytes,
        "transfers": [list(t) for t in stream.transfers_since(t0)],
        "memory": [list(m) for m in stream.memory_since(t0)],
        "workers": {ws.address: {"name": ws.name, "nthreads": ws.nthreads, "memory_limit": ws.memory_limit}
                    for ws in list(scheduler.state.workers.values())},
    })
    return out


# ----------------------------------------------------------------------------------------------
# client side

_pids = itertools.count()


def _poll(client: Any, pid: str, keys: Sequence | None = None, *, want_keys: bool = False,
          dependencies: bool = True, end: bool = False) -> dict:
    op: dict = {"op": "progress", "pid": pid, "want_keys": want_keys, "dependencies": dependencies, "end": end}
    if keys is not None:
        op["keys"] = list(keys)
    return client._request(op).value


def format_bar(done: int, total: int, erred: int, elapsed: float, width: int = 40) -> str:
    """One line of a text progress bar."""
    frac = min(1.0, done / total) if total else 1.0
    filled = int(round(width * frac))
    bar = "#" * filled + " " * (width - filled)
    text = f"[{bar}] {int(frac * 100):3d}% | {done}/{total} tasks"
    if erred:
        text += f" | {erred} erred"
    return text + f" | {elapsed:.1f}s"


def _keys_of(objs: Sequence) -> tuple:
    """The client and keys behind futures and persisted collections."""
    from lazyarr.base import collections_to_graph, is_lazyarr_collection

    from .futures import Future, futures_in

    futures: list = []
    for obj in objs:
        if is_lazyarr_collection(obj):
            found = [v for v in collections_to_graph([obj], False).values() if type(v) is Future]
            if not found:
                raise TypeError(f"progress() follows futures or persisted collections; {type(obj).__name__} "
                                f"is not persisted (call client.persist(x) first, or use lazyarr.diagnostics."
                                f"ProgressBar around x.compute())")
            futures.extend(found)
        else:
            found = [obj] if type(obj) is Future else futures_in(obj)
            if not found:
                raise TypeError(f"progress() takes futures or persisted collections, not {type(obj).__name__}")
            futures.extend(found)
    clients = {id(f.client): f.client for f in futures}
    if len(clients) != 1:
        raise ValueError("progress(): the futures belong to several clients; call it once per client")
    return next(iter(clients.values())), list(dict.fromkeys(f.key for f in futures))


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress(*futures_or_collections: Any, notebook: bool | None = None, out: IO[str] | None = None,
             dt: float = 0.2, width: int = 40, timeout: float | None = None) -> dict:
    """Show a live progress bar until the given futures (or persisted collections) and all the
    tasks they depend on are done or erred; return the final counts.

    Text on ``out`` (default ``sys.stdout``), redrawn in place every ``dt`` seconds; in a Jupyter
    notebook (``notebook=None`` detects it) an ipywidgets bar when ipywidgets is installed.
    Returns ``{'total', 'done', 'erred', 'prefixes': {prefix: [total, done, erred]}}``.

    >>> # x = client.persist(array.sum()); progress(x)
    >>> # [########################################] 100% | 1001/1001 tasks | 2.3s
    """
    if not futures_or_collections:
        raise TypeError("progress() needs at least one future or persisted collection")
    if dt <= 0:
        raise ValueError(f"progress(): dt must be positive, not {dt!r}")
    client, keys = _keys_of(futures_or_collections)
    pid = f"progress-{next(_pids)}"
    use_widget = _in_notebook() if notebook is None else bool(notebook)
    widget = _widget(use_widget)
    stream = out if out is not None else sys.stdout
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    result = _poll(client, pid, keys)
    try:
        while True:
            elapsed = time.monotonic() - started
            if widget is not None:
                widget(result, elapsed)
            else:
                stream.write("\r" + format_bar(result["done"], result["total"], result["erred"], elapsed, width))
                stream.flush()
            if result["done"] + result["erred"] >= result["total"] or result["erred"]:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"progress(): not done after {timeout} s")
            time.sleep(dt)
            result = _poll(client, pid)
        result["prefixes"] = {p: list(v) for p, v in result["prefixes"].items()}
    finally:
        if result["done"] + result["erred"] < result["total"]:
            try:
                _poll(client, pid, end=True)  # an error or timeout: free the scheduler's session
            except Exception:
                pass
    if widget is None:
        stream.write("\n")
        stream.flush()
    return result


def _widget(enabled: bool) -> Any:
    """An update function drawing an ipywidgets bar, or None (no notebook, no ipywidgets)."""
    if not enabled:
        return None
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        return None
    bar = ipywidgets.IntProgress(min=0, max=1, value=0, description="progress")
    label = ipywidgets.HTML()
    display(ipywidgets.HBox([bar, label]))

    def update(result: dict, elapsed: float) -> None:
        bar.max = max(1, result["total"])
        bar.value = result["done"]
        bar.bar_style = "danger" if result["erred"] else ("success" if result["done"] >= result["total"] else "")
        label.value = f"{result['done']} / {result['total']} tasks, {elapsed:.1f} s"

    return update


class CallbackWatch:
    """Calls ``lazyarr.diagnostics`` callbacks for one ``Client.get``: ``start``, ``start_state``
    with ``{'ntasks': n}``, one ``posttask(key, None, dsk, state, worker_address)`` per task the
    scheduler reports done (from a polling thread this object owns and joins), and ``finish``.
    ``pretask`` is not called: the client does not see tasks start."""

    def __init__(self, client: Any, dsk: Mapping, hooks: list, dt: float = 0.1):
        self.client = client
        self.dsk = dsk
        self.hooks = hooks
        self.dt = dt
        self.state: dict = {"ntasks": len(dsk)}
        self._pid = f"get-{next(_pids)}"
        self._keys: list | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errored_poll = False
        self._finished = False
        for start, *_ in hooks:
            if start is not None:
                start(dsk)

    @classmethod
    def create(cls, client: Any, dsk: Mapping, callbacks: Any) -> "CallbackWatch | None":
        """A watch for the active callbacks (global ones and ``callbacks``), or None if none."""
        from lazyarr.diagnostics.callbacks import active_callbacks, callback_tuple

        hooks = active_callbacks()
        if callbacks:
            hooks = hooks + [callback_tuple(cb) for cb in callbacks]
        hooks = [h for h in hooks if any(f is not None for f in h)]
        return cls(client, dsk, hooks) if hooks else None

    def prepared(self, keys: list) -> None:
        """The tasks that will run are known (``start_state``)."""
        self._keys = keys
        self.state["ntasks"] = len(keys)
        for _, start_state, *_ in self.hooks:
            if start_state is not None:
                start_state(self.dsk, self.state)

    def submitted(self) -> None:
        """The graph was sent: start following it."""
        if self._keys and any(h[3] is not None for h in self.hooks):
            self._thread = threading.Thread(target=self._follow, name=f"lazyarr-{self._pid}", daemon=True)
            self._thread.start()

    def _follow(self) -> None:
        first = True
        while True:
            stop = self._stop.is_set()
            try:
                result = _poll(self.client, self._pid, self._keys if first else None, want_keys=True,
                               dependencies=False, end=stop)
            except Exception:
                self._errored_poll = True
                return
            first = False
            self._posttask(result)
            if stop or result["done"] + result["erred"] >= result["total"]:
                return
            self._stop.wait(self.dt)

    def _posttask(self, result: dict) -> None:
        hooks = [h[3] for h in self.hooks if h[3] is not None]
        for key, worker in zip(result.get("keys", ()), result.get("workers", ())):
            for posttask in hooks:
                posttask(key, None, self.dsk, self.state, worker)

    def finish(self, errored: bool) -> None:
        """The ``get`` returned or raised: report the last completions, join, call ``finish``
        (once: a second call does nothing)."""
        if self._finished:
            return
        self._finished = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for *_, finish in self.hooks:
            if finish is not None:
                finish(self.dsk, self.state, errored)
