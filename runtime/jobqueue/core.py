"""JobQueueCluster: a scheduler in this process and workers started as batch jobs.

The batch system is driven only through its command-line tools (``sbatch``/``squeue``/``scancel``,
``qsub``/``qstat``/``qdel``), run as subprocesses: nothing here links to SLURM or PBS, so a
cluster object works on any login node where those commands work, and tests can put fake
commands first on ``PATH``.

Every job runs the same script (:meth:`JobQueueCluster.job_script`). The worker it starts is
named after the job's id (``<job_name>-$SLURM_JOB_ID``), so the cluster can tell which
registered worker belongs to which job without any per-job script.

The subclasses (:class:`~runtime.jobqueue.slurm.SLURMCluster`,
:class:`~runtime.jobqueue.pbs.PBSCluster`) only say how to write directives and how to call and
parse their batch commands.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from lazyarr.utils import format_bytes, parse_bytes

from ..cli import normalize_address
from ..cluster import scheduler_workers
from ..cluster_base import SchedulerOwner, retire_then_stop

__all__ = ["JobQueueCluster", "JobQueueError", "parse_walltime", "format_walltime", "interface_address",
           "run_batch_command", "check_batch_command", "job_of_worker"]

logger = logging.getLogger("runtime.jobqueue")

#: Seconds a batch command (submit, status, cancel) may take before it counts as failed.
COMMAND_TIMEOUT = 60.0
#: Seconds :meth:`JobQueueCluster.close` waits for cancelled workers to leave the scheduler.
CLOSE_TIMEOUT = 10.0
#: How often :meth:`JobQueueCluster.wait_for_workers` asks the batch system about the jobs.
STATUS_INTERVAL = 2.0
#: Seconds ``scale()`` down waits for the data of leaving workers to move before it cancels
#: their jobs all the same (as ``LocalCluster.scale``).
RETIRE_TIMEOUT = 30.0

#: Normalized job states: what :attr:`JobQueueCluster.jobs` reports.
PENDING, RUNNING, ENDING = "pending", "running", "ending"


class JobQueueError(RuntimeError):
    """A batch command is missing, failed, timed out, or printed something we cannot parse."""


# ----------------------------------------------------------------------------------------------
# Small parsers


_WALLTIME = re.compile(r"^(?:(\d+)-)?(\d+):([0-5]?\d):([0-5]?\d)$")


def parse_walltime(walltime: str | int) -> int:
    """Seconds in a walltime: ``'HH:MM:SS'``, ``'D-HH:MM:SS'`` or a whole number of seconds.

    >>> parse_walltime('00:30:00')
    1800
    >>> parse_walltime('1-02:00:00')
    93600
    >>> parse_walltime(90)
    90
    """
    if isinstance(walltime, bool):
        raise TypeError(f"walltime must be 'HH:MM:SS' or seconds, not {walltime!r}")
    if isinstance(walltime, int):
        seconds = walltime
    elif isinstance(walltime, str):
        match = _WALLTIME.match(walltime.strip())
        if not match:
            raise ValueError(f"walltime {walltime!r} is not of the form 'HH:MM:SS' or 'D-HH:MM:SS'")
        days, hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    else:
        raise TypeError(f"walltime must be 'HH:MM:SS' or a number of seconds, not {type(walltime).__name__}")
    if seconds <= 0:
        raise ValueError(f"walltime {walltime!r} must be positive")
    return seconds


def format_walltime(seconds: int) -> str:
    """``HH:MM:SS`` (hours may exceed 24), the form both SLURM and PBS accept.

    >>> format_walltime(93600)
    '26:00:00'
    """
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def interface_address(interface: str) -> str:
    """The IPv4 address of a network interface of this machine, e.g. ``'ib0'`` or ``'eth0'``.

    >>> interface_address('lo')
    '127.0.0.1'
    """
    import psutil
    import socket

    addresses = psutil.net_if_addrs()
    if interface not in addresses:
        raise ValueError(f"no network interface {interface!r} on this machine; it has {sorted(addresses)}")
    for addr in addresses[interface]:
        if addr.family == socket.AF_INET:
            return addr.address
    raise ValueError(f"network interface {interface!r} has no IPv4 address")


def run_batch_command(args: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a batch-system command, capturing its output; clear errors when it cannot run.

    A non-zero exit code is *not* an error here (callers decide, since ``squeue``/``qstat``
    report unknown jobs that way); see :func:`check_batch_command`.
    """
    name = args[0]
    executable = shutil.which(name)
    if executable is None:
        raise JobQueueError(f"the batch command {name!r} was not found on PATH (run this on a login node of the "
                            f"batch cluster, or load its module); PATH={os.environ.get('PATH', '')}")
    try:
        return subprocess.run([executable, *args[1:]], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise JobQueueError(f"{shlex.join(args)} did not finish within {timeout:g} s") from None
    except OSError as e:
        raise JobQueueError(f"cannot run {shlex.join(args)}: {e}") from None


def check_batch_command(args: Sequence[str], proc: subprocess.CompletedProcess) -> str:
    """``proc``'s stdout, or :class:`JobQueueError` with its exit code and error output."""
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip() or (proc.stdout or "").strip() or "(no output)"
        raise JobQueueError(f"{shlex.join(args)} failed with exit code {proc.returncode}: {detail}")
    return proc.stdout


# ----------------------------------------------------------------------------------------------
# What the finalizer needs


def job_of_worker(name: Any, job_name: str, job_ids: Iterable[str]) -> str | None:
    """The job id a worker name belongs to (``<job_name>-<id>`` or ``<job_name>-<id>-<i>``), or None.

    >>> job_of_worker('lazyarr-worker-77-1', 'lazyarr-worker', ['76', '77'])
    '77'
    """
    prefix = f"{job_name}-"
    if not isinstance(name, str) or not name.startswith(prefix):
        return None
    ids = set(job_ids)
    rest = name[len(prefix):]
    if rest in ids:
        return rest
    head, _, index = rest.rpartition("-")
    return head if index.isdigit() and head in ids else None


class _Resources:
    """The scheduler and job ids a cluster owns, closable without the cluster (for the finalizer)."""

    def __init__(self, cancel: Any, job_name: str) -> None:
        self.scheduler: Any = None
        self.jobs: dict[str, float] = {}      # job id -> submission time, in submission order
        self.cancel = cancel                  # a function of a list of job ids (no reference to the cluster)
        self.job_name = job_name
        self.lock = threading.RLock()
        self.closed = False

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            jobs = list(self.jobs)
            self.jobs.clear()
        try:
            if jobs:
                try:
                    self.cancel(jobs)
                except JobQueueError as e:  # closing must finish: the scheduler still gets closed
                    logger.error("could not cancel jobs %s: %s", jobs, e)
                self._wait_workers_left(jobs, timeout)
        finally:
            if self.scheduler is not None:
                self.scheduler.close()

    def _wait_workers_left(self, jobs: list[str], timeout: float) -> None:
        # Cancelled workers say goodbye to the scheduler; keep it up a little so they can.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                names = [info.get("name") for info in scheduler_workers(self.scheduler).values()]
            except Exception:  # the scheduler is unusable: nothing to wait for
                return
            if not any(job_of_worker(name, self.job_name, jobs) for name in names):
                return
            time.sleep(0.05)


# ----------------------------------------------------------------------------------------------
# The cluster


class JobQueueCluster(SchedulerOwner):
    """Base class: a scheduler here, workers in batch jobs. Use a subclass (SLURM, PBS).

    Parameters
    ----------
    cores:
        CPU cores per job. Each job runs ``processes`` workers of ``cores // processes`` threads.
    memory:
        Memory per job (``'16GB'``, ``'4 GiB'`` or bytes), shared evenly by its ``processes``
        workers, each of which gets that share as its ``--memory-limit``.
    walltime:
        Job time limit, ``'HH:MM:SS'`` or ``'D-HH:MM:SS'``.
    account, queue:
        Account to charge and queue (partition) to submit to; omitted from the script when None.
    job_extra:
        More directives, written after the derived ones, e.g. ``['--exclusive']`` or
        ``['-l place=scatter']`` (without the ``#SBATCH``/``#PBS`` prefix).
    processes:
        Worker processes per job (started by one ``lazyarr-worker --nworkers`` command).
    job_name:
        The batch job name; workers are named ``<job_name>-<job id>`` (``-<i>`` appended for
        each of several processes).
    local_directory:
        Directory the job changes into before starting its workers (created if missing): put it
        on node-local disk, where workers write anything local. Shell variables expand on the
        node (``'$TMPDIR/lazyarr'``, ``'/scratch/$USER/$SLURM_JOB_ID'``).
    log_directory:
        Where the batch system writes each job's output and errors; the batch system's default
        (the submission directory) when None. Error messages quote the logs found there.
    python:
        The Python interpreter on the compute nodes that can ``import runtime``.
    scheduler_options:
        Keyword arguments of :class:`~runtime.scheduler.Scheduler` (``hostname``,
        ``port_to_workers``, ``port_to_clients``, ...), plus ``interface`` (e.g. ``'ib0'``): listen
        on that interface's address. Loopback (``127.0.0.1``) by default, which only reaches
        workers on this machine: on a real cluster pass the login node's ``interface``.
    worker_host:
        The address each worker listens on for its peers. ``'auto'`` (default) lets the job find,
        at run time, the address of its node's interface that routes to the scheduler.
    prologue:
        Shell lines run before the workers start (``module load ...``, ``source venv/bin/activate``).
    worker_extra_args:
        More arguments of ``lazyarr-worker``.
    shebang:
        First line of the script.
    """

    #: Overridden by subclasses.
    system: ClassVar[str] = ""
    submit_command: ClassVar[str] = ""
    cancel_command: ClassVar[str] = ""
    status_command: ClassVar[str] = ""
    directive_prefix: ClassVar[str] = ""
    job_id_variable: ClassVar[str] = ""

    def __init__(self, cores: int, memory: str | int, walltime: str | int = "00:30:00", account: str | None = None,
                 queue: str | None = None, job_extra: Iterable[str] = (), processes: int = 1,
                 job_name: str = "lazyarr-worker", local_directory: str | os.PathLike | None = None,
                 log_directory: str | os.PathLike | None = None, python: str = sys.executable,
                 scheduler_options: Mapping[str, Any] | None = None, worker_host: str = "auto",
                 prologue: Iterable[str] = (), worker_extra_args: Iterable[str] = (),
                 shebang: str = "#!/usr/bin/env bash") -> None:
        if type(self) is JobQueueCluster:
            raise TypeError("JobQueueCluster is a base class: use SLURMCluster or PBSCluster")
        self.cores = _positive_int("cores", cores)
        self.processes = _positive_int("processes", processes)
        if self.processes > self.cores:
            raise ValueError(f"processes={processes} is more than cores={cores}: every worker needs a core")
        self.memory = _parse_memory(memory)
        self.walltime = format_walltime(parse_walltime(walltime))
        self.account = _optional_word("account", account)
        self.queue = _optional_word("queue", queue)
        self.job_extra = _strings("job_extra", job_extra)
        self.job_name = _job_name(job_name)
        self.local_directory = None if local_directory is None else os.fspath(local_directory)
        self.log_directory = None if log_directory is None else os.path.abspath(os.fspath(log_directory))
        if self.log_directory is not None and any(c.isspace() for c in self.log_directory):
            raise ValueError(f"log_directory {self.log_directory!r} holds white space, which batch directives "
                             "cannot carry; pick a path without spaces")
        self.python = python
        self.worker_host = worker_host
        self.prologue = _strings("prologue", prologue)
        self.worker_extra_args = _strings("worker_extra_args", worker_extra_args)
        self.shebang = shebang
        self.worker_threads = self.cores // self.processes
        self.worker_memory = self.memory // self.processes
        if self.log_directory is not None:
            os.makedirs(self.log_directory, exist_ok=True)

        if not isinstance(worker_host, str) or not worker_host.strip():
            raise ValueError(f"worker_host must be 'auto' or an address, not {worker_host!r}")
        self._resources = _Resources(type(self)._cancel_jobs, self.job_name)
        self._finalizer = weakref.finalize(self, self._resources.close)
        self._resources.scheduler = _start_scheduler(scheduler_options)

    # -- addresses and members ---------------------------------------------------------------

    @property
    def jobs(self) -> dict[str, str]:
        """This cluster's live jobs and their states (``'pending'``, ``'running'``, ``'ending'``),
        asked of the batch system now. Jobs that ended (walltime, failure) are forgotten."""
        with self._resources.lock:
            return self._refresh_jobs()

    @property
    def workers(self) -> dict[str, dict]:
        """The workers of this cluster's jobs that the scheduler knows, by name: ``address``,
        ``nthreads``, ``memory_limit`` and the ``job_id`` that started them."""
        known = list(self._resources.jobs)
        found = {}
        for address, info in scheduler_workers(self.scheduler).items():
            job_id = job_of_worker(info.get("name"), self.job_name, known)
            if job_id is not None:
                found[info["name"]] = {**info, "address": address, "job_id": job_id}
        return found

    # -- the job script ------------------------------------------------------------------------

    def job_header(self) -> list[str]:
        """The directives (without prefix) derived from the resources, then ``job_extra``."""
        raise NotImplementedError

    def job_script(self) -> str:
        """The batch script every job runs: directives, then the command that starts the workers."""
        prefix = self.directive_prefix
        lines = [self.shebang, ""]
        lines += [f"{prefix} {directive}" for directive in self.job_header()]
        lines.append("")
        lines += self.prologue
        if self.local_directory is not None:
            directory = _double_quote(self.local_directory)
            lines.append(f"mkdir -p {directory} && cd {directory} || exit 1")
        lines += self._worker_host_lines()
        lines.append("exec " + " ".join(self.worker_command()))
        return "\n".join(lines) + "\n"

    def _worker_host_lines(self) -> list[str]:
        if self.worker_host != "auto":
            return []
        # The address of this node's interface that routes to the scheduler (a UDP "connect"
        # sends nothing): loopback when the scheduler is on loopback, the right NIC otherwise.
        host, port = self.scheduler_address_to_workers[len("tcp://"):].rsplit(":", 1)
        code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                f"s.connect(({json.dumps(host)}, {int(port)})); print(s.getsockname()[0])")
        return [f"LAZYARR_WORKER_HOST=$({shlex.quote(self.python)} -c {shlex.quote(code)}) || exit 1"]

    def worker_command(self) -> list[str]:
        """The shell words of the command that starts this job's workers (job id expanded by the shell)."""
        host = '"$LAZYARR_WORKER_HOST"' if self.worker_host == "auto" else shlex.quote(self.worker_host)
        words = [shlex.quote(self.python), "-m", "runtime.cli", "worker", self.scheduler_address_to_workers,
                 "--nthreads", str(self.worker_threads), "--memory-limit", str(self.worker_memory),
                 "--name", shlex.quote(f"{self.job_name}-") + f'"${{{self.job_id_variable}}}"', "--host", host]
        if self.processes > 1:
            words += ["--nworkers", str(self.processes)]
        words += [shlex.quote(arg) for arg in self.worker_extra_args]
        return words

    # -- batch-system specifics (subclasses) ---------------------------------------------------

    @classmethod
    def submit_args(cls, script_path: str) -> list[str]:
        """The command line that submits ``script_path``."""
        return [cls.submit_command, script_path]

    @classmethod
    def parse_job_id(cls, stdout: str) -> str:
        """The job id in the submit command's output."""
        raise NotImplementedError

    @classmethod
    def status_args(cls, job_ids: list[str]) -> list[str]:
        """The command line that asks the state of ``job_ids``."""
        raise NotImplementedError

    @classmethod
    def parse_status(cls, stdout: str) -> dict[str, str]:
        """``{job id: normalized state}`` from the status command's output."""
        raise NotImplementedError

    @classmethod
    def status_error_is_benign(cls, stderr: str) -> bool:
        """Does the status command's error output only say that some jobs are gone?"""
        raise NotImplementedError

    @classmethod
    def cancel_args(cls, job_ids: list[str]) -> list[str]:
        """The command line that cancels ``job_ids``."""
        return [cls.cancel_command, *job_ids]

    # -- talking to the batch system -----------------------------------------------------------

    def submit_job(self) -> str:
        """Submit one job running :meth:`job_script`; its id. The script file is removed after."""
        fd, path = tempfile.mkstemp(prefix=f"{self.job_name}-", suffix=".sh")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self.job_script())
            args = self.submit_args(path)
            stdout = check_batch_command(args, run_batch_command(args))
        finally:
            os.unlink(path)
        job_id = self.parse_job_id(stdout)
        logger.info("submitted %s job %s", self.system, job_id)
        return job_id

    @classmethod
    def query_jobs(cls, job_ids: list[str]) -> dict[str, str]:
        """The batch system's state of each of ``job_ids`` still known to it (ended ones are absent)."""
        if not job_ids:
            return {}
        args = cls.status_args(job_ids)
        proc = run_batch_command(args)
        if proc.returncode != 0 and not cls.status_error_is_benign(proc.stderr or ""):
            check_batch_command(args, proc)
        wanted = set(job_ids)
        return {job_id: state for job_id, state in cls.parse_status(proc.stdout or "").items() if job_id in wanted}

    @classmethod
    def _cancel_jobs(cls, job_ids: list[str]) -> None:
        """Cancel ``job_ids``; an error unless the ones the command failed on have ended anyway."""
        if not job_ids:
            return
        args = cls.cancel_args(job_ids)
        proc = run_batch_command(args)
        if proc.returncode != 0:
            still = cls.query_jobs(job_ids)
            if still:
                check_batch_command(args, proc)
        logger.info("cancelled %s jobs %s", cls.system, job_ids)

    def _refresh_jobs(self) -> dict[str, str]:
        """Ask the states of our jobs and forget those that ended; call with the lock held."""
        jobs = self._resources.jobs
        states = self.query_jobs(list(jobs))
        for job_id in [j for j in jobs if j not in states]:
            del jobs[job_id]
            logger.warning("%s job %s ended by itself (walltime, failure or outside cancel)%s", self.system,
                           job_id, self._log_hint(job_id))
        return {job_id: states[job_id] for job_id in jobs}

    # -- scaling -------------------------------------------------------------------------------

    def scale(self, n: int | None = None, *, jobs: int | None = None, timeout: float = RETIRE_TIMEOUT) -> None:
        """Run ``n`` workers (``ceil(n / processes)`` jobs), or exactly ``jobs`` jobs.

        Scaling up submits jobs and returns without waiting for them to start (they may wait
        in the queue for a long time); use :meth:`wait_for_workers` to wait. Scaling down
        cancels pending jobs first, then the newest running ones, without losing data: the
        workers of a running job are first retired, as ``LocalCluster.scale`` and ``adapt`` do
        (:func:`~runtime.cluster_base.retire_then_stop`): they get no new tasks and every result
        still needed that only they hold, ``scatter``-ed data included, is copied to the workers
        that stay; then the job is cancelled, and this returns. Data that cannot be moved
        within ``timeout`` seconds (no worker stays, copies failing) does not stop the
        cancellation (a warning names the workers): results are then recomputed from their
        graph, scattered data is lost.
        """
        if (n is None) == (jobs is None):
            raise TypeError("scale() takes a number of workers n, or jobs=, not both and not neither")
        count = n if jobs is None else jobs
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"scale() takes a non-negative number of {'jobs' if n is None else 'workers'}, "
                             f"not {count!r}")
        wanted = count if jobs is not None else math.ceil(count / self.processes)
        leaving: list[str] = []
        with self._resources.lock:
            if self._resources.closed:
                raise RuntimeError(f"this {type(self).__name__} is closed")
            states = self._refresh_jobs() if self._resources.jobs else {}
            if wanted > len(states):
                for _ in range(wanted - len(states)):
                    self._resources.jobs[self.submit_job()] = time.time()
            elif wanted < len(states):
                victims = self._victims(states, len(states) - wanted)
                leaving = [name for name, info in self.workers.items() if info["job_id"] in victims]
                joined = {job_of_worker(name, self.job_name, victims) for name in leaving}
                unjoined = [job_id for job_id in victims if job_id not in joined]
                if unjoined:  # no worker of theirs holds anything: cancelled at once
                    self._cancel(unjoined)
        if leaving:  # outside the lock: moving the data may take a while
            retire_then_stop(self.scheduler, leaving, self._stop_workers, timeout, keep_unmoved=False)

    def _stop_workers(self, names: Iterable[str]) -> None:
        """Cancel the jobs of the workers ``names`` (a job goes with all of its workers)."""
        with self._resources.lock:
            known = list(self._resources.jobs)
            jobs = sorted({job_of_worker(name, self.job_name, known) for name in names} - {None})
            if jobs:
                self._cancel(jobs)

    def _victims(self, states: dict[str, str], count: int) -> list[str]:
        """Which ``count`` jobs to cancel: pending before running, newest first."""
        newest_first = list(reversed(list(states)))
        ordered = [j for j in newest_first if states[j] == PENDING] + [j for j in newest_first if states[j] != PENDING]
        return ordered[:count]

    def _cancel(self, job_ids: list[str]) -> None:
        self._cancel_jobs(job_ids)
        for job_id in job_ids:
            self._resources.jobs.pop(job_id, None)

    def wait_for_workers(self, n: int, timeout: float = 60.0) -> dict[str, dict]:
        """Block until at least ``n`` workers of this cluster's jobs have joined; returns :attr:`workers`.

        Raises ``TimeoutError`` after ``timeout`` seconds, and :class:`JobQueueError` as soon as
        every job has ended with too few workers; both quote the job logs when they can.
        """
        deadline = time.monotonic() + timeout
        next_status = time.monotonic() + STATUS_INTERVAL
        while True:
            workers = self.workers
            if len(workers) >= n:
                return workers
            now = time.monotonic()
            if now >= next_status:
                next_status = now + STATUS_INTERVAL
                if not self.jobs:
                    raise JobQueueError(f"only {len(workers)} of {n} workers joined and no job of this cluster is "
                                        f"left in the queue{self._log_hint()}")
            if now > deadline:
                raise TimeoutError(f"only {len(workers)} of {n} workers joined the scheduler at "
                                   f"{self.scheduler_address_to_workers} within {timeout:g} s; jobs: "
                                   f"{self.jobs}{self._log_hint()}")
            time.sleep(0.05)

    def _log_hint(self, job_id: str | None = None) -> str:
        """The end of the job logs (one job's, or all of them) in :attr:`log_directory`, for errors."""
        if self.log_directory is None or not os.path.isdir(self.log_directory):
            return ""
        parts = []
        for name in sorted(os.listdir(self.log_directory)):
            if job_id is not None and job_id not in name:
                continue
            path = os.path.join(self.log_directory, name)
            try:
                with open(path, errors="replace") as f:
                    tail = f.read()[-2000:].strip()
            except OSError:
                continue
            if tail:
                parts.append(f"--- {path}:\n{tail}")
        return ("\n" + "\n".join(parts)) if parts else ""

    # -- lifetime ------------------------------------------------------------------------------

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Cancel every job, give their workers ``timeout`` seconds to leave, close the scheduler.

        Idempotent; also run when the cluster is garbage collected or the interpreter exits, so
        an interrupted session does not leave jobs burning allocation until their walltime.
        """
        from ..adaptive import stop_adapting

        stop_adapting(self)
        if self._finalizer.alive:
            self._finalizer.detach()
            self._resources.close(timeout)

    def __repr__(self) -> str:
        name = type(self).__name__
        if self._resources.closed:
            return f"{name}(closed)"
        return (f"{name}({self.scheduler_address!r}, jobs={len(self._resources.jobs)}, cores={self.cores}, "
                f"memory={format_bytes(self.memory)}, processes={self.processes})")


# ----------------------------------------------------------------------------------------------
# Argument checks


def _start_scheduler(options: Mapping[str, Any] | None) -> Any:
    from ..scheduler import Scheduler

    kwargs = dict(options or {})
    interface = kwargs.pop("interface", None)
    if interface is not None:
        if "hostname" in kwargs:
            raise ValueError("scheduler_options takes 'interface' or 'hostname', not both")
        kwargs["hostname"] = interface_address(interface)
    kwargs.setdefault("hostname", "127.0.0.1")
    if kwargs["hostname"] in ("0.0.0.0", "", "*", "::"):
        raise ValueError(f"scheduler hostname {kwargs['hostname']!r} is not an address workers can connect to; "
                         "give this machine's address or its interface (scheduler_options={'interface': 'ib0'})")
    scheduler = Scheduler(**kwargs)
    normalize_address(scheduler.address_to_workers)  # a clear error now rather than in every job
    return scheduler


def _double_quote(text: str) -> str:
    """``text`` in double quotes for the shell: safe with spaces, yet ``$TMPDIR`` still expands.

    >>> print(_double_quote('$TMPDIR/my "dir"'))
    "$TMPDIR/my \\"dir\\""
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
    return f'"{escaped}"'


def _positive_int(label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{label} must be a positive integer, not {value!r}")
    return value


def _parse_memory(memory: Any) -> int:
    if isinstance(memory, bool) or not isinstance(memory, (str, int, float)):
        raise TypeError(f"memory must be a size like '16GB' or a number of bytes, not {memory!r}")
    nbytes = parse_bytes(memory)
    if nbytes <= 0:
        raise ValueError(f"memory must be positive, not {memory!r}")
    return nbytes


def _optional_word(label: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError(f"{label} must be a single word such as 'project123', not {value!r}")
    return value.strip()


def _strings(label: str, values: Any) -> list[str]:
    if isinstance(values, str):
        raise TypeError(f"{label} takes a list of strings, not a single string: write [{values!r}]")
    values = list(values)
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{label} takes strings, not {bad!r}")
    return values


def _job_name(name: Any) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", name):
        raise ValueError(f"job_name must start with a letter and hold only letters, digits, '_', '.' and '-', "
                         f"not {name!r}")
    return name
