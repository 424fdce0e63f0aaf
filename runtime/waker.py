"""A self-pipe that wakes an I/O thread blocked in ``zmq.Poller.poll`` from any other thread.

The scheduler, worker, client and nanny-group loops each own one: other threads queue work and
call :meth:`Waker.wake`; the loop polls :attr:`Waker.fd` beside its sockets and calls
:meth:`Waker.drain` when it fires.

>>> import zmq
>>> waker = Waker()
>>> poller = zmq.Poller()
>>> poller.register(waker.fd, zmq.POLLIN)
>>> waker.wake()
>>> waker.fd in dict(poller.poll(1000))
True
>>> waker.drain()
>>> waker.fd in dict(poller.poll(0))
False
>>> waker.close()
"""
from __future__ import annotations

import os

__all__ = ["Waker"]


class Waker:
    """A non-blocking pipe: ``wake()`` from anywhere, ``fd`` to poll, ``drain()`` in the loop."""

    __slots__ = ("fd", "_write_fd")

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write_fd, False)  # a full pipe already means "wake up"

    def wake(self) -> None:
        """Make the next (or current) poll of :attr:`fd` return."""
        try:
            os.write(self._write_fd, b"x")
        except (OSError, ValueError):  # full (already woken) or closed (loop gone)
            pass

    def drain(self) -> None:
        """Read every pending wake-up, so the next poll blocks again."""
        try:
            while os.read(self.fd, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Close both ends. Idempotent."""
        for fd in (self.fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
