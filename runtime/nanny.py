"""The nanny: runs a worker as a child process, restarts it when it dies and says why it died.

>>> import sys
>>> with Nanny([sys.executable, '-c', 'import time; time.sleep(30)'], restart=False) as nanny:   # doctest: +SKIP
...     nanny.pid
12345

The nanny knows nothing of the worker's internals: it runs a command line (``python -m
runtime.cli worker ...``) and watches the process from one thread it owns:

* **Why it died.** An exit is classified as an exit code (``'exited with code 3'``), a signal
  (``'killed by SIGKILL'``), ``'out of memory (terminated by nanny at X of limit Y)'`` when the
  nanny killed it, or a SIGKILL the nanny did not send while memory was near the limit (or the
  machine's memory nearly gone, or the cgroup's OOM-kill counter rose), which is most likely the
  kernel's out-of-memory killer. Each death is reported through ``on_event`` as a dict (see
  :data:`EVENTS`), for the owner to forward to the scheduler so that ``KilledWorker`` errors can
  name exit reasons.
* **Restarts.** After an unexpected death the worker is started again after a delay that doubles
  with each consecutive failure (``backoff`` .. ``max_backoff`` seconds; a worker that ran for
  :data:`STABLE_UPTIME` seconds resets it), up to ``max_restarts`` times. A clean exit (code 0)
  is the worker's own decision and is not restarted.
* **Memory.** Every ``distributed.worker.memory.monitor-interval`` seconds the nanny reads the
  child's RSS; past the policy's ``terminate`` fraction of ``memory_limit`` it sends SIGTERM and,
  :data:`MEMORY_KILL_GRACE` seconds later, SIGKILL.
* **No orphans.** On Linux every child is started with ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (in a
  ``preexec_fn`` that only calls a libc function resolved beforehand), so the kernel kills it if
  the nanny dies without cleaning up, even by SIGKILL. The parent-death signal belongs to the
  *thread* that forked, so every child is started by the watcher thread, which outlives its
  children by construction. The child's stdin is also a pipe the nanny holds (a *lifeline*: it
  reaches end-of-file when the nanny goes); ``lazyarr-worker --lifeline`` exits on that, which
  is the protection on systems without ``prctl``.
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import ctypes.util
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from lazyarr import config
from lazyarr.utils import format_bytes

from .memory import MemoryPolicy, parse_memory_limit

__all__ = ["Nanny", "EVENTS", "describe_exit"]

logger = logging.getLogger("runtime.nanny")

#: The events a nanny reports through ``on_event``; every one is a dict with at least ``event``,
#: ``name`` (the nanny's), ``pid`` and ``time``. Deaths also carry ``reason``, ``exitcode``
#: (``None`` for a signal), ``signal`` (a name such as ``'SIGKILL'``, or ``None``), ``rss`` (the
#: last reading, bytes), ``memory_limit``, ``uptime``, ``restarting`` and ``restarts``.
EVENTS = {
    "worker-started": "a worker process started (``restarts`` says how many automatic restarts so far)",
    "worker-died": "the worker died unexpectedly: crashed, killed, or terminated by the nanny for memory",
    "worker-exited": "the worker exited cleanly (code 0) on its own; it is not restarted",
    "worker-stopped": "the nanny stopped the worker on request (restart() or close())",
    "worker-start-failed": "starting a worker failed (e.g. the command does not exist); retried with backoff",
    "nanny-gave-up": "the worker died and max_restarts is used up (or restart=False): no more restarts",
}
#: Seconds a worker must have run for its death to count as a first failure again (backoff reset).
STABLE_UPTIME = 30.0
#: Seconds between SIGTERM and SIGKILL when the nanny kills a worker over its memory limit.
MEMORY_KILL_GRACE = 1.0
#: A SIGKILL the nanny did not send is blamed on the kernel's OOM killer if the last RSS reading
#: was at least this fraction of the memory limit.
NEAR_LIMIT = 0.85
#: ... or if the machine had less than this fraction of its memory available.
LOW_SYSTEM_MEMORY = 0.05

_PR_SET_PDEATHSIG = 1
_live: "weakref.WeakSet[Nanny]" = weakref.WeakSet()


def describe_exit(returncode: int) -> tuple[str, int | None, str | None]:
    """``(reason, exitcode, signal name)`` for a ``Popen.returncode``.

    >>> describe_exit(3)
    ('exited with code 3', 3, None)
    >>> describe_exit(-9)
    ('killed by SIGKILL', None, 'SIGKILL')
    """
    if returncode >= 0:
        return f"exited with code {returncode}", returncode, None
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}", None, name


class _Command:
    """A request from the owner to the watcher thread, with a place for the answer."""

    def __init__(self, name: str, timeout: float = 0.0) -> None:
        self.name = name
        self.timeout = timeout
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Nanny:
    """Run a worker command as a child process: restart it when it dies, kill it when it uses
    too much memory, report why it died.

    Parameters
    ----------
    worker_command:
        The worker's argv (e.g. ``[sys.executable, '-m', 'runtime.cli', 'worker', address,
        '--lifeline', ...]``), or a function returning one, called before each start (so each
        start can get a fresh name or port).
    memory_limit:
        Bytes (or a size such as ``'4GB'``, see :func:`~runtime.memory.parse_memory_limit`) the
        worker may use; ``None``: no limit, the nanny never kills for memory.
    restart:
        Start the worker again after an unexpected death.
    max_restarts:
        How many automatic restarts at most over the nanny's life (``None``: no bound).
    env:
        The child's complete environment, as for ``subprocess.Popen`` (``None``: ours).
    on_event:
        Called with each event dict (see :data:`EVENTS`) from the watcher thread; it must return
        quickly and must not call :meth:`close`. Exceptions it raises are logged.
    name:
        Names the nanny in events and logs (default ``nanny-<pid of first child>``).
    policy:
        The :class:`~runtime.memory.MemoryPolicy` whose ``terminate`` threshold applies (default:
        one for ``memory_limit`` with the configured thresholds).
    monitor_interval:
        Seconds between checks of the child (default ``distributed.worker.memory.monitor-interval``).
    backoff, max_backoff:
        First and largest delay in seconds before an automatic restart.
    stdout, stderr:
        Passed to ``subprocess.Popen`` (default: inherited).

    Raises ``OSError`` naming the command if the first start fails.
    """

    def __init__(self, worker_command: Sequence[str] | Callable[[], Sequence[str]],
                 memory_limit: int | str | None = None, restart: bool = True, max_restarts: int | None = None,
                 env: dict[str, str] | None = None, on_event: Callable[[dict], Any] | None = None, *,
                 name: str | None = None, policy: MemoryPolicy | None = None,
                 monitor_interval: float | None = None, backoff: float = 0.5, max_backoff: float = 30.0,
                 stdout: Any = None, stderr: Any = None) -> None:
        if not callable(worker_command):
            _check_argv(worker_command)
        if max_restarts is not None and (not isinstance(max_restarts, int) or max_restarts < 0):
            raise ValueError(f"max_restarts must be a non-negative integer or None, not {max_restarts!r}")
        if on_event is not None and not callable(on_event):
            raise TypeError(f"on_event must be a function taking an event dict, not {on_event!r}")
        if not 0 < backoff <= max_backoff:
            raise ValueError(f"need 0 < backoff <= max_backoff, got {backoff} and {max_backoff}")
        self._command = worker_command
        self.memory_limit: int | None = parse_memory_limit(memory_limit)
        if policy is not None and policy.limit != self.memory_limit and memory_limit is not None:
            raise ValueError(f"policy.limit ({policy.limit}) differs from memory_limit ({self.memory_limit})")
        self.policy = policy if policy is not None else MemoryPolicy(self.memory_limit)
        self.memory_limit = self.policy.limit
        self.restart_on_death = bool(restart)
        self.max_restarts = max_restarts
        self._env = env
        self._on_event = on_event
        self.name = name
        self._interval = float(monitor_interval if monitor_interval is not None
                               else config.get("distributed.worker.memory.monitor-interval"))
        if self._interval <= 0:
            raise ValueError(f"monitor_interval must be positive, got {self._interval}")
        self._backoff = float(backoff)
        self._max_backoff = float(max_backoff)
        self._stdout, self._stderr = stdout, stderr

        #: Automatic restarts done so far (restart() calls not included).
        self.restarts = 0
        #: The last events reported (newest last), for owners that poll instead of listening.
        self.events: collections.deque = collections.deque(maxlen=100)
        self.status = "starting"
        self._proc: subprocess.Popen | None = None
        self._ps: Any = None
        self._started_at = 0.0
        self._last_rss: int | None = None
        self._low_system_memory = False
        self._oom_kills_at_start: int | None = None
        self._kill_reason: str | None = None
        self._kill_deadline: float | None = None
        self._next_start: float | None = None
        self._failures = 0
        self._closed = False
        self._finished = threading.Event()
        self._commands: queue.Queue = queue.Queue()
        self._prctl = _load_prctl()

        first = _Command("start")
        self._commands.put(first)
        # A daemon thread, so a forgotten nanny cannot hang interpreter exit; _close_all still closes it.
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"lazyarr-nanny-{name if name is not None else hex(id(self))}")
        self._thread.start()
        _live.add(self)
        first.done.wait()
        if first.error is not None:
            self.close()
            raise first.error

    # ------------------------------------------------------------------ public

    @property
    def pid(self) -> int | None:
        """The running worker's process id, or ``None`` when none runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def rss(self) -> int | None:
        """The worker's memory at the last reading, in bytes."""
        return self._last_rss

    def restart(self, timeout: float = 10.0) -> int:
        """Stop the worker gracefully (SIGTERM, SIGKILL after ``timeout`` s) and start a new one.

        Also revives a nanny that gave up. Returns the new worker's pid.
        """
        return self._ask("restart", timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no worker runs and none will be restarted (it exited cleanly, the nanny gave
        up, or :meth:`close`); False if ``timeout`` passed first."""
        return self._finished.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop watching, stop the worker (SIGTERM, SIGKILL after ``timeout`` s), join the thread.

        Idempotent. Must not be called from ``on_event`` (it runs in the thread being joined).
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("Nanny.close() was called from the nanny's own thread (an on_event callback); "
                               "signal the owner to close it instead")
        if self._closed:
            return
        self._closed = True
        _live.discard(self)
        if self._thread.is_alive():
            command = _Command("close", timeout)
            self._commands.put(command)
            self._thread.join(timeout + 5.0)
            if self._thread.is_alive():  # pragma: no cover - only if a wait in the thread hangs
                logger.error("nanny %s: watcher thread still running after close", self.name)
        self.status = "closed"
        self._finished.set()

    def __enter__(self) -> "Nanny":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<Nanny {self.name}: {self.status}, pid {self.pid}, restarts {self.restarts}, "
                f"memory limit {format_bytes(self.memory_limit) if self.memory_limit else 'none'}>")

    def _ask(self, name: str, timeout: float) -> Any:
        if self._closed or not self._thread.is_alive():
            raise RuntimeError(f"nanny {self.name} is closed")
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"Nanny.{name}() cannot be called from an on_event callback")
        command = _Command(name, timeout)
        self._commands.put(command)
        if not command.done.wait(timeout + 30.0):
            raise TimeoutError(f"nanny {self.name} did not {name} its worker within {timeout + 30.0:.0f} s")
        if command.error is not None:
            raise command.error
        return command.result

    # ------------------------------------------------------------------ the watcher thread

    def _run(self) -> None:
        try:
            while True:
                wait = self._interval
                if self._next_start is not None:
                    wait = max(0.0, min(wait, self._next_start - time.monotonic()))
                try:
                    command = self._commands.get(timeout=wait)
                except queue.Empty:
                    command = None
                if command is not None and self._handle(command):
                    return
                self._check_child()
                if self._next_start is not None and time.monotonic() >= self._next_start:
                    self._auto_restart()
        except BaseException:  # pragma: no cover - a bug here must not leave an unwatched child
            logger.exception("nanny %s: watcher thread failed; stopping the worker", self.name)
        finally:
            self._stop_child(timeout=5.0, reason=None)
            self._finished.set()
            while True:  # nobody waits forever on a command the loop will never serve
                try:
                    command = self._commands.get_nowait()
                except queue.Empty:
                    break
                command.error = command.error or RuntimeError(f"nanny {self.name} is closed")
                command.done.set()

    def _handle(self, command: _Command) -> bool:
        """Serve one request; True when the thread should end."""
        try:
            self._check_child()  # a death that happened just before the request is reported as such
            if command.name == "close":
                self._next_start = None
                self._stop_child(command.timeout, reason="stopped by the nanny (close)")
                return True
            if command.name == "restart":
                self._next_start = None
                self._stop_child(command.timeout, reason="stopped by the nanny (restart)")
                self._failures = 0
            command.result = self._spawn()
        except BaseException as e:
            command.error = e
        finally:
            command.done.set()
        return False

    def _argv(self) -> list[str]:
        argv = self._command() if callable(self._command) else self._command
        return _check_argv(argv)

    def _spawn(self) -> int:
        """Start a worker process (from this thread: see the module docstring on PDEATHSIG)."""
        argv = self._argv()
        preexec = _die_with_parent(os.getpid(), self._prctl) if self._prctl is not None else None
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self._stdout, stderr=self._stderr,
                                    env=self._env, start_new_session=True, preexec_fn=preexec)
        except OSError as e:
            raise OSError(e.errno, f"cannot start the worker command {argv!r}: {e.strerror or e}") from None
        import psutil

        try:
            self._ps = psutil.Process(proc.pid)
        except psutil.Error:
            self._ps = None
        if self.name is None:
            self.name = f"nanny-{proc.pid}"
        self._started_at = time.monotonic()
        self._last_rss = None
        self._low_system_memory = False
        self._kill_reason = self._kill_deadline = None
        self._oom_kills_at_start = _cgroup_oom_kills()
        self.status = "running"
        self._finished.clear()
        self._proc = proc  # last: whoever sees the new pid sees the rest of the new state too
        self._emit({"event": "worker-started", "pid": proc.pid, "restarts": self.restarts,
                    "memory_limit": self.memory_limit})
        return proc.pid

    def _check_child(self) -> None:
        proc = self._proc
        if proc is None:
            return
        code = proc.poll()
        if code is None:
            self._watch_memory(proc)
            return
        self._proc = None
        _close_pipe(proc)
        reason, exitcode, signame = describe_exit(code)
        if self._kill_reason is not None:
            reason, event = self._kill_reason, "worker-died"
        elif code == 0:
            reason, event = "exited cleanly (exit code 0)", "worker-exited"
        else:
            event = "worker-died"
            if signame == "SIGKILL":
                reason += self._oom_killer_guess()
        uptime = time.monotonic() - self._started_at
        restarting = event == "worker-died" and self.restart_on_death and (
            self.max_restarts is None or self.restarts < self.max_restarts)
        info = {"event": event, "pid": proc.pid, "reason": reason, "exitcode": exitcode, "signal": signame,
                "rss": self._last_rss, "memory_limit": self.memory_limit, "uptime": uptime,
                "restarting": restarting, "restarts": self.restarts}
        (logger.info if event == "worker-exited" else logger.warning)(
            "nanny %s: worker pid %d %s%s", self.name, proc.pid, reason,
            "; restarting it" if restarting else "")
        self._emit(info)
        if restarting:
            self._failures = 0 if uptime >= STABLE_UPTIME else self._failures
            self._schedule_restart()
        elif event == "worker-died":
            self._give_up(reason)
        else:
            self.status = "stopped"
            self._finished.set()

    def _schedule_restart(self) -> None:
        self._failures += 1
        delay = min(self._max_backoff, self._backoff * 2 ** (self._failures - 1))
        self._next_start = time.monotonic() + delay
        self.status = "restarting"

    def _give_up(self, reason: str) -> None:
        why = "restart=False" if not self.restart_on_death else f"max_restarts={self.max_restarts} reached"
        self._emit({"event": "nanny-gave-up", "pid": None, "reason": f"{reason}; not restarting ({why})",
                    "restarts": self.restarts})
        self.status = "stopped"
        self._finished.set()

    def _auto_restart(self) -> None:
        self._next_start = None
        self.restarts += 1
        try:
            self._spawn()
        except OSError as e:
            logger.error("nanny %s: %s", self.name, e)
            self._emit({"event": "worker-start-failed", "pid": None, "reason": str(e), "restarts": self.restarts})
            if self.max_restarts is None or self.restarts < self.max_restarts:
                self._schedule_restart()
            else:
                self._give_up(str(e))

    def _watch_memory(self, proc: subprocess.Popen) -> None:
        if self._ps is None:
            return
        import psutil

        try:
            rss = self._ps.memory_info().rss
        except psutil.Error:  # exited between poll() and now: the next check classifies it
            return
        if rss == 0:  # a zombie (dead, not yet reaped) reads 0: keep the last real reading
            return
        self._last_rss = rss
        vm = psutil.virtual_memory()  # for the OOM-killer guess if the child is SIGKILLed next
        self._low_system_memory = vm.available < LOW_SYSTEM_MEMORY * vm.total
        if self.memory_limit is None:
            return
        if self._kill_reason is None:
            if self.policy.observe(rss).terminate:
                self._kill_reason = (f"out of memory (terminated by nanny at {format_bytes(rss)} "
                                     f"of limit {format_bytes(self.memory_limit)})")
                logger.warning("nanny %s: worker pid %d uses %s, past %.0f%% of its memory limit %s; terminating it",
                               self.name, proc.pid, format_bytes(rss), 100 * (self.policy.terminate or 0),
                               format_bytes(self.memory_limit))
                _signal(proc, signal.SIGTERM)
                self._kill_deadline = time.monotonic() + MEMORY_KILL_GRACE
        elif self._kill_deadline is not None and time.monotonic() >= self._kill_deadline:
            _signal(proc, signal.SIGKILL)
            self._kill_deadline = None

    def _oom_killer_guess(self) -> str:
        """Text to add to 'killed by SIGKILL' when the kernel's OOM killer is the likely culprit."""
        kills = _cgroup_oom_kills()
        if kills is not None and self._oom_kills_at_start is not None and kills > self._oom_kills_at_start:
            return " (by the kernel's out-of-memory killer: the cgroup's oom_kill count rose)"
        rss, limit = self._last_rss, self.memory_limit
        if rss is not None and limit and rss >= NEAR_LIMIT * limit:
            return (f" (probably the kernel's out-of-memory killer: memory was {format_bytes(rss)} "
                    f"of limit {format_bytes(limit)})")
        if self._low_system_memory:
            return " (probably the kernel's out-of-memory killer: the machine was nearly out of memory)"
        return ""

    def _stop_child(self, timeout: float, reason: str | None) -> None:
        """Terminate the running child, SIGKILL after ``timeout``, reap it, report it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            _close_pipe(proc)  # the lifeline: a ``--lifeline`` worker starts closing at once
            _signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("nanny %s: worker pid %d did not stop within %.1f s; killing it",
                               self.name, proc.pid, timeout)
                _signal(proc, signal.SIGKILL)
                proc.wait()
        _close_pipe(proc)
        if reason is not None:
            _, exitcode, signame = describe_exit(proc.returncode)
            self._emit({"event": "worker-stopped", "pid": proc.pid, "reason": reason, "exitcode": exitcode,
                        "signal": signame, "rss": self._last_rss, "memory_limit": self.memory_limit,
                        "uptime": time.monotonic() - self._started_at, "restarting": False,
                        "restarts": self.restarts})
        self.status = "stopped"

    def _emit(self, event: dict) -> None:
        event = {**event, "name": self.name, "time": time.time()}
        self.events.append(event)
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("nanny %s: on_event callback failed on %s", self.name, event["event"])


def _check_argv(argv: Any) -> list[str]:
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence) or not argv \
            or not all(isinstance(a, (str, os.PathLike)) for a in argv):
        raise TypeError(f"a worker command is a non-empty list of strings such as "
                        f"[sys.executable, '-m', 'runtime.cli', 'worker', ...], not {argv!r}")
    return [os.fspath(a) for a in argv]


def _load_prctl() -> Any:
    """libc's ``prctl``, resolved now so the child after fork only calls it; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # pragma: no cover - a Linux without a usable libc
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def _die_with_parent(parent: int, prctl: Any) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec: keep it minimal
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the nanny died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _close_pipe(proc: subprocess.Popen) -> None:
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass


def _cgroup_oom_kills() -> int | None:
    """The ``oom_kill`` counter of this process's cgroup (v2), or None where unavailable."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    path = os.path.join("/sys/fs/cgroup", line[3:].strip().lstrip("/"), "memory.events")
                    break
            else:
                return None
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


@atexit.register
def _close_all() -> None:
    """Close nannies their owners forgot, so no worker outlives this interpreter."""
    for nanny in list(_live):
        try:
            nanny.close(timeout=2.0)
        except Exception:  # pragma: no cover - best effort at exit
            pass
