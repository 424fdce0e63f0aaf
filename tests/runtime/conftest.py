"""Shared fixtures for runtime tests: real clusters on 127.0.0.1 and a leak check.

* ``no_leaks`` (automatic for every test here): after each test, every Python thread, child
  process and listening TCP socket that the test created must be gone within a few seconds;
  leftovers are killed (so one failure does not cascade) and the test fails naming them.
* ``cli_cluster`` (one per module): ``lazyarr-scheduler`` and two ``lazyarr-worker`` processes
  started with ``subprocess.Popen`` exactly as a user would, addresses parsed from their output,
  terminated in a ``finally``.
* ``local_cluster`` (one per module): a :class:`runtime.LocalCluster` of two single-threaded
  worker processes.
* ``cli`` : helpers to run the CLI in a test of its own (``cli.start``, ``cli.stop``, ``cli.run``,
  ``cli.wait_for_workers``); test modules here are not a package, so helpers come as a fixture.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEAK_GRACE = 5.0
#: Name prefixes of long-lived threads that belong to a module-level owner, not to a test.
OWNED_THREADS = ("lazyarr-threads",)


# ----------------------------------------------------------------------------------------------
# Leak check


def _listening_ports() -> set[tuple[str, int]]:
    try:
        conns = psutil.Process().net_connections(kind="tcp")
    except (psutil.AccessDenied, AttributeError):  # pragma: no cover - older psutil or no permission
        return set()
    return {(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN}


def _children() -> dict[int, psutil.Process]:
    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            pass
    return found


def _owned_elsewhere(thread: threading.Thread) -> bool:
    """Long-lived threads with a module-level owner, not leaked by a test: lazyarr.threaded's
    reusable pools, and pyzmq's garbage collector of zero-copy frames (one per process)."""
    if thread.name.startswith(OWNED_THREADS):
        return True
    from zmq.utils.garbage import GarbageCollectorThread

    return isinstance(thread, GarbageCollectorThread)


@dataclass
class Snapshot:
    """Threads, child processes and listening sockets of this process at one moment."""

    threads: set = field(default_factory=set)
    children: dict = field(default_factory=dict)
    ports: set = field(default_factory=set)

    @classmethod
    def take(cls) -> "Snapshot":
        return cls({t for t in threading.enumerate() if t.is_alive()}, _children(), _listening_ports())

    def new_since(self, before: "Snapshot") -> tuple[list, list, list]:
        return ([t for t in self.threads if t not in before.threads and not _owned_elsewhere(t)],
                [p for pid, p in self.children.items() if pid not in before.children],
                sorted(self.ports - before.ports))


def check_no_leaks(before: Snapshot, grace: float = LEAK_GRACE) -> str | None:
    """Wait up to ``grace`` seconds for everything created since ``before`` to go; describe leftovers."""
    deadline = time.monotonic() + grace
    while True:
        threads, children, ports = Snapshot.take().new_since(before)
        if not (threads or children or ports):
            return None
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for proc in children:  # kill them so the next test starts clean
        try:
            proc.kill()
            proc.wait(5)
        except psutil.Error:
            pass
    parts = []
    if threads:
        parts.append("threads " + ", ".join(sorted(f"{t.name} ({getattr(t, '_target', None)!r})" for t in threads)))
    if children:
        parts.append("processes " + ", ".join(f"{p.pid}" for p in children))
    if ports:
        parts.append("listening sockets " + ", ".join(f"{ip}:{port}" for ip, port in ports))
    return "leaked " + "; ".join(parts)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves threads, child processes or listening sockets behind."""
    before = Snapshot.take()
    yield
    problem = check_no_leaks(before)
    if problem:
        pytest.fail(problem)


# ----------------------------------------------------------------------------------------------
# Running the CLI


@dataclass
class Command:
    """A CLI process started by a test, with the ``role: address`` lines it printed."""

    proc: subprocess.Popen
    addresses: dict[str, str]
    drain: threading.Thread | None = None
    output: list[str] = field(default_factory=list)


HERE = os.path.dirname(os.path.abspath(__file__))


def _env() -> dict[str, str]:
    """This checkout and this directory first on the path: workers import the tests' functions."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def start_command(args: list[str], roles: list[str], timeout: float = 20.0, with_logs: bool = False,
                  env: dict | None = None, prefix: list[str] | None = None) -> Command:
    """Start ``python -m runtime <args>`` and wait for a ``lazyarr-<command> <role>: <address>`` line per role.

    The rest of its stdout (and its log, on stderr, with ``with_logs``) is collected in
    ``command.output`` by a thread (joined by :func:`stop_command`), so a chatty process never
    blocks on a full pipe. ``prefix`` runs it through another command that ends by executing
    it (``['ip', 'netns', 'exec', NAME]``: inside a network namespace).
    """
    proc = subprocess.Popen([*(prefix or []), sys.executable, "-m", "runtime", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if with_logs else None,
                            env={**_env(), **(env or {})}, cwd=ROOT, bufsize=0)
    command = Command(proc, {})
    fd = proc.stdout.fileno()
    pending = b""
    deadline = time.monotonic() + timeout
    try:
        # Raw reads of the pipe: a buffered readline would hide already-read lines from select().
        while set(roles) - command.addresses.keys():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{args[0]} did not print {roles} within {timeout} s: {command.output}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{args[0]} exited with {proc.wait()} before printing {roles}: {command.output}")
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                command.output.append(line)
                words = line.split()
                if len(words) == 3 and words[0].startswith("lazyarr-") and words[1].rstrip(":") in roles:
                    command.addresses[words[1].rstrip(":")] = words[2]
    except BaseException:
        stop_command(command)
        raise
    command.drain = threading.Thread(target=_drain, args=(fd, pending, command.output), name=f"drain-{args[0]}")
    command.drain.start()
    return command


def _drain(fd: int, pending: bytes, output: list[str]) -> None:
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        output.extend(line.decode(errors="replace") for line in lines)
    if pending:
        output.append(pending.decode(errors="replace"))


def stop_command(command: Command, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    """Send ``sig``, wait for exit (killing after ``timeout``), join the drain thread; the exit code."""
    proc = command.proc
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    if command.drain is not None:
        command.drain.join(timeout)
    if proc.stdout is not None:
        proc.stdout.close()
    return code


def wait_for_workers(client, n: int, timeout: float = 20.0) -> dict:
    """Poll ``client.scheduler_info()`` until ``n`` workers are registered; returns the workers."""
    deadline = time.monotonic() + timeout
    while True:
        workers = client.scheduler_info()["workers"]
        if len(workers) >= n:
            return workers
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(workers)} of {n} workers registered within {timeout} s")
        time.sleep(0.02)


class CLITools:
    """The helpers above, handed to tests by the ``cli`` fixture."""

    root = ROOT
    start = staticmethod(start_command)
    stop = staticmethod(stop_command)
    wait_for_workers = staticmethod(wait_for_workers)

    @staticmethod
    def env() -> dict[str, str]:
        """The environment child processes get (this checkout first on PYTHONPATH)."""
        return _env()

    @staticmethod
    def run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
        """Run ``python -m runtime <args>`` to completion, capturing its output."""
        return subprocess.run([sys.executable, "-m", "runtime", *args], capture_output=True, text=True,
                              env=_env(), cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="session")
def cli() -> CLITools:
    """Helpers to start, stop and run the commands."""
    return CLITools()


@dataclass
class CLICluster:
    """A scheduler and workers started through the command line."""

    scheduler: Command
    workers: list[Command]

    @property
    def address_to_clients(self) -> str:
        return self.scheduler.addresses["clients"]

    @property
    def address_to_workers(self) -> str:
        return self.scheduler.addresses["workers"]


@pytest.fixture(scope="module")
def cli_cluster() -> Iterator[CLICluster]:
    """``lazyarr-scheduler`` plus two single-threaded ``lazyarr-worker`` processes, shared by a module."""
    from runtime import Client

    commands: list[Command] = []
    try:
        scheduler = start_command(["scheduler", "--host", "127.0.0.1"], ["workers", "clients"])
        commands.append(scheduler)
        workers = []
        for i in range(2):
            worker = start_command(["worker", scheduler.addresses["workers"], "--nthreads", "1",
                                    "--name", f"cli-{i}", "--memory-limit", "1GB"], ["address"])
            commands.append(worker)
            workers.append(worker)
        with Client(scheduler.addresses["clients"], timeout=20) as client:
            wait_for_workers(client, 2)
        yield CLICluster(scheduler, workers)
    finally:
        for command in reversed(commands):
            stop_command(command)


@pytest.fixture(scope="module")
def local_cluster() -> Iterator:
    """A LocalCluster of two single-threaded worker processes, shared by a module."""
    from runtime import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1GB") as cluster:
        yield cluster


@pytest.fixture
def client(local_cluster) -> Iterator:
    """A Client of the module's LocalCluster, closed after the test."""
    from runtime import Client

    with Client(local_cluster.scheduler_address, timeout=20) as c:
        yield c


@pytest.fixture
def fake_batch(tmp_path, monkeypatch):
    """Fake sbatch/squeue/scancel/qsub/qstat/qdel first on PATH.

    Job processes still running at the end are killed and fail the test.
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("the fake batch system reads /proc")
    from fake_batch.fakebatch import install

    fake = install(str(tmp_path / "batch"))
    monkeypatch.setenv("PATH", fake.bin_dir + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv("FAKE_BATCH_ACCOUNTS", raising=False)
    yield fake
    deadline = time.monotonic() + 10  # a job cancelled just now may still be shutting down
    while fake.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = fake.kill_all()
    if left:
        pytest.fail(f"job processes still running 10 s after the test (now killed): {left}")


@pytest.fixture
def scheduler_unpickles(monkeypatch) -> list:
    """The names of unpickling calls made in a scheduler thread while the test runs (should stay empty).

    Every entry point (``pickle.loads``/``load``, ``cloudpickle.loads``) is wrapped with a spy that
    records a call when the current thread is one of the scheduler's.
    """
    import pickle

    import cloudpickle

    calls: list = []

    def spy_on(module, name):
        real = getattr(module, name)

        def spy(*args, **kwargs):
            if threading.current_thread().name.startswith("lazyarr-scheduler"):
                calls.append(real.__name__)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)

    spy_on(pickle, "loads")
    spy_on(pickle, "load")
    spy_on(cloudpickle, "loads")
    return calls
