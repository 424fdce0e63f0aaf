"""Tasks that launch tasks: the worker running a task, a client inside it, and leaving the
worker's thread pool while waiting (as Dask's ``get_worker``, ``get_client``, ``worker_client``,
``secede``, ``rejoin``).

::

    from runtime import worker_client

    def fib(n):
        if n < 2:
            return n
        with worker_client() as client:          # leaves the thread pool while it waits
            a, b = client.submit(fib, n - 1), client.submit(fib, n - 2)
            return a.result() + b.result()

    client.submit(fib, 10).result()              # 55, even on a single one-thread worker

A task that waits for tasks it submitted holds one of its worker's threads while it waits;
without :func:`secede` a worker whose threads all wait that way runs nothing more, and the
tasks they wait for never start. :func:`worker_client` secedes on entry and rejoins on exit.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .worker import current_task

__all__ = ["get_worker", "get_client", "worker_client", "secede", "rejoin"]


def get_worker() -> Any:
    """The :class:`~runtime.worker.Worker` running the current task (or ``client.run`` call).

    >>> get_worker()
    Traceback (most recent call last):
      ...
    ValueError: get_worker() was called outside a task: it only works in code that runs on a worker (a task, or a function given to client.run)
    """
    worker, _ = current_task()
    if worker is None:
        raise ValueError("get_worker() was called outside a task: it only works in code that runs on a worker "
                         "(a task, or a function given to client.run)")
    return worker


def get_client(address: str | None = None, timeout: float | None = None) -> Any:
    """A :class:`~runtime.client.Client` for the code calling it.

    In a task (or a ``client.run`` call) on a worker: a client of the worker's own scheduler,
    shared by the tasks of that worker and closed with it (``address`` must then be ``None`` or
    that scheduler's). Elsewhere: the default client (the last one opened), or a new client of
    ``address``. ``ValueError`` if there is none and no address is given.
    """
    worker, _ = current_task()
    if worker is not None:
        own = worker.scheduler_address_to_clients
        if address is not None and address != own:
            raise ValueError(f"get_client({address!r}) in a task on worker {worker.address}: tasks use their "
                             f"worker's scheduler, {own}")
        return worker._client_for_tasks(timeout)
    from .client import Client, default_client

    client = default_client()
    if client is not None and address in (None, client.address):
        return client
    if address is not None:
        return Client(address, timeout=timeout)
    raise ValueError("get_client() found no client: open a Client first (it becomes the default) or pass the "
                     "scheduler's address")


def _running_task(what: str) -> tuple:
    worker, key = current_task()
    if worker is None or key is None:
        raise ValueError(f"{what}() was called outside a task: it only works in a task running on a worker")
    return worker, key


def secede() -> None:
    """Take the current task out of its worker's thread pool: the worker starts another thread
    in its place, and the scheduler no longer counts the task against the worker's threads.
    Call it before waiting a long time (on other tasks, on I/O); :func:`rejoin` takes a place
    back. Calling it twice does nothing more."""
    worker, key = _running_task("secede")
    worker._secede(key)


def rejoin() -> None:
    """Put a task that called :func:`secede` back in its worker's thread pool, waiting until a
    thread gives its place up (the next task to finish, or an idle thread). No-op for a task
    that did not secede."""
    worker, _ = _running_task("rejoin")
    worker._rejoin()


@contextlib.contextmanager
def worker_client(timeout: float | None = None, separate_thread: bool = True) -> Iterator[Any]:
    """``with worker_client() as client:`` in a task: :func:`get_client`, and (with
    ``separate_thread``, the default) :func:`secede` for the duration of the block, then
    :func:`rejoin`, so that the task can wait for tasks it submits without holding one of its
    worker's threads."""
    _running_task("worker_client")
    client = get_client(timeout=timeout)
    if separate_thread:
        secede()
    try:
        yield client
    finally:
        if separate_thread:
            rejoin()
