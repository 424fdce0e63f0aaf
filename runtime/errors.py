"""Exceptions raised by the runtime, each naming the problem it reports.

They are plain module-level classes so that they pickle by reference: the scheduler creates some
of them (a lost key, an unknown dependency) and sends them, pickled, to clients.
"""
from __future__ import annotations

from concurrent.futures import CancelledError
from typing import Any

__all__ = [
    "ProtocolError",
    "VersionMismatchError",
    "MessageTooLargeError",
    "SerializationError",
    "ConnectionTimeoutError",
    "SchedulerGoneError",
    "SchedulerRestartedError",
    "RemoteTraceback",
    "LostDataError",
    "MissingDependencyError",
    "KilledWorker",
    "WorkerLeftError",
    "CancelledError",
    "ClientClosedError",
    "SecurityError",
    "InsecureListenError",
    "AuthenticationError",
]


class ProtocolError(ValueError):
    """A message that does not follow the runtime's wire format (garbage, truncated, malformed)."""


class VersionMismatchError(ProtocolError):
    """The peer speaks another version of the wire protocol."""

    def __init__(self, ours: int, theirs: int, detail: str = ""):
        self.ours = ours
        self.theirs = theirs
        msg = (f"protocol version mismatch: this side speaks lazyarr runtime protocol version {ours}, "
               f"the peer speaks version {theirs}; run the same lazyarr version everywhere")
        if detail:
            msg += f" (peer said: {detail})"
        super().__init__(msg)

    def __reduce__(self) -> Any:
        return (type(self), (self.ours, self.theirs))


class MessageTooLargeError(ProtocolError):
    """A message frame is larger than the configured ``runtime.max-message-size``."""


class SerializationError(TypeError):
    """A function, argument or result could not be pickled; nothing was sent."""


class ConnectionTimeoutError(TimeoutError):
    """Nothing answered at an address within the timeout."""


class SecurityError(ValueError):
    """Keys missing, unreadable or unsuitable for what a component must do (see runtime.security)."""


class InsecureListenError(SecurityError):
    """Refused to listen on a non-loopback address without CURVE security and without ``insecure=True``."""


class AuthenticationError(ConnectionError):
    """The security handshake with the scheduler failed (missing, wrong or unauthorized keys)."""


class SchedulerGoneError(ConnectionError):
    """The scheduler stopped answering while the client waited for it."""


class SchedulerRestartedError(SchedulerGoneError):
    """The scheduler restarted: the work a client had submitted before is gone with it."""


class ClientClosedError(RuntimeError):
    """The client was closed; its futures can no longer be used."""


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised on a worker (set as ``__cause__``)."""

    def __init__(self, tb: str):
        self.tb = tb
        super().__init__(tb)

    def __str__(self) -> str:
        return "\n" + self.tb


class LostDataError(RuntimeError):
    """Data that cannot be recomputed (it was scattered) was held only by workers that left."""


class MissingDependencyError(KeyError):
    """A task depends on a key the scheduler does not know (its future was released)."""

    def __str__(self) -> str:  # KeyError's str() quotes its argument; keep the sentence readable
        return str(self.args[0]) if self.args else ""


class KilledWorker(RuntimeError):
    """A task was running on ``allowed_failures`` workers that died, so the scheduler stopped
    retrying it (it probably kills its worker: a crash in native code, too much memory).

    ``task`` is its key; ``deaths`` lists ``(worker address, worker name, exit reason)`` per dead
    worker, the reason as the worker's nanny reported it (``'killed by SIGKILL'``, ``'exited with
    code 1'``, ``'out of memory (...)'``) or how the scheduler noticed (``'connection lost'``).
    """

    def __init__(self, message: str, task: Any = None, deaths: Any = ()):
        self.task = task
        self.deaths = [tuple(d) for d in deaths]
        super().__init__(message)

    def __reduce__(self) -> Any:
        return (type(self), (self.args[0] if self.args else "", self.task, self.deaths))


class WorkerLeftError(RuntimeError):
    """A worker left (closed, died, was retired) before answering a call made on it with
    ``client.run`` or ``client.upload_file``."""
