"""Command-line entry points: ``lazyarr-scheduler`` and ``lazyarr-worker``.

Start a cluster by hand, on one machine or across many (ssh into each and run one command)::

    $ lazyarr-scheduler --host 10.0.0.1 --port-to-workers 4444 --port-to-clients 5555
    lazyarr-scheduler workers: tcp://10.0.0.1:4444
    lazyarr-scheduler clients: tcp://10.0.0.1:5555

    $ lazyarr-worker tcp://10.0.0.1:4444 --nthreads 4 --nworkers 2 --host 10.0.0.2

Each worker runs under a nanny (``runtime.nannies.NannyGroup``) that restarts it when it dies and
tells the scheduler why; ``--no-nanny`` runs it directly. ``lazyarr-scheduler --state-dir DIR``
keeps named collections across restarts (``docs/resilience.md``).

The same commands run as ``python -m runtime scheduler ...`` and ``python -m runtime worker ...``.
Each command prints its addresses on stdout (one ``<command> <role>: <address>`` line each, so
scripts can parse them), logs to stderr, and shuts down cleanly on SIGTERM or SIGINT (Ctrl-C).

This module imports only what a worker needs (neither the scheduler nor numpy), so worker
processes start quickly; ``LocalCluster`` starts its workers through it.
"""
from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["scheduler_main", "worker_main", "main", "parse_memory_limit", "normalize_address"]

logger = logging.getLogger("runtime.cli")

# The one parser of memory limits, re-exported: LocalCluster and the job-queue code import it here.
from .memory import parse_memory_limit  # noqa: E402
from .resources import format_resources, parse_resources  # noqa: E402

#: How long a command waits for its children or its server to close before it gives up on them.
CLOSE_TIMEOUT = 10.0


def normalize_address(address: str) -> str:
    """``'host:port'`` or ``'tcp://host:port'`` as a ``tcp://`` address; clear error otherwise.

    >>> normalize_address('127.0.0.1:4444')
    'tcp://127.0.0.1:4444'
    >>> normalize_address('tcp://localhost:5555')
    'tcp://localhost:5555'
    """
    if not isinstance(address, str):
        raise TypeError(f"a scheduler address is a string like 'tcp://host:port', not {type(address).__name__}")
    text = address.strip()
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme != "tcp":
            raise ValueError(f"unsupported address {address!r}: only tcp://host:port addresses are supported")
    else:
        rest = text
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad address {address!r}: expected tcp://host:port with a port between 1 and 65535")
    return f"tcp://{rest}"


class _Stop:
    """Waits in the main thread until SIGTERM/SIGINT arrives or a watched file descriptor closes.

    A self-pipe wakes the wait from the signal handler, so no polling thread is needed.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self.reason: str | None = None
        self._previous: dict = {}

    def install(self) -> "_Stop":
        """Route SIGTERM, SIGINT (and SIGHUP where it exists) to this object.

        Signal handlers can only be set from the main thread; elsewhere (a command run inside a
        thread) the caller stops the wait with :meth:`request` instead.
        """
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is not None:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.request(signal.Signals(signum).name)

    def request(self, reason: str) -> None:
        """Ask the waiting loop to stop (safe from signal handlers and other threads)."""
        if self.reason is None:
            self.reason = reason
        try:
            os.write(self._write_fd, b"x")
        except OSError:  # the pipe is full: a wake-up is already pending
            pass

    def wait(self, lifeline_fd: int | None = None, poll: Callable[[], str | None] | None = None,
             interval: float = 1.0) -> str:
        """Block until a stop is requested, ``lifeline_fd`` reaches EOF or ``poll()`` returns a reason."""
        fds = [self._read_fd] + ([lifeline_fd] if lifeline_fd is not None else [])
        while self.reason is None:
            try:
                ready, _, _ = select.select(fds, [], [], interval)
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for old kernels
                continue
            if lifeline_fd is not None and lifeline_fd in ready:
                # The owner closed our stdin (or died): whatever arrives, it is time to go.
                try:
                    os.read(lifeline_fd, 4096)
                except OSError:
                    pass
                self.reason = self.reason or "owner closed the lifeline"
            if poll is not None and self.reason is None:
                self.reason = poll()
        return self.reason

    def restore(self) -> None:
        """Put the previous signal handlers back and close the self-pipe."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, not {text!r}") from None
    if not 0 <= port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} is out of range 0-65535 (0 picks a free port)")
    return port


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {n}")
    return n


def _announce(command: str, role: str, address: str) -> None:
    """One ``<command> <role>: <address>`` line on stdout, in a single write: with stderr on the
    same pipe, a log line can then never land in the middle of it."""
    try:
        sys.stdout.flush()
        os.write(sys.stdout.fileno(), f"{command} {role}: {address}\n".encode())
    except (OSError, ValueError):  # nobody reads our stdout any more: the line is only informational
        logger.debug("could not print %s %s: %s", command, role, address)


def _add_security_arguments(parser: argparse.ArgumentParser, key_name: str) -> None:
    """CURVE keys (see ``lazyarr-keys`` and docs/security.md) and the ``--insecure`` escape hatch."""
    group = parser.add_argument_group("security (docs/security.md)")
    group.add_argument("--security-dir", default=None,
                       help="a directory written by lazyarr-keys: encrypt and authenticate every connection "
                            "with its keys (server.key_secret, authorized_keys/, and the keypair --key-name)")
    if key_name != "scheduler":
        group.add_argument("--key-name", default=key_name,
                           help=f"which keypair of --security-dir is this {key_name}'s (default {key_name})")
    group.add_argument("--server-key", default=None, help="the cluster keypair file (instead of --security-dir)")
    group.add_argument("--client-key", default=None, help="this process's own keypair file (.key_secret)")
    group.add_argument("--authorized-keys", default=None, help="directory of the public keys allowed to connect")
    group.add_argument("--insecure", action="store_true",
                       help="allow listening on a non-loopback --host WITHOUT encryption or authentication: anyone "
                            "who can reach the port can run code here. Only on a network you fully trust.")


def _security_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~runtime.security.Security` the flags ask for, or None."""
    if args.security_dir is None and args.server_key is None:
        if args.client_key or args.authorized_keys:
            raise ValueError("--client-key and --authorized-keys need --server-key (or use --security-dir)")
        return None
    from .security import Security

    if args.security_dir is not None:
        if args.server_key or args.client_key or args.authorized_keys:
            raise ValueError("give either --security-dir or the individual key flags, not both")
        return Security.from_directory(args.security_dir, getattr(args, "key_name", "client"))
    return Security(args.server_key, args.client_key, args.authorized_keys)


# ----------------------------------------------------------------------------------------------
# lazyarr-scheduler


def scheduler_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lazyarr-scheduler``."""
    parser = argparse.ArgumentParser(
        prog="lazyarr-scheduler",
        description="Run the central scheduler of a lazyarr runtime cluster until SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="host name or IP to listen on and to advertise (default 127.0.0.1; give this "
                             "machine's name or IP so workers and clients on other machines can connect)")
    parser.add_argument("--port-to-workers", type=_port, default=0,
                        help="port workers connect to (default 0: any free port)")
    parser.add_argument("--port-to-clients", type=_port, default=0,
                        help="port clients connect to (default 0: any free port)")
    parser.add_argument("--dashboard-address", default="127.0.0.1:8787", metavar="HOST:PORT",
                        help="where to serve the web dashboard (default 127.0.0.1:8787, a free port if taken; "
                             "port 0: any free port; 'none': no dashboard; see docs/dashboard.md)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="how much to log on stderr (default info: joins and leaves of workers)")
    parser.add_argument("--state-dir", default=None, metavar="DIR",
                        help="save named collections in DIR whenever they change and load them at start, so "
                             "they survive a restart of the scheduler (see docs/resilience.md)")
    parser.add_argument("--allow-run-on-scheduler", action="store_true",
                        help="run the functions clients send with client.run_on_scheduler; without it the "
                             "scheduler never unpickles anything clients send (see docs/security.md)")
    _add_security_arguments(parser, "scheduler")
    return parser


def scheduler_main(argv: Sequence[str] | None = None) -> int:
    """``lazyarr-scheduler``: serve until SIGTERM/SIGINT, printing addresses and worker joins/leaves."""
    args = scheduler_parser().parse_args(argv)
    _setup_logging(args.log_level)
    from .scheduler import Scheduler

    stop = _Stop().install()
    try:
        try:
            scheduler = Scheduler(hostname=args.host, port_to_workers=args.port_to_workers,
                                  port_to_clients=args.port_to_clients, security=_security_from_args(args),
                                  insecure=args.insecure, state_dir=args.state_dir,
                                  dashboard_address=args.dashboard_address,
                                  allow_run_on_scheduler=args.allow_run_on_scheduler)
        except Exception as e:  # a taken port, an unknown host, no security: one clear line, not a traceback
            print(f"lazyarr-scheduler: cannot start: {e}", file=sys.stderr, flush=True)
            return 1
        try:
            _announce("lazyarr-scheduler", "workers", scheduler.address_to_workers)
            _announce("lazyarr-scheduler", "clients", scheduler.address_to_clients)
            if scheduler.dashboard_link:
                _announce("lazyarr-scheduler", "dashboard", scheduler.dashboard_link)
            # The scheduler itself logs workers joining and leaving (logger runtime.scheduler).
            reason = stop.wait()
            logger.info("shutting down (%s)", reason)
        finally:
            scheduler.close()
    finally:
        stop.restore()
    return 0


# ----------------------------------------------------------------------------------------------
# lazyarr-worker


def worker_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lazyarr-worker``."""
    parser = argparse.ArgumentParser(
        prog="lazyarr-worker",
        description="Run lazyarr runtime worker(s) connected to a scheduler until SIGTERM or Ctrl-C.",
    )
    parser.add_argument("scheduler", help="the scheduler's address for workers, tcp://host:port")
    parser.add_argument("--nthreads", type=_positive_int, default=None,
                        help="threads per worker (default: this machine's cores divided by --nworkers)")
    parser.add_argument("--nworkers", type=_positive_int, default=1,
                        help="worker processes to start (default 1; more than 1 starts child processes "
                             "owned by this command)")
    parser.add_argument("--memory-limit", default="auto",
                        help="memory per worker: 'auto' (machine memory / nworkers, the default), "
                             "a size such as 4GB, a fraction such as 0.5, or 0 for no limit. Past 60%% of it "
                             "results spill to disk, past 80%% the worker starts no new task until memory drops "
                             "(thresholds: distributed.worker.memory.*, see docs/memory.md)")
    parser.add_argument("--name", default=None,
                        help="worker name (with --nworkers K, workers are named NAME-0 .. NAME-(K-1))")
    parser.add_argument("--resources", default=None, metavar="'NAME=AMOUNT,...'",
                        help="abstract resources of each worker, such as 'GPU=2,MEM=10e9' (commas or spaces): "
                             "tasks submitted with resources={'GPU': 1} run only on workers that have them, "
                             "never more at once than these amounts allow")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface this worker listens on for its peers and advertises (default 127.0.0.1)")
    parser.add_argument("--port-to-workers", type=_port, default=0,
                        help="port for peers (default 0: any free port; with --nworkers > 1 only 0 is allowed)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="how much to log on stderr")
    # Used by LocalCluster and --nworkers: exit when stdin reaches EOF, i.e. when the owner goes away.
    parser.add_argument("--lifeline", action="store_true", help=argparse.SUPPRESS)
    # Used by LocalCluster: it learns addresses from the scheduler, so the children need not print them.
    parser.add_argument("--no-announce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-nanny", action="store_true",
                        help="run the worker(s) directly instead of under a nanny process that restarts a "
                             "worker when it dies, reports why it died to the scheduler and kills it past "
                             "its memory limit (see docs/nanny.md)")
    # Set by the nanny for the worker it starts: the scheduler matches the nanny's reports to it.
    parser.add_argument("--nanny-id", default=None, help=argparse.SUPPRESS)
    _add_security_arguments(parser, "worker")
    return parser


def worker_main(argv: Sequence[str] | None = None, *, _command: bool | None = None) -> int:
    """``lazyarr-worker``: run one worker in this process, or supervise ``--nworkers`` child processes.

    Run as a command (the console script, or ``python -m runtime worker``), a single worker
    re-executes itself once if its environment lacks what a worker process wants
    (:func:`runtime.worker.worker_process_environment`, which must be set before a process
    starts); called as a function with an ``argv`` list, it never replaces the calling process.
    """
    command = argv is None if _command is None else _command
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = worker_parser()
    args = parser.parse_args(argv)
    try:
        address = normalize_address(args.scheduler)
        memory_limit = parse_memory_limit(args.memory_limit, nthreads=1, total_nthreads=args.nworkers)
        resources = parse_resources(args.resources)
        security = _security_from_args(args)
    except (TypeError, ValueError) as e:
        parser.error(str(e))
    if args.nworkers > 1 and args.port_to_workers:
        parser.error("--port-to-workers cannot be fixed with --nworkers > 1: each worker needs its own port")
    nthreads = args.nthreads or max(1, (os.cpu_count() or 1) // args.nworkers)
    if command and args.nworkers == 1 and args.no_nanny:  # a nanny gives its workers the environment itself
        _reexec_with_worker_environment(argv)
    _setup_logging(args.log_level)
    from .security import check_listen

    try:  # before any nanny starts: refusing is final, not a crash to restart
        check_listen(args.host, security, args.insecure, "the worker")
    except ValueError as e:
        print(f"lazyarr-worker: cannot start: {e}", file=sys.stderr, flush=True)
        return 1
    child_args = (security.cli_args() if security is not None else []) + (["--insecure"] if args.insecure else [])
    if resources:  # each worker process declares them
        child_args += ["--resources", format_resources(resources)]
    if not args.no_nanny:
        return _run_nannies(address, args, nthreads, memory_limit, child_args, security)
    if args.nworkers == 1:
        return _run_one_worker(address, args.host, args.port_to_workers, nthreads, memory_limit,
                               args.name, args.lifeline, not args.no_announce, security=security,
                               insecure=args.insecure, nanny=args.nanny_id, resources=resources)
    return _supervise_workers(address, args.host, nthreads, memory_limit, args.name, args.nworkers, args.lifeline,
                              extra_args=child_args)


_REEXEC_MARK = "LAZYARR_WORKER_REEXEC"


def _reexec_with_worker_environment(argv: list[str]) -> None:
    """Replace this process by ``python -m runtime.cli worker <argv>`` with the worker environment,
    unless it already has it (LocalCluster and ``--nworkers`` children do) or this is the re-run."""
    if os.environ.get(_REEXEC_MARK) or not sys.platform.startswith("linux"):
        return
    from .worker import worker_process_environment

    wanted = worker_process_environment(dict(os.environ))
    if all(os.environ.get(k) == v for k, v in wanted.items()):
        return
    wanted[_REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "runtime.cli", "worker", *argv], wanted)


def _run_one_worker(scheduler: str, host: str, port: int, nthreads: int, memory_limit: int | None,
                    name: str | None, lifeline: bool, announce: bool = True, *, security: Any = None,
                    insecure: bool = False, nanny: str | None = None, resources: dict | None = None) -> int:
    from .worker import Worker

    stop = _Stop().install()
    try:
        try:
            # A worker retired with close_workers=True is told to close by the scheduler: this
            # process then exits with code 0, which its nanny (if any) does not restart.
            worker = Worker(scheduler=scheduler, hostname=host, port_to_workers=port, nthreads=nthreads,
                            name=name, memory_limit=memory_limit, security=security, insecure=insecure,
                            nanny=nanny, on_close_request=lambda reason: stop.request(f"{reason} by the scheduler"),
                            resources=resources)
        except Exception as e:
            print(f"lazyarr-worker: cannot start: {e}", file=sys.stderr, flush=True)
            return 1
        try:
            if announce:
                _announce("lazyarr-worker", "address", worker.address)
            logger.info("worker %s (name %s, %d threads, memory limit %s%s) serving scheduler %s",
                        worker.address, worker.name, nthreads, _format_limit(memory_limit),
                        f", resources {format_resources(resources)}" if resources else "", scheduler)
            reason = stop.wait(lifeline_fd=sys.stdin.fileno() if lifeline else None)
            logger.info("worker %s shutting down (%s)", worker.address, reason)
        finally:
            worker.close()
    finally:
        stop.restore()
    return 0


def nanny_worker_command(scheduler: str, *, nthreads: int, memory_limit: int | None, host: str, name: str | None,
                         log_level: str, port: int = 0, announce: bool = True,
                         extra_args: Sequence[str] = ()) -> Callable[[str], list[str]]:
    """A function of the nanny's identity returning the argv of one worker it runs."""
    def command(nanny_id: str) -> list[str]:
        argv = [sys.executable, "-m", "runtime.cli", "worker", scheduler, "--no-nanny", "--lifeline",
                "--nanny-id", nanny_id, "--nthreads", str(nthreads), "--memory-limit", str(memory_limit or 0),
                "--host", host, "--log-level", log_level, *extra_args]
        if name is not None:
            argv += ["--name", name]
        if port:
            argv += ["--port-to-workers", str(port)]
        if not announce:
            argv.append("--no-announce")
        return argv

    return command


def _run_nannies(scheduler: str, args: Any, nthreads: int, memory_limit: int | None, child_args: list,
                 security: Any) -> int:
    """Run ``--nworkers`` workers, each under a nanny, until a stop; then close them all."""
    from .nannies import NannyGroup
    from .worker import worker_process_environment

    if args.nworkers == 1:
        names = [args.name]
    else:
        base = args.name or f"{args.host}-{os.getpid()}"
        names = [f"{base}-{i}" for i in range(args.nworkers)]
    commands = [nanny_worker_command(scheduler, nthreads=nthreads, memory_limit=memory_limit, host=args.host,
                                     name=name, log_level=args.log_level, port=args.port_to_workers,
                                     announce=not args.no_announce, extra_args=child_args)
                for name in names]
    stop = _Stop().install()
    group = None
    try:
        try:
            group = NannyGroup(scheduler, commands, memory_limit=memory_limit, security=security,
                               env=worker_process_environment(dict(os.environ)),
                               names=[n or f"worker-{i}" for i, n in enumerate(names)])
        except Exception as e:
            print(f"lazyarr-worker: cannot start: {e}", file=sys.stderr, flush=True)
            return 1
        logger.info("nannies %s watching %d workers of scheduler %s", group.id, args.nworkers, scheduler)
        reason = stop.wait(lifeline_fd=sys.stdin.fileno() if args.lifeline else None,
                           poll=lambda: None if any(n.status != "stopped" for n in group.nannies)
                           else "every worker stopped", interval=0.5)
        logger.info("shutting down %d workers (%s)", args.nworkers, reason)
    finally:
        if group is not None:
            group.close(CLOSE_TIMEOUT)
        stop.restore()
    return 0


def _format_limit(limit: int | None) -> str:
    if limit is None:
        return "none"
    from lazyarr.utils import format_bytes

    return format_bytes(limit)


def _supervise_workers(scheduler: str, host: str, nthreads: int, memory_limit: int | None,
                       name: str | None, nworkers: int, lifeline: bool, extra_args: Sequence[str] = ()) -> int:
    """Start ``nworkers`` child worker processes, wait for a stop, then close them all."""
    from .cluster import WorkerProcess

    stop = _Stop().install()
    children: list[WorkerProcess] = []
    try:
        base = name or f"{host}-{os.getpid()}"
        for i in range(nworkers):
            child = WorkerProcess(scheduler, name=f"{base}-{i}", nthreads=nthreads, memory_limit=memory_limit,
                                  hostname=host, log_level=logging.getLevelName(logger.getEffectiveLevel()).lower(),
                                  announce=True, extra_args=extra_args)
            children.append(child)
            child.start()

        def all_gone() -> str | None:
            alive = [c for c in children if c.poll() is None]
            for c in children:
                if c.poll() is not None and not c.reported:
                    c.reported = True  # code 0: it chose to go (e.g. retired by the scheduler)
                    (logger.info if c.poll() == 0 else logger.warning)(
                        "worker process %s (pid %d) exited with code %s", c.name, c.pid, c.poll())
            return None if alive else "every worker process exited"

        reason = stop.wait(lifeline_fd=sys.stdin.fileno() if lifeline else None, poll=all_gone, interval=0.5)
        logger.info("shutting down %d worker processes (%s)", nworkers, reason)
    finally:
        deadline = time.monotonic() + CLOSE_TIMEOUT
        for child in children:
            child.request_close()
        for child in children:
            child.join(max(0.1, deadline - time.monotonic()))
        stop.restore()
    failed = [c for c in children if c.returncode not in (0, None)]
    return 1 if failed and len(failed) == len(children) else 0


# ----------------------------------------------------------------------------------------------
# python -m runtime.cli / python -m runtime


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runtime {scheduler,worker} ...``: dispatch to the two commands."""
    command = argv is None  # run as ``python -m runtime``, not called with a list by other code
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"scheduler": scheduler_main, "worker": lambda rest: worker_main(rest, _command=command)}
    if not argv or argv[0] not in commands:
        if argv and argv[0] in ("-h", "--help"):
            print("usage: python -m runtime {scheduler,worker} [options]  (see each command's --help)")
            return 0
        print("usage: python -m runtime {scheduler,worker} [options]  (see each command's --help)",
              file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
