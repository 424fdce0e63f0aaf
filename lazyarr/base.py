"""The collection protocol and the functions that act on any collection: compute, persist, optimize.

A **lazyarr collection** (Array, Bag, DataFrame, Series, Delayed, ...) is any object whose type
defines these methods; nothing here knows the concrete collections.

``__lazyarr_graph__(self) -> Mapping``
    The task graph (see :mod:`lazyarr.core`).
``__lazyarr_keys__(self) -> list``
    The output keys, possibly nested lists (e.g. one list level per array dimension).
``__lazyarr_postcompute__(self) -> (finalize, extra_args)``
    ``finalize(results, *extra_args)`` turns the computed values, nested like the keys (tuples
    or lists), into the user's result (e.g. concatenates array blocks).
``__lazyarr_postpersist__(self) -> (rebuild, extra_args)``
    ``rebuild(graph, *extra_args)`` makes a collection of the same type on a new graph holding
    the same keys (their values precomputed).
``__lazyarr_optimize__(graph, keys, **kwargs) -> dict`` (staticmethod)
    The collection type's graph optimization (cull, fuse, ...).
``__lazyarr_scheduler__`` (class attribute)
    Name of the default local scheduler: ``'threads'``, ``'processes'`` or ``'sync'``.
``__lazyarr_tokenize__(self)`` (optional)
    A deterministic token for the collection (see :mod:`lazyarr.tokenize`).

Choosing a scheduler, from highest precedence: ``compute(scheduler=...)`` or ``compute(get=...)``,
then ``lazyarr.config.set(scheduler=...)``, then the collection's own default. A scheduler is
a name (``'sync'``/``'synchronous'``/``'single-threaded'``, ``'threads'``/``'threading'``,
``'processes'``/``'multiprocessing'``), a ``get(dsk, keys, **kwargs)`` function, or an object with
a ``get`` method such as :class:`runtime.Client`.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from . import config
from .core import flatten

__all__ = [
    "is_lazyarr_collection",
    "compute",
    "persist",
    "optimize",
    "collections_to_graph",
    "get_scheduler",
    "named_schedulers",
    "uses_local_scheduler",
    "LazyarrMethodsMixin",
]

#: Scheduler names and the ``module:function`` that implements each (imported when first used).
named_schedulers: dict[str, str] = {
    "sync": "lazyarr.local:get_sync",
    "synchronous": "lazyarr.local:get_sync",
    "single-threaded": "lazyarr.local:get_sync",
    "threads": "lazyarr.threaded:get",
    "threading": "lazyarr.threaded:get",
    "processes": "lazyarr.multiprocessing:get",
    "multiprocessing": "lazyarr.multiprocessing:get",
}


def is_lazyarr_collection(x: Any) -> bool:
    """Does ``x`` follow the collection protocol?

    >>> is_lazyarr_collection(1)
    False
    """
    return not isinstance(x, type) and hasattr(type(x), "__lazyarr_graph__")


def _load(spec: str) -> Callable:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def get_scheduler(scheduler: Any = None, get: Callable | None = None, collections: list | None = None) -> Callable:
    """Resolve a scheduler choice to a ``get(dsk, keys, **kwargs)`` function.

    >>> get_scheduler('sync').__name__
    'get_sync'
    """
    choice = _scheduler_choice(scheduler, get, collections)
    if isinstance(choice, str):
        name = choice.lower()
        if name not in named_schedulers:
            valid = ", ".join(repr(n) for n in named_schedulers)
            raise ValueError(f"unknown scheduler {choice!r}; expected one of {valid}, a get function or a Client")
        return _load(named_schedulers[name])
    client_get = getattr(choice, "get", None)
    if client_get is not None and not inspect.isfunction(choice) and callable(client_get) and not isinstance(choice, Mapping):
        return client_get
    if callable(choice):
        return choice
    raise TypeError(
        f"scheduler must be a name, a get function or a client with a .get method, not {type(choice).__name__}"
    )


def _scheduler_choice(scheduler: Any, get: Callable | None, collections: list | None) -> Any:
    if scheduler is not None and get is not None:
        raise ValueError("give either scheduler= or get=, not both")
    if scheduler is not None:
        return scheduler
    if get is not None:
        return get
    configured = config.get("scheduler", None)
    if configured is not None:
        return configured
    for coll in collections or ():
        default = getattr(type(coll), "__lazyarr_scheduler__", None)
        if default is not None:
            return default
    return "threads"


def uses_local_scheduler() -> bool:
    """Does the configured default scheduler run on this machine (sync, threads, processes)?

    Algorithms that rely on one machine's disk, such as the disk shuffles of bags and
    dataframes, ask this when they build their graphs; anything else (a cluster client, another
    engine's ``get``) may spread tasks over machines.

    >>> uses_local_scheduler()
    True
    >>> with config.set(scheduler=lambda dsk, keys: None):
    ...     uses_local_scheduler()
    False
    """
    choice = config.get("scheduler", None)
    if choice is None:
        return True
    if isinstance(choice, str):
        return choice.lower() in named_schedulers
    return any(choice is _load(spec) for spec in set(named_schedulers.values()))


def _distributed_client(scheduler: Any, get: Any, collections: list) -> Any:
    """The lazyarr cluster client behind the chosen scheduler, if it is one.

    A client declares itself with a true ``__lazyarr_client__`` attribute (``runtime.Client``
    does); its ``persist`` then keeps results on the cluster. ``client.get`` (a bound method)
    counts as its client. Other engines' clients (Dask's, Ray's) only lend their ``get``.
    """
    choice = _scheduler_choice(scheduler, get, collections)
    owner = getattr(choice, "__self__", choice)
    if getattr(type(owner), "__lazyarr_client__", False):
        return owner
    return None


def _find_collections(args: tuple, traverse: bool) -> list:
    """Every collection in ``args`` (inside lists, tuples, sets and dicts when ``traverse``)."""
    found: list = []
    stack = list(reversed(args))
    while stack:
        x = stack.pop()
        if is_lazyarr_collection(x):
            found.append(x)
        elif traverse and type(x) in (list, tuple, set):
            stack.extend(reversed(list(x)))
        elif traverse and type(x) is dict:
            stack.extend(reversed(list(x.values())))
    return found


def _rebuild_args(args: tuple, traverse: bool, replacement: Callable[[Any], Any]) -> tuple:
    """``args`` with every collection replaced by ``replacement(collection)``, structure kept."""

    def walk(x: Any) -> Any:
        if is_lazyarr_collection(x):
            return replacement(x)
        if traverse and type(x) in (list, tuple, set):
            return type(x)(walk(i) for i in x)
        if traverse and type(x) is dict:
            return {k: walk(v) for k, v in x.items()}
        return x

    return tuple(walk(a) for a in args)


def _merge_graphs(graphs: list) -> Mapping:
    """One graph from several, handed to the optimizer without flattening when the graph type can
    merge itself (a ``__lazyarr_merge__`` staticmethod, e.g. the layered graphs of arrays)."""
    kinds = {type(g) for g in graphs}
    merge = getattr(next(iter(kinds)), "__lazyarr_merge__", None) if len(kinds) == 1 else None
    if merge is not None:
        return graphs[0] if len(graphs) == 1 else merge(graphs)
    graph: dict = {}
    for g in graphs:
        graph.update(g)
    return graph


def collections_to_graph(collections: list, optimize_graph: bool = True, **kwargs: Any) -> dict:
    """Merge (and optimize, per collection type) the graphs of ``collections`` into one dict."""
    if not optimize_graph:
        merged: dict = {}
        for coll in collections:
            merged.update(coll.__lazyarr_graph__())
        return merged
    groups: dict = {}
    for coll in collections:
        opt = getattr(type(coll), "__lazyarr_optimize__", None)
        groups.setdefault(opt, []).append(coll)
    merged = {}
    for opt, colls in groups.items():
        graph = _merge_graphs([coll.__lazyarr_graph__() for coll in colls])
        keys = [coll.__lazyarr_keys__() for coll in colls]
        merged.update(opt(graph, keys, **kwargs) if opt is not None else graph)
    return merged


def compute(*args: Any, traverse: bool = True, optimize_graph: bool = True, scheduler: Any = None,
            get: Callable | None = None, **kwargs: Any) -> tuple:
    """Compute several collections at once, sharing their common work.

    Returns a tuple with one result per argument; non-collections pass through unchanged.

    >>> from lazyarr import delayed
    >>> a = delayed(1) + 1
    >>> compute(a, a * 10, 'other')
    (2, 20, 'other')
    """
    collections = _find_collections(args, traverse)
    if not collections:
        return args
    schedule = get_scheduler(scheduler, get, collections)
    dsk = collections_to_graph(collections, optimize_graph)
    keys = [coll.__lazyarr_keys__() for coll in collections]
    results = iter(schedule(dsk, keys, **kwargs))
    finished = {}
    for coll, result in zip(collections, results):
        finalize, extra = coll.__lazyarr_postcompute__()
        finished[id(coll)] = finalize(result, *extra)
    return _rebuild_args(args, traverse, lambda c: finished[id(c)])


def persist(*args: Any, traverse: bool = True, optimize_graph: bool = True, scheduler: Any = None,
            get: Callable | None = None, **kwargs: Any) -> tuple:
    """Compute collections and return new collections of the same types backed by the results.

    With a local scheduler, or another engine's ``get``, the results are held in this process.
    With a lazyarr cluster client (``runtime.Client``), its ``persist`` keeps them on the workers.

    >>> from lazyarr import delayed
    >>> (x,) = persist(delayed(2) * 3)
    >>> x.compute()
    6
    """
    collections = _find_collections(args, traverse)
    if not collections:
        return args
    client = _distributed_client(scheduler, get, collections)
    if client is not None:
        persisted = client.persist(collections, optimize_graph=optimize_graph, **kwargs)
        rebuilt = dict(zip(map(id, collections), persisted))
        return _rebuild_args(args, traverse, lambda c: rebuilt[id(c)])
    schedule = get_scheduler(scheduler, get, collections)
    dsk = collections_to_graph(collections, optimize_graph)
    keys = [coll.__lazyarr_keys__() for coll in collections]
    flat_keys = list(flatten(keys))
    values = schedule(dsk, flat_keys, **kwargs)
    results = dict(zip(flat_keys, values))
    rebuilt = {}
    for coll in collections:
        rebuild, extra = coll.__lazyarr_postpersist__()
        own = {k: results[k] for k in flatten(coll.__lazyarr_keys__())}
        rebuilt[id(coll)] = rebuild(own, *extra)
    return _rebuild_args(args, traverse, lambda c: rebuilt[id(c)])


def optimize(*args: Any, traverse: bool = True, **kwargs: Any) -> tuple:
    """Collections equivalent to ``args`` whose graphs are optimized and merged (shared parts once).

    >>> from lazyarr import delayed
    >>> (y,) = optimize(delayed(1) + 2)
    >>> y.compute()
    3
    """
    collections = _find_collections(args, traverse)
    if not collections:
        return args
    dsk = collections_to_graph(collections, True, **kwargs)
    rebuilt = {}
    for coll in collections:
        rebuild, extra = coll.__lazyarr_postpersist__()
        rebuilt[id(coll)] = rebuild(dsk, *extra)
    return _rebuild_args(args, traverse, lambda c: rebuilt[id(c)])


class LazyarrMethodsMixin:
    """``compute``, ``persist`` and ``visualize`` methods for a collection type."""

    __slots__ = ()

    def compute(self, **kwargs: Any) -> Any:
        """Compute this collection and return its concrete result (see :func:`lazyarr.compute`)."""
        (result,) = compute(self, traverse=False, **kwargs)
        return result

    def persist(self, **kwargs: Any) -> Any:
        """Compute this collection and return a same-type collection backed by the results."""
        (result,) = persist(self, traverse=False, **kwargs)
        return result

    def visualize(self, filename: str = "mygraph", format: str | None = None, optimize_graph: bool = False,
                  **kwargs: Any) -> Any:
        """Draw the task graph with graphviz (see :func:`lazyarr.visualize`)."""
        from .dot import visualize

        return visualize(self, filename=filename, format=format, optimize_graph=optimize_graph, **kwargs)
