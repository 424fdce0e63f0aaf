"""LocalCluster: a scheduler and workers on this machine, owned by this process.

::

    from runtime import LocalCluster, Client
    with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
        client.submit(sum, [1, 2, 3]).result()          # 6

The scheduler serves from a background thread of this process. Workers run as separate Python
processes (``python -m runtime.cli worker ... --lifeline``), or as threads of this process with
``processes=False``. Every worker process reads a *lifeline* pipe on its stdin: when this process
closes the cluster, exits, or dies without cleaning up, the pipe reaches end-of-file and the
worker shuts itself down, so no worker outlives its owner. ``close()`` joins every process and
thread; a finalizer does the same at garbage collection and at interpreter exit.
"""
from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

from .cli import normalize_address, parse_memory_limit
from .cluster_base import SchedulerOwner, retire_then_stop
from .resources import check_resources, format_resources

__all__ = ["LocalCluster", "WorkerProcess", "default_sizes", "scheduler_workers"]

logger = logging.getLogger("runtime.cluster")

#: Seconds a worker gets to close cleanly before it is terminated, then killed.
WORKER_CLOSE_TIMEOUT = 10.0


def default_sizes(n_workers: int | None, threads_per_worker: int | None, processes: bool,
                  cores: int | None = None) -> tuple[int, int]:
    """Workers and threads per worker that fill a machine of ``cores`` cores.

    With processes, small machines get one single-threaded worker per core; larger ones a
    balance of processes and threads. Without processes, one worker holds every core.

    >>> default_sizes(None, None, True, cores=2)
    (2, 1)
    >>> default_sizes(None, None, True, cores=16)
    (4, 4)
    >>> default_sizes(None, None, False, cores=8)
    (1, 8)
    >>> default_sizes(3, None, True, cores=8)
    (3, 2)
    """
    cores = cores or os.cpu_count() or 1
    if n_workers is not None and threads_per_worker is not None:
        return n_workers, threads_per_worker
    if n_workers is not None:
        return n_workers, max(1, cores // max(1, n_workers))
    if threads_per_worker is not None:
        return max(1, cores // threads_per_worker), threads_per_worker
    if not processes:
        return 1, cores
    if cores <= 4:
        return cores, 1
    # The smallest factor of cores that is at least its square root: 16 -> 4x4, 12 -> 4x3, 6 -> 3x2.
    root = cores ** 0.5
    procs = min(f for f in range(1, cores + 1) if cores % f == 0 and f >= root)
    return procs, cores // procs


def scheduler_workers(scheduler: Any) -> dict[str, dict]:
    """The workers a running :class:`~runtime.scheduler.Scheduler` knows, by address.

    Each value holds at least ``name``, ``nthreads`` and ``memory_limit``. Read in the
    scheduler's own thread, so the table is never seen half-updated.
    """
    return scheduler.sync(lambda state: {
        address: {"name": ws.name, "nthreads": ws.nthreads, "memory_limit": ws.memory_limit}
        for address, ws in state.workers.items()})


# ----------------------------------------------------------------------------------------------
# Worker processes


def _package_root() -> str:
    """The directory holding the ``runtime`` package, so children import the same code as we do."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _extra_sys_path() -> list[str]:
    """Entries of ``sys.path`` that a fresh interpreter would not have: not the standard library
    nor site-packages (a child finds those itself, and they must stay behind PYTHONPATH)."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    extra = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.getcwd())
        if os.path.isdir(path) and not any(path == p or path.startswith(p + os.sep) for p in prefixes):
            extra.append(path)
    return extra


class WorkerProcess:
    """One worker in its own Python process, owned (and eventually joined) by this process.

    The child runs ``python -m runtime.cli worker SCHEDULER --lifeline ...`` with its stdin on a
    pipe we hold: closing the pipe asks it to close cleanly (its tasks and data are handed back
    to the scheduler), and if we die the pipe closes by itself.
    """

    def __init__(self, scheduler: str, *, name: str, nthreads: int = 1, memory_limit: int | None = None,
                 hostname: str = "127.0.0.1", log_level: str = "warning", announce: bool = False,
                 extra_args: Sequence[str] = (), resources: dict | None = None) -> None:
        self.scheduler = normalize_address(scheduler)
        #: More ``lazyarr-worker`` flags (security keys, ``--insecure``).
        self.extra_args = list(extra_args)
        #: The abstract resources the worker declares (``--resources``).
        self.resources = check_resources(resources)
        self.name = name
        self.nthreads = nthreads
        self.memory_limit = memory_limit
        self.hostname = hostname
        self.log_level = log_level
        self.announce = announce
        self.address: str | None = None
        self.reported = False
        self._proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The command line that starts the child."""
        cmd = [sys.executable, "-m", "runtime.cli", "worker", self.scheduler, "--lifeline", "--no-nanny",
               "--name", self.name, "--nthreads", str(self.nthreads), "--host", self.hostname,
               "--memory-limit", str(self.memory_limit or 0), "--log-level", self.log_level]
        if not self.announce:
            cmd.append("--no-announce")
        if self.resources:
            cmd += ["--resources", format_resources(self.resources)]
        return cmd + self.extra_args

    def environment(self) -> dict[str, str]:
        """The child's environment: ours, with our import path and native thread pools sized.

        The child gets this process's extra ``sys.path`` entries (the script's directory, paths
        added by the user or by pytest), so functions pickled by reference from modules we can
        import can be imported by the worker too, as with ``multiprocessing``'s spawn.
        """
        env = dict(os.environ)
        paths = [_package_root()] + _extra_sys_path() + env.get("PYTHONPATH", "").split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(p for p in paths if p))
        # Native thread pools sized to the worker, or every worker would grab every core.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.setdefault(var, str(self.nthreads))
        # Received frames on transparent huge pages: ~2.5x faster large peer transfers.
        from .worker import worker_process_environment

        return worker_process_environment(env)

    def start(self) -> "WorkerProcess":
        """Start the child process and return at once (see :meth:`LocalCluster.wait_for_workers`)."""
        if self._proc is not None:
            raise RuntimeError(f"worker process {self.name!r} was already started")
        # A new session: Ctrl-C in a terminal interrupts the owner, which then closes us in order.
        self._proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, env=self.environment(),
                                      start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self._proc is None:
            raise RuntimeError(f"worker process {self.name!r} has not been started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit code, or ``None`` while it runs."""
        return None if self._proc is None else self._proc.poll()

    def poll(self) -> int | None:
        """Same as :attr:`returncode`."""
        return self.returncode

    def is_alive(self) -> bool:
        """Is the child running?"""
        return self._proc is not None and self._proc.poll() is None

    def request_close(self) -> None:
        """Ask the child to close cleanly (closes its lifeline); returns at once."""
        if self._proc is not None and self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:  # it already exited and the pipe is broken: nothing to ask
                pass

    def join(self, timeout: float = WORKER_CLOSE_TIMEOUT) -> int | None:
        """Wait up to ``timeout`` seconds for the child to exit; then terminate and finally kill it."""
        proc = self._proc
        if proc is None:
            return None
        self.request_close()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("worker process %s (pid %d) did not close within %.1f s; terminating it",
                           self.name, proc.pid, timeout)
        proc.terminate()
        try:
            return proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def close(self, timeout: float = WORKER_CLOSE_TIMEOUT) -> int | None:
        """Close the child cleanly and join it."""
        return self.join(timeout)

    def __repr__(self) -> str:
        state = "not started" if self._proc is None else ("running" if self.is_alive() else f"exited {self.returncode}")
        return f"<WorkerProcess {self.name!r} {self.address or ''} {state}>"


class NannyWorkerProcess(WorkerProcess):
    """A :class:`WorkerProcess` run under a :class:`~runtime.nanny.Nanny` (through a
    :class:`~runtime.nannies.NannyGroup` of one): restarted when it dies, its deaths reported to
    the scheduler, restarted by ``client.restart()``. Same handle API; :attr:`pid` is the
    current worker process's. ``security`` secures the nanny's link to the scheduler."""

    def __init__(self, *args: Any, security: Any = None, nanny_options: dict | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.security = security
        self.nanny_options = dict(nanny_options or {})
        self.group: Any = None
        self._closer: threading.Thread | None = None

    def start(self) -> "NannyWorkerProcess":
        """Start the nanny (which starts the worker) and return once the worker process runs."""
        if self.group is not None:
            raise RuntimeError(f"worker process {self.name!r} was already started")
        from .nannies import NannyGroup

        base = self.command()
        self.group = NannyGroup(self.scheduler, [lambda nanny_id: [*base, "--nanny-id", nanny_id]],
                                memory_limit=self.memory_limit, env=self.environment(), names=[self.name],
                                security=self.security, **self.nanny_options)
        return self

    @property
    def nanny(self) -> Any:
        """The :class:`~runtime.nanny.Nanny` watching the worker."""
        if self.group is None:
            raise RuntimeError(f"worker process {self.name!r} has not been started")
        return self.group.nannies[0]

    @property
    def pid(self) -> int:
        """The current worker process's id (``None`` while the nanny restarts it)."""
        return self.nanny.pid

    @property
    def returncode(self) -> int | None:
        """``None`` while the nanny keeps a worker running (or restarting); 0 once stopped."""
        if self.group is None or self.nanny.status in ("running", "restarting", "starting"):
            return None
        return 0

    def is_alive(self) -> bool:
        """Does the nanny keep a worker running?"""
        return self.group is not None and self.returncode is None

    def request_close(self) -> None:
        """Start closing the nanny and its worker; returns at once (:meth:`join` waits)."""
        if self.group is not None and self._closer is None:
            self._closer = threading.Thread(target=self.group.close, name=f"lazyarr-close-{self.name}")
            self._closer.start()

    def join(self, timeout: float = WORKER_CLOSE_TIMEOUT) -> int | None:
        """Close the nanny and its worker (SIGTERM, then SIGKILL after ``timeout``) and wait."""
        if self.group is None:
            return None
        self.request_close()
        self._closer.join(timeout + 10.0)
        return 0


class _ThreadWorker:
    """A :class:`~runtime.worker.Worker` in this process, with the same handle API as WorkerProcess."""

    def __init__(self, scheduler: str, *, name: str, nthreads: int = 1, memory_limit: int | None = None,
                 hostname: str = "127.0.0.1", security: Any = None, insecure: bool = False,
                 resources: dict | None = None) -> None:
        self.scheduler = scheduler
        self.resources = resources
        self.security = security
        self.insecure = insecure
        self.name = name
        self.nthreads = nthreads
        self.memory_limit = memory_limit
        self.hostname = hostname
        self.worker: Any = None
        self.reported = False
        self._closed = False

    @property
    def address(self) -> str | None:
        """The worker's peer address."""
        return None if self.worker is None else self.worker.address

    def start(self) -> "_ThreadWorker":
        """Construct the worker; it serves from its own threads."""
        from .worker import Worker

        self.worker = Worker(scheduler=self.scheduler, hostname=self.hostname, nthreads=self.nthreads,
                             name=self.name, memory_limit=self.memory_limit, security=self.security,
                             insecure=self.insecure, resources=self.resources)
        return self

    def is_alive(self) -> bool:
        """Has the worker been started, and not closed nor told to close by the scheduler?"""
        return self.worker is not None and self.poll() is None

    def poll(self) -> int | None:
        """``None`` while running (or not started yet), ``0`` once closed or told to close by
        the scheduler (mirrors :meth:`WorkerProcess.poll`)."""
        worker = self.worker
        return 0 if self._closed or (worker is not None and worker.closing) else None

    def request_close(self) -> None:
        """Close the worker (in-process closing is synchronous)."""
        worker, self.worker = self.worker, None
        self._closed = True
        if worker is not None:
            worker.close()

    def join(self, timeout: float = WORKER_CLOSE_TIMEOUT) -> int | None:
        """Close the worker if still open."""
        self.request_close()
        return 0

    close = join

    def __repr__(self) -> str:
        return f"<ThreadWorker {self.name!r} {self.address or ''} {'running' if self.worker else 'closed'}>"


# ----------------------------------------------------------------------------------------------
# LocalCluster


class _Resources:
    """Everything a LocalCluster owns, closable without the cluster object (for the finalizer)."""

    def __init__(self) -> None:
        self.scheduler: Any = None
        self.workers: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.closed = False

    def close(self, timeout: float = WORKER_CLOSE_TIMEOUT) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            workers = list(self.workers.values())
            self.workers.clear()
        _close_workers(workers, timeout)
        if self.scheduler is not None:
            self.scheduler.close()


def _close_workers(workers: list, timeout: float) -> None:
    """Close many workers at once: ask all, then join all, so their shutdowns overlap."""
    deadline = time.monotonic() + timeout
    processes = [w for w in workers if isinstance(w, WorkerProcess)]
    threads = [w for w in workers if not isinstance(w, WorkerProcess)]
    for w in processes:
        w.request_close()
    for w in threads:
        w.join(timeout)
    for w in processes:
        w.join(max(0.5, deadline - time.monotonic()))


class LocalCluster(SchedulerOwner):
    """A scheduler and workers on this machine, started now and closed by :meth:`close`.

    Parameters
    ----------
    n_workers, threads_per_worker:
        Defaults fill the machine (see :func:`default_sizes`). ``n_workers=0`` starts only the
        scheduler; add workers later with :meth:`scale`.
    processes:
        ``True``: each worker is its own Python process. ``False``: workers are threads of this
        process (no start-up cost, but tasks share this process's GIL).
    nanny:
        With processes, run each worker under a nanny (the default): a worker that dies is
        restarted and the scheduler learns why it died; ``client.restart()`` restarts them.
        A dict also turns nannies on and passes its items to each :class:`~runtime.nanny.Nanny`
        (e.g. ``{'max_backoff': 2.0}``).
    memory_limit:
        Per worker: ``None`` or ``'auto'`` shares the machine's memory evenly between the
        workers; a size such as ``'4GB'`` or a number of bytes; ``0`` for no limit.
    hostname:
        The loopback or local address to listen on (``'127.0.0.1'``). Any other address needs
        ``security`` (or ``insecure=True``).
    security:
        A :class:`~runtime.security.Security` for the scheduler and the workers: the cluster's
        secret key, the workers' keypair and the authorized keys, e.g.
        ``Security.from_directory(DIR, name='worker')`` after ``lazyarr-keys DIR``. Clients then
        connect with their own ``Security`` (docs/security.md).
    insecure:
        Allow a non-loopback ``hostname`` without ``security`` (a loud warning is logged).
    timeout:
        Seconds to wait for workers to register before raising ``TimeoutError``.
    dashboard_address:
        ``'host:port'`` of the scheduler's web dashboard (port 0: a free port; ``None``: off).
        See ``docs/dashboard.md``; :attr:`dashboard_link` is its URL.
    allow_run_on_scheduler:
        Let clients run functions in the scheduler (``client.run_on_scheduler``); off by
        default, as the scheduler otherwise never unpickles what clients send.
    resources:
        Abstract resources of *each* worker, ``{'GPU': 1}``, as ``lazyarr-worker --resources``:
        tasks submitted with ``resources={'GPU': 1}`` run only on workers that have them, never
        more at once than the amounts allow (docs/futures.md).
    """

    def __init__(self, n_workers: int | None = None, threads_per_worker: int | None = None,
                 processes: bool = True, memory_limit: int | str | None = None, hostname: str = "127.0.0.1",
                 port_to_workers: int = 0, port_to_clients: int = 0, timeout: float = 30.0,
                 log_level: str = "warning", security: Any = None, insecure: bool = False,
                 dashboard_address: str | None = "127.0.0.1:8787", nanny: bool | dict = True,
                 allow_run_on_scheduler: bool = False, resources: dict | None = None) -> None:
        for label, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{label} must be a non-negative integer, not {value!r}")
        if threads_per_worker == 0:
            raise ValueError("threads_per_worker must be at least 1")
        n, threads = default_sizes(n_workers, threads_per_worker, processes)
        self.processes = bool(processes)
        self.nanny = bool(nanny) and self.processes
        self._nanny_options = nanny if isinstance(nanny, dict) else {}
        self.threads_per_worker = threads
        self._memory_spec = "auto" if memory_limit is None else memory_limit
        self.memory_limit = parse_memory_limit(self._memory_spec, nthreads=1, total_nthreads=max(1, n))
        self.hostname = hostname
        self.timeout = timeout
        self.log_level = log_level
        self.security = security
        self.insecure = insecure
        self.resources = check_resources(resources, "LocalCluster resources")
        self._names = itertools.count()
        self._resources = _Resources()
        self._finalizer = weakref.finalize(self, self._resources.close)

        from .scheduler import Scheduler

        self._resources.scheduler = Scheduler(hostname=hostname, port_to_workers=port_to_workers,
                                              port_to_clients=port_to_clients, security=security,
                                              insecure=insecure, dashboard_address=dashboard_address,
                                              allow_run_on_scheduler=allow_run_on_scheduler)
        try:
            self.scale(n)
        except BaseException:
            self.close()
            raise

    # -- addresses and members ---------------------------------------------------------------

    @property
    def workers(self) -> dict[str, Any]:
        """The running workers by name: :class:`WorkerProcess` handles, or in-process workers.

        A worker that exited on its own (``client.retire_workers`` closes the workers it
        retires) is joined and dropped from this table the next time it is read.
        """
        self._reap_exited()
        return dict(self._resources.workers)

    def _reap_exited(self) -> None:
        """Join and forget the workers that are no longer running (told to close by the
        scheduler, or crashed without a nanny), so that counts and ``scale`` see only live ones."""
        with self._resources.lock:
            exited = [name for name, handle in self._resources.workers.items() if handle.poll() is not None]
            handles = [self._resources.workers.pop(name) for name in exited]
        if handles:
            _close_workers(handles, WORKER_CLOSE_TIMEOUT)

    # -- scaling -------------------------------------------------------------------------------

    def scale(self, n: int, timeout: float | None = None) -> None:
        """Run exactly ``n`` workers: start new ones, or retire the newest.

        Returns when the scheduler has registered every new worker (or forgotten every removed
        one). Scaling down never loses data that can be kept: the leaving workers are retired
        first, as ``adapt`` does (docs/adaptive.md): they get no new tasks and every result
        still needed that only they hold, ``scatter``-ed data included, is copied to the
        workers that stay; then they are closed, and their running tasks go elsewhere.

        If that data cannot be moved within ``timeout`` seconds (default: the cluster's), for
        instance when scaling to 0 while futures still hold results, or when the copies fail,
        the workers are closed anyway (as in Dask; a warning names them): ``scale(n)`` always
        ends with ``n`` workers, results only they held are recomputed from their graph, and
        scattered data among them is lost (its futures raise ``LostDataError``).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"scale() takes a non-negative number of workers, not {n!r}")
        if self._resources.closed:
            raise RuntimeError("this LocalCluster is closed")
        timeout = self.timeout if timeout is None else timeout
        self._reap_exited()
        current = list(self._resources.workers)
        if n > len(current):
            self._start_workers(n - len(current), timeout)
        elif n < len(current):
            retire_then_stop(self.scheduler, current[n:], lambda names: self._stop_workers(names, timeout),
                             timeout, keep_unmoved=False)

    def _start_workers(self, count: int, timeout: float) -> None:
        started = []
        for _ in range(count):
            name = str(next(self._names))
            handle = self._make_worker(name)
            self._resources.workers[name] = handle
            started.append(handle)
            handle.start()
        self._wait_registered({h.name for h in started}, started, timeout)

    def _make_worker(self, name: str) -> Any:
        kwargs = dict(name=name, nthreads=self.threads_per_worker, memory_limit=self.memory_limit,
                      hostname=self.hostname, resources=self.resources)
        if self.processes:
            extra = (self.security.cli_args() if self.security is not None else []) + \
                (["--insecure"] if self.insecure else [])
            if self.nanny:
                return NannyWorkerProcess(self.scheduler_address_to_workers, log_level=self.log_level,
                                          extra_args=extra, security=self.security,
                                          nanny_options=self._nanny_options, **kwargs)
            return WorkerProcess(self.scheduler_address_to_workers, log_level=self.log_level, extra_args=extra,
                                 **kwargs)
        return _ThreadWorker(self.scheduler_address_to_workers, security=self.security, insecure=self.insecure,
                             **kwargs)

    def _stop_workers(self, names: list[str], timeout: float) -> None:
        """Close the workers ``names`` (retired or not) and wait until the scheduler forgets them."""
        with self._resources.lock:
            handles = [h for name in names if (h := self._resources.workers.pop(name, None)) is not None]
        _close_workers(handles, timeout)
        gone = set(names)
        deadline = time.monotonic() + timeout
        while any(info.get("name") in gone for info in scheduler_workers(self.scheduler).values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the scheduler still lists closed workers {sorted(gone)} after {timeout} s")
            time.sleep(0.005)

    def _wait_registered(self, names: set[str], handles: list, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            registered = {info.get("name"): address for address, info in scheduler_workers(self.scheduler).items()}
            if names <= registered.keys():
                for handle in handles:
                    if isinstance(handle, WorkerProcess):
                        handle.address = registered[handle.name]
                return
            for handle in handles:
                if handle.poll() is not None:
                    raise RuntimeError(f"worker {handle.name!r} exited with code {handle.poll()} while starting; "
                                       "see its error output above")
            if time.monotonic() > deadline:
                missing = sorted(names - registered.keys())
                raise TimeoutError(f"workers {missing} did not register with the scheduler at "
                                   f"{self.scheduler_address_to_workers} within {timeout} s")
            time.sleep(0.002)

    def wait_for_workers(self, n: int, timeout: float | None = None) -> None:
        """Block until the scheduler has at least ``n`` workers (including ones started by hand)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while len(scheduler_workers(self.scheduler)) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} workers registered within {timeout} s")
            time.sleep(0.005)

    # -- lifetime ------------------------------------------------------------------------------

    def close(self, timeout: float = WORKER_CLOSE_TIMEOUT) -> None:
        """Close every worker (joining processes and threads), then the scheduler. Idempotent."""
        from .adaptive import stop_adapting

        stop_adapting(self)
        if self._finalizer.alive:
            self._finalizer.detach()
            self._resources.close(timeout)

    def __repr__(self) -> str:
        if self._resources.closed:
            return "LocalCluster(closed)"
        kind = "processes" if self.processes else "threads"
        return (f"LocalCluster({self.scheduler_address!r}, workers={len(self._resources.workers)}, "
                f"threads_per_worker={self.threads_per_worker}, {kind})")
