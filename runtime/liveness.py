"""Which workers are alive: the scheduler's bookkeeping for noticing dead workers quickly.

Three signals tell the scheduler that a worker died, fastest first:

* its **nanny** reports ``worker-died`` (the nanny polls its child every 0.1 s), with the exit
  reason (``'killed by SIGKILL'``, ``'exited with code 1'``, ``'out of memory (...)'``);
* its **connection drops**: a monitor socket on the worker ROUTER reports each closed TCP
  connection by its file descriptor (the kernel closes a killed process's connections at once),
  and the scheduler knows which worker last sent a message over each descriptor
  (``zmq.SRCFD`` of received frames). A dropped connection alone is not proof of death
  (ZeroMQ reconnects after a network hiccup), so the worker becomes a *suspect*: it is removed
  if nothing arrives from it within a grace period (longer when a nanny watches it, so that the
  nanny's report, which names the reason, normally arrives first);
* its **heartbeats** stop for ``runtime.worker-timeout`` seconds (the last resort, for a worker
  that hangs or a link that silently breaks).

:class:`Liveness` holds only this bookkeeping (no sockets), for the scheduler's loop to consult.

>>> live = Liveness(grace=0.5, heartbeat_interval=0.5)
>>> live.registered('tcp://w1', nanny=None, pid=11)
>>> live.disconnected('tcp://w1', now=10.0)
>>> live.due(10.5), live.due(11.1)
([], ['tcp://w1'])
"""
from __future__ import annotations

from typing import Any

__all__ = ["Liveness"]

#: Seconds an address stays retired after a restart (its old process will not be let back in).
RETIRE_SECONDS = 60.0


class Liveness:
    """Suspects (connections dropped), worker processes and their nannies, retired addresses.

    ``grace``: seconds a worker whose connection dropped has to show a sign of life; at least two
    heartbeat intervals, and four with a nanny (whose report names the reason and comes first).
    """

    def __init__(self, grace: float, heartbeat_interval: float) -> None:
        self.grace = max(float(grace), 2 * float(heartbeat_interval))
        self.nanny_grace = max(self.grace, 4 * float(heartbeat_interval), 2.0)
        self.suspects: dict[str, float] = {}       # address -> deadline
        self.procs: dict[str, tuple] = {}          # address -> (nanny id or None, pid)
        self.nannies: dict[str, float] = {}        # nanny id -> last seen
        self.retired: dict[str, float] = {}        # address -> until when
        self.fds: dict[int, bytes] = {}             # connection file descriptor -> last peer identity

    def registered(self, address: str, nanny: Any, pid: Any) -> None:
        """A worker (re-)registered; ``nanny`` is its nanny's identity, if it has one."""
        self.suspects.pop(address, None)
        self.procs[address] = (nanny if isinstance(nanny, str) else None, pid if isinstance(pid, int) else None)

    def heard(self, address: str) -> None:
        """A message came from ``address``: it is alive."""
        if self.suspects:
            self.suspects.pop(address, None)

    def disconnected(self, address: str, now: float) -> None:
        """The connection of worker ``address`` dropped."""
        nanny = self.procs.get(address, (None, None))[0]
        self.suspects[address] = now + (self.nanny_grace if nanny in self.nannies else self.grace)

    def due(self, now: float) -> list[str]:
        """Suspects whose grace period is over (removed from the suspects)."""
        if not self.suspects:
            return []
        gone = [a for a, deadline in self.suspects.items() if now >= deadline]
        for address in gone:
            del self.suspects[address]
        return gone

    def next_deadline(self) -> float:
        """When :meth:`due` may next return something (``inf`` if never)."""
        return min(self.suspects.values(), default=float("inf"))

    def forget(self, address: str) -> None:
        """Worker ``address`` was removed."""
        self.suspects.pop(address, None)
        self.procs.pop(address, None)

    def nanny_seen(self, nanny: str, now: float) -> None:
        """A nanny said hello (at start, and periodically)."""
        self.nannies[nanny] = now

    def nanny_of(self, address: str) -> str | None:
        """The identity of the nanny watching worker ``address`` (None: none known)."""
        nanny = self.procs.get(address, (None, None))[0]
        return nanny if nanny in self.nannies else None

    def find(self, nanny: str, pid: Any) -> str | None:
        """The address of the worker process ``pid`` of ``nanny``."""
        for address, proc in self.procs.items():
            if proc == (nanny, pid):
                return address
        return None

    def retire(self, address: str, now: float) -> None:
        """``address`` is being restarted: messages from its old process are ignored."""
        self.retired[address] = now + RETIRE_SECONDS

    def is_retired(self, address: str, now: float) -> bool:
        """Is ``address`` an old incarnation being restarted?"""
        until = self.retired.get(address)
        if until is None:
            return False
        if now >= until:
            del self.retired[address]
            return False
        return True
