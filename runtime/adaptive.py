"""Adaptive scaling: grow a cluster when tasks queue, shrink it when workers stay idle.

Two layers, as everywhere in the runtime:

* :class:`AdaptivePolicy` is the **decision**, a plain object with no I/O. Once per interval it
  is given a :class:`SchedulerLoad` (tasks queued and processing, the measured task duration,
  each worker's load and held bytes) and the number of workers the cluster has asked for, and
  returns a :class:`Recommendation`: how many workers to have, and which idle ones to retire.
  It remembers, per worker, for how many intervals in a row it has been idle (hysteresis).
* :class:`Adaptive` is the **loop**: an owned background thread that reads the load from the
  scheduler, asks the policy, and acts through the cluster: ``scale(n)`` to grow, and to shrink
  first ``Scheduler.retire_workers`` (which copies data only the leaving workers hold to the
  others, then forgets them) and then the cluster stops exactly those workers (a LocalCluster
  closes them, a job-queue cluster cancels their jobs). ``stop()`` or the cluster's ``close()``
  joins the thread.

>>> policy = AdaptivePolicy(minimum=1, maximum=4, target_duration=1.0, wait_count=2)
>>> busy = SchedulerLoad(queued=20, processing=1, avg_duration=0.5,
...                      workers=(WorkerLoad('tcp://a', 'a', 1, 1, 0),))
>>> policy.recommend(busy).target
4
"""
from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["AdaptivePolicy", "Adaptive", "Recommendation", "SchedulerLoad", "WorkerLoad", "adapt", "parse_seconds",
           "scheduler_load", "stop_adapting"]

logger = logging.getLogger("runtime.adaptive")

#: Assumed duration of a task before any has finished (as Dask's ``unknown-task-duration``).
DEFAULT_TASK_DURATION = 0.5
#: Ready queues up to this long are counted exactly (skipping stale entries); longer ones by length.
_EXACT_QUEUE = 10_000

_UNITS = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "": 1.0}
_TIME = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|min|m|h|)\s*$")


def parse_seconds(value: Any, label: str = "duration") -> float:
    """Seconds in ``value``: a number, or a string such as ``'500ms'``, ``'2s'``, ``'1min'``.

    >>> parse_seconds('500ms'), parse_seconds('2s'), parse_seconds(3), parse_seconds('1min')
    (0.5, 2.0, 3.0, 60.0)
    """
    if isinstance(value, bool):
        raise TypeError(f"{label} must be seconds or a string like '2s', not {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and _TIME.match(value):
        number, unit = _TIME.match(value).groups()
        seconds = float(number) * _UNITS[unit]
    else:
        raise ValueError(f"{label} must be seconds or a string like '500ms', '2s', '1min', not {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{label} must be positive, not {value!r}")
    return seconds


# ----------------------------------------------------------------------------------------------
# The decision


@dataclass(frozen=True)
class WorkerLoad:
    """One worker as the policy sees it."""

    address: str
    name: str
    nthreads: int
    processing: int     # tasks sent to it and not finished
    nbytes: int         # bytes of results it holds


@dataclass(frozen=True)
class SchedulerLoad:
    """The scheduler's load at one moment (see :func:`scheduler_load`)."""

    queued: int                   # ready tasks waiting at the scheduler for a free slot or a worker
    processing: int               # tasks running or queued on workers
    avg_duration: float | None    # measured seconds per task, None before any finished
    workers: tuple = ()           # WorkerLoad of every worker the scheduler knows


@dataclass(frozen=True)
class Recommendation:
    """What to do now: have ``target`` workers; to get there, retire ``retire`` (addresses of
    idle workers; the rest of any decrease is workers asked for that have not joined yet)."""

    target: int
    retire: tuple = ()
    reason: str = ""


class AdaptivePolicy:
    """Pure scaling decision with hysteresis (call :meth:`recommend` once per interval).

    * **Up**, at once: the work known to the scheduler (queued plus processing tasks times the
      average task duration) should take about ``target_duration`` seconds, so
      ``ceil(work / target_duration / threads per worker)`` workers are wanted.
    * **Down**, slowly: only workers idle (nothing processing) for ``wait_count`` intervals in a
      row are retired, those holding the fewest bytes first, and only as many as the work does
      not need. Workers asked for but not joined are given up after ``wait_count`` low intervals.
    * Always within ``[minimum, maximum]``.

    >>> p = AdaptivePolicy(minimum=1, maximum=3, target_duration=1.0, wait_count=2)
    >>> idle = SchedulerLoad(0, 0, 0.1, (WorkerLoad('a', 'a', 1, 0, 0), WorkerLoad('b', 'b', 1, 0, 10)))
    >>> p.recommend(idle).retire, p.recommend(idle).retire
    ((), ('a',))
    """

    def __init__(self, minimum: int = 0, maximum: int | float | None = None, target_duration: Any = 5.0,
                 wait_count: int = 3, default_duration: float = DEFAULT_TASK_DURATION) -> None:
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
            raise ValueError(f"minimum must be a non-negative integer, not {minimum!r}")
        if maximum is None or maximum == math.inf:
            maximum = math.inf
        elif isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < 0:
            raise ValueError(f"maximum must be a non-negative integer or None, not {maximum!r}")
        if maximum < minimum:
            raise ValueError(f"maximum={maximum} is less than minimum={minimum}")
        if isinstance(wait_count, bool) or not isinstance(wait_count, int) or wait_count < 1:
            raise ValueError(f"wait_count must be a positive integer, not {wait_count!r}")
        self.minimum = minimum
        self.maximum = maximum
        self.target_duration = parse_seconds(target_duration, "target_duration")
        self.wait_count = wait_count
        self.default_duration = default_duration
        self._idle: dict[str, int] = {}   # address -> intervals in a row with nothing processing
        self._low = 0                     # intervals in a row with fewer workers wanted than asked for

    def desired(self, load: SchedulerLoad) -> int:
        """Workers the current work calls for, within ``[minimum, maximum]``."""
        duration = load.avg_duration if load.avg_duration else self.default_duration
        work = (load.queued + load.processing) * duration
        threads = (sum(w.nthreads for w in load.workers) / len(load.workers)) if load.workers else 1.0
        wanted = math.ceil(work / self.target_duration / max(threads, 1.0) - 1e-9)
        if load.queued and wanted == 0:
            wanted = 1
        return int(min(self.maximum, max(self.minimum, wanted)))

    def recommend(self, load: SchedulerLoad, requested: int | None = None) -> Recommendation:
        """The recommendation for this interval. ``requested``: workers the cluster has asked
        for, joined or not (default: the workers in ``load``)."""
        joined = len(load.workers)
        requested = joined if requested is None else max(int(requested), 0)
        present = set()
        for w in load.workers:
            present.add(w.address)
            self._idle[w.address] = self._idle.get(w.address, 0) + 1 if w.processing == 0 else 0
        for address in [a for a in self._idle if a not in present]:
            del self._idle[address]
        want = self.desired(load)
        if want > requested:
            self._low = 0
            return Recommendation(want, (), f"{load.queued} tasks queued, {load.processing} processing")
        if want == requested:
            self._low = 0
            return Recommendation(requested, (), "steady")
        self._low += 1
        surplus = requested - want
        drop_unjoined = min(max(requested - joined, 0), surplus) if self._low >= self.wait_count else 0
        idle = [w for w in load.workers if self._idle.get(w.address, 0) >= self.wait_count]
        idle.sort(key=lambda w: (w.nbytes, w.address))
        retire = tuple(w.address for w in idle[:surplus - drop_unjoined])
        if not retire and not drop_unjoined:
            return Recommendation(requested, (), "waiting for workers to stay idle")
        for address in retire:
            self._idle.pop(address, None)
        self._low = 0
        return Recommendation(requested - drop_unjoined - len(retire), retire,
                              f"{len(retire)} idle workers, {drop_unjoined} not joined")


def scheduler_load(state: Any) -> SchedulerLoad:
    """Read a :class:`SchedulerLoad` from a ``SchedulerState`` (run it in the scheduler's thread,
    e.g. ``scheduler.sync(scheduler_load)``). Linear in the workers; not in the graph, nor in a
    long queue (counted as its length, which may include a few entries no longer ready)."""
    from .scheduler_state import READY

    queue = state.queue
    if len(queue) > _EXACT_QUEUE:
        queued = len(queue)
    else:
        queued = sum(1 for ts in queue if ts.state is READY and ts.worker is None)
    queued += len(state.unrunnable)
    workers = []
    processing = 0
    durations = []
    for address, ws in state.workers.items():
        if address in state.retiring:
            continue
        processing += len(ws.processing)
        if ws.avg_duration is not None:
            durations.append(ws.avg_duration)
        workers.append(WorkerLoad(address, str(ws.name), ws.nthreads, len(ws.processing), ws.nbytes))
    avg = sum(durations) / len(durations) if durations else None
    return SchedulerLoad(queued, processing, avg, tuple(workers))


# ----------------------------------------------------------------------------------------------
# The loop


class _LocalAdapter:
    """How :class:`Adaptive` acts on a LocalCluster."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def requested(self) -> int:
        return len(self.cluster.workers)

    def scale_up(self, n: int) -> None:
        self.cluster.scale(n)

    def cancel_unjoined(self, count: int) -> None:
        """A LocalCluster's workers have all joined once ``scale`` returns: nothing to do."""

    def expand(self, names: Sequence[str]) -> list[str]:
        return [n for n in names if n in self.cluster.workers]

    def stop(self, names: Sequence[str]) -> None:
        mine = self.expand(names)
        if mine:
            self.cluster._stop_workers(mine, self.cluster.timeout)


class _JobQueueAdapter:
    """How :class:`Adaptive` acts on a SLURM/PBS cluster: workers belong to jobs."""

    #: While some jobs have no worker, ask the batch system this often whether they still exist
    #: (a job that ended in the queue must not count as a worker on its way).
    REFRESH_INTERVAL = 10.0

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self._refreshed = time.monotonic()

    def _job(self, name: str) -> str | None:
        from .jobqueue.core import job_of_worker

        return job_of_worker(name, self.cluster.job_name, list(self.cluster._resources.jobs))

    def requested(self) -> int:
        cluster = self.cluster
        now = time.monotonic()
        if now - self._refreshed > self.REFRESH_INTERVAL:
            self._refreshed = now
            if len(cluster.workers) < len(cluster._resources.jobs) * cluster.processes:
                cluster.jobs  # forgets jobs that ended (walltime, failure) with a warning
        return len(cluster._resources.jobs) * cluster.processes

    def scale_up(self, n: int) -> None:
        self.cluster.scale(n)

    def cancel_unjoined(self, count: int) -> None:
        """Cancel up to ``count`` workers' worth of jobs none of whose workers joined, newest first."""
        cluster = self.cluster
        with cluster._resources.lock:
            joined = {info["job_id"] for info in cluster.workers.values()}
            idle_jobs = [j for j in reversed(list(cluster._resources.jobs)) if j not in joined]
            victims = idle_jobs[:count // cluster.processes]
            if victims:
                cluster._cancel(victims)

    def expand(self, names: Sequence[str]) -> list[str]:
        """``names`` and every other worker of their jobs (a job is cancelled as a whole)."""
        jobs = {self._job(n) for n in names} - {None}
        return sorted(name for name, info in self.cluster.workers.items() if info["job_id"] in jobs)

    def stop(self, names: Sequence[str]) -> None:
        self.cluster._stop_workers(names)


def _adapter(cluster: Any) -> Any:
    from .cluster import LocalCluster

    if isinstance(cluster, LocalCluster):
        return _LocalAdapter(cluster)
    from .jobqueue.core import JobQueueCluster

    if isinstance(cluster, JobQueueCluster):
        return _JobQueueAdapter(cluster)
    raise TypeError(f"adaptive scaling needs a LocalCluster, SLURMCluster or PBSCluster, not {type(cluster).__name__}")


class Adaptive:
    """Scale ``cluster`` between ``minimum`` and ``maximum`` workers from a background thread.

    Usually made by ``cluster.adapt(...)``, which also stops it when the cluster closes. Every
    ``interval`` the thread reads the scheduler's load, asks :class:`AdaptivePolicy`, and scales
    up with ``cluster.scale(n)`` or retires idle workers after moving the data only they hold.
    ``stop()`` joins the thread; the cluster keeps the workers it has at that moment.
    """

    def __init__(self, cluster: Any, minimum: int = 0, maximum: int | None = None, interval: Any = "1s",
                 wait_count: int = 3, target_duration: Any = "5s", retire_timeout: Any = "30s") -> None:
        self.policy = AdaptivePolicy(minimum, maximum, target_duration, wait_count)
        self.interval = parse_seconds(interval, "interval")
        self.retire_timeout = parse_seconds(retire_timeout, "retire_timeout")
        self.cluster = cluster
        self._adapter = _adapter(cluster)
        #: The last decisions taken, for inspection: (time, 'up' or 'down', target, addresses to retire).
        self.log: deque = deque(maxlen=1000)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lazyarr-adaptive", daemon=True)
        self._thread.start()

    @property
    def minimum(self) -> int:
        """The fewest workers kept."""
        return self.policy.minimum

    @property
    def maximum(self) -> int | float:
        """The most workers started (``math.inf`` without a limit)."""
        return self.policy.maximum

    def __repr__(self) -> str:
        state = "running" if self._thread.is_alive() else "stopped"
        return f"<Adaptive minimum={self.minimum} maximum={self.maximum} interval={self.interval:g}s {state}>"

    def stop(self, timeout: float = 60.0) -> None:
        """Stop adapting and join the thread (a scaling step under way finishes first)."""
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("adaptive thread did not stop within %s s", timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.step()
            except Exception:  # a failing step (batch command, timeout) must not end adapting
                if self._stopping.is_set() or getattr(self.cluster, "status", "running") == "closed":
                    return
                logger.exception("adaptive scaling step failed; retrying in %s s", self.interval)
            self._stopping.wait(self.interval)

    def step(self) -> Recommendation:
        """One decision and its action (the thread calls this every ``interval``)."""
        scheduler = self.cluster.scheduler
        load = scheduler.sync(scheduler_load)
        requested = self._adapter.requested()
        rec = self.policy.recommend(load, requested)
        if self._stopping.is_set():
            return rec
        if rec.target > requested:
            logger.info("adaptive: scaling up from %d to %d workers (%s)", requested, rec.target, rec.reason)
            self.log.append((time.time(), "up", rec.target, ()))
            self._adapter.scale_up(rec.target)
        elif rec.target < requested:
            self.log.append((time.time(), "down", rec.target, rec.retire))
            unjoined = requested - rec.target - len(rec.retire)
            if unjoined > 0:
                self._adapter.cancel_unjoined(unjoined)
            if rec.retire:
                self._retire(load, rec.retire)
        return rec

    def _retire(self, load: SchedulerLoad, addresses: tuple) -> None:
        from .cluster_base import retire_then_stop

        names = {w.address: w.name for w in load.workers}
        wanted = self._adapter.expand([names[a] for a in addresses if a in names])
        if not wanted:
            return
        # workers whose data cannot be moved now stay: they are tried again once idle long enough
        gone = retire_then_stop(self.cluster.scheduler, wanted, self._adapter.stop, self.retire_timeout,
                                keep_unmoved=True, should_stop=self._stopping.is_set)
        if gone:
            logger.info("adaptive: retired workers %s", gone)


def adapt(cluster: Any, **kwargs: Any) -> Adaptive:
    """Start adapting ``cluster`` (the body of ``cluster.adapt(**kwargs)``), replacing an earlier
    :class:`Adaptive` of it; :func:`stop_adapting` (called by ``cluster.close()``) ends it."""
    if cluster.status == "closed":
        raise RuntimeError(f"this {type(cluster).__name__} is closed")
    stop_adapting(cluster)
    cluster._adaptive = Adaptive(cluster, **kwargs)
    return cluster._adaptive


def stop_adapting(cluster: Any) -> None:
    """Stop and join the :class:`Adaptive` of ``cluster``, if any."""
    adaptive = getattr(cluster, "_adaptive", None)
    if adaptive is not None:
        adaptive.stop()
