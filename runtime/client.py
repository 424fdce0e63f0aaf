"""The client: sends graphs and data to the scheduler, holds futures, brings results back.

>>> # c = Client('tcp://127.0.0.1:5555')
>>> # c.get({'x': 1, 'y': (add, 'x', 2)}, 'y')  ->  3

The client prepares every task itself: it finds each task's dependencies, replaces futures by
their keys, orders the graph with :func:`lazyarr.order.order` and pickles each computation
separately (:func:`runtime.protocol.dumps_task`), so an unpicklable function or argument fails
here, before anything is sent, and the scheduler only routes opaque bytes.

One background I/O thread owns the socket; user threads hand it ops through a queue and wait on
events. Clients never talk to workers: results come through the scheduler, zero-copy.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, MutableMapping
from typing import Any, Callable, Iterable, Sequence

import zmq

from lazyarr import config
from lazyarr.base import collections_to_graph, is_lazyarr_collection
from lazyarr.core import flatten, pack_results, toposort, validate_keys
from lazyarr.tokenize import tokenize
from lazyarr.utils import funcname

from . import protocol, remote_call
from .calls import Finalize, Ref, SubmitCall
from .errors import (AuthenticationError, CancelledError, ClientClosedError, ConnectionTimeoutError, ProtocolError,
                     SchedulerGoneError, SchedulerRestartedError, SerializationError, VersionMismatchError)
from .futures import (CANCELLED, ERROR, FINISHED, PENDING, Future, FutureState, _Collecting,
                      _run_callback, _Unpickling, futures_in)
from .futures import wait as wait_futures
from .resources import check_resources
from .security import HANDSHAKE_FAILED
from .waker import Waker

__all__ = ["Client", "default_client", "fire_and_forget", "Datasets"]

logger = logging.getLogger("runtime.client")

_KEY_ATOMS = (str, bytes, int, float)
_GATHER_RETRIES = 30
#: Exception types a scheduler's error reply may name; anything else is raised as RuntimeError.
_REPLY_ERRORS = {"KeyError": KeyError, "ValueError": ValueError, "TypeError": TypeError,
                 "TimeoutError": TimeoutError, "PermissionError": PermissionError}
_NO_DEFAULT = object()
#: A graph is sent in pieces of this many tasks (bounding message size and the scheduler's
#: transient memory); each piece only refers to keys of earlier pieces (they are in order).
GRAPH_CHUNK = 50_000


def default_client() -> "Client | None":
    """The client that ``.compute()`` uses by default (the last one opened and not closed)."""
    current = config.get("scheduler", None)
    return current if isinstance(current, Client) and not current.closed else None


class _Pending:
    """A request waiting for the scheduler's answer."""

    __slots__ = ("event", "ok", "value", "keys", "values", "missing", "errors")

    def __init__(self, keys: Sequence | None = None):
        self.event = threading.Event()
        self.ok = True
        self.value: Any = None
        self.keys = None if keys is None else set(keys)
        self.values: dict = {}
        self.missing: list = []
        self.errors: set = set()


def _scan(comp: Any, dsk: Mapping) -> tuple:
    """Keys of ``dsk`` that ``comp`` refers to, and the futures inside it (as core sees a task)."""
    deps: list = []
    futures: list | None = None
    stack = [comp]
    while stack:
        arg = stack.pop()
        typ = type(arg)
        if typ is tuple:
            if arg and callable(arg[0]):
                stack.extend(arg[1:])
                continue
            try:
                if arg in dsk:
                    deps.append(arg)
            except TypeError:
                pass
        elif typ in _KEY_ATOMS:
            try:
                if arg in dsk:
                    deps.append(arg)
            except TypeError:
                pass
        elif typ is list:
            stack.extend(arg)
        elif typ is dict:
            stack.extend(arg.values())
        elif typ is Future:
            if futures is None:
                futures = []
            futures.append(arg)
    return deps, futures


def _replace_futures(comp: Any) -> Any:
    """``comp`` with futures replaced by their keys, wherever a task can refer to a key."""
    typ = type(comp)
    if typ is Future:
        return comp.key
    if typ is tuple and comp and callable(comp[0]):
        return (comp[0],) + tuple(_replace_futures(a) for a in comp[1:])
    if typ is list:
        return [_replace_futures(a) for a in comp]
    if typ is dict:
        return {k: _replace_futures(v) for k, v in comp.items()}
    return comp


def _refs_for_futures(obj: Any, keys: list) -> Any:
    """``obj`` with futures (at any depth of containers) replaced by :class:`Ref` markers."""
    typ = type(obj)
    if typ is Future:
        keys.append(obj.key)
        return Ref(len(keys) - 1)
    if typ in (list, tuple, set, frozenset):
        return typ(_refs_for_futures(x, keys) for x in obj)
    if typ is dict:
        return {k: _refs_for_futures(v, keys) for k, v in obj.items()}
    return obj


def _futures_of(obj: Any) -> list:
    """The futures in ``obj``: a future, futures at any depth of lists, tuples, sets and dicts,
    or the futures a persisted collection is made of."""
    if is_lazyarr_collection(obj):
        return [v for v in obj.__lazyarr_graph__().values() if type(v) is Future]
    return [obj] if type(obj) is Future else futures_in(obj)


def _worker_list(workers: Any, what: str) -> list[str]:
    """Worker addresses or names as a list (one string is one worker); TypeError otherwise.

    >>> _worker_list('w1', 'run'), _worker_list(('w1', 'w2'), 'run')
    (['w1'], ['w1', 'w2'])
    """
    names = [workers] if isinstance(workers, str) else list(workers) if isinstance(workers, Iterable) else None
    if names is None or not all(isinstance(w, str) for w in names):
        raise TypeError(f"{what} takes worker addresses or names, not {workers!r}")
    return names


def _check_priority(priority: Any) -> int:
    """A ``priority=`` argument: an integer, higher runs first (0 by default).

    >>> _check_priority(10)
    10
    """
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an integer (higher runs first; 0 by default), not {priority!r}")
    if not -(1 << 63) <= priority < 1 << 63:
        raise ValueError(f"priority must fit in 64 bits (between -2**63 and 2**63 - 1), not {priority}")
    return priority


def _order(comps: dict, dependencies: dict) -> list:
    """Keys in the order the local engine would run them (priorities), or topological order."""
    try:
        from lazyarr.order import order
    except ImportError:
        order = None
    if order is not None:
        try:
            prio = order(comps, dependencies)
            return sorted(comps, key=prio.__getitem__)
        except Exception as e:  # an ordering bug must not stop the computation
            if type(e).__name__ == "CycleError":
                raise
            logger.debug("lazyarr.order failed; using a topological order", exc_info=True)
    return toposort(comps, dependencies)


class Client:
    """A connection to a scheduler: ``get``, ``compute``, ``persist``, futures, named collections.

    Parameters
    ----------
    address: the scheduler's address for clients (``'tcp://host:port'``), a ``Scheduler``, or a
        cluster object with a ``scheduler_address``. ``None`` starts a ``runtime.cluster.LocalCluster``
        (with ``**cluster_kwargs``) owned, and closed, by this client.
    timeout: seconds to wait for the scheduler to answer (default ``runtime.connect-timeout``);
        raises :class:`~runtime.errors.ConnectionTimeoutError` naming the address.
    set_as_default: make this client the default scheduler for ``.compute()`` until closed.
    security: a :class:`~runtime.security.Security` with the cluster's public key and this
        client's keypair, for a scheduler that requires CURVE (see docs/security.md). Given a
        ``LocalCluster`` or ``Scheduler`` object as ``address``, its own keys are the default. A key the
        scheduler does not accept fails the handshake: nothing is sent or received, and this
        raises :class:`~runtime.errors.ConnectionTimeoutError` saying so.
    """

    #: Tells lazyarr.persist that this client keeps persisted results on its cluster.
    __lazyarr_client__ = True

    def __init__(self, address: Any = None, timeout: float | None = None, *, set_as_default: bool = True,
                 security: Any = None, **cluster_kwargs: Any):
        self._cluster = None
        self._closed = True  # until connected, close() has nothing to do
        if address is None:
            try:
                from .cluster import LocalCluster
            except ImportError as e:
                raise RuntimeError("Client() without an address starts a LocalCluster, which is not "
                                   f"available: {e}") from e
            if security is not None:
                cluster_kwargs["security"] = security
            self._cluster = LocalCluster(**cluster_kwargs)
            address = self._cluster.scheduler_address
        elif cluster_kwargs:
            raise TypeError(f"unexpected keyword arguments {sorted(cluster_kwargs)} (they are only for "
                            f"Client() without an address, which starts a LocalCluster)")
        if not isinstance(address, str):
            if security is None and self._cluster is None:
                security = getattr(address, "security", None)  # a LocalCluster's or Scheduler's own keys
            address = getattr(address, "scheduler_address", None) or getattr(address, "address_to_clients", None) or address
        if not isinstance(address, str) or not address.startswith("tcp://"):
            self._close_cluster()
            raise ValueError(f"a scheduler address looks like 'tcp://127.0.0.1:5555', not {address!r}")
        self.address = address
        self.id = f"client-{uuid.uuid4().hex}"
        self._timeout = float(timeout if timeout is not None else config.get("runtime.connect-timeout"))
        self._heartbeat_interval = float(config.get("runtime.heartbeat-interval")) * 2
        self._scheduler_timeout = float(config.get("runtime.scheduler-timeout"))
        self._lock = threading.RLock()
        self._states: dict = {}
        self._refcount: dict = {}
        self._outbox: deque = deque()
        self._pending: dict = {}
        self._rid = itertools.count()
        self._welcome = threading.Event()
        self._handshake_error: BaseException | None = None
        self._gone: BaseException | None = None
        self._scheduler_id: str | None = None  # from the welcome; a new one means it restarted
        self._stopping = False
        self._ctx = zmq.Context()
        self._sock = protocol.configure_socket(self._ctx.socket(zmq.DEALER), linger_ms=1000)
        self._sock.setsockopt(zmq.ROUTING_ID, self.id.encode())
        self._sock.setsockopt(zmq.SNDHWM, 0)
        self._sock.setsockopt(zmq.RCVHWM, 0)
        self.security = security
        if security is not None:
            try:
                security.configure_client(self._sock, "the client")
            except BaseException:
                self._sock.close(0)
                self._ctx.term()
                self._close_cluster()
                raise
        # Handshake failures (wrong keys, security on one side only) are otherwise silent retries;
        # the I/O thread watches for them until the scheduler's welcome.
        self._monitor = self._sock.get_monitor_socket(HANDSHAKE_FAILED)
        self._sock.connect(address)
        self._waker = Waker()
        self._thread = threading.Thread(target=self._io_loop, name=f"lazyarr-client-{self.id[7:15]}", daemon=True)
        self._closed = False
        self._thread.start()
        self._send({"op": "hello", "version": protocol.VERSION})
        if not self._welcome.wait(self._timeout) or self._handshake_error is not None:
            error = self._handshake_error
            self._shutdown(notify=False)
            self._close_cluster()
            if error is not None:
                raise error
            raise ConnectionTimeoutError(
                f"no lazyarr scheduler answered at {address} within {self._timeout:g} s (is a scheduler "
                f"running there, and is this its address for clients? "
                + ("If it uses CURVE security, are this client's keys authorized and the cluster's "
                   "public key right?)" if security is not None else
                   "If it requires CURVE security, pass security=Security(...); see docs/security.md)"))
        self._previous_default = None
        self._is_default = False
        if set_as_default:
            self._previous_default = config.get("scheduler", None)
            config.set(scheduler=self)
            self._is_default = True

    # ------------------------------------------------------------------ life cycle

    @property
    def closed(self) -> bool:
        """Has :meth:`close` been called?"""
        return self._closed

    def __repr__(self) -> str:
        return f"<Client {self.address} {'closed' if self._closed else 'connected'}>"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self, timeout: float = 10.0) -> None:
        """Release everything this client wants, disconnect, and close an owned cluster."""
        if self._closed:
            return
        self._shutdown(notify=True, timeout=timeout)
        if self._is_default and config.get("scheduler", None) is self:
            previous = self._previous_default
            if isinstance(previous, Client) and previous.closed:
                previous = default_client_after(previous)
            config.set(scheduler=previous)
        self._close_cluster()

    def _close_cluster(self) -> None:
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            cluster.close()

    def _shutdown(self, notify: bool, timeout: float = 10.0) -> None:
        self._closed = True
        if notify:
            self._send({"op": "close"})
        self._stopping = True
        self._wake()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._ctx.term()
        self._waker.close()
        self._fail_everything(ClientClosedError(f"client {self.id} is closed"))

    def _fail_everything(self, error: BaseException, finished_too: bool = False) -> None:
        """Fail every request in flight and every future not yet done (with ``finished_too``,
        finished ones as well, except those cancelled)."""
        callbacks = []
        with self._lock:
            for state in self._states.values():
                if (state.status != CANCELLED) if finished_too else not state.event.is_set():
                    state.fail(exception=error)
                    callbacks.extend(state.callbacks)
                    state.callbacks = []
            for pending in self._pending.values():
                pending.ok = False
                pending.value = error
                pending.event.set()
        for fn, fut in callbacks:
            _run_callback(fn, fut)

    def _scheduler_restarted(self, sid: str) -> None:
        """A heartbeat was answered by a new scheduler at our address: everything this client had
        submitted is unknown there. Futures fail (finished ones too: their data is no longer
        tracked) and requests in flight fail with :class:`SchedulerRestartedError`; new work can
        be submitted at once. Named collections survive if the scheduler runs with ``--state-dir``."""
        logger.warning("the scheduler at %s restarted; failing this client's %d futures", self.address,
                       len(self._states))
        self._scheduler_id = sid
        error = SchedulerRestartedError(
            f"the scheduler at {self.address} restarted, losing the work this client had submitted; "
            f"submit it again (named collections survive if it runs with --state-dir)")
        self._fail_everything(error, finished_too=True)

    def restart(self, timeout: float = 60.0) -> int:
        """Restart every worker of the cluster and forget all work: the futures of every client
        fail with ``CancelledError``, workers run by a nanny (``lazyarr-worker``, ``LocalCluster``)
        are replaced by fresh processes, workers without one stay but lose their data; named
        collections keep their keys (recomputed). Returns the number of workers, once as many
        as before are registered again; raises if they are not back within ``timeout`` seconds.
        """
        self._check_open()
        deadline = time.monotonic() + timeout + 5.0
        return self._request({"op": "restart", "timeout": float(timeout)}, deadline).value

    def retire_workers(self, workers: Any = None, timeout: float = 30.0, *, n: int | None = None,
                       close_workers: bool = True) -> list[str]:
        """Retire workers without losing data: the scheduler gives them no new tasks, has the
        other workers copy every result still needed that only they hold (scattered data
        included), then stops using them. Returns the addresses retired, once they are.

        ``workers``: addresses or names (or one of them). ``n``: instead, how many to retire,
        chosen by the scheduler as adaptive scaling chooses: idle workers first, then those
        holding the fewest bytes (every worker if ``n`` is larger). A worker whose data could not
        be moved within ``timeout`` seconds (no other worker to take it) stays in service and is
        not in the result.

        ``close_workers=True`` (the default, as in Dask): each retired worker is then told to
        shut down. Its process exits with code 0 and its nanny, if any, does not restart it (a
        ``LocalCluster`` drops it from ``cluster.workers``); this call does not wait for the
        processes to exit. ``close_workers=False``: the retired workers keep running, ignored,
        until you stop them (safe now: nothing is lost).
        """
        self._check_open()
        if not isinstance(close_workers, bool):
            raise TypeError(f"close_workers must be True or False, not {close_workers!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        op: dict = {"op": "retire-workers", "timeout": float(timeout), "close": close_workers}
        if (workers is None) == (n is None):
            raise ValueError("retire_workers needs either the workers to retire (workers=[addresses or names]) "
                             "or how many to retire (n=...), " + ("not both" if n is not None else "got neither"))
        if n is not None:
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"n must be a non-negative number of workers, not {n!r}")
            op["n"] = n
        else:
            op["workers"] = _worker_list(workers, "retire_workers")
        deadline = time.monotonic() + timeout + 5.0
        return list(self._request(op, deadline).value)

    def _check_open(self) -> None:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a done callback cannot wait for results (it runs in the client's I/O "
                               "thread, which delivers them); hand the work to another thread")
        if self._closed:
            raise ClientClosedError(f"client {self.id} is closed")
        if self._gone is not None:
            raise self._gone

    # ------------------------------------------------------------------ I/O thread

    def _wake(self) -> None:
        self._waker.wake()

    def _send(self, op: dict) -> None:
        self._outbox.append(op)
        self._wake()

    def _io_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._waker.fd, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        last_heard = time.monotonic()
        next_beat = last_heard + self._heartbeat_interval
        try:
            while True:
                # read the flag before flushing: close() queues its 'close' op and then sets it, so
                # a stop seen here always comes with its goodbye in the outbox (found by test_load)
                stopping = self._stopping
                self._flush_outbox()
                if stopping:
                    break
                wait = max(0.0, next_beat - time.monotonic())
                events = dict(poller.poll(int(wait * 1000) + 1))
                if self._waker.fd in events:
                    self._waker.drain()
                if self._sock in events:
                    last_heard = time.monotonic()
                    if self._gone is not None:
                        self._gone = None  # it answers again (the heartbeat-ack says if it restarted)
                    self._drain()
                if self._monitor in events:
                    self._handshake_event()
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + self._heartbeat_interval
                    if self._welcome.is_set():
                        self._outbox.append({"op": "heartbeat"})
                        if now - last_heard > self._scheduler_timeout and self._gone is None:
                            self._gone = SchedulerGoneError(
                                f"the scheduler at {self.address} has not answered for "
                                f"{now - last_heard:.0f} s")
                            self._fail_everything(self._gone)
        except Exception:
            logger.exception("client I/O loop crashed")
        finally:
            # nothing to deliver to a scheduler that never answered: do not linger on close
            try:
                self._sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(0)
            self._sock.close(linger=1000 if self._welcome.is_set() and self._gone is None else 0)

    def _handshake_event(self) -> None:
        """A failed security handshake before the welcome: fail the connection, saying why."""
        from zmq.utils.monitor import recv_monitor_message

        try:
            event = recv_monitor_message(self._monitor, zmq.NOBLOCK)["event"]
        except (zmq.Again, ValueError):
            return
        if self._welcome.is_set() or self._handshake_error is not None:
            return
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            why = "the scheduler refused this client's key (it is not among its authorized keys)"
        elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            why = ("the two sides use different security: the scheduler requires CURVE and this client has no "
                   "keys (pass security=Security(...)), or the other way round")
        else:
            why = ("the CURVE handshake failed: this client's copy of the cluster's public key (server.key) "
                   "does not match the scheduler's")
        self._handshake_error = AuthenticationError(f"cannot connect to the scheduler at {self.address}: {why}; "
                                                    f"see docs/security.md")
        self._welcome.set()

    def _flush_outbox(self) -> None:
        """Send queued ops, small ones batched together, each graph piece in a message of its own."""
        batch: list = []
        while self._outbox:
            op = self._outbox.popleft()
            if op["op"] == "release-keys":
                if batch and batch[-1]["op"] == "release-keys":
                    batch[-1]["keys"].extend(op["keys"])       # many futures dropped at once: one op
                else:
                    batch.append({"op": "release-keys", "keys": list(op["keys"])})
            elif op["op"] == "heartbeat" and self._closed:
                continue  # queued by the I/O thread as close() ran: it would re-register us after 'close'
            elif op["op"] == "update-graph" and len(op["keys"]) > 1000:
                self._send_ops(batch)
                batch = []
                self._send_ops([op])
            else:
                batch.append(op)
        self._send_ops(batch)

    def _send_ops(self, ops: list) -> None:
        if not ops:
            return
        try:
            frames = protocol.encode(ops)
        except Exception:
            logger.exception("could not encode client ops %s", [op.get("op") for op in ops])
            return
        try:
            self._sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as e:
            logger.warning("could not send to the scheduler at %s: %s", self.address, e)

    def _drain(self) -> None:
        for _ in range(1000):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                ops = protocol.decode(frames)
            except VersionMismatchError as e:
                self._handshake_error = e
                self._welcome.set()
                continue
            except ProtocolError as e:
                logger.warning("client dropped a malformed message from the scheduler: %s", e)
                continue
            for op in ops:
                try:
                    self._handle(op)
                except Exception:
                    logger.exception("client could not handle op %r", op.get("op"))

    def _handle(self, op: dict) -> None:
        name = op["op"]
        callbacks: list = []
        if name == "key-in-memory":
            with self._lock:
                for key in op["keys"]:
                    state = self._states.get(key)
                    if state is not None and state.status != CANCELLED:
                        state.finish()
                        callbacks.extend(state.callbacks)
                        state.callbacks = []
        elif name == "key-erred":
            with self._lock:
                for key, exc, blame in zip(op["keys"], op["exceptions"], op["blame"]):
                    state = self._states.get(key)
                    if state is not None and state.status != CANCELLED:
                        state.fail(exc, blame)
                        callbacks.extend(state.callbacks)
                        state.callbacks = []
        elif name == "key-lost":
            with self._lock:
                for key in op["keys"]:
                    state = self._states.get(key)
                    if state is not None and state.status == FINISHED:
                        state.lose()
        elif name == "data":
            with self._lock:
                pending = self._pending.get(op["rid"])
                if pending is not None:
                    errors = set(op.get("errors", ()))
                    for key, value in zip(op["keys"], op["values"]):
                        pending.values[key] = value
                        if key in errors:
                            pending.errors.add(key)
                    pending.missing.extend(op.get("missing", ()))
                    if len(pending.values) + len(pending.missing) >= len(pending.keys):
                        pending.event.set()
        elif name == "reply":
            with self._lock:
                pending = self._pending.get(op["rid"])
            if pending is not None:
                pending.ok = op["ok"]
                pending.value = op.get("result") if op["ok"] else (op.get("error"), op.get("message"))
                pending.event.set()
        elif name == "welcome":
            self._dashboard_link = op.get("dashboard")
            self._scheduler_id = op.get("scheduler_id")
            self._welcome.set()
        elif name == "heartbeat-ack":
            sid = op.get("scheduler_id")
            if sid is not None and self._scheduler_id is not None and sid != self._scheduler_id:
                self._scheduler_restarted(sid)
        elif name == "error":
            self._scheduler_error(op)
        else:
            logger.warning("client got an unknown op %r", name)
        for fn, fut in callbacks:
            _run_callback(fn, fut)

    def _scheduler_error(self, op: dict) -> None:
        message = op.get("message", "")
        logger.warning("the scheduler reported an error: %s", message)
        if "version" in op and op["version"] != protocol.VERSION:
            self._handshake_error = VersionMismatchError(protocol.VERSION, op["version"], message)
            self._welcome.set()
        elif op.get("fatal") and not self._welcome.is_set():  # e.g. the scheduler's port for workers
            self._handshake_error = ConnectionError(f"cannot connect to the scheduler at {self.address}: {message}")
            self._welcome.set()
        error = ProtocolError(f"the scheduler rejected a request: {message}")
        with self._lock:
            if op.get("rid") in self._pending:
                pending = self._pending[op["rid"]]
                pending.ok = False
                pending.value = error
                pending.event.set()
            for key in op.get("keys", ()):
                state = self._states.get(key)
                if state is not None and not state.event.is_set():
                    state.fail(exception=error)

    # ------------------------------------------------------------------ references

    def _ref(self, key: Any) -> FutureState:
        """One more future of this client on ``key``."""
        with self._lock:
            n = self._refcount.get(key, 0)
            self._refcount[key] = n + 1
            state = self._states.get(key)
            if state is None:
                state = self._states[key] = FutureState(key)
            return state

    def _unref(self, key: Any) -> None:
        """One future less; at zero the scheduler is told to release the key."""
        with self._lock:
            n = self._refcount.get(key, 0) - 1
            if n > 0:
                self._refcount[key] = n
                return
            self._refcount.pop(key, None)
            self._states.pop(key, None)
        if not self._closed:
            self._send({"op": "release-keys", "keys": [key]})

    def _reset_if_done(self, keys: Iterable) -> None:
        """Keys about to be (re)submitted: a cancelled or failed earlier attempt starts over."""
        with self._lock:
            for key in keys:
                state = self._states.get(key)
                if state is not None and state.status in (CANCELLED, ERROR):
                    state.status = PENDING
                    state.payload = state.blame = state._exception = None
                    state.event.clear()

    class _Holding:
        def __init__(self, client: "Client", keys: list):
            self.client = client
            self.keys = keys

        def __enter__(self) -> None:
            for key in self.keys:
                self.client._ref(key)

        def __exit__(self, *exc: Any) -> None:
            for key in self.keys:
                self.client._unref(key)

    # ------------------------------------------------------------------ graphs

    def _prepare(self, dsk: Mapping, wanted: Iterable) -> tuple:
        """Cull, order and pickle the tasks needed for ``wanted``: ``(keys, payloads, deps)``."""
        comps: dict = {}
        dependencies: dict = {}
        external: set = set()
        stack = [k for k in wanted]
        while stack:
            key = stack.pop()
            if key in dependencies or key in external:
                continue
            comp = dsk[key]
            if type(comp) is Future:
                if comp.key == key:
                    external.add(key)  # already on the cluster: nothing to send
                    continue
                comp, deps = comp.key, [comp.key]
            else:
                deps, futures = _scan(comp, dsk)
                if futures:
                    comp = _replace_futures(comp)
                    deps.extend(f.key for f in futures)
                if len(deps) > 1:
                    deps = list(dict.fromkeys(deps))
            comps[key] = comp
            dependencies[key] = deps
            for dep in deps:
                if dep not in dependencies and dep not in external:
                    try:
                        if dep in dsk:
                            stack.append(dep)
                    except TypeError:
                        pass
        internal = {k: [d for d in deps if d in comps] for k, deps in dependencies.items()}
        keys = _order(comps, internal)
        payloads = [protocol.dumps_task(comps[k], k) for k in keys]
        return keys, payloads, [dependencies[k] for k in keys]

    def _submit(self, keys: list, payloads: list, deps: list, wanted: list, workers: Any = None,
                retries: int | None = None, priority: int = 0, resources: dict | None = None) -> None:
        """Send a prepared graph (in pieces of :data:`GRAPH_CHUNK` tasks); ``workers``,
        ``retries``, ``priority`` and ``resources`` (checked by the caller, before any work)
        apply to each of its tasks."""
        n = len(keys)
        if n > 1:  # the bytes tasks share (a function pickled by value) go once per message
            share = protocol.PayloadSharer()
            payloads = [share(p) for p in payloads]
        for start in range(0, max(n, 1), GRAPH_CHUNK):
            stop = min(n, start + GRAPH_CHUNK)
            piece = keys[start:stop]
            op: dict = {"op": "update-graph", "keys": piece, "tasks": payloads[start:stop], "deps": deps[start:stop]}
            if stop < n:
                op["partial"] = True
            else:
                op["wanted"] = wanted
            if workers:
                allowed = [workers] if isinstance(workers, str) else list(workers)
                op["restrictions"] = [[k, allowed] for k in piece]
            if retries:
                op["retries"] = [[k, int(retries)] for k in piece]
            if priority:
                op["priority"] = priority
            if resources:
                op["resources"] = [[k, resources] for k in piece]
            self._send(op)

    def _graph_futures(self, dsk: Mapping, wanted: list, workers: Any = None, retries: int | None = None,
                       priority: int = 0, resources: Any = None) -> list:
        priority, resources = _check_priority(priority), check_resources(resources)  # before any work
        keys, payloads, deps = self._prepare(dsk, wanted)
        self._reset_if_done(wanted)
        futures = [Future(k, self) for k in wanted]
        self._submit(keys, payloads, deps, list(dict.fromkeys(wanted)), workers, retries, priority, resources)
        return futures

    def get(self, dsk: Mapping, keys: Any, *, workers: Any = None, retries: int | None = None,
            timeout: float | None = None, priority: int = 0, resources: Any = None, **kwargs: Any) -> Any:
        """Compute ``keys`` of graph ``dsk`` on the cluster, like :func:`lazyarr.core.get`.

        ``keys`` is one key or nested lists of keys; the result has the same nesting, lists
        becoming tuples. A task's exception is raised with its original type, the worker's
        traceback as ``__cause__``. Values in ``dsk`` may be futures (``{'x': future}``).
        ``priority`` (higher first) and ``resources`` (``{'GPU': 1}``, needed by every task of
        the graph) are as for :meth:`submit`.

        >>> # c.get({'x': 1, 'y': (add, 'x', 2)}, ['y', ['x']])  ->  (3, (1,))
        """
        callbacks = kwargs.pop("callbacks", None)  # lazyarr.diagnostics hooks (docs/diagnostics.md)
        if kwargs:
            raise TypeError(f"Client.get() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        self._check_open()
        priority, resources = _check_priority(priority), check_resources(resources)
        from .progress import CallbackWatch

        watch = CallbackWatch.create(self, dsk, callbacks)  # None unless callbacks are active
        try:
            flat = validate_keys(dsk, keys)
            unique = list(dict.fromkeys(flat))
            keys_out, payloads, deps = self._prepare(dsk, unique)
            if watch is not None:
                watch.prepared(keys_out)
            self._reset_if_done(unique)
            with Client._Holding(self, unique):
                self._submit(keys_out, payloads, deps, unique, workers, retries, priority, resources)
                if watch is not None:
                    watch.submitted()
                values = self._gather_keys(unique, timeout=timeout)
                if watch is not None:
                    watch.finish(errored=False)  # while the results are held: posttask knows their workers
        except BaseException:
            if watch is not None:
                watch.finish(errored=True)
            raise
        return pack_results(keys, values)

    def compute(self, collections: Any, sync: bool = False, optimize_graph: bool = True,
                workers: Any = None, retries: int | None = None, priority: int = 0, resources: Any = None,
                **kwargs: Any) -> Any:
        """Start computing collections on the cluster; return a future per collection
        (a list for a list), or the results if ``sync``. ``priority`` (higher first) and
        ``resources`` (``{'GPU': 1}``, needed by every task of the graph) are as for :meth:`submit`."""
        single = is_lazyarr_collection(collections)
        colls = [collections] if single else list(collections)
        for c in colls:
            if not is_lazyarr_collection(c):
                raise TypeError(f"Client.compute expects lazyarr collections, not {type(c).__name__}")
        self._check_open()
        dsk = dict(collections_to_graph(colls, optimize_graph, **kwargs))
        wanted = []
        for coll in colls:
            out_keys = coll.__lazyarr_keys__()
            finalize, extra = coll.__lazyarr_postcompute__()
            fkey = f"finalize-{tokenize(finalize, extra, out_keys)}"
            dsk[fkey] = (Finalize(finalize, extra), out_keys)
            wanted.append(fkey)
        futures = self._graph_futures(dsk, wanted, workers, retries, priority, resources)
        if sync:
            results = self.gather(futures)
            return results[0] if single else results
        return futures[0] if single else futures

    def persist(self, collections: Any, optimize_graph: bool = True, workers: Any = None,
                retries: int | None = None, priority: int = 0, resources: Any = None, **kwargs: Any) -> Any:
        """Start computing collections and return same-type collections backed by futures, their
        data kept on the workers (one collection, or a list for a list). ``priority`` (higher
        first) and ``resources`` (``{'GPU': 1}``, needed by every task) are as for :meth:`submit`."""
        single = is_lazyarr_collection(collections)
        colls = [collections] if single else list(collections)
        for c in colls:
            if not is_lazyarr_collection(c):
                raise TypeError(f"Client.persist expects lazyarr collections, not {type(c).__name__}")
        self._check_open()
        dsk = collections_to_graph(colls, optimize_graph, **kwargs)
        flat = list(dict.fromkeys(k for c in colls for k in flatten(c.__lazyarr_keys__())))
        futures = dict(zip(flat, self._graph_futures(dsk, flat, workers, retries, priority, resources)))
        out = []
        for coll in colls:
            rebuild, extra = coll.__lazyarr_postpersist__()
            out.append(rebuild({k: futures[k] for k in flatten(coll.__lazyarr_keys__())}, *extra))
        return out[0] if single else out

    # ------------------------------------------------------------------ futures

    def submit(self, func: Callable, *args: Any, key: Any = None, pure: bool = True, workers: Any = None,
               retries: int | None = None, priority: int = 0, resources: Any = None, **kwargs: Any) -> Future:
        """Run ``func(*args, **kwargs)`` on a worker; returns a :class:`Future`.

        Futures among the arguments (at any depth of lists, tuples, sets, dicts) are replaced by
        their values on the worker, without the data coming here. ``pure=True`` names the task
        by its inputs (the same call twice is computed once); ``key=`` names it explicitly.
        ``priority``: an integer, higher runs first (default 0); it takes precedence over the
        order of submission, as in Dask. ``resources``: what the task needs of a worker's
        abstract resources, ``{'GPU': 1}``; it runs only on a worker that declared them, and
        only while they are free there (docs/futures.md).
        """
        return self._submit_calls(func, [(args, kwargs)], [key] if key is not None else None, pure, workers,
                                  retries, priority=priority, resources=resources)[0]

    def map(self, func: Callable, *iterables: Iterable, key: Any = None, pure: bool = True, workers: Any = None,
            retries: int | None = None, priority: int = 0, resources: Any = None, **kwargs: Any) -> list:
        """``submit(func, *items, **kwargs)`` for the items of the iterables, zipped; one future each.

        ``key`` may be a list of keys, or a prefix for the generated ones; ``priority`` and
        ``resources`` apply to every call.
        """
        if not iterables:
            raise TypeError("Client.map needs at least one iterable")
        calls = [(items, kwargs) for items in zip(*iterables)]
        keys = None
        if isinstance(key, (list, tuple)):
            if len(key) != len(calls):
                raise ValueError(f"Client.map got {len(key)} keys for {len(calls)} calls")
            keys = list(key)
        return self._submit_calls(func, calls, keys, pure, workers, retries, prefix=key if isinstance(key, str) else None,
                                  priority=priority, resources=resources)

    def _submit_calls(self, func: Callable, calls: list, keys: list | None, pure: bool, workers: Any,
                      retries: int | None, prefix: str | None = None, priority: int = 0,
                      resources: Any = None) -> list:
        if not callable(func):
            raise TypeError(f"the first argument must be a function, not {type(func).__name__}")
        self._check_open()
        priority, resources = _check_priority(priority), check_resources(resources)
        name = prefix or funcname(func)
        out_keys, payloads, deps_list = [], [], []
        for i, (args, kwargs) in enumerate(calls):
            refs: list = []
            if futures_in(args) or futures_in(kwargs):
                call = SubmitCall(func, _refs_for_futures(tuple(args), refs), _refs_for_futures(dict(kwargs), refs))
            else:
                call = SubmitCall(func, tuple(args), dict(kwargs), has_refs=False)
            if keys is not None:
                key = keys[i]
            elif pure:
                key = f"{name}-{tokenize(func, args, kwargs)}"
            else:
                key = f"{name}-{uuid.uuid4().hex}"
            deps = list(dict.fromkeys(refs))
            payloads.append(protocol.dumps_task((call, *refs), key))
            out_keys.append(key)
            deps_list.append(deps)
        self._reset_if_done(out_keys)
        futures = [Future(k, self) for k in out_keys]
        self._submit(out_keys, payloads, deps_list, list(dict.fromkeys(out_keys)), workers, retries, priority,
                     resources)
        return futures

    def gather(self, futures: Any, errors: str = "raise", timeout: float | None = None) -> Any:
        """The values of futures, in the same structure (a future, or lists/tuples/dicts of them).

        ``errors='skip'`` leaves failed futures out of lists instead of raising.
        """
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
        self._check_open()
        found = futures_in(futures)
        good = []
        deadline = None if timeout is None else time.monotonic() + timeout
        for f in found:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not f._state.event.wait(left):
                raise TimeoutError(f"future {f.key!r} was not done within {timeout} s")
            if f.status == ERROR and errors == "raise":
                raise f._state.exception()
            if f.status == CANCELLED and errors == "raise":
                raise CancelledError(f"future {f.key!r} was cancelled")
            if f.status not in (ERROR, CANCELLED):
                good.append(f.key)
        values = self._gather_keys(list(dict.fromkeys(good)), timeout=timeout)

        def rebuild(x: Any) -> Any:
            typ = type(x)
            if typ is Future:
                return values[x.key]
            if typ in (list, tuple, set, frozenset):
                return typ(rebuild(i) for i in x if type(i) is not Future or i.key in values)
            if typ is dict:
                return {k: rebuild(v) for k, v in x.items() if type(v) is not Future or v.key in values}
            return x

        return rebuild(futures)

    def _gather_keys(self, keys: list, timeout: float | None = None) -> dict:
        """Wait for ``keys`` (wanted by this client) and bring their values here."""
        self._check_open()
        deadline = None if timeout is None else time.monotonic() + timeout
        values: dict = {}
        remaining = list(keys)
        attempt = 0
        while remaining:
            for key in remaining:
                state = self._states.get(key)
                if state is None:
                    raise ClientClosedError(f"key {key!r} is not held by this client")
                while not state.event.wait(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))):
                    self._check_open()
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"key {key!r} was not computed within {timeout} s")
                if state.status == ERROR:
                    raise state.exception()
                if state.status == CANCELLED:
                    raise CancelledError(f"key {key!r} was cancelled")
            pending = self._request({"op": "gather", "keys": remaining}, deadline, keys=remaining)
            for key, value in pending.values.items():
                obj = protocol.deserialize(value)
                if key in pending.errors:
                    raise obj[0]
                values[key] = obj
            remaining = [k for k in dict.fromkeys(pending.missing) if k not in values]
            if remaining:
                attempt += 1
                if attempt > _GATHER_RETRIES:
                    raise RuntimeError(f"could not fetch keys {remaining[:5]!r} from the cluster "
                                       f"after {attempt} attempts")
                time.sleep(min(0.01 * attempt, 0.25))
        return values

    def _request(self, op: dict, deadline: float | None = None, keys: Sequence | None = None) -> _Pending:
        """Send ``op`` with a new request id and wait for its answer."""
        rid = next(self._rid)
        pending = _Pending(keys)
        op["rid"] = rid
        with self._lock:
            self._pending[rid] = pending
        try:
            self._send(op)
            while not pending.event.wait(0.1):
                self._check_open()
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"the scheduler did not answer {op['op']!r} in time")
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        if not pending.ok:
            error = pending.value
            if isinstance(error, BaseException):
                raise error
            kind, message = error
            raise _REPLY_ERRORS.get(kind, RuntimeError)(message)
        return pending

    def cancel(self, futures: Any) -> bool:
        """Stop wanting the futures' keys: they become ``'cancelled'`` and the cluster drops
        work and data nobody else needs."""
        found = [futures] if type(futures) is Future else futures_in(futures)
        keys = list(dict.fromkeys(f.key for f in found))
        callbacks = []
        with self._lock:
            for key in keys:
                state = self._states.get(key)
                if state is not None and state.status != ERROR:
                    state.cancel()
                    callbacks.extend(state.callbacks)
                    state.callbacks = []
        if keys and not self._closed:
            self._send({"op": "release-keys", "keys": keys})
        for fn, fut in callbacks:
            _run_callback(fn, fut)
        return True

    def scatter(self, data: Any, workers: Any = None, broadcast: bool = False, hash: bool = True,
                timeout: float | None = None) -> Any:
        """Send data to workers; returns futures (one for an object, a list for a list, a dict for
        a dict keyed like it). Waits until the workers hold the data."""
        self._check_open()
        if isinstance(data, dict):
            items = list(data.items())
            keys = [k for k, _ in items]
            values = [v for _, v in items]
        elif isinstance(data, (list, tuple, set, frozenset)):
            values = list(data)
            keys = None
        else:
            values = [data]
            keys = None
        if keys is None:
            keys = [f"{type(v).__name__}-{tokenize(v) if hash else uuid.uuid4().hex}" for v in values]
        payloads = []
        for key, value in zip(keys, values):
            try:
                payloads.append(protocol.serialize(value))
            except SerializationError as e:
                raise SerializationError(f"cannot scatter key {key!r}: {e}") from e
        self._reset_if_done(keys)
        futures = [Future(k, self) for k in keys]
        op: dict = {"op": "scatter", "keys": keys, "values": payloads, "broadcast": bool(broadcast)}
        if workers:
            op["workers"] = [workers] if isinstance(workers, str) else list(workers)
        self._send(op)
        deadline = None if timeout is None else time.monotonic() + timeout
        for f in futures:
            while not f._state.event.wait(0.1):
                self._check_open()
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"scatter of {len(futures)} values not done within {timeout} s "
                                       f"(are there workers?)")
            if f.status == ERROR:
                raise f._state.exception()
        if isinstance(data, dict):
            return dict(zip(keys, futures))
        if isinstance(data, (list, tuple, set, frozenset)):
            return type(data)(futures) if not isinstance(data, (set, frozenset)) else list(futures)
        return futures[0]

    # ------------------------------------------------------------------ named collections

    def set_collection(self, name: str, collection: Any) -> None:
        """Store ``collection`` on the scheduler under ``name`` (replacing any); data it holds
        through futures (a persisted collection) stays on the workers as long as it is stored."""
        if not is_lazyarr_collection(collection):
            raise TypeError(f"set_collection stores lazyarr collections, not {type(collection).__name__} "
                            f"(publish_dataset stores any object)")
        self._store_named(name, collection, override=True)

    def _store_named(self, name: str, value: Any, override: bool) -> None:
        """The one way to store a named collection or dataset: ``value`` pickled here (the
        scheduler keeps the bytes unopened) with the keys of the futures inside it, which the
        scheduler then keeps alive; a taken name is refused unless ``override``."""
        if not isinstance(name, str):
            raise TypeError(f"a collection or dataset name must be a str, not {type(name).__name__}")
        self._check_open()
        with _Collecting() as keys:
            try:
                blob = protocol.serialize(value)
            except SerializationError as e:
                raise SerializationError(f"cannot store {name!r}: {e}") from e
        self._request({"op": "set-collection", "name": name, "blob": blob, "keys": list(dict.fromkeys(keys)),
                       "override": bool(override)})

    def get_collection(self, name: str) -> Any:
        """The collection stored under ``name`` (same type, computes the same); raises KeyError."""
        self._check_open()
        reply = self._request({"op": "get-collection", "name": name}).value
        keys = list(reply["keys"])
        try:
            with _Unpickling(self):
                collection = protocol.deserialize(reply["blob"])
        finally:
            # the scheduler counted us as wanting these keys; our futures now hold them
            if keys:
                self._send({"op": "want-keys", "keys": keys})
                self._send({"op": "release-keys", "keys": [k for k in keys if k not in self._refcount]})
        return collection

    def list_collections(self) -> list:
        """Names of the collections stored on the scheduler."""
        self._check_open()
        return list(self._request({"op": "list-collections"}).value)

    def delete_collection(self, name: str) -> None:
        """Remove a stored collection (raises KeyError if there is none by that name)."""
        self._check_open()
        self._request({"op": "delete-collection", "name": name})

    # ------------------------------------------------------------------ datasets (Dask's names)

    def publish_dataset(self, *args: Any, name: str | None = None, override: bool = False, **kwargs: Any) -> None:
        """Store objects on the scheduler under names, for any client to get back: futures,
        persisted or lazy collections, or any picklable object holding them. The futures' data
        stays on the workers as long as the name exists, even after this client closes.

        ``publish_dataset(x=future, y=collection)``, or ``publish_dataset(value, name='x')``
        (several positional values are stored as one tuple). A name already taken raises
        ``KeyError`` unless ``override=True``. Datasets are named collections (``set_collection``):
        one mechanism, one namespace.
        """
        if name is not None:
            if not args:
                raise TypeError("publish_dataset(name=...) needs the value to publish: publish_dataset(x, name='x')")
            if name in kwargs:
                raise TypeError(f"publish_dataset got the name {name!r} twice")
            kwargs[name] = args[0] if len(args) == 1 else args
        elif args:
            raise TypeError("publish_dataset needs a name for each value: publish_dataset(x, name='x') or "
                            "publish_dataset(x=x)")
        for dataset, value in kwargs.items():
            self._store_named(dataset, value, override)

    def get_dataset(self, name: str, default: Any = _NO_DEFAULT) -> Any:
        """The object published under ``name``, its futures now this client's; ``default`` if
        there is none and one is given, else ``KeyError``."""
        try:
            return self.get_collection(name)
        except KeyError:
            if default is _NO_DEFAULT:
                raise
            return default

    def list_datasets(self) -> list:
        """The published names (datasets and named collections), sorted."""
        return self.list_collections()

    def unpublish_dataset(self, name: str) -> None:
        """Remove a published name; its data is freed unless a client holds futures of it.
        ``KeyError`` if nothing is published under ``name`` (Dask ignores that silently)."""
        self.delete_collection(name)

    @property
    def datasets(self) -> "Datasets":
        """The published datasets as a mapping: ``client.datasets['x'] = future``, ``client.datasets['x']``,
        ``del client.datasets['x']``, ``'x' in client.datasets``, ``list(client.datasets)``."""
        return Datasets(self)

    # ------------------------------------------------------------------ the cluster, as Dask shows it

    def _query(self, what: str, **fields: Any) -> dict:
        self._check_open()
        pairs = self._request({"op": "query", "what": what, **fields}).value
        return {k: list(v) if type(v) is tuple else v for k, v in pairs}  # lists, as Dask gives

    def _workers_field(self, workers: Any, what: str) -> dict:
        return {} if workers is None else {"workers": _worker_list(workers, what)}

    def who_has(self, futures: Any = None) -> dict:
        """``{key: [addresses of the workers holding its data]}`` for the futures (at any depth
        of containers, or of a persisted collection; ``[]`` for a key not in memory), or for
        every key in memory."""
        if futures is None:
            return self._query("who_has")
        return self._query("who_has", keys=list(dict.fromkeys(f.key for f in _futures_of(futures))))

    def has_what(self, workers: Any = None) -> dict:
        """``{worker address: [keys whose data it holds]}``, for ``workers`` (addresses or
        names; every worker by default); ``ValueError`` naming unknown ones."""
        return self._query("has_what", **self._workers_field(workers, "has_what"))

    def nthreads(self, workers: Any = None) -> dict:
        """``{worker address: its number of threads}`` (``workers`` as for :meth:`has_what`)."""
        return self._query("nthreads", **self._workers_field(workers, "nthreads"))

    ncores = nthreads

    def processing(self, workers: Any = None) -> dict:
        """``{worker address: [keys of the tasks sent to it, running or queued there]}``."""
        return self._query("processing", **self._workers_field(workers, "processing"))

    def nbytes(self, keys: Any = None, summary: bool = True) -> dict:
        """Bytes held on the cluster per key in memory (``keys``: futures or keys; all by default);
        ``summary=True`` sums them per key prefix (``{'add': 4096, 'x': 80000}``), as Dask does."""
        fields: dict = {"summary": bool(summary)}
        if keys is not None:
            items = _futures_of(keys) if type(keys) is Future or is_lazyarr_collection(keys) else list(keys)
            fields["keys"] = [k.key if type(k) is Future else k for k in items]
        return self._query("nbytes", **fields)

    # ------------------------------------------------------------------ code outside the task system

    def run(self, function: Callable, /, *args: Any, workers: Any = None, wait: bool = True, nanny: bool = False,
            on_error: str = "raise", **kwargs: Any) -> dict | None:
        """Run ``function(*args, **kwargs)`` on every worker (or on ``workers``, addresses or names),
        outside the task system, in a thread of its own; returns ``{worker address: result}``.

        As in Dask: a function with a ``dask_worker`` (or ``lazyarr_worker``) parameter gets the
        :class:`~runtime.worker.Worker` running it; ``nanny=True`` runs it in each worker's nanny
        process instead (the ``Nanny`` as ``dask_worker``; a worker without one fails);
        ``wait=False`` returns ``None`` at once without waiting for the calls; ``on_error``
        decides what a call that raised gives: ``'raise'`` its exception (with the worker's
        traceback), ``'return'`` the exception as that worker's result, ``'ignore'`` nothing.
        A worker that leaves before answering fails with
        :class:`~runtime.errors.WorkerLeftError`; an unknown worker raises ``ValueError``; a
        function or argument that cannot be pickled raises ``SerializationError`` before
        anything is sent.
        """
        if on_error not in remote_call.ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(map(repr, remote_call.ON_ERROR))}, not {on_error!r}")
        op: dict = {"op": "run", "function": remote_call.pack_call(function, args, kwargs), "wait": bool(wait),
                    "nanny": bool(nanny), **self._workers_field(workers, "run")}
        self._check_open()
        answers = self._request(op).value
        if not wait:
            return None
        return remote_call.unpack_results(answers, on_error, f"client.run({funcname(function)})")

    def run_on_scheduler(self, function: Callable, /, *args: Any, **kwargs: Any) -> Any:
        """Run ``function(*args, **kwargs)`` in the scheduler process and return its result (a
        ``dask_scheduler`` / ``lazyarr_scheduler`` parameter gets the
        :class:`~runtime.scheduler.Scheduler`). Only on a scheduler started with
        ``allow_run_on_scheduler=True``: otherwise the scheduler unpickles nothing clients send,
        and this raises ``PermissionError`` saying how to allow it.
        """
        payload = remote_call.pack_call(function, args, kwargs)
        self._check_open()
        ok, result = self._request({"op": "run-on-scheduler", "function": payload}).value
        return remote_call.unpack_results([["scheduler", ok, result]], "raise",
                                          f"client.run_on_scheduler({funcname(function)})")["scheduler"]

    def upload_file(self, filename: str, load: bool = True) -> None:
        """Send a local ``.py``, ``.zip`` or ``.egg`` file to every worker, and to every worker
        that joins later: each saves it in a directory of its own on its ``sys.path`` and (with
        ``load``) imports it (a ``.py`` module, or each top-level module and package of an
        archive), reloading an earlier version. Raises the first worker's error (e.g. the
        module's ``SyntaxError``). The scheduler only keeps the bytes; it does not import them.
        """
        import os

        if not str(filename).endswith(remote_call.UPLOAD_SUFFIXES):
            raise ValueError(f"upload_file sends {', '.join(remote_call.UPLOAD_SUFFIXES)} files, not {filename!r}")
        with open(filename, "rb") as f:
            data = f.read()
        self._check_open()
        answers = self._request({"op": "upload-file", "filename": os.path.basename(filename), "data": data,
                                 "load": bool(load)}).value
        remote_call.unpack_results(answers, "raise", f"upload_file({os.path.basename(filename)!r})")

    def replicate(self, futures: Any, n: int | None = None, workers: Any = None, branching_factor: int = 2,
                  timeout: float = 30.0) -> None:
        """Copy the futures' data to ``n`` workers (every worker by default) among ``workers``
        (addresses or names; all by default), peer to peer: each new holder fetches a copy from
        a worker that has one. Copies beyond ``n`` among ``workers`` are freed, as in Dask.
        Waits for the futures, then for the copies (``TimeoutError`` after ``timeout`` seconds).
        ``branching_factor`` is accepted for Dask's signature: every copy is fetched at once.
        """
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"n must be a positive number of workers, not {n!r}")
        found = _futures_of(futures)
        keys = list(dict.fromkeys(f.key for f in found))
        op: dict = {"op": "replicate", "keys": keys, **self._workers_field(workers, "replicate")}
        if n is not None:
            op["n"] = n
        self._check_open()
        deadline = time.monotonic() + timeout
        wait_futures(found, timeout=timeout)
        for f in found:
            if f.status in (ERROR, CANCELLED):
                raise ValueError(f"cannot replicate key {f.key!r}: its future is {f.status}")
        pause = 0.01
        # The scheduler answers with the number of copies it still had to ask for; asking again
        # until none is missing also re-requests a copy whose fetch failed.
        while self._request(dict(op), deadline).value:
            if time.monotonic() + pause >= deadline:
                raise TimeoutError(f"replicate: the copies of {len(keys)} keys were not all made within {timeout} s")
            time.sleep(pause)
            pause = min(2 * pause, 0.5)

    @property
    def dashboard_link(self) -> str | None:
        """The URL of the scheduler's dashboard (``docs/dashboard.md``), None if it has none."""
        return getattr(self, "_dashboard_link", None)

    def scheduler_info(self) -> dict:
        """Workers (threads, memory, tasks), task counts, clients and collections."""
        self._check_open()
        return self._request({"op": "scheduler-info"}).value


def default_client_after(closed: Client) -> Any:
    """The default scheduler to fall back to when ``closed`` was the previous default."""
    previous = getattr(closed, "_previous_default", None)
    while isinstance(previous, Client) and previous.closed:
        previous = getattr(previous, "_previous_default", None)
    return previous


def fire_and_forget(futures: Any) -> None:
    """Have the cluster finish computing ``futures`` (a future, containers of them, or a persisted
    collection) and everything they depend on, even after every client lets go of them or
    disconnects; their results are then dropped. For tasks run for their side effects.

    >>> fire_and_forget([])      # nothing to do
    """
    by_client: dict = {}
    for future in _futures_of(futures):
        by_client.setdefault(future.client, []).append(future.key)
    for client, keys in by_client.items():
        client._check_open()
        # after the update-graph that created the keys (one socket, in order), before any release
        client._send({"op": "fire-and-forget", "keys": list(dict.fromkeys(keys))})


class Datasets(MutableMapping):
    """``client.datasets``: the published datasets of a client's scheduler as a mapping (as
    Dask's ``client.datasets``). Setting a name already published raises ``KeyError``, as
    ``publish_dataset`` does without ``override``."""

    def __init__(self, client: Client):
        self._client = client

    def __getitem__(self, name: str) -> Any:
        return self._client.get_dataset(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self._client.publish_dataset(value, name=name)

    def __delitem__(self, name: str) -> None:
        self._client.unpublish_dataset(name)

    def __contains__(self, name: object) -> bool:
        return name in self._client.list_datasets()  # without fetching (and holding) the data

    def __iter__(self):
        return iter(self._client.list_datasets())

    def __len__(self) -> int:
        return len(self._client.list_datasets())

    def __repr__(self) -> str:
        return f"<Datasets {self._client.list_datasets()!r}>"
