"""Run the lazyarr runtime on the engines of a running IPython parallel (ipyparallel) cluster::

    import ipyparallel as ipp
    from lazyarr.distributed import client_from_ipclient

    rc = ipp.Client()                              # an ipcluster already runs
    with client_from_ipclient(rc) as client:       # a scheduler, and a worker on every engine
        x.mean().compute()                         # runs on the engines
    # leaving the block stopped the workers and the scheduler; the engines keep running

The scheduler runs in a background thread of the first engine (``scheduler='engine'``, the
default: it lives as long as the engines do) or of this process (``scheduler='local'``). Each
engine runs one :class:`~runtime.worker.Worker`, also in background threads, so the engine keeps
answering ipyparallel requests. The returned :class:`IPClusterClient` is a
:class:`~runtime.client.Client` whose ``close()`` also stops everything this function started;
:func:`stop_ipclient_runtime` does the same from any other ipyparallel client (for example after
the notebook that started them was restarted).

Needs the optional extra ``pip install 'lazyarr[ipyparallel]'``; nothing here imports
ipyparallel until it is used.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .cli import normalize_address, parse_memory_limit
from .client import Client

__all__ = ["client_from_ipclient", "stop_ipclient_runtime", "IPClusterClient"]

logger = logging.getLogger("runtime.ipyparallel")

#: What this process runs when it is an engine: for each :func:`client_from_ipclient` call (by
#: its token), a ``'worker'`` and maybe a ``'scheduler'``. Module state, because it must outlive
#: the ``apply`` call that created it.
_SERVICES: dict[str, dict[str, Any]] = {}


# ----------------------------------------------------------------------------------------------
# Functions run on the engines (by reference: the engines import this module)


def _listen_address(interface: str | None) -> str:
    if interface is None:
        return "127.0.0.1"
    from .jobqueue import interface_address

    return interface_address(interface)


def _engine_start_scheduler(token: str, interface: str | None, options: Mapping[str, Any]) -> dict:
    """Start a scheduler in this engine; its two addresses."""
    from .scheduler import Scheduler

    scheduler = Scheduler(hostname=_listen_address(interface), **options)
    _SERVICES.setdefault(token, {})["scheduler"] = scheduler
    return {"workers": scheduler.address_to_workers, "clients": scheduler.address_to_clients}


def _engine_start_worker(token: str, scheduler: str, name: str, nthreads: int, memory_limit: Any,
                         interface: str | None, options: Mapping[str, Any]) -> dict:
    """Start a worker in this engine, serving ``scheduler``; its name, address and process id."""
    from .worker import Worker

    if memory_limit == "auto":
        # Engines usually run one per core: each takes the share of memory of its threads.
        limit = parse_memory_limit("auto", nthreads=nthreads)
    else:
        limit = parse_memory_limit(memory_limit)
    worker = Worker(scheduler, hostname=_listen_address(interface), nthreads=nthreads, name=name,
                    memory_limit=limit, **options)
    _SERVICES.setdefault(token, {})["worker"] = worker
    return {"name": worker.name, "address": worker.address, "pid": os.getpid()}


def _engine_stop(token: str | None) -> list[str]:
    """Close the worker, then the scheduler, that call ``token`` (or every call) started here;
    what was closed."""
    closed = []
    for key in [token] if token is not None else list(_SERVICES):
        services = _SERVICES.pop(key, {})
        for role in ("worker", "scheduler"):
            if role in services:
                services[role].close()
                closed.append(role)
    return closed


# ----------------------------------------------------------------------------------------------
# The client side


def _engine_ids(ipclient: Any, targets: Sequence[int] | None) -> list[int]:
    ids = list(ipclient.ids)
    if targets is not None:
        unknown = sorted(set(targets) - set(ids))
        if unknown:
            raise ValueError(f"engines {unknown} are not in the ipyparallel cluster (its engines: {ids})")
        ids = list(dict.fromkeys(targets))
    if not ids:
        raise ValueError("the ipyparallel cluster has no engines: start some first "
                         "(ipcluster start -n 4, or ipyparallel.Cluster(n=4).start_and_connect_sync())")
    return ids


def _stop_engines(ipclient: Any, engines: Sequence[int], token: str | None, timeout: float) -> None:
    """Stop what call ``token`` (or any call) started on ``engines``, all at once; log (not raise)
    what cannot be stopped."""
    pending = []
    for eid in engines:
        try:
            pending.append((eid, ipclient[eid].apply_async(_engine_stop, token)))
        except Exception as e:  # the engine is gone: nothing of ours runs there any more
            logger.warning("cannot reach engine %s to stop the lazyarr runtime: %s", eid, e)
    for eid, result in pending:
        try:
            result.get(timeout)
        except Exception as e:
            logger.warning("engine %s did not stop its lazyarr runtime cleanly: %s", eid, e)


class IPClusterClient(Client):
    """A :class:`~runtime.client.Client` that also owns the scheduler and workers that
    :func:`client_from_ipclient` started; ``close()`` stops them after disconnecting."""

    def __init__(self, address: str, *, ipclient: Any, token: str, engines: Sequence[int],
                 local_scheduler: Any = None, timeout: float | None = None, stop_timeout: float = 30.0,
                 **kwargs: Any) -> None:
        self._ipclient = ipclient
        self._token = token
        self._engines = list(engines)
        self._local_scheduler = local_scheduler
        self._stop_timeout = stop_timeout
        super().__init__(address, timeout, **kwargs)

    @property
    def engines(self) -> list[int]:
        """The ipyparallel engine ids running our workers (and the engine scheduler, if any)."""
        return list(self._engines)

    def close(self, timeout: float = 10.0) -> None:
        """Disconnect, stop the workers on the engines, then the scheduler. Idempotent."""
        try:
            super().close(timeout)
        finally:
            engines, self._engines = self._engines, []
            if engines:
                _stop_engines(self._ipclient, engines, self._token, self._stop_timeout)
            scheduler, self._local_scheduler = self._local_scheduler, None
            if scheduler is not None:
                scheduler.close()


def client_from_ipclient(ipclient: Any, *, targets: Sequence[int] | None = None, scheduler: str = "engine",
                         nthreads: int = 1, memory_limit: Any = "auto", interface: str | None = None,
                         scheduler_options: Mapping[str, Any] | None = None,
                         worker_options: Mapping[str, Any] | None = None, timeout: float = 60.0,
                         **client_kwargs: Any) -> IPClusterClient:
    """Start a lazyarr scheduler and one worker per engine of a running ipyparallel cluster.

    Parameters
    ----------
    ipclient:
        An ``ipyparallel.Client`` connected to the cluster.
    targets:
        Engine ids to run workers on (default: every engine).
    scheduler:
        ``'engine'``: in the first target engine (outlives this process); ``'local'``: in this
        process (stopped when this process exits).
    nthreads, memory_limit:
        Per worker: threads (default 1, as engines usually run one per core) and memory
        (``'auto'``: the machine's memory times ``nthreads / cores``; a size; ``None`` or 0 for none).
    interface:
        Network interface (e.g. ``'ib0'``) every engine and the scheduler listen on; loopback
        when None, which only works while every engine runs on this machine.
    scheduler_options, worker_options:
        More keyword arguments of :class:`~runtime.scheduler.Scheduler` and
        :class:`~runtime.worker.Worker`.
    timeout:
        Seconds for the engines to start their part, and for the workers to register.

    Returns an :class:`IPClusterClient`; closing it (or leaving its ``with`` block) stops the
    workers and the scheduler.
    """
    if scheduler not in ("engine", "local"):
        raise ValueError(f"scheduler must be 'engine' or 'local', not {scheduler!r}")
    if isinstance(nthreads, bool) or not isinstance(nthreads, int) or nthreads < 1:
        raise ValueError(f"nthreads must be a positive integer, not {nthreads!r}")
    if memory_limit != "auto":
        parse_memory_limit(memory_limit)  # a bad size fails here, not on every engine
    engines = _engine_ids(ipclient, targets)
    scheduler_options = dict(scheduler_options or {})
    worker_options = dict(worker_options or {})

    token = uuid.uuid4().hex
    local = None
    touched: list[int] = []
    client = None
    try:
        if scheduler == "local":
            from .scheduler import Scheduler

            local = Scheduler(hostname=_listen_address(interface), **scheduler_options)
            addresses = {"workers": local.address_to_workers, "clients": local.address_to_clients}
        else:
            touched.append(engines[0])
            addresses = ipclient[engines[0]].apply_async(_engine_start_scheduler, token, interface,
                                                         scheduler_options).get(timeout)
        to_workers = normalize_address(addresses["workers"])
        starts = []
        for eid in engines:
            if eid not in touched:
                touched.append(eid)
            starts.append(ipclient[eid].apply_async(_engine_start_worker, token, to_workers, f"ipengine-{eid}",
                                                    nthreads, memory_limit, interface, worker_options))
        started = [result.get(timeout) for result in starts]
        client = IPClusterClient(addresses["clients"], ipclient=ipclient, token=token, engines=touched, local_scheduler=local,
                                 timeout=timeout, **client_kwargs)
        _wait_for_workers(client, {w["name"] for w in started}, timeout)
        logger.info("lazyarr runtime on %d ipyparallel engines, scheduler at %s", len(engines), addresses["clients"])
        return client
    except BaseException:
        if client is not None:
            client.close()  # stops the engines' part and the local scheduler too
        else:
            _stop_engines(ipclient, touched, token, timeout)
            if local is not None:
                local.close()
        raise


def _wait_for_workers(client: Client, names: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        joined = {info.get("name") for info in client.scheduler_info()["workers"].values()}
        if names <= joined:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers {sorted(names - joined)} did not register with the scheduler at "
                               f"{client.address} within {timeout:g} s (can every engine reach it?)")
        time.sleep(0.02)


def stop_ipclient_runtime(ipclient: Any, targets: Sequence[int] | None = None, timeout: float = 30.0) -> None:
    """Stop every lazyarr worker and scheduler running on the engines (all, or ``targets``), such
    as those of a client that was never closed."""
    _stop_engines(ipclient, _engine_ids(ipclient, targets), None, timeout)
