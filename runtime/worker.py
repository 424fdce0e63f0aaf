"""The worker: runs tasks in a thread pool, holds their results, serves them to peers.

Threads, each owned and joined by :meth:`Worker.close`:

* one **I/O thread** owns every socket: a DEALER to the scheduler (its routing id is the worker's
  address), a ROUTER bound at :attr:`Worker.address` that serves data to peers, one DEALER per peer
  it fetches from, and a pipe the executors use to wake it;
* ``nthreads`` **executor threads** take the highest-priority ready task, run it, store its result
  in :attr:`Worker.data` and, holding the worker's lock, make ready the local tasks that were
  waiting on it, so a chain sent in one ``compute`` message runs back to back without any
  message in between. They queue completions; the I/O thread reports them in batches. A task
  that calls ``secede()`` leaves the pool: a new executor thread takes its place, and its own
  thread ends with the task (unless it calls ``rejoin()``, see :meth:`Worker._rejoin`);
* a thread per ``client.run`` call while it runs (:class:`runtime.remote_call.CallThreads`).

Local task states: ``waiting`` (for inputs computed here or fetched from peers), ``ready``
(in the priority heap), ``executing``. Inputs held elsewhere are fetched from the addresses the
scheduler sent along (``who_has``), one request per peer, several peers at once; fetched copies
are reported to the scheduler, which then knows of the replica and frees it when done.
"""
from __future__ import annotations

import contextlib
import heapq
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, MutableMapping
from itertools import count
from typing import Any

import zmq

from lazyarr import config
from lazyarr.core import execute_task
from lazyarr.utils import parse_bytes

from . import protocol
from .errors import ProtocolError, SerializationError, VersionMismatchError
from .security import Security, check_listen
from .memory import MemoryPolicy, parse_memory_limit
from .resources import check_resources
from .spill import SpillBuffer

__all__ = ["Worker", "worker_process_environment", "current_task"]

logger = logging.getLogger("runtime.worker")

_WAITING, _READY, _EXECUTING, _CANCELLED = "waiting", "ready", "executing", "cancelled"

#: In a thread of a worker: ``.worker`` (executor threads, and threads running ``client.run``
#: calls), ``.key`` (the task running, in an executor thread), ``.seceded`` (that thread left the
#: worker's thread pool: :meth:`Worker._secede`).
_execution = threading.local()


def current_task() -> tuple:
    """``(worker, key)`` of the task running in this thread; ``(worker, None)`` in a thread
    running a ``client.run`` call on a worker; ``(None, None)`` anywhere else.

    >>> current_task()
    (None, None)
    """
    return getattr(_execution, "worker", None), getattr(_execution, "key", None)


#: perf_counter() + _WALL is wall-clock time: task start/stop times for the task stream.
_WALL = time.time() - time.perf_counter()


class _Task:
    __slots__ = ("key", "payload", "deps", "priority", "state", "nmissing", "resources")

    def __init__(self, key: Any, payload: Any, deps: tuple, priority: int, resources: dict | None = None):
        self.key = key
        self.payload = payload
        self.deps = deps
        self.priority = priority
        self.state = _WAITING
        self.nmissing = 0
        self.resources = resources  # what it needs of the worker's resources while it runs

    def __lt__(self, other: "_Task") -> bool:
        return self.priority < other.priority


def worker_process_environment(environ: dict | None = None) -> dict:
    """Environment variables for a new worker *process* (for launchers such as the CLI and
    LocalCluster), merged into ``environ`` (default ``os.environ``).

    ``glibc.malloc.hugetlb=1`` makes malloc back its large allocations with transparent huge
    pages. ZeroMQ allocates a received frame with malloc, so a 200 MB array arriving from a peer
    otherwise costs ~49,000 page faults (measured), about as long as the transfer itself; with
    huge pages ~300. It must be set before the process starts, hence this helper.

    ``MALLOC_TRIM_THRESHOLD_`` (unless already set) fixes glibc's thresholds, which it otherwise
    raises after each large free: buffers freed by spilling to disk then go back to the
    operating system at once instead of staying in the heap, so process memory really drops
    after a spill and a worker paused for its memory resumes (measured: a worker spilling 10 MB
    arrays kept ~35 MB more resident without it).

    >>> env = worker_process_environment({})
    >>> env['GLIBC_TUNABLES'], env['MALLOC_TRIM_THRESHOLD_']
    ('glibc.malloc.hugetlb=1', '65536')
    """
    env = dict(os.environ if environ is None else environ)
    tunables = env.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" not in tunables:
        env["GLIBC_TUNABLES"] = f"{tunables}:glibc.malloc.hugetlb=1" if tunables else "glibc.malloc.hugetlb=1"
    env.setdefault("MALLOC_TRIM_THRESHOLD_", "65536")
    return env


def _remove_upload_dir(path: str) -> None:
    """Take a closed worker's upload directory (and the archives in it) off ``sys.path`` and delete it."""
    sys.path[:] = [p for p in sys.path if p != path and not p.startswith(path + os.sep)]
    shutil.rmtree(path, ignore_errors=True)


def _check_address(address: str, what: str) -> str:
    if not isinstance(address, str) or not address.startswith("tcp://") or ":" not in address[6:]:
        raise ValueError(f"{what} must be an address like 'tcp://127.0.0.1:4444', not {address!r}")
    return address


class Worker:
    """A worker serving ``scheduler`` (its ``address_to_workers``).

    Starts in the background at construction; registers with the scheduler as soon as it is
    reachable (it may start first) and again if the scheduler restarts. ``close()`` tells the
    scheduler (which reschedules this worker's tasks) and joins every thread. A context manager.

    Parameters
    ----------
    scheduler: the scheduler's address for workers, ``'tcp://host:port'``.
    hostname, port_to_workers: where to serve data to peers (0 picks a free port).
    data: any ``MutableMapping`` to hold results (default a new dict).
    nthreads: executor threads (default: number of CPUs).
    name: a name for logs and ``workers=`` restrictions (default: the address).
    memory_limit: bytes, or anything :func:`runtime.memory.parse_memory_limit` takes (``'4GiB'``,
        ``'auto'``, ``0.5``); ``None``/0 for no limit. With a limit the worker follows a
        :class:`~runtime.memory.MemoryPolicy`: past ``target`` its data spills to disk (when
        ``data`` is not given it is a :class:`~runtime.spill.SpillBuffer`, closed with the worker),
        past ``spill`` process memory it spills more, past ``pause`` it starts no new task until
        memory drops (see docs/memory.md).
    security: a :class:`~runtime.security.Security` with the cluster's secret key (the worker
        serves its peers), this worker's own keypair and the authorized keys; every socket then
        uses CURVE and only authorized peers get in.
    insecure: allow a non-loopback ``hostname`` without ``security`` (logs a warning).
    nanny: the identity of the nanny watching this worker's process (``lazyarr-worker`` passes
        it): the scheduler then matches the nanny's reports of deaths to this worker.
    on_close_request: called with a reason (from the I/O thread; it must return quickly) when
        the scheduler tells this worker to close, which it does once it has retired it
        (``client.retire_workers``, ``close_workers=True``). The worker has then stopped
        serving (see :attr:`closing`); the owner finishes with :meth:`close`, and a worker
        process exits with code 0 (``lazyarr-worker`` passes a function that does that).
    resources: abstract resources this worker has, ``{'GPU': 2, 'MEM': 10e9}``: tasks that need
        them (``client.submit(..., resources={'GPU': 1})``) run only on workers that have them,
        never more at once than the amounts allow (``docs/futures.md``).
    """

    def __init__(self, scheduler: str, hostname: str = "127.0.0.1", port_to_workers: int | None = 0,
                 data: MutableMapping | None = None, nthreads: int | None = None, name: str | None = None,
                 memory_limit: int | str | None = None, *, heartbeat_interval: float | None = None,
                 max_message_size: int | str | None = None, security: Security | None = None,
                 insecure: bool = False, nanny: str | None = None,
                 on_close_request: Callable[[str], Any] | None = None, resources: dict | None = None):
        self.scheduler_address = _check_address(scheduler, "scheduler")
        #: The abstract resources this worker declares (``{'GPU': 2.0}``).
        self.resources: dict[str, float] = check_resources(resources, "Worker resources")
        self.nanny = nanny
        if on_close_request is not None and not callable(on_close_request):
            raise TypeError(f"on_close_request must be a function taking a reason, not {on_close_request!r}")
        self._on_close_request = on_close_request
        check_listen(hostname, security, insecure, "the worker")
        self.security = security
        if data is not None and not isinstance(data, MutableMapping):
            raise TypeError(f"data must be a MutableMapping (e.g. a dict), not {type(data).__name__}")
        if nthreads is not None and (not isinstance(nthreads, int) or nthreads < 1):
            raise ValueError(f"nthreads must be a positive integer, not {nthreads!r}")
        self.nthreads = nthreads or os.cpu_count() or 1
        self.memory_limit = parse_memory_limit(memory_limit, nthreads=self.nthreads)
        #: Decides when to spill and pause (``None`` without a memory limit).
        self.memory_policy: MemoryPolicy | None = MemoryPolicy(self.memory_limit) if self.memory_limit else None
        self._owns_data = data is None and self.memory_policy is not None
        if data is None:
            data = SpillBuffer(self.memory_policy.bytes_at("target")) if self._owns_data else {}
        self.data: MutableMapping = data
        # A SpillBuffer locks itself: reading it (maybe from disk) need not hold the worker's lock.
        self._data_lock: Any = contextlib.nullcontext() if isinstance(data, SpillBuffer) else None
        self._monitor_interval = float(config.get("distributed.worker.memory.monitor-interval"))
        self._paused = False
        self._heartbeat_interval = float(heartbeat_interval if heartbeat_interval is not None
                                         else config.get("runtime.heartbeat-interval"))
        self._fetch_timeout = float(config.get("runtime.fetch-timeout"))
        self._max_size = protocol.max_message_size() if max_message_size is None else parse_bytes(max_message_size)

        self._ctx = zmq.Context()
        self._peers_in = protocol.configure_socket(self._ctx.socket(zmq.ROUTER), self._max_size)
        self._peers_in.setsockopt(zmq.SNDHWM, 0)
        self._peers_in.setsockopt(zmq.RCVHWM, 0)
        self._authenticator = None
        try:
            if security is not None:
                # peers must present an authorized key too: nothing unauthenticated is unpickled
                security.check_client("the worker")  # fail early without a key of its own
                security.configure_server(self._peers_in, "the worker")
                self._authenticator = security.start_authenticator(self._ctx, "the worker")
            if port_to_workers:
                self._peers_in.bind(f"tcp://{hostname}:{int(port_to_workers)}")
                port = int(port_to_workers)
            else:
                port = self._peers_in.bind_to_random_port(f"tcp://{hostname}")
        except BaseException as e:
            self._peers_in.close(0)
            if self._authenticator is not None:
                self._authenticator.stop()
            self._ctx.term()
            if isinstance(e, zmq.ZMQError):
                raise OSError(f"worker cannot listen on tcp://{hostname}:{port_to_workers}: {e}") from None
            raise
        self.hostname = hostname
        self.port = port
        self.address = f"tcp://{hostname}:{port}"
        self.name = name if name is not None else self.address
        self._to_scheduler = protocol.configure_socket(self._ctx.socket(zmq.DEALER), self._max_size, linger_ms=500)
        self._to_scheduler.setsockopt(zmq.ROUTING_ID, self.address.encode())
        self._to_scheduler.setsockopt(zmq.SNDHWM, 0)
        self._to_scheduler.setsockopt(zmq.RCVHWM, 0)
        if security is not None:
            security.configure_client(self._to_scheduler, "the worker")
        self._to_scheduler.connect(self.scheduler_address)

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        if self._data_lock is None:
            self._data_lock = self._lock
        self.tasks: dict = {}
        self._ready: list = []
        # Ready tasks whose resources are in use here, and what is in use: the scheduler sends
        # a task needing resources only once they are free, but a task it cancelled may still
        # be running, holding them (as in Dask, such a task waits for it).
        self._constrained: list = []
        self._used: dict = {}
        self._waiters: dict = defaultdict(list)   # key -> local tasks waiting for it
        self._finished: list = []                 # (key, nbytes, duration)
        self._erred: list = []                    # (key, payload)
        self._added: list = []                    # (key, nbytes): copies fetched from peers
        self._missing: list = []                  # (task key, dependency, holder)
        self._seceded: list = []                  # keys of tasks whose thread left the pool
        self._call_results: list = []             # answers to client.run / upload_file calls
        # Thread pool: ``_active`` executor threads take tasks (``nthreads`` of them, but for a
        # moment); a task that secedes frees its thread's place and a new thread takes it; one
        # that rejoins waits on ``_slot_free`` until an executor gives its place up and ends.
        self._active = 0
        self._rejoining = 0
        self._slot_free = threading.Condition(self._lock)
        self._calls = None  # CallThreads for client.run, made on first use
        self._task_client: Any = None             # the Client of get_client() in tasks, made on first use
        self._task_client_lock = threading.Lock()
        self._upload_dir: str | None = None       # files from client.upload_file
        #: The scheduler's address for clients (from its welcome): where get_client() connects.
        self.scheduler_address_to_clients: str | None = None
        self._wake_pending = False
        self._executing = 0
        self._closing = False
        self._closed = False
        self.registered = False
        # when to say that no scheduler has answered yet (then once a minute)
        self._unanswered_warning = time.monotonic() + float(config.get("runtime.connect-timeout"))

        self._who_has: dict = {}                  # dependency -> holder addresses (from the scheduler)
        self._fetching: dict = {}                 # dependency -> (peer address, request id)
        self._requests: dict = {}                 # request id -> (peer, keys, start time)
        self._peer_socks: dict = {}
        self._left: set = set()
        self._rid = count()
        self._garbage_log = protocol.RateLimitedLog(logger)

        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)  # a full pipe already means "wake up"
        self._executors: list = []
        self._thread_ids = count()
        self._io = threading.Thread(target=self._io_loop, name=f"lazyarr-worker-{port}-io", daemon=True)
        with self._lock:
            for _ in range(self.nthreads):
                self._add_executor()
        self._io.start()

    # ------------------------------------------------------------------ public

    def __repr__(self) -> str:
        return f"<Worker {self.address} threads={self.nthreads} scheduler={self.scheduler_address}>"

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def closing(self) -> bool:
        """Has this worker stopped serving? True once :meth:`close` was called, or once the
        scheduler told it to close (after retiring it); its owner then calls :meth:`close`."""
        return self._closing

    def close(self, timeout: float = 10.0) -> None:
        """Leave the cluster: tell the scheduler, stop the executors and the I/O thread.

        A task still running finishes in its thread (Python cannot interrupt it) but its result
        is dropped; the scheduler has already rescheduled it elsewhere.
        """
        if self._closed:
            return
        self._closed = True
        with self._work:
            self._closing = True
            self._work.notify_all()
            self._slot_free.notify_all()
        self._wake()
        with self._task_client_lock:
            client = self._task_client
        if client is not None:
            client.close(timeout)  # tasks waiting on it (worker_client) fail and end their threads
        self._io.join(timeout)
        with self._lock:
            executors = list(self._executors)
        for t in executors:
            t.join(timeout)
        stuck = self._calls.close(timeout) if self._calls is not None else []
        if self._authenticator is not None:
            self._authenticator.stop()
        stuck += [t.name for t in (self._io, *executors) if t.is_alive()]
        if stuck:
            logger.error("worker %s: threads still running after close: %s", self.address, stuck)
        else:
            self._ctx.term()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._owns_data:
            self.data.close()  # removes the spill directory
        if self._upload_dir is not None:
            _remove_upload_dir(self._upload_dir)

    # ------------------------------------------------------------------ executors

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (OSError, ValueError):
            pass

    def _add_executor(self) -> None:
        """Start one more executor thread (lock held); finished ones are forgotten."""
        self._executors = [t for t in self._executors if t.is_alive()]
        thread = threading.Thread(target=self._execute_loop, daemon=True,
                                  name=f"lazyarr-worker-{self.port}-exec-{next(self._thread_ids)}")
        self._active += 1
        self._executors.append(thread)
        thread.start()

    def _give_up_slot(self) -> bool:
        """A task wants its thread's place back (:meth:`_rejoin`) and the pool is full: this
        executor ends to make room (lock held). True if it should end."""
        if self._rejoining and self._active >= self.nthreads:
            self._active -= 1
            self._slot_free.notify()
            return True
        return False

    def _execute_loop(self) -> None:
        lock = self._work
        tid = threading.get_ident()  # the task stream's row for this thread
        _execution.worker = self
        _execution.seceded = False
        while True:
            with lock:
                if _execution.seceded:
                    return  # its task left the pool and is done: a new thread took its place
                while ((not self._ready or self._paused) and not self._closing
                       and not (self._rejoining and self._active >= self.nthreads)):
                    lock.wait()
                if self._closing:
                    self._active -= 1
                    return
                if self._give_up_slot():
                    return
                if not self._ready or self._paused:
                    continue
                task = heapq.heappop(self._ready)[1]
                if task.state is not _READY or self.tasks.get(task.key) is not task:
                    continue
                if task.resources is not None and not self._take_resources(task):
                    continue  # in _constrained until running tasks give the resources back
                task.state = _EXECUTING
                self._executing += 1
            # Inputs are read outside the worker's lock: a spilled one comes back from disk.
            inputs, failure = self._read_inputs(task)
            if inputs is None and failure is None:
                if task.resources is not None:
                    with lock:
                        self._give_back_resources(task)
                continue  # an input is gone (reported) or the task was cancelled
            start = time.perf_counter()
            if failure is None:
                _execution.key = task.key
                try:
                    result = execute_task(protocol.loads_task(task.payload), inputs)
                except BaseException as e:  # a task must never kill its thread
                    failure = protocol.exception_payload(e, traceback.format_exc())
                finally:
                    _execution.key = None
            duration = time.perf_counter() - start
            inputs = None
            nbytes = protocol.sizeof(result) if failure is None else 0
            if failure is None:
                self._make_room(nbytes)
            with lock:
                self._executing -= 1
                if task.resources is not None:
                    self._give_back_resources(task)
                if self.tasks.get(task.key) is not task:
                    result = None
                    continue  # freed (or stolen) while running
                del self.tasks[task.key]
                if failure is None:
                    try:
                        self.data[task.key] = result
                    except Exception as e:  # e.g. the data mapping is closed or broken
                        failure = protocol.exception_payload(e, traceback.format_exc())
                if failure is not None:
                    self._erred.append((task.key, failure))
                else:
                    self._finished.append((task.key, nbytes, duration, start + _WALL, tid))
                    self._release_waiters(task.key)
                result = None
                if not self._wake_pending:
                    self._wake_pending = True
                    self._wake()

    def _take_resources(self, task: _Task) -> bool:
        """Take the resources ``task`` needs, if free (lock held); else it waits in
        :attr:`_constrained`. Amounts beyond what this worker declares count as all of it, so a
        task the scheduler sent is never held forever."""
        have, used = self.resources, self._used
        needs = {name: min(amount, have.get(name, 0.0)) for name, amount in task.resources.items()}
        if any(used.get(name, 0.0) + amount > have.get(name, 0.0) + 1e-9 for name, amount in needs.items()):
            self._constrained.append((task.priority, task))
            return False
        for name, amount in needs.items():
            used[name] = used.get(name, 0.0) + amount
        task.resources = needs
        return True

    def _give_back_resources(self, task: _Task) -> None:
        """``task`` stopped running: its resources are free; the tasks waiting for some are
        ready again (lock held)."""
        used = self._used
        for name, amount in task.resources.items():
            left = used.get(name, 0.0) - amount
            if left > 1e-9:
                used[name] = left
            else:
                used.pop(name, None)
        task.resources = None  # given back once
        if self._constrained:
            for item in self._constrained:
                heapq.heappush(self._ready, item)
            self._work.notify(len(self._constrained))
            self._constrained = []

    # ------------------------------------------------------------------ tasks that wait for tasks

    def _secede(self, key: Any) -> None:
        """The task ``key``, running in this executor thread, leaves the thread pool to wait
        (``runtime.secede()``): a new executor thread takes its place at once, and the
        scheduler stops counting it against this worker's threads. The thread ends when the
        task does, unless the task calls :meth:`_rejoin` first. Idempotent."""
        with self._work:
            if _execution.seceded or self._closing:
                return
            _execution.seceded = True
            self._active -= 1
            self._add_executor()
            self._seceded.append(key)
            if not self._wake_pending:
                self._wake_pending = True
                self._wake()

    def _rejoin(self) -> None:
        """A seceded task takes a place in the thread pool again (``runtime.rejoin()``): wait
        until an executor gives its place up (the next to finish a task, or an idle one), so the
        pool never runs more than ``nthreads`` tasks for long. No-op if it did not secede."""
        with self._work:
            if not getattr(_execution, "seceded", False):
                return
            self._rejoining += 1
            self._work.notify_all()  # an idle executor gives its place up at once
            try:
                while self._active >= self.nthreads and not self._closing:
                    self._slot_free.wait()
            finally:
                self._rejoining -= 1
            self._active += 1
            _execution.seceded = False

    def _client_for_tasks(self, timeout: float | None = None) -> Any:
        """The client that tasks on this worker share (``runtime.get_client()``), connected to
        the scheduler's port for clients with this worker's keys; closed by :meth:`close`."""
        with self._task_client_lock:
            client = self._task_client
            if client is not None and not client.closed:
                return client
            if self._closing:
                raise RuntimeError(f"worker {self.address} is closing: its tasks cannot open a client")
            if self.scheduler_address_to_clients is None:
                raise RuntimeError(f"worker {self.address} does not know the scheduler's address for clients yet "
                                   f"(it has not registered)")
            from .client import Client

            client = self._task_client = Client(self.scheduler_address_to_clients, timeout=timeout,
                                                set_as_default=False, security=self.security)
            return client

    # ------------------------------------------------------------------ calls outside tasks

    def _start_call(self, op: dict) -> None:
        """``client.run``: run the call in a thread of its own (never in the I/O thread: it may be
        slow), with this worker as ``lazyarr_worker`` / ``dask_worker``; answer when done."""
        if self._calls is None:
            from .remote_call import CallThreads

            self._calls = CallThreads(f"lazyarr-worker-{self.port}")

        def call() -> None:
            from .remote_call import run_call

            _execution.worker = self  # get_worker() and get_client() work in calls too
            ok, result = run_call(op["function"], {"lazyarr_worker": self, "dask_worker": self})
            if op.get("reply", True):
                self._answer(op, ok, result)

        self._calls.start(call)

    def _answer(self, op: dict, ok: bool, result: Any) -> None:
        """Queue the answer to a call for the I/O thread to send."""
        with self._lock:
            self._call_results.append({"op": "call-result", "client": op["client"], "rid": op["rid"],
                                       "worker": self.address, "ok": ok, "result": result})
            if not self._wake_pending:
                self._wake_pending = True
                self._wake()

    def _upload(self, op: dict) -> None:
        """``client.upload_file``: write the file to this worker's upload directory, put it on
        ``sys.path`` and import it. Done in the I/O thread, before any op that follows, so tasks
        sent after it can import it."""
        from .remote_call import import_file

        try:
            if self._upload_dir is None:
                self._upload_dir = tempfile.mkdtemp(prefix=f"lazyarr-worker-{self.port}-files-")
            path = os.path.join(self._upload_dir, os.path.basename(op["filename"]))
            with open(path, "wb") as f:
                f.write(op["data"])
            if op.get("load", True):
                import_file(path)
            elif path.endswith((".zip", ".egg")) and path not in sys.path:
                sys.path.insert(0, path)
            elif self._upload_dir not in sys.path:
                sys.path.insert(0, self._upload_dir)
            answer = True, protocol.serialize(None)
        except BaseException as e:  # a broken file must not stop the I/O thread
            answer = False, protocol.exception_payload(e, traceback.format_exc())
            logger.warning("worker %s: uploaded file %s: %s: %s", self.address, op.get("filename"), type(e).__name__, e)
        if op.get("reply", True):
            self._answer(op, *answer)

    def _read_inputs(self, task: _Task) -> tuple:
        """``(inputs, None)``, or ``(None, failure payload)`` if one cannot be read back from disk,
        or ``(None, None)`` if one is gone (reported to the scheduler as missing)."""
        data = self.data
        try:
            with self._data_lock:
                return {dep: data[dep] for dep in task.deps}, None
        except KeyError as e:
            self._task_lost_input(task, e.args[0])
            return None, None
        except Exception as e:  # a spill file that cannot be read: the task fails with that error
            return None, protocol.exception_payload(e, traceback.format_exc())

    def _make_room(self, nbytes: int) -> None:
        """Spill, outside the worker's lock, what storing ``nbytes`` more would push past target,
        so the store itself (under the lock) rarely writes to disk."""
        data = self.data
        if isinstance(data, SpillBuffer) and data.target is not None:
            excess = data.fast_bytes + nbytes - data.target
            if excess > 0 and nbytes <= data.target:
                data.spill(excess)

    def _release_waiters(self, key: Any) -> None:
        """``key`` is now in data: tasks waiting on it may become ready (lock held)."""
        waiters = self._waiters.pop(key, None)
        if not waiters:
            return
        ready = 0
        for w in waiters:
            if w.state is _WAITING and self.tasks.get(w.key) is w:
                w.nmissing -= 1
                if w.nmissing == 0:
                    w.state = _READY
                    heapq.heappush(self._ready, (w.priority, w))
                    ready += 1
        if ready:
            self._work.notify(ready)

    def _task_lost_input(self, task: _Task, dep: Any) -> None:
        with self._work:
            self._executing -= 1
            if self.tasks.get(task.key) is task:
                del self.tasks[task.key]
                self._missing.append((task.key, dep, None))
                if not self._wake_pending:
                    self._wake_pending = True
                    self._wake()

    # ------------------------------------------------------------------ I/O thread

    def _io_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._to_scheduler, zmq.POLLIN)
        poller.register(self._peers_in, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        self._poller = poller
        self._register()
        next_beat = time.monotonic() + self._heartbeat_interval
        next_check = time.monotonic() if self.memory_policy is not None else float("inf")
        try:
            while not self._closing:
                wait = max(0.0, min(next_beat, next_check) - time.monotonic())
                events = dict(poller.poll(int(wait * 1000) + 1))
                if self._closing:
                    break
                if self._wake_r in events:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                for sock in list(events):
                    if sock is self._to_scheduler:
                        self._drain(sock, self._on_scheduler, routed=False)
                    elif sock is self._peers_in:
                        self._drain(sock, self._on_peer_request, routed=True)
                    elif isinstance(sock, zmq.Socket):
                        self._drain(sock, self._on_peer_reply, routed=False)
                self._report()
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + self._monitor_interval
                    self._check_memory()
                if now >= next_beat:
                    next_beat = now + self._heartbeat_interval
                    self._heartbeat(now)
            if self.registered:
                self._send_scheduler([{"op": "unregister"}])
        except Exception:
            logger.exception("worker %s: I/O loop crashed", self.address)
        finally:
            self._peers_in.close(0)
            for sock in self._peer_socks.values():
                sock.close(0)
            self._to_scheduler.close()
            with self._work:
                self._closing = True
                self._work.notify_all()

    def _drain(self, sock: zmq.Socket, handler: Any, routed: bool) -> None:
        for _ in range(1000):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            ident = frames[0].bytes if routed else None
            try:
                ops = protocol.decode(frames[1:] if routed else frames)
            except VersionMismatchError as e:
                self._garbage_log.warning("worker %s: %s", self.address, e)
                if routed:
                    self._safe_send(sock, [ident, *protocol.error_frames(str(e))])
                continue
            except ProtocolError as e:
                self._garbage_log.warning("worker %s dropped a malformed message: %s", self.address, e)
                continue
            for op in ops:
                try:
                    if routed:
                        handler(ident, op)
                    else:
                        handler(op)
                except Exception as e:
                    self._garbage_log.warning("worker %s could not handle op %r: %s: %s", self.address,
                                              op.get("op"), type(e).__name__, e)
                    logger.debug("handler failure", exc_info=True)

    def _safe_send(self, sock: zmq.Socket, frames: list) -> None:
        try:
            sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as e:
            logger.warning("worker %s: could not send: %s", self.address, e)

    def _send_scheduler(self, ops: list) -> None:
        self._safe_send(self._to_scheduler, protocol.encode(ops))

    def _weight(self, key: Any) -> int:
        """The size of ``data[key]`` without reading a spilled value back from disk."""
        weight = getattr(self.data, "weight", None)
        return weight(key) if weight is not None else protocol.sizeof(self.data[key])

    def _register(self) -> None:
        with self._lock:
            keys = list(self.data.keys())
            nbytes = [self._weight(k) for k in keys]
        self._send_scheduler([{"op": "register", "address": self.address, "name": self.name,
                               "nthreads": self.nthreads, "memory_limit": self.memory_limit,
                               "keys": keys, "nbytes": nbytes, "nanny": self.nanny, "pid": os.getpid(),
                               "resources": self.resources}])
        if self._paused:
            self._send_scheduler([{"op": "paused", "paused": True}])

    def _rss(self) -> int | None:
        """This process's resident memory, or ``None`` if it cannot be read."""
        try:
            proc = self._process
        except AttributeError:
            try:
                import psutil

                proc = self._process = psutil.Process()
            except Exception:
                proc = self._process = None
        if proc is None:
            return None
        try:
            return int(proc.memory_info().rss)
        except Exception:
            return None

    def _check_memory(self, rss: int | None = None) -> None:
        """One reading of process memory acted on (I/O thread, every ``monitor-interval``):
        spill data past the ``spill`` threshold, pause or resume execution at ``pause``."""
        policy = self.memory_policy
        rss = self._rss() if rss is None else rss
        if policy is None or rss is None:
            return
        data = self.data
        managed = data.fast_bytes if isinstance(data, SpillBuffer) else 0
        decision = policy.observe(rss, managed)
        goal = policy.bytes_at("target")
        if self._owns_data and goal is not None:
            # The buffer's own target bounds data, but the process also holds unmanaged memory:
            # lower the target by it, so that data plus the rest stays near the target between
            # two readings (on a small limit the interpreter alone is a large share).
            data.target = max(goal // 8, goal - max(0, rss - managed))
        if decision.spill_bytes and isinstance(data, SpillBuffer):
            freed = data.spill(decision.spill_bytes)
            logger.debug("worker %s spilled %d bytes: %s", self.address, freed, decision.reason)
        if decision.pause_changed:
            self._set_paused(decision.paused, decision.reason)

    def _set_paused(self, paused: bool, reason: str = "") -> None:
        """Stop (or restart) handing ready tasks to the executors; tell the scheduler."""
        with self._work:
            if self._paused == paused:
                return
            self._paused = paused
            if not paused:
                self._work.notify_all()
        if paused:
            logger.warning("worker %s paused: %s", self.address, reason)
        else:
            logger.info("worker %s resumed: %s", self.address, reason)
        self._send_scheduler([{"op": "paused", "paused": paused}])

    def _warn_if_unanswered(self, now: float) -> None:
        """Not registered yet: say so, naming the address and what should be there."""
        if self.registered or now < self._unanswered_warning:
            return
        self._unanswered_warning = now + 60.0
        hint = ("if it uses CURVE security, are this worker's keys authorized and the cluster's public key right?"
                if self.security is not None else "if it requires CURVE security, give this worker its keys "
                                                  "(--security-dir, docs/security.md)")
        logger.warning("worker %s: no lazyarr scheduler has answered at %s yet (is a scheduler running there, and is "
                       "this its address for workers? %s); still trying", self.address, self.scheduler_address, hint)

    def _heartbeat(self, now: float) -> None:
        self._warn_if_unanswered(now)
        metrics: dict = {"executing": self._executing, "ready": len(self._ready), "in_memory": len(self.data),
                         "paused": self._paused}
        if isinstance(self.data, SpillBuffer):
            metrics["fast_bytes"] = self.data.fast_bytes
            metrics["spilled_bytes"] = self.data.spilled_bytes
        rss = self._rss()
        if rss is not None:
            metrics["memory"] = rss
        self._send_scheduler([{"op": "heartbeat", "metrics": metrics}])
        for rid, (peer, keys, start) in list(self._requests.items()):
            if now - start > self._fetch_timeout:
                logger.warning("worker %s: fetch of %d keys from %s timed out", self.address, len(keys), peer)
                self._requests.pop(rid, None)
                self._fetch_failed(peer, keys)

    def _report(self) -> None:
        with self._lock:
            if not (self._finished or self._erred or self._added or self._missing or self._seceded
                    or self._call_results):
                self._wake_pending = False
                return
            finished, self._finished = self._finished, []
            erred, self._erred = self._erred, []
            added, self._added = self._added, []
            missing, self._missing = self._missing, []
            seceded, self._seceded = self._seceded, []
            answers, self._call_results = self._call_results, []
            self._wake_pending = False
        ops: list = answers
        if finished:
            # task stream: wall-clock start/stop and thread per task (None: not run here)
            starts = [f[3] if len(f) > 3 else None for f in finished]
            ops.append({"op": "finished", "keys": [f[0] for f in finished], "nbytes": [f[1] for f in finished],
                        "duration": sum(f[2] for f in finished), "starts": starts,
                        "stops": [f[3] + f[2] if len(f) > 3 else None for f in finished],
                        "threads": [f[4] if len(f) > 4 else None for f in finished]})
        if added:
            ops.append({"op": "finished", "keys": [k for k, _ in added], "nbytes": [n for _, n in added]})
        if erred:
            ops.append({"op": "erred", "keys": [k for k, _ in erred], "exceptions": [e for _, e in erred]})
        if missing:
            ops.append({"op": "missing", "items": [list(m) for m in missing]})
        if seceded:  # after 'finished': the inputs of a task that seceded are known to be here
            ops.append({"op": "seceded", "keys": seceded})
        self._send_scheduler(ops)

    # ------------------------------------------------------------------ ops from the scheduler

    def _on_scheduler(self, op: dict) -> None:
        name = op["op"]
        if name == "compute":
            self._compute(op)
        elif name == "free-keys":
            self._free(op["keys"])
        elif name == "steal-request":
            self._send_scheduler([{"op": "steal-response", "keys": op["keys"],
                                   "released": self._release_unstarted(op["keys"])}])
        elif name == "send-data":
            values, missing, errors = self._serialize_keys(op["keys"])
            reply = {"op": "client-data", "client": op["client"], "rid": op["rid"],
                     "keys": [k for k, _ in values], "values": [v for _, v in values], "missing": missing}
            if errors:
                # a result that cannot be pickled reaches the client as that error
                reply["keys"] += [k for k, _ in errors]
                reply["values"] += [v for _, v in errors]
                reply["errors"] = [k for k, _ in errors]
            self._send_scheduler([reply])
        elif name == "store-data":
            self._store(op["keys"], op["values"])
        elif name == "acquire-replicas":
            self._acquire_replicas(op["keys"], dict(op.get("who_has", ())))
        elif name == "run":
            self._start_call(op)
        elif name == "upload-file":
            self._upload(op)
        elif name == "worker-left":
            self._peer_left(op["address"])
        elif name == "welcome":
            self.scheduler_address_to_clients = op.get("address_to_clients")
            if not self.registered:
                logger.info("worker %s registered with %s", self.address, self.scheduler_address)
            self.registered = True
        elif name == "register-again":
            self.registered = False
            self._register()
        elif name == "close":
            self._close_requested(str(op.get("reason", "asked by the scheduler")))
        elif name == "error":
            (logger.error if op.get("fatal") else logger.warning)(
                "worker %s: the scheduler reported: %s", self.address, op.get("message"))
        else:
            raise ProtocolError(f"unknown op {name!r} from the scheduler")

    def _close_requested(self, reason: str) -> None:
        """The scheduler retired this worker and tells it to go: its data is safe elsewhere.

        Stop serving now (the I/O loop ends after this message, saying ``unregister``, and the
        executors stop), whether or not anyone listens; then tell the owner, whose
        :meth:`close` joins the threads (a thread cannot join itself).
        """
        logger.info("worker %s: the scheduler asks it to close (%s)", self.address, reason)
        with self._work:
            self._closing = True
            self._work.notify_all()
        if self._on_close_request is not None:
            try:
                self._on_close_request(reason)
            except Exception:
                logger.exception("worker %s: on_close_request callback failed", self.address)

    def _compute(self, op: dict) -> None:
        who_has = dict(op.get("who_has", ()))
        to_fetch: list = []
        keys = op["keys"]
        # the client's priority= above the scheduler's own bits, as the scheduler orders them
        user_prios = op.get("user_prios") or (0,) * len(keys)
        needs = op.get("resources") or (None,) * len(keys)
        with self._work:
            data = self.data
            tasks = self.tasks
            nready = 0
            for key, payload, deps, prio, user, need in zip(keys, op["tasks"], op["deps"], op["prios"],
                                                            user_prios, needs):
                if key in tasks:
                    continue
                if key in data:  # recomputation of something still held here
                    self._finished.append((key, self._weight(key), 0.0))
                    continue
                if user:
                    prio -= user << 64
                task = _Task(key, payload, deps, prio, dict(need) if need else None)
                tasks[key] = task
                missing = 0
                for dep in deps:
                    if dep in data:
                        continue
                    missing += 1
                    self._waiters[dep].append(task)
                    if dep not in tasks and dep not in self._fetching:
                        to_fetch.append(dep)
                task.nmissing = missing
                if missing == 0:
                    task.state = _READY
                    heapq.heappush(self._ready, (prio, task))
                    nready += 1
            if nready:
                self._work.notify(nready)
        if to_fetch:
            for dep in to_fetch:
                holders = who_has.get(dep, ())
                self._who_has[dep] = holders
                if self._left:
                    self._left.difference_update(holders)  # a worker back at an old address
            self._fetch(dict.fromkeys(to_fetch))
        if self._finished:
            self._report()

    def _free(self, keys: Any) -> None:
        with self._lock:
            for key in keys:
                task = self.tasks.pop(key, None)
                if task is not None:
                    task.state = _CANCELLED
                    self._forget_waiter(task)
                if key in self.data:
                    del self.data[key]

    def _release_unstarted(self, keys: Any) -> list:
        """The scheduler wants to move ``keys`` to an idle worker: give up each one that has not
        started (waiting or ready here); one bool per key, False if it is running or done."""
        released = []
        with self._lock:
            for key in keys:
                task = self.tasks.get(key)
                if task is None or task.state not in (_WAITING, _READY):
                    released.append(False)
                    continue
                del self.tasks[key]
                task.state = _CANCELLED
                self._forget_waiter(task)
                released.append(True)
        return released

    def _forget_waiter(self, task: _Task) -> None:
        """Take a cancelled task off the lists of tasks waiting for its inputs (lock held)."""
        for dep in task.deps:
            waiting = self._waiters.get(dep)
            if waiting:
                try:
                    waiting.remove(task)
                except ValueError:
                    pass
                if not waiting:
                    del self._waiters[dep]
                    if dep not in self.tasks:   # nothing here needs it: stop tracking the fetch
                        self._who_has.pop(dep, None)

    def _acquire_replicas(self, keys: Any, who_has: dict) -> None:
        """Fetch copies of ``keys`` from their holders (the scheduler moves data off a retiring
        worker). They arrive as fetched task inputs do, and are reported as copies."""
        wanted: dict = {}
        with self._lock:
            for key in keys:
                if key not in self.data and key not in self._fetching and key not in self.tasks:
                    wanted[key] = None
        for key in wanted:
            self._who_has[key] = tuple(who_has.get(key, ()))
        if wanted:
            self._fetch(wanted)

    def _store(self, keys: Any, values: Any) -> None:
        stored = []
        for key, value in zip(keys, values):
            try:
                obj = protocol.deserialize(value)
            except Exception as e:
                logger.warning("worker %s: could not unpickle scattered key %r: %s", self.address, key, e)
                continue
            stored.append((key, obj))
        self._make_room(sum(protocol.sizeof(obj) for _, obj in stored))
        with self._lock:
            for key, obj in stored:
                self.data[key] = obj
                self._added.append((key, protocol.sizeof(obj)))
                self._release_waiters(key)
        self._report()

    def _serialize_keys(self, keys: Any) -> tuple:
        values, missing, errors = [], [], []
        for key in keys:
            with self._data_lock:
                try:
                    obj = self.data[key]
                    found = True
                except KeyError:
                    found = False
                except Exception as e:  # a spill file that cannot be read back
                    errors.append((key, protocol.serialize((e, traceback.format_exc()))))
                    continue
            if not found:
                missing.append(key)
                continue
            try:
                values.append((key, protocol.serialize(obj)))
            except SerializationError as e:
                errors.append((key, protocol.serialize((SerializationError(
                    f"the result of task {key!r} cannot be pickled to leave worker {self.address}: {e}"), ""))))
            obj = None
        return values, missing, errors

    # ------------------------------------------------------------------ peers

    def _on_peer_request(self, ident: bytes, op: dict) -> None:
        if op["op"] == "hello":  # a client at a worker's port: tell it where to go
            self._safe_send(self._peers_in, [ident, *protocol.encode([{
                "op": "error", "fatal": True, "version": protocol.VERSION,
                "message": f"{self.address} is a lazyarr worker's port for its peers; clients connect to the "
                           f"scheduler's port for clients (this worker's scheduler listens for workers at "
                           f"{self.scheduler_address})"}])])
            return
        if op["op"] != "get-data":
            raise ProtocolError(f"unknown peer op {op['op']!r}")
        values, missing, errors = self._serialize_keys(op["keys"])
        reply = {"op": "data", "rid": op["rid"], "keys": [k for k, _ in values], "values": [v for _, v in values],
                 "missing": missing, "errors": [[k, v] for k, v in errors]}
        self._safe_send(self._peers_in, [ident, *protocol.encode([reply])])

    def _peer(self, address: str) -> zmq.Socket:
        sock = self._peer_socks.get(address)
        if sock is None:
            sock = protocol.configure_socket(self._ctx.socket(zmq.DEALER), self._max_size)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.setsockopt(zmq.RCVHWM, 0)
            if self.security is not None:
                self.security.configure_client(sock, "the worker")
            sock.connect(address)
            self._peer_socks[address] = sock
            self._poller.register(sock, zmq.POLLIN)
        return sock

    def _fetch(self, deps: dict) -> None:
        """Ask holders for ``deps``: one request per peer, all peers at once."""
        per_peer: dict = defaultdict(list)
        for dep in deps:
            holders = [h for h in self._who_has.get(dep, ()) if h not in self._left and h != self.address]
            if not holders:
                self._dep_unavailable(dep, None)
                continue
            per_peer[holders[hash(dep) % len(holders)]].append(dep)
        now = time.monotonic()
        for peer, keys in per_peer.items():
            rid = next(self._rid)
            self._requests[rid] = (peer, keys, now)
            for key in keys:
                self._fetching[key] = (peer, rid)
            self._safe_send(self._peer(peer), protocol.encode([{"op": "get-data", "rid": rid, "keys": keys}]))

    def _on_peer_reply(self, op: dict) -> None:
        if op["op"] != "data":
            raise ProtocolError(f"unknown op {op['op']!r} from a peer")
        request = self._requests.pop(op["rid"], None)
        peer = request[0] if request else None
        received = []
        for key, value in zip(op["keys"], op["values"]):
            try:
                received.append((key, protocol.deserialize(value)))
            except Exception as e:
                self._dep_failed(key, protocol.serialize((e, traceback.format_exc())))
        self._make_room(sum(protocol.sizeof(obj) for _, obj in received))
        with self._work:
            for key, obj in received:
                self._who_has.pop(key, None)
                if self._fetching.get(key, (None,))[0] == peer:
                    self._fetching.pop(key, None)
                if key not in self.data:
                    self.data[key] = obj
                    self._added.append((key, protocol.sizeof(obj)))
                self._release_waiters(key)
        for key, exc in op.get("errors", ()):
            self._fetching.pop(key, None)
            self._dep_failed(key, exc)
        if op.get("missing"):
            self._fetch_failed(peer, op["missing"])
        self._report()

    def _fetch_failed(self, peer: str | None, keys: Any) -> None:
        """``peer`` did not deliver ``keys``: try another holder, else tell the scheduler."""
        retry = {}
        for key in keys:
            if self._fetching.get(key, (None,))[0] != peer:
                continue
            self._fetching.pop(key, None)
            holders = [h for h in self._who_has.get(key, ()) if h != peer]
            self._who_has[key] = holders
            if holders:
                retry[key] = None
            else:
                self._dep_unavailable(key, peer)
        if retry:
            self._fetch(retry)

    def _dep_unavailable(self, dep: Any, holder: str | None) -> None:
        """No holder can give us ``dep``: drop the tasks waiting for it and tell the scheduler."""
        self._who_has.pop(dep, None)
        with self._lock:
            for task in self._waiters.pop(dep, ()):
                if self.tasks.get(task.key) is task and task.state is _WAITING:
                    del self.tasks[task.key]
                    task.state = _CANCELLED
                    self._forget_waiter(task)
                    self._missing.append((task.key, dep, holder))

    def _dep_failed(self, dep: Any, exc_payload: Any) -> None:
        """An input arrived but cannot be used: the tasks waiting for it fail with that error."""
        self._who_has.pop(dep, None)
        with self._lock:
            for task in self._waiters.pop(dep, ()):
                if self.tasks.get(task.key) is task and task.state is _WAITING:
                    del self.tasks[task.key]
                    task.state = _CANCELLED
                    self._forget_waiter(task)
                    self._erred.append((task.key, exc_payload))

    def _peer_left(self, address: str) -> None:
        """The scheduler says ``address`` left: fetches from it will never be answered."""
        self._left.add(address)
        sock = self._peer_socks.pop(address, None)
        if sock is not None:
            self._poller.unregister(sock)
            sock.close(0)
        pending = [(rid, keys) for rid, (peer, keys, _) in self._requests.items() if peer == address]
        for rid, keys in pending:
            self._requests.pop(rid, None)
            self._fetch_failed(address, keys)
        self._report()
