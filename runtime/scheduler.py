"""The scheduler process: two ROUTER sockets around a :class:`~runtime.scheduler_state.SchedulerState`.

Workers connect to ``address_to_workers``, clients to ``address_to_clients``. The loop here only
receives messages, decodes their headers, calls the state machine and sends what it returns,
grouping all ops for one peer into one message. It never unpickles payloads, except the
functions of ``client.run_on_scheduler`` when started with ``allow_run_on_scheduler=True``.

>>> s = Scheduler()                       # picks free ports on 127.0.0.1, serves in a thread
>>> s.address_to_workers.startswith('tcp://127.0.0.1:')
True
>>> s.close()
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections import defaultdict
from typing import Any, Callable

import zmq

from lazyarr import config

from . import protocol
from .errors import ProtocolError, VersionMismatchError
from .liveness import Liveness
from .scheduler_state import SchedulerState
from .task_stream import TaskStream
from .security import HANDSHAKE_FAILED, Security, check_dashboard_listen, check_listen, log_handshake_failure
from .waker import Waker

__all__ = ["Scheduler"]

logger = logging.getLogger("runtime.scheduler")

_DRAIN = 2000  # messages read from one socket before looking at the other one
#: Tasks forgotten after which the heap is handed back to the operating system (trim_memory).
_TRIM_AFTER = 50_000


def trim_memory() -> bool:
    """Give freed heap memory back to the operating system (glibc's ``malloc_trim``).

    After a large graph is forgotten its memory is free inside the process but glibc keeps most
    of it mapped; without this the scheduler's RSS stays near its peak. False where unsupported.
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if not _malloc_trim:
        return False
    _malloc_trim(0)
    return True


_malloc_trim: Any = None


def _bind(sock: zmq.Socket, hostname: str, port: int | None) -> int:
    """Bind to ``hostname:port`` (a free port if 0/None), raising a clear error on failure."""
    try:
        if not port:
            return sock.bind_to_random_port(f"tcp://{hostname}")
        sock.bind(f"tcp://{hostname}:{int(port)}")
        return int(port)
    except zmq.ZMQError as e:
        raise OSError(f"cannot listen on tcp://{hostname}:{port or '<any port>'}: {e}") from None


class Scheduler:
    """The central scheduler: tracks tasks, workers and clients; routes opaque payloads.

    Starts serving in a background thread at construction and returns at once; ``close()`` stops
    it. A context manager.

    Parameters
    ----------
    hostname: interface to listen on (loopback by default).
    port_to_workers, port_to_clients: ports to bind; 0 or None picks free ones.
    max_message_size: bound on a single frame (default ``runtime.max-message-size``).
    worker_timeout, client_timeout: seconds of silence after which a worker or client is dropped.
    security: a :class:`~runtime.security.Security` with the cluster's secret key and the
        authorized keys: both ports then require CURVE encryption and an authorized key.
    insecure: allow listening on a non-loopback ``hostname`` without ``security`` (logs a warning);
        otherwise that raises :class:`~runtime.errors.InsecureListenError`.
    dashboard_address: ``'host:port'`` of the web dashboard (``docs/dashboard.md``); port 0 picks
        a free port, a taken 8787 falls back to a free one; ``None`` turns it off.
    state_dir: a directory where named collections are saved (atomically) whenever they change,
        and from which they are loaded at start: they survive a scheduler restart (see
        ``docs/resilience.md``).
    allow_run_on_scheduler: run the functions clients send with ``client.run_on_scheduler``.
        Off by default: the scheduler otherwise never unpickles anything a client sends, so a
        client can make it run no code of its own (``docs/security.md``).
    """

    def __init__(self, hostname: str = "127.0.0.1", port_to_workers: int | None = 0,
                 port_to_clients: int | None = 0, *, max_message_size: int | str | None = None,
                 worker_timeout: float | None = None, client_timeout: float | None = None,
                 check_interval: float | None = None, security: Security | None = None,
                 insecure: bool = False, dashboard_address: str | None = "127.0.0.1:8787",
                 state_dir: str | os.PathLike | None = None, allow_run_on_scheduler: bool = False):
        check_listen(hostname, security, insecure, "the scheduler")
        from .dashboard import parse_dashboard_address, start_dashboard

        dashboard_spec = parse_dashboard_address(dashboard_address)  # bad input fails before binding
        if dashboard_spec is not None:
            check_dashboard_listen(dashboard_spec[0], insecure)
        if not isinstance(allow_run_on_scheduler, bool):
            raise TypeError(f"allow_run_on_scheduler must be True or False, not {allow_run_on_scheduler!r}")
        self.hostname = hostname
        self.security = security
        #: Does this scheduler run ``client.run_on_scheduler`` functions (an explicit opt-in)?
        self.allow_run_on_scheduler = allow_run_on_scheduler
        size = protocol.max_message_size() if max_message_size is None else protocol.parse_bytes(max_message_size)
        self._ctx = zmq.Context()
        self._to_workers = self._ctx.socket(zmq.ROUTER)
        self._to_clients = self._ctx.socket(zmq.ROUTER)
        self._authenticator = None
        try:
            if security is not None:
                # ZAP handler first: a CURVE server without one would let any key in
                self._authenticator = security.start_authenticator(self._ctx, "the scheduler")
            for sock in (self._to_workers, self._to_clients):
                protocol.configure_socket(sock, size)
                if security is not None:
                    security.configure_server(sock, "the scheduler")
                sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a peer reconnecting keeps its identity
                sock.setsockopt(zmq.SNDHWM, 0)
                sock.setsockopt(zmq.RCVHWM, 0)
            self.port_to_workers = _bind(self._to_workers, hostname, port_to_workers)
            self.port_to_clients = _bind(self._to_clients, hostname, port_to_clients)
        except BaseException:
            self._to_workers.close(0)
            self._to_clients.close(0)
            if self._authenticator is not None:
                self._authenticator.stop()
            self._ctx.term()
            raise
        # connection drops on the worker port, so that a worker killed with SIGKILL is noticed at
        # once (the kernel closes its connection) rather than after the heartbeat timeout
        self._monitor = self._to_workers.get_monitor_socket(
            zmq.EVENT_DISCONNECTED | (HANDSHAKE_FAILED if security is not None else 0))
        # refused handshakes on the client port are logged too (docs/security.md)
        self._client_monitor = (self._to_clients.get_monitor_socket(HANDSHAKE_FAILED)
                                if security is not None else None)
        self.address_to_workers = f"tcp://{hostname}:{self.port_to_workers}"
        self.address_to_clients = f"tcp://{hostname}:{self.port_to_clients}"
        self.state = SchedulerState(
            queue_seconds=float(config.get("runtime.queue-seconds")),
            min_buffer=int(config.get("runtime.min-buffer")),
            max_buffer=int(config.get("runtime.max-buffer")),
            worker_timeout=float(worker_timeout if worker_timeout is not None else config.get("runtime.worker-timeout")),
            client_timeout=float(client_timeout if client_timeout is not None else config.get("runtime.client-timeout")),
            allowed_failures=int(config.get("runtime.allowed-failures")),
            work_stealing=bool(config.get("runtime.work-stealing")),
            steal_interval=float(config.get("runtime.steal-interval")),
        )
        #: Changes at every start: clients compare it to notice that the scheduler restarted.
        self.id = uuid.uuid4().hex
        self._liveness = Liveness(float(config.get("runtime.disconnect-grace")),
                                  float(config.get("runtime.heartbeat-interval")))
        self._restarts: list = []  # (client, rid, workers expected, deadline)
        self._retirements: list = []  # (worker addresses, deadline, callback of the retired ones)
        self._state_dir = None
        if state_dir is not None:
            from .state_dir import StateDir

            self._state_dir = StateDir(state_dir)
            self._state_dir.load_into(self.state)
        # restored collections are recomputed only after surviving workers had time to register
        # again with the data they hold (they do so within a heartbeat or two of our start)
        self._recover_at = time.monotonic() + 3 * float(config.get("runtime.heartbeat-interval"))
        self._check_interval = float(check_interval if check_interval is not None
                                     else config.get("runtime.heartbeat-interval"))
        self._garbage_log = protocol.RateLimitedLog(logger)
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._waker = Waker()
        self._closing = False
        self._closed = False
        self.messages_dropped = 0
        self.task_stream = TaskStream()          # what ran where (dashboard, performance reports)
        from .progress import ProgressTracker

        self._progress = ProgressTracker()
        self.dashboard = start_dashboard(self, dashboard_spec)  # None when turned off
        self._thread = threading.Thread(target=self._run, name=f"lazyarr-scheduler-{self.port_to_clients}",
                                        daemon=True)
        self._thread.start()
        logger.info("scheduler listening: workers at %s, clients at %s", self.address_to_workers,
                    self.address_to_clients)

    # ------------------------------------------------------------------ public

    def __repr__(self) -> str:
        return f"<Scheduler workers={self.address_to_workers} clients={self.address_to_clients}>"

    def __enter__(self) -> "Scheduler":
        return self

    @property
    def dashboard_link(self) -> str | None:
        """The dashboard's URL (``http://127.0.0.1:8787/status``), or None when it is off."""
        return self.dashboard.link if self.dashboard is not None else None

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def sync(self, func: Callable[[SchedulerState], Any], timeout: float = 10.0) -> Any:
        """Run ``func(state)`` in the scheduler's thread and return its result (for tests, tools)."""
        if self._closed:
            raise RuntimeError("the scheduler is closed")
        box: queue.SimpleQueue = queue.SimpleQueue()
        self._calls.put((func, box))
        self._wake()
        ok, value = box.get(timeout=timeout)
        if not ok:
            raise value
        return value

    def retire_workers(self, workers: list, timeout: float = 30.0,
                       should_stop: Callable[[], bool] | None = None, *, close_workers: bool = False) -> list[str]:
        """Move the data only ``workers`` (addresses or names) hold to other workers, then remove
        them from the scheduler; returns the addresses removed, once they are.

        The workers themselves keep running until their owner closes them (a cluster does that
        next), unless ``close_workers``: then each removed worker is told to shut down (as
        ``client.retire_workers`` does by default). Workers whose data could not be moved within
        ``timeout`` seconds (no other worker, transfers failing) go back into service and are not
        in the result, as do all still pending when ``should_stop()`` turns true. See
        :meth:`SchedulerState.retire_workers`.
        """
        box: queue.SimpleQueue = queue.SimpleQueue()
        self.sync(lambda state: self._send(self._start_retirement(list(workers), float(timeout), box.put,
                                                                  close=close_workers)))
        while True:
            try:
                return box.get(timeout=0.05)
            except queue.Empty:
                if self._closed:
                    raise RuntimeError("the scheduler closed while retiring workers") from None
                if should_stop is not None and should_stop():
                    self.sync(lambda state: self._check_retirements(time.monotonic(), expire=box.put))

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving, close the sockets and join the thread. Workers keep running (they
        re-register when a scheduler appears again at the same address)."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._wake()
        self._thread.join(timeout)
        if self.dashboard is not None:
            self.dashboard.close()
        if self._authenticator is not None:
            self._authenticator.stop()
        if self._thread.is_alive():
            logger.error("scheduler thread did not stop within %s s", timeout)
        else:
            self._ctx.term()
        self._waker.close()
        logger.info("scheduler at %s closed", self.address_to_clients)

    # ------------------------------------------------------------------ loop

    def _wake(self) -> None:
        self._waker.wake()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._to_workers, zmq.POLLIN)
        poller.register(self._to_clients, zmq.POLLIN)
        poller.register(self._waker.fd, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        if self._client_monitor is not None:
            poller.register(self._client_monitor, zmq.POLLIN)
        next_check = time.monotonic() + self._check_interval
        try:
            while not self._closing:
                wait = max(0.0, min(next_check, self._next_deadline()) - time.monotonic())
                events = dict(poller.poll(int(wait * 1000) + 1))
                out: list = []
                busy = True
                while busy and not self._closing:
                    busy = False
                    if self._drain(self._to_workers, self._on_worker, out):
                        busy = True
                    if self._drain(self._to_clients, self._on_client, out):
                        busy = True
                    if out:
                        self._send(out)
                        out = []
                if self._monitor in events:  # after the drain: a dead peer's last messages come first
                    self._read_monitor()
                if self._client_monitor is not None and self._client_monitor in events:
                    self._read_client_monitor()
                if self._waker.fd in events:
                    self._waker.drain()
                    self._run_calls()
                now = time.monotonic()
                self._check_liveness(now)
                if self.state.nforgotten >= _TRIM_AFTER:  # a large graph was forgotten
                    self.state.shrink()
                    trim_memory()
                due = self.state.balance_due
                if due is not None and now >= due:
                    self._send(self.state.balance(now))  # a work-stealing pass put off until now
                if now >= next_check:
                    next_check = now + self._check_interval
                    self._check_timeouts(now)
        except Exception:  # the loop must never die silently
            logger.exception("scheduler loop crashed")
        finally:
            try:
                self._to_workers.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(0)
            if self._client_monitor is not None:
                try:
                    self._to_clients.disable_monitor()
                except zmq.ZMQError:
                    pass
                self._client_monitor.close(0)
            self._to_workers.close(0)
            self._to_clients.close(0)

    def _check_timeouts(self, now: float) -> None:
        before = set(self.state.workers)
        self._send(self.state.check_timeouts(now))
        for address in before - set(self.state.workers):
            self._liveness.forget(address)
            logger.info("worker %s left (silent for more than %s s)", address, self.state.worker_timeout)

    def _run_calls(self) -> None:
        while True:
            try:
                func, box = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                box.put((True, func(self.state)))
            except BaseException as e:
                box.put((False, e))

    def _drain(self, sock: zmq.Socket, handler: Callable, out: list) -> bool:
        """Read and handle up to ``_DRAIN`` waiting messages; True if there were any."""
        for i in range(_DRAIN):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return i > 0
            ident = frames[0].bytes
            if sock is self._to_workers and len(frames) > 1:
                # which connection (file descriptor) this peer uses, for the monitor's disconnects
                try:
                    self._liveness.fds[frames[1].get(zmq.SRCFD)] = ident
                except zmq.ZMQError:
                    # no fd on the frame: raw TCP bytes that libzmq took for a ZMTP 1.0 peer
                    # (found by tests/runtime/test_fuzz.py); such a message is garbage anyway
                    pass
                if self._liveness.suspects:
                    self._liveness.heard(ident.decode("latin-1"))
            try:
                ops = protocol.decode(frames[1:])
            except VersionMismatchError as e:
                self._garbage_log.warning("message from a peer of another protocol version dropped: %s", e)
                self._reply_error(sock, ident, str(e))
                continue
            except ProtocolError as e:
                self.messages_dropped += 1
                self._garbage_log.warning("dropped a malformed message on %s: %s",
                                          "the worker port" if sock is self._to_workers else "the client port", e)
                continue
            peer = ident.decode("latin-1")
            for op in ops:
                try:
                    out.extend(handler(peer, op))
                except Exception as e:
                    self.messages_dropped += 1
                    self._garbage_log.warning("could not handle op %r from %r: %s: %s", op.get("op"), peer,
                                              type(e).__name__, e)
                    logger.debug("handler failure", exc_info=True)
                    self._reply_error(sock, ident, f"scheduler could not handle op {op.get('op')!r}: "
                                                   f"{type(e).__name__}: {e}", op)
        return True

    def _reply_error(self, sock: zmq.Socket, ident: bytes, message: str, op: dict | None = None) -> None:
        body: dict = {"op": "error", "message": message, "version": protocol.VERSION}
        if op is not None:
            if "rid" in op:
                body["rid"] = op["rid"]
            if op.get("op") == "update-graph" and isinstance(op.get("wanted"), tuple):
                body["keys"] = op["wanted"]
        try:
            sock.send_multipart([ident, *protocol.encode([body])], zmq.NOBLOCK)
        except (zmq.ZMQError, TypeError):
            pass

    def _send(self, messages: list) -> None:
        if not messages:
            return
        grouped: dict = defaultdict(list)
        for dest, op in messages:
            grouped[dest].append(op)
        for (kind, peer), ops in grouped.items():
            sock = self._to_workers if kind == "w" else self._to_clients
            try:
                frames = protocol.encode(ops)
            except Exception:
                logger.exception("could not encode a message for %s", peer)
                continue
            try:
                sock.send_multipart([peer.encode("latin-1"), *frames], zmq.NOBLOCK, copy=False)
            except zmq.ZMQError as e:
                logger.warning("could not send to %s: %s", peer, e)

    # ------------------------------------------------------------------ dispatch

    def _on_worker(self, address: str, op: dict) -> list:
        state = self.state
        name = op["op"]
        if name in ("nanny-hello", "worker-died"):  # from a nanny (its own identity), not a worker
            return self._on_nanny(address, op)
        if name == "call-result":  # from a worker, or from a nanny for client.run(..., nanny=True)
            return state.call_answered(address, op["client"], op["rid"], op["worker"], op["ok"], op["result"])
        if self._liveness.retired and self._liveness.is_retired(address, time.monotonic()):
            return []  # the old process of a worker being restarted: let it go
        if name == "finished":
            keys, nbytes, duration = op["keys"], op["nbytes"], op.get("duration")
            if (type(keys) is not tuple or type(nbytes) is not tuple or len(keys) != len(nbytes)
                    or not all(type(n) is int for n in nbytes)
                    or not (duration is None or type(duration) in (int, float))):
                raise ProtocolError("malformed 'finished' op")
            if duration is None:
                self.task_stream.transferred(address, nbytes)  # copies fetched from peers / scattered
            else:
                self.task_stream.finished(address, keys, nbytes, op.get("starts"), op.get("stops"), op.get("threads"))
            return state.tasks_finished(address, keys, nbytes, duration)
        if name == "erred":
            out: list = []
            for key, exc in zip(op["keys"], op["exceptions"]):
                out.extend(state.task_erred(address, key, exc))
            return out
        if name == "missing":
            out = []
            for key, dep, holder in op["items"]:
                out.extend(state.missing_data(address, key, dep, holder))
            return out
        if name == "client-data":
            return state.client_data(address, op["client"], op["rid"], op["keys"], op["values"],
                                     op.get("missing", ()), op.get("errors", ()))
        if name == "heartbeat":
            self.task_stream.heartbeat(address, op.get("metrics"))
            return state.worker_heartbeat(address, op.get("metrics"))
        if name == "paused":
            paused = op["paused"]
            if type(paused) is not bool:
                raise ProtocolError("malformed 'paused' op")
            logger.info("worker %s %s", address, "paused (memory above its pause threshold)" if paused else "resumed")
            return state.worker_paused(address, paused)
        if name == "seceded":
            return state.task_seceded(address, op["keys"])
        if name == "steal-response":
            keys, released = op["keys"], op["released"]
            if type(keys) is not tuple or type(released) is not tuple or len(keys) != len(released):
                raise ProtocolError("malformed 'steal-response' op")
            return state.steal_response(address, keys, released)
        if name == "register":
            if op.get("address") != address:
                raise ProtocolError(f"a worker must connect with its address {op.get('address')!r} as identity")
            known = address in state.workers
            self._liveness.registered(address, op.get("nanny"), op.get("pid"))
            out = state.worker_added(address, op.get("nthreads", 1), op.get("name"), op.get("memory_limit"),
                                     op.get("keys", ()), op.get("nbytes", ()), resources=op.get("resources"))
            if not known:
                logger.info("worker %s joined (%s threads, name %s%s)", address, op.get("nthreads"), op.get("name"),
                            f", resources {op['resources']}" if op.get("resources") else "")
            # the clients' address: tasks on the worker open clients of their own (get_client())
            return [(("w", address), {"op": "welcome", "version": protocol.VERSION,
                                      "address_to_clients": self.address_to_clients}), *out]
        if name == "unregister":
            if address in state.workers:
                logger.info("worker %s left", address)
            self._liveness.forget(address)
            return state.worker_removed(address)
        if name == "hello":  # a client at the workers' port: tell it where to go
            return [(("w", address), {"op": "error", "fatal": True, "version": protocol.VERSION,
                                      "message": f"{self.address_to_workers} is the scheduler's port for workers; "
                                                 f"clients connect to {self.address_to_clients}"})]
        if address not in state.workers:
            return [(("w", address), {"op": "register-again"})]
        raise ProtocolError(f"unknown worker op {name!r}")

    # ------------------------------------------------------------------ liveness, nannies, restarts

    def _read_client_monitor(self) -> None:
        """Failed security handshakes on the client port: logged (rate-limited)."""
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                event = recv_monitor_message(self._client_monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            log_handshake_failure(event["event"], f"the client port {self.address_to_clients}")

    def _read_monitor(self) -> None:
        """Connection drops on the worker port: the peer last seen on that connection is a suspect."""
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] != zmq.EVENT_DISCONNECTED:
                log_handshake_failure(event["event"], f"the worker port {self.address_to_workers}")
                continue
            ident = self._liveness.fds.pop(int(event["value"]), None)
            if ident is not None:
                address = ident.decode("latin-1")
                if address in self.state.workers:
                    self._liveness.disconnected(address, time.monotonic())

    def _next_deadline(self) -> float:
        deadline = self._liveness.next_deadline()
        if self.state.balance_due is not None:
            deadline = min(deadline, self.state.balance_due)
        if self._restarts or self._retirements:
            deadline = min(deadline, time.monotonic() + 0.05)
        if self.state.restoring:
            deadline = min(deadline, max(self._recover_at, time.monotonic() + 0.1))
        return deadline

    def _check_liveness(self, now: float) -> None:
        for address in self._liveness.due(now):
            if address in self.state.workers:
                logger.warning("worker %s left: its connection dropped and it gave no sign of life "
                               "since (presumed dead)", address)
                self._liveness.forget(address)
                self._send(self.state.worker_removed(address, died=True, reason="connection lost"))
        if self._restarts:
            self._check_restarts(now)
        if self._retirements:
            self._check_retirements(now)
        if self.state.restoring and self.state.workers and now >= self._recover_at:
            self._send(self.state.recover_collections())

    def _on_nanny(self, nanny: str, op: dict) -> list:
        self._liveness.nanny_seen(nanny, time.monotonic())
        if op["op"] == "nanny-hello":
            return []
        address = self._liveness.find(nanny, op.get("pid"))
        if address is None or address not in self.state.workers:
            return []
        reason = op.get("reason") if isinstance(op.get("reason"), str) else "died"
        logger.warning("worker %s left: %s (reported by its nanny)", address, reason)
        self._liveness.forget(address)
        return self.state.worker_removed(address, died=True, reason=reason)

    def _restart(self, client: str, rid: Any, timeout: float) -> list:
        """``client.restart()``: drop all work, have nannies restart their workers, answer once
        as many workers as before are registered again (or the timeout passed)."""
        now = time.monotonic()
        workers = list(self.state.workers)
        nannies = set()
        for address in workers:
            nanny = self._liveness.nanny_of(address)
            if nanny is not None:
                nannies.add(nanny)
                self._liveness.retire(address, now)
            self._liveness.forget(address)
        logger.info("restarting: %d workers, %d of their nannies asked to restart them", len(workers), len(nannies))
        out = self.state.restart()
        out.extend((("w", nanny), {"op": "restart"}) for nanny in nannies)
        self._restarts.append((client, rid, len(workers), now + timeout))
        return out

    def _start_retirement(self, workers: list, timeout: float, done: Callable[[list], None],
                          close: bool = False) -> list:
        """Begin retiring ``workers`` (told to ``close`` once retired, if asked);
        ``done(addresses retired)`` is called from :meth:`_check_retirements` once their data is
        safe or ``timeout`` seconds passed."""
        state = self.state
        addresses = [ws.address for w in workers if (ws := state._worker_named(w)) is not None]
        self._retirements.append((addresses, time.monotonic() + timeout, done))
        return state.retire_workers(addresses, close=close)

    def _retire_for_client(self, client: str, op: dict) -> list:
        """``client.retire_workers``: the named workers, or ``n`` of them chosen by the state;
        the client is answered with the addresses retired once that is over."""
        workers, n, timeout, close, rid = (op.get("workers"), op.get("n"), op.get("timeout", 30.0),
                                           op.get("close", False), op["rid"])
        if ((workers is None) == (n is None) or type(timeout) not in (int, float) or type(close) is not bool
                or (workers is not None and (type(workers) is not tuple or not all(type(w) is str for w in workers)))
                or (n is not None and (type(n) is not int or n < 0))):
            raise ProtocolError("malformed 'retire-workers' op")
        if workers is None:
            workers = self.state.workers_to_retire(n)
        return self._start_retirement(list(workers), float(timeout), lambda retired: self._send(
            [(("c", client), {"op": "reply", "rid": rid, "ok": True, "result": retired})]), close=close)

    def _check_retirements(self, now: float, expire: Any = None) -> None:
        """Progress the retirements under way and answer those that are over: every worker
        removed, or nowhere left to move data to, or past the deadline (or ``expire`` is their
        callback), in which case the workers not yet removed go back into service."""
        state = self.state
        if state.retiring:
            self._send(state.retire_workers([]))
        waiting = []
        for addresses, deadline, done in self._retirements:
            pending = [a for a in addresses if a in state.retiring]
            stuck = pending and all(a in state.retiring for a in state.workers)  # no worker to move to
            if pending and not stuck and now < deadline and (expire is None or done != expire):
                waiting.append((addresses, deadline, done))
                continue
            if pending:
                logger.info("workers %s not retired: their data could not be moved yet; they stay", pending)
                self._send(state.cancel_retirement(pending))
            done([a for a in addresses if a not in state.workers])
        self._retirements = waiting

    def _check_restarts(self, now: float) -> None:
        waiting = []
        for client, rid, expected, deadline in self._restarts:
            count = len(self.state.workers)
            if count >= expected:
                self._send([(("c", client), {"op": "reply", "rid": rid, "ok": True, "result": count})])
            elif now >= deadline:
                self._send([(("c", client), {"op": "reply", "rid": rid, "ok": False, "error": "TimeoutError",
                                             "message": f"restart: only {count} of {expected} workers came "
                                                        f"back in time"})])
            else:
                waiting.append((client, rid, expected, deadline))
        self._restarts = waiting

    def _nannies(self) -> dict:
        """``{worker address: (its nanny's identity, its pid)}`` for the workers run by a nanny."""
        out = {}
        for address in self.state.workers:
            nanny = self._liveness.nanny_of(address)
            if nanny is not None:
                out[address] = (nanny, self._liveness.procs[address][1])
        return out

    def _run_on_scheduler(self, client: str, op: dict) -> list:
        """``client.run_on_scheduler``, if this scheduler was started with the opt-in: the
        function runs here, in the scheduler's thread (the scheduler waits for it), and gets the
        :class:`Scheduler` as ``lazyarr_scheduler`` / ``dask_scheduler`` if it asks for one."""
        rid = op["rid"]
        if not self.allow_run_on_scheduler:
            return [(("c", client), {"op": "reply", "rid": rid, "ok": False, "error": "PermissionError",
                                     "message": "this scheduler does not run client code: it never unpickles what "
                                                "clients send, so no client can make it run anything "
                                                "(docs/security.md). Start it with "
                                                "Scheduler(allow_run_on_scheduler=True), "
                                                "lazyarr-scheduler --allow-run-on-scheduler or "
                                                "LocalCluster(allow_run_on_scheduler=True) to allow "
                                                "client.run_on_scheduler"})]
        from .remote_call import run_call

        ok, result = run_call(op["function"], {"lazyarr_scheduler": self, "dask_scheduler": self})
        return [(("c", client), {"op": "reply", "rid": rid, "ok": True, "result": [ok, result]})]

    def _saved(self, out: list) -> list:
        """Write the named collections to the state directory (if any) after a change."""
        if self._state_dir is not None:
            try:
                self._state_dir.save(self.state)
            except Exception:
                logger.exception("could not save the named collections to %s", self._state_dir.path)
        return out

    def _on_client(self, client: str, op: dict) -> list:
        state = self.state
        name = op["op"]
        if name == "update-graph":
            return state.update_graph(
                client, op["keys"], op["tasks"], op["deps"], op.get("wanted", ()), op.get("priorities"),
                dict(op["restrictions"]) if op.get("restrictions") else None,
                dict(op["retries"]) if op.get("retries") else None,
                bool(op.get("partial")), op.get("priority", 0),
                dict(op["resources"]) if op.get("resources") else None)
        if name == "release-keys":
            return state.release_keys(client, op["keys"])
        if name == "gather":
            return state.gather(client, op["rid"], op["keys"])
        if name == "heartbeat":
            out = state.client_heartbeat(client)
            for _, reply in out:
                if reply.get("op") == "heartbeat-ack":
                    reply["scheduler_id"] = self.id  # a new id tells the client we restarted
            return out
        if name == "want-keys":
            return state.want_keys(client, op["keys"])
        if name == "scatter":
            return state.scatter(client, op["keys"], op["values"], op.get("workers"), bool(op.get("broadcast")))
        if name == "hello":
            out = state.client_added(client)
            logger.debug("client %s connected", client)
            return [(("c", client), {"op": "welcome", "version": protocol.VERSION,
                                     "address_to_workers": self.address_to_workers,
                                     "scheduler_id": self.id,
                                     "dashboard": self.dashboard_link}), *out]
        if name == "close":
            logger.debug("client %s closed", client)
            self._progress.client_removed(client)
            return state.client_removed(client)
        if name == "set-collection":
            return self._saved(state.set_collection(client, op["rid"], op["name"], op["blob"], op["keys"],
                                                    bool(op.get("override", True))))
        if name == "get-collection":
            return state.get_collection(client, op["rid"], op["name"])
        if name == "delete-collection":
            return self._saved(state.delete_collection(client, op["rid"], op["name"]))
        if name == "restart":
            return self._restart(client, op["rid"], float(op.get("timeout", 30.0)))
        if name == "retire-workers":
            return self._retire_for_client(client, op)
        if name == "list-collections":
            return state.list_collections(client, op["rid"])
        if name in ("progress", "task-stream"):  # diagnostics: runtime/progress.py, runtime/task_stream.py
            return self._progress.handle(self, client, op)
        if name == "scheduler-info":
            return state.info(client, op["rid"])
        if name == "query":
            return state.query(client, op["rid"], op["what"], op.get("keys"), op.get("workers"),
                               bool(op.get("summary", True)))
        if name == "fire-and-forget":
            return state.fire_and_forget(op["keys"])
        if name == "replicate":
            n = op.get("n")
            if n is not None and (type(n) is not int or n < 1):
                raise ProtocolError("malformed 'replicate' op")
            return state.replicate(client, op["rid"], op["keys"], n, op.get("workers"))
        if name == "run":
            nannies = self._nannies() if op.get("nanny") else None
            return state.run_on_workers(client, op["rid"], op["function"], op.get("workers"), nannies,
                                        bool(op.get("wait", True)))
        if name == "run-on-scheduler":
            return self._run_on_scheduler(client, op)
        if name == "upload-file":
            filename, data = op["filename"], op["data"]
            if type(filename) is not str or type(data) is not bytes or "/" in filename or filename.startswith("."):
                raise ProtocolError("malformed 'upload-file' op")
            return state.upload_file(client, op["rid"], filename, data, bool(op.get("load", True)))
        if name == "register":  # a worker at the clients' port: tell it where to go
            return [(("c", client), {"op": "error", "fatal": True, "version": protocol.VERSION,
                                     "message": f"{self.address_to_clients} is the scheduler's port for clients; "
                                                f"workers connect to {self.address_to_workers}"})]
        raise ProtocolError(f"unknown client op {name!r}")
