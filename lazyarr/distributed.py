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

