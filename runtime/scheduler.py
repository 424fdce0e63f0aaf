"""The scheduler process: two ROUTER sockets around a :class:`~runtime.scheduler_state.SchedulerState`.

Workers connect to ``address_to_workers``, clients to ``address_to_clients``. The loop here only
receives messages, decodes their headers, calls the state machine and sends what it returns,
grouping all ops for one peer into one message. It never unpickles payloads.

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
from collections import defaultdict
from typing import Any, Callable

import zmq

from lazyarr import config

from . import protocol
from .errors import ProtocolError, VersionMismatchError
from .scheduler_state import SchedulerState
from .security import Security, check_listen

__all__ = ["Scheduler"]

logger = logging.getLogger("runtime.scheduler")

_DRAIN = 2000  # messages read from one socket before looking at the other one


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
    """

    def __init__(self, hostname: str = "127.0.0.1", port_to_workers: int | None = 0,
                 port_to_clients: int | None = 0, *, max_message_size: int | str | None = None,
                 worker_timeout: float | None = None, client_timeout: float | None = None,
                 check_interval: float | None = None, security: Security | None = None,
                 insecure: bool = False):
        check_listen(hostname, security, insecure, "the scheduler")
        self.hostname = hostname
        self.security = security
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
        self.address_to_workers = f"tcp://{hostname}:{self.port_to_workers}"
        self.address_to_clients = f"tcp://{hostname}:{self.port_to_clients}"
        self.state = SchedulerState(
            queue_seconds=float(config.get("runtime.queue-seconds")),
            min_buffer=int(config.get("runtime.min-buffer")),
            max_buffer=int(config.get("runtime.max-buffer")),
            worker_timeout=float(worker_timeout if worker_timeout is not None else config.get("runtime.worker-timeout")),
            client_timeout=float(client_timeout if client_timeout is not None else config.get("runtime.client-timeout")),
        )
        self._check_interval = float(check_interval if check_interval is not None
                                     else config.get("runtime.heartbeat-interval"))
        self._garbage_log = protocol.RateLimitedLog(logger)
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)  # a full pipe already means "wake up"
        self._closing = False
        self._closed = False
        self.messages_dropped = 0
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

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving, close the sockets and join the thread. Workers keep running (they
        re-register when a scheduler appears again at the same address)."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        self._wake()
        self._thread.join(timeout)
        if self._authenticator is not None:
            self._authenticator.stop()
        if self._thread.is_alive():
            logger.error("scheduler thread did not stop within %s s", timeout)
        else:
            self._ctx.term()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        logger.info("scheduler at %s closed", self.address_to_clients)

    # ------------------------------------------------------------------ loop

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (OSError, ValueError):
            pass

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._to_workers, zmq.POLLIN)
        poller.register(self._to_clients, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        next_check = time.monotonic() + self._check_interval
        try:
            while not self._closing:
                wait = max(0.0, next_check - time.monotonic())
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
                if self._wake_r in events:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    self._run_calls()
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + self._check_interval
                    self._check_timeouts(now)
        except Exception:  # the loop must never die silently
            logger.exception("scheduler loop crashed")
        finally:
            self._to_workers.close(0)
            self._to_clients.close(0)

    def _check_timeouts(self, now: float) -> None:
        before = set(self.state.workers)
        self._send(self.state.check_timeouts(now))
        for address in before - set(self.state.workers):
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
        if name == "finished":
            keys, nbytes, duration = op["keys"], op["nbytes"], op.get("duration")
            if (type(keys) is not tuple or type(nbytes) is not tuple or len(keys) != len(nbytes)
                    or not all(type(n) is int for n in nbytes)
                    or not (duration is None or type(duration) in (int, float))):
                raise ProtocolError("malformed 'finished' op")
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
            return state.worker_heartbeat(address, op.get("metrics"))
        if name == "register":
            if op.get("address") != address:
                raise ProtocolError(f"a worker must connect with its address {op.get('address')!r} as identity")
            known = address in state.workers
            out = state.worker_added(address, op.get("nthreads", 1), op.get("name"), op.get("memory_limit"),
                                     op.get("keys", ()), op.get("nbytes", ()))
            if not known:
                logger.info("worker %s joined (%s threads, name %s)", address, op.get("nthreads"), op.get("name"))
            return [(("w", address), {"op": "welcome", "version": protocol.VERSION}), *out]
        if name == "unregister":
            if address in state.workers:
                logger.info("worker %s left", address)
            return state.worker_removed(address)
        if address not in state.workers:
            return [(("w", address), {"op": "register-again"})]
        raise ProtocolError(f"unknown worker op {name!r}")

    def _on_client(self, client: str, op: dict) -> list:
        state = self.state
        name = op["op"]
        if name == "update-graph":
            return state.update_graph(
                client, op["keys"], op["tasks"], op["deps"], op.get("wanted", ()), op.get("priorities"),
                dict(op["restrictions"]) if op.get("restrictions") else None,
                dict(op["retries"]) if op.get("retries") else None,
                bool(op.get("partial")))
        if name == "release-keys":
            return state.release_keys(client, op["keys"])
        if name == "gather":
            return state.gather(client, op["rid"], op["keys"])
        if name == "heartbeat":
            return state.client_heartbeat(client)
        if name == "want-keys":
            return state.want_keys(client, op["keys"])
        if name == "scatter":
            return state.scatter(client, op["keys"], op["values"], op.get("workers"), bool(op.get("broadcast")))
        if name == "hello":
            out = state.client_added(client)
            logger.debug("client %s connected", client)
            return [(("c", client), {"op": "welcome", "version": protocol.VERSION,
                                     "address_to_workers": self.address_to_workers}), *out]
        if name == "close":
            logger.debug("client %s closed", client)
            return state.client_removed(client)
        if name == "set-collection":
            return state.set_collection(client, op["rid"], op["name"], op["blob"], op["keys"])
        if name == "get-collection":
            return state.get_collection(client, op["rid"], op["name"])
        if name == "delete-collection":
            return state.delete_collection(client, op["rid"], op["name"])
        if name == "list-collections":
            return state.list_collections(client, op["rid"])
        if name == "scheduler-info":
            return state.info(client, op["rid"])
        raise ProtocolError(f"unknown client op {name!r}")
