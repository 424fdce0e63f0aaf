"""Profilers built on the scheduler callbacks: per-task timings and process resources."""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..utils import key_split
from .callbacks import Callback

__all__ = ["Profiler", "TaskData", "ResourceProfiler", "ResourceData"]


class TaskData(NamedTuple):
    """One task's run: ``start``/``end`` are ``time.time()`` seconds."""

    key: Any
    task: Any
    start: float
    end: float
    worker_id: Any


class Profiler(Callback):
    """Record when every task started and ended, and on which worker.

    >>> from lazyarr.local import get_sync
    >>> with Profiler() as prof:
    ...     get_sync({'x': 1, 'y': (abs, 'x')}, 'y')
    1
    >>> sorted(t.key for t in prof.results)
    ['x', 'y']

    With threads (and sync) the times are taken around each task in the thread that runs it.
    With processes the hooks run in the calling process when a batch is sent and when it
    returns, so tasks of one batch share their times.
    """

    def __init__(self) -> None:
        self.results: list[TaskData] = []
        self._starts: dict = {}
        self._lock = threading.Lock()

    def __enter__(self) -> "Profiler":
        self.clear()
        return super().__enter__()  # type: ignore[return-value]

    def clear(self) -> None:
        """Forget recorded tasks."""
        with self._lock:
            self.results = []
            self._starts = {}

    def _pretask(self, key: Any, dsk: Mapping, state: Any) -> None:
        with self._lock:
            self._starts[key] = time.time()

    def _posttask(self, key: Any, result: Any, dsk: Mapping, state: Any, worker_id: Any) -> None:
        end = time.time()
        with self._lock:
            start = self._starts.pop(key, end)
            self.results.append(TaskData(key, dsk.get(key) if isinstance(dsk, Mapping) else None,
                                         start, end, worker_id))

    def summary(self) -> dict[str, tuple[int, float]]:
        """Per kind of task (:func:`lazyarr.utils.key_split`): ``(count, total seconds)``."""
        out: dict[str, tuple[int, float]] = {}
        for t in self.results:
            name = key_split(t.key)
            count, total = out.get(name, (0, 0.0))
            out[name] = (count + 1, total + (t.end - t.start))
        return out


class ResourceData(NamedTuple):
    """One sample: ``time.time()``, resident memory in MiB and CPU percent (this process and
    its descendants, such as process-pool workers)."""

    time: float
    memory_mib: float
    cpu_percent: float


class ResourceProfiler(Callback):
    """Sample memory and CPU use every ``dt`` seconds while computations run (needs psutil).

    Sampling starts with each computation and stops (the sampling thread is joined) when it
    finishes; ``results`` accumulates samples over every computation in the ``with`` block.
    """

    def __init__(self, dt: float = 0.1):
        if dt <= 0:
            raise ValueError("ResourceProfiler needs dt > 0")
        try:
            import psutil
        except ImportError as e:  # pragma: no cover - psutil is a dependency
            raise ImportError("ResourceProfiler needs psutil: pip install psutil") from e
        self._psutil = psutil
        self.dt = dt
        self.results: list[ResourceData] = []
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __enter__(self) -> "ResourceProfiler":
        self.results = []
        return super().__enter__()  # type: ignore[return-value]

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._stop()

    def _start(self, dsk: Mapping) -> None:
        self._stop()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._sample_loop, name="lazyarr-resources", daemon=True)
        self._thread.start()

    def _finish(self, dsk: Mapping, state: Any, errored: bool) -> None:
        self._stop()

    def _stop(self) -> None:
        thread = self._thread
        if thread is not None:
            self._stopping.set()
            thread.join()
            self._thread = None

    def _sample_loop(self) -> None:
        psutil = self._psutil
        me = psutil.Process(os.getpid())
        procs: dict[int, Any] = {}
        while True:
            self.results.append(self._sample(me, procs))
            if self._stopping.wait(self.dt):
                break

    def _sample(self, me: Any, procs: dict) -> ResourceData:
        psutil = self._psutil
        try:
            current = [me] + me.children(recursive=True)
        except psutil.Error:
            current = [me]
        memory = 0
        cpu = 0.0
        for p in current:
            proc = procs.setdefault(p.pid, p)  # keep the object: cpu_percent measures between calls
            try:
                memory += proc.memory_info().rss
                cpu += proc.cpu_percent(None)
            except psutil.Error:
                procs.pop(p.pid, None)
        return ResourceData(time.time(), memory / 2**20, cpu)
