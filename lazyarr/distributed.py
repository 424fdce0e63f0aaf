"""lazyarr's door to the distributed runtime: everything public in :mod:`runtime`, re-exported.

::

    from lazyarr.distributed import Client, LocalCluster, Pool
    client = Client()            # a LocalCluster sized to this machine
    x.mean().compute()           # now runs on it (the client is the default scheduler)

This is the only lazyarr module that imports :mod:`runtime` (the runtime depends on lazyarr's
graph spec, never the reverse). It is imported only when used, so ``import lazyarr`` stays light.
"""
from __future__ import annotations

from runtime import *  # noqa: F401,F403  (runtime.__all__: Client, LocalCluster, Pool, Future, ...)
from runtime import __all__ as _runtime_all

__all__ = sorted(_runtime_all)

# --- job-queue clusters and the IPython parallel bootstrap (issue 8; neither imports ipyparallel) ---
from runtime.ipyparallel import client_from_ipclient  # noqa: E402
from runtime.jobqueue import PBSCluster, SLURMCluster  # noqa: E402

__all__ = sorted({*__all__, "PBSCluster", "SLURMCluster", "client_from_ipclient"})
