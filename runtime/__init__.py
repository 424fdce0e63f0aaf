"""runtime: lazyarr's distributed runtime.

One central scheduler, many workers that pass data to each other peer to peer, and many
clients, all over ZeroMQ. The scheduler tracks metadata only; workers hold the data.

>>> from runtime import Scheduler, Worker, Client      # doctest: +SKIP
>>> s = Scheduler()                                     # doctest: +SKIP
>>> w = Worker(s.address_to_workers)                    # doctest: +SKIP
>>> c = Client(s.address_to_clients)                    # doctest: +SKIP
>>> c.get({'x': 1, 'y': (add, 'x', 2)}, 'y')            # doctest: +SKIP
3

Names are imported on first use, so ``import runtime`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY_NAMES = {
    # core runtime (scheduler, workers, clients, futures)
    "Scheduler": "runtime.scheduler",
    "SchedulerState": "runtime.scheduler_state",
    "Worker": "runtime.worker",
    "Client": "runtime.client",
    "default_client": "runtime.client",
    "Future": "runtime.futures",
    "as_completed": "runtime.futures",
    "wait": "runtime.futures",
    "ProtocolError": "runtime.errors",
    "VersionMismatchError": "runtime.errors",
    "SerializationError": "runtime.errors",
    "ConnectionTimeoutError": "runtime.errors",
    "SchedulerGoneError": "runtime.errors",
    "LostDataError": "runtime.errors",
    "KilledWorker": "runtime.errors",
    "CancelledError": "runtime.errors",
    "WorkerLeftError": "runtime.errors",
    # --- Dask's client API: tasks that launch tasks, fire-and-forget, datasets ---
    "get_worker": "runtime.in_tasks",
    "get_client": "runtime.in_tasks",
    "worker_client": "runtime.in_tasks",
    "secede": "runtime.in_tasks",
    "rejoin": "runtime.in_tasks",
    "fire_and_forget": "runtime.client",
    "Datasets": "runtime.client",
    # --- cluster, pool and CLI exports go below (owned by the deployment work) ---
    "LocalCluster": "runtime.cluster",
    "Pool": "runtime.pool",
    "RemoteData": "runtime.pool",
    "delete": "runtime.pool",
    "SLURMCluster": "runtime.jobqueue",
    "PBSCluster": "runtime.jobqueue",
    "JobQueueError": "runtime.jobqueue",
    "client_from_ipclient": "runtime.ipyparallel",
    # --- diagnostics (issue 8: dashboard, progress, performance reports) ---
    "progress": "runtime.progress",
    "performance_report": "runtime.performance_report",
}

__all__ = sorted(_LAZY_NAMES)


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))
