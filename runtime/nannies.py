"""Nannies linked to the scheduler: what ``lazyarr-worker`` and ``LocalCluster`` run workers under.

A :class:`NannyGroup` starts one :class:`~runtime.nanny.Nanny` per worker and keeps one small
DEALER connection to the scheduler's worker port, under its own identity (``nanny-...``). Over
it the group

* says ``nanny-hello`` at start and every few seconds (so a restarted scheduler learns of it);
* forwards each ``worker-died`` event of its nannies (pid, exit reason, exit code, signal), which
  the scheduler matches to the worker that registered with this nanny identity and that pid:
  the worker is removed at once, and the reason goes into ``KilledWorker`` errors;
* obeys ``restart`` (sent by the scheduler for ``client.restart()``): every nanny restarts its
  worker, all at once;
* runs ``client.run(..., nanny=True)`` calls, each in a thread of its own, with the worker's
  :class:`~runtime.nanny.Nanny` as ``dask_worker`` / ``lazyarr_worker``, and sends the answer back.

Each worker is started with ``--nanny-id <identity>`` so that its registration names its nanny.
One I/O thread owns the socket; nanny threads hand it events through a queue. ``close()`` stops
the workers (in parallel) and joins every thread.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import zmq

from . import protocol
from .errors import ProtocolError
from .nanny import Nanny
from .remote_call import CallThreads, run_call
from .waker import Waker

__all__ = ["NannyGroup"]

logger = logging.getLogger("runtime.nannies")

#: Seconds between two ``nanny-hello`` messages.
HELLO_INTERVAL = 2.0
#: Seconds a worker gets to stop cleanly when the scheduler asks for a restart (then SIGKILL).
RESTART_GRACE = 2.0


class NannyGroup:
    """Nannies for ``len(commands)`` workers of the scheduler at ``scheduler`` (its worker port).

    ``commands[i](nanny_id)`` returns worker ``i``'s argv; it is called before every start.
    ``memory_limit``, ``env`` and ``nanny_kwargs`` go to each :class:`~runtime.nanny.Nanny`;
    ``security`` (a :class:`~runtime.security.Security`) secures the link to the scheduler.
    Raises like ``Nanny`` if a worker cannot be started (the others are stopped first).
    """

    def __init__(self, scheduler: str, commands: Sequence[Callable[[str], list[str]]],
                 memory_limit: int | None = None, env: dict | None = None, names: Sequence[str] | None = None,
                 security: Any = None, **nanny_kwargs: Any) -> None:
        self.scheduler = scheduler
        self.id = f"nanny-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._closing = False
        self._closed = False
        self._ctx = zmq.Context()
        self._sock = protocol.configure_socket(self._ctx.socket(zmq.DEALER), linger_ms=500)
        self._sock.setsockopt(zmq.ROUTING_ID, self.id.encode())
        if security is not None:
            security.configure_client(self._sock, "the nanny")
        self._sock.connect(scheduler)
        self._waker = Waker()
        self._calls = CallThreads(f"lazyarr-nannies-{self.id[-8:]}")
        self.nannies: list[Nanny] = []
        self._thread = threading.Thread(target=self._io_loop, name=f"lazyarr-nannies-{self.id[-8:]}", daemon=True)
        self._thread.start()
        try:
            for i, command in enumerate(commands):
                name = names[i] if names is not None else f"{self.id}-{i}"
                self.nannies.append(Nanny(lambda command=command: command(self.id), memory_limit=memory_limit,
                                          env=env, on_event=self._on_event, name=name, **nanny_kwargs))
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<NannyGroup {self.id}: {len(self.nannies)} workers, scheduler {self.scheduler}>"

    def __enter__(self) -> "NannyGroup":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def pids(self) -> list:
        """The running workers' pids (``None`` for one being restarted)."""
        return [n.pid for n in self.nannies]

    def restart(self, timeout: float = 10.0) -> list:
        """Restart every worker at once (graceful stop, then a new process); the new pids."""
        return _all_at_once([lambda n=n: n.restart(timeout) for n in self.nannies], "restart")

    def close(self, timeout: float = 10.0) -> None:
        """Stop every worker (in parallel), then the connection to the scheduler. Idempotent."""
        if self._closed:
            return
        self._closed = True
        _all_at_once([lambda n=n: n.close(timeout) for n in self.nannies], "close")
        self._calls.close(timeout)
        self._closing = True
        self._wake()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._ctx.term()
        self._waker.close()

    # ------------------------------------------------------------------ I/O thread

    def _on_event(self, event: dict) -> None:
        """From a nanny's thread: queue a death for the scheduler."""
        if event.get("event") == "worker-died":
            self._events.put({"op": "worker-died", "pid": event.get("pid"), "reason": event.get("reason"),
                              "exitcode": event.get("exitcode"), "signal": event.get("signal")})
            self._wake()

    def _wake(self) -> None:
        self._waker.wake()

    def _send(self, ops: list) -> None:
        try:
            self._sock.send_multipart(protocol.encode(ops), zmq.NOBLOCK)
        except zmq.ZMQError as e:
            logger.warning("nannies %s: could not send to the scheduler: %s", self.id, e)

    def _io_loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._waker.fd, zmq.POLLIN)
        next_hello = 0.0
        try:
            while not self._closing:
                now = time.monotonic()
                if now >= next_hello:
                    self._send([{"op": "nanny-hello", "workers": len(self.nannies)}])
                    next_hello = now + HELLO_INTERVAL
                events = dict(poller.poll(int(max(0.0, next_hello - time.monotonic()) * 1000) + 1))
                if self._waker.fd in events:
                    self._waker.drain()
                ops = []
                while True:
                    try:
                        ops.append(self._events.get_nowait())
                    except queue.Empty:
                        break
                if ops:
                    self._send(ops)
                if self._sock in events:
                    self._drain()
        except Exception:
            logger.exception("nannies %s: I/O loop crashed", self.id)
        finally:
            self._sock.close(500)

    def _drain(self) -> None:
        for _ in range(100):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                ops = protocol.decode(frames)
            except ProtocolError as e:
                logger.warning("nannies %s: dropped a malformed message from the scheduler: %s", self.id, e)
                continue
            for op in ops:
                if op.get("op") == "run" and not self._closing:
                    self._start_call(op)
                elif op.get("op") == "restart" and not self._closing:
                    logger.info("nannies %s: the scheduler asks to restart %d workers", self.id, len(self.nannies))
                    try:  # a short grace: a restart is for a fresh start, not to finish running tasks
                        self.restart(timeout=RESTART_GRACE)
                    except Exception as e:
                        logger.error("nannies %s: restart failed: %s", self.id, e)


    def _start_call(self, op: dict) -> None:
        """``client.run(..., nanny=True)`` for the worker with pid ``op['pid']``: run the call in
        a thread, with that worker's :class:`~runtime.nanny.Nanny`, and answer for the worker."""
        nanny = next((n for n in self.nannies if n.pid is not None and n.pid == op.get("pid")), None)

        def call() -> None:
            ok, result = run_call(op["function"], {"lazyarr_worker": nanny, "dask_worker": nanny})
            if op.get("reply", True):
                self._events.put({"op": "call-result", "client": op["client"], "rid": op["rid"],
                                  "worker": op["worker"], "ok": ok, "result": result})
                self._wake()

        self._calls.start(call)


def _all_at_once(calls: list, what: str) -> list:
    """Run the calls in parallel threads, join them all; their results (exceptions logged)."""
    results: list = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as e:
            logger.error("nanny %s failed: %s", what, e)

    threads = [threading.Thread(target=run, args=(i,), name=f"lazyarr-nanny-{what}-{i}") for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
