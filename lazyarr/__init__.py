"""lazyarr: lazy, chunked collections (Array, Bag, DataFrame, delayed) and their schedulers.

Build a task graph lazily, optimize it, and evaluate it on a local scheduler (``'sync'``,
``'threads'``, ``'processes'``) or on the distributed runtime (``lazyarr.distributed.Client``).

Importing lazyarr is cheap: numpy and pandas are imported only by the collections that use them
(``lazyarr.array``, ``lazyarr.dataframe``), and the names below are loaded on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY_NAMES = {
    "compute": "lazyarr.base",
    "persist": "lazyarr.base",
    "optimize": "lazyarr.base",
    "is_lazyarr_collection": "lazyarr.base",
    "delayed": "lazyarr.delayed",
    "Delayed": "lazyarr.delayed",
    "tokenize": "lazyarr.tokenize",
    "visualize": "lazyarr.dot",
    "get": "lazyarr.core",
    "istask": "lazyarr.core",
}
_LAZY_MODULES = {"config", "array", "bag", "dataframe", "distributed", "diagnostics", "core", "optimization",
                 "local", "threaded", "multiprocessing", "base", "utils", "order"}

__all__ = sorted(_LAZY_NAMES) + ["config", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"lazyarr.{name}")
    else:
        raise AttributeError(f"module 'lazyarr' has no attribute {name!r}")
    globals()[name] = value
    return value


# ``delayed`` and ``tokenize`` are both submodules and functions. Importing a submodule binds the
# module over the package attribute, so bind the functions now, before anything imports those
# modules (they are light: neither imports numpy or pandas).
from .delayed import delayed  # noqa: E402
from .tokenize import tokenize  # noqa: E402


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES) | _LAZY_MODULES)
