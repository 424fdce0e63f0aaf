"""Pool and RemoteData: the prototype's interface, with data that stays on the workers.

::

    from runtime import Pool, delete
    pool = Pool('tcp://127.0.0.1:5555')
    arrays = pool.map(np.random.random, [1_000_000] * 100)   # 100 arrays, made on the workers
    arrays[0]         # RemoteData<scheduler=tcp://127.0.0.1:5555, key=random-3e4463...>
    sums = pool.map(np.sum, arrays)                          # run where the arrays are
    total = pool.apply(np.sum, args=(sums,))                 # the sums move to one worker
    total.get()                                              # 49993847.1: only now does data come here
    dsk = {('sum', i): (np.sum, x) for i, x in enumerate(arrays)}   # handles inside graphs
    dsk['total'] = (sum, [('sum', i) for i in range(100)])
    pool.get(dsk, 'total')                                   # 49993847.1
    delete(arrays)                                           # free the arrays on the workers
    pool.close()

A :class:`Pool` is a thin layer over a :class:`~runtime.client.Client`'s futures: ``map`` and
``apply`` are ``client.map`` / ``client.submit`` with a fresh key per call (the prototype's
semantics: ``pool.map(np.random.random, [n] * 3)`` makes three different arrays), and each
:class:`RemoteData` holds one future. A value lives on the workers as long as a handle to it
exists and has not been deleted (or the pool closed).
"""
from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .client import Client
from .errors import CancelledError
from .futures import Future

__all__ = ["Pool", "RemoteData", "delete"]


class DeletedError(CancelledError):
    """The data behind a :class:`RemoteData` was freed with :func:`delete`."""


class RemoteData:
    """A handle to one value held on the workers.

    ``get()`` brings the value here. Pass handles to :meth:`Pool.map`, :meth:`Pool.apply` (at any
    depth of lists, tuples and dicts) or put them in graphs given to :meth:`Pool.get`: the workers
    then use the value where it is, without it passing through this process.
    """

    __slots__ = ("future", "pool", "_deleted")

    def __init__(self, future: Future, pool: "Pool") -> None:
        if type(future) is not Future:
            raise TypeError(f"RemoteData wraps a runtime Future, not {type(future).__name__}")
        self.future = future
        self.pool = pool
        self._deleted = False

    @property
    def key(self) -> Any:
        """The key of the value on the cluster."""
        return self.future.key

    @property
    def scheduler(self) -> str:
        """The address of the scheduler that knows where the value is."""
        return self.future.client.address

    @property
    def status(self) -> str:
        """``'pending'``, ``'finished'``, ``'error'``, ``'lost'`` or ``'deleted'``."""
        return "deleted" if self._deleted else self.future.status

    def done(self) -> bool:
        """Has the value been computed (or its computation failed)?"""
        return self._deleted or self.future.done()

    def get(self, timeout: float | None = None) -> Any:
        """Wait for the value and bring it here; re-raises the exception of a failed call."""
        self._check()
        return self.future.result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception the call raised, or ``None`` if it succeeded."""
        self._check()
        return self.future.exception(timeout)

    def _check(self) -> None:
        if self._deleted:
            raise DeletedError(f"the data of {self!r} was deleted")

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{self!r} cannot be pickled: pass RemoteData to Pool.map, Pool.apply or Pool.get, which "
            "hand the workers the value it refers to (or use handle.future with Client methods)")

    def __repr__(self) -> str:
        return f"RemoteData<scheduler={self.future.client.address}, key={self.future.key}>"


class _ByName:
    """A module-level bound method, looked up by name in the process that calls it.

    Pickling ``np.random.random`` (a method of numpy's global RandomState) copies the generator's
    state with it, so every call made on the workers would return the same "random" numbers.
    Shipped by name instead, each worker uses its own generator, as the prototype's
    ``pool.map(np.random.random, [n] * k)`` expects.
    """

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    @property
    def __name__(self) -> str:  # names the tasks, like the function itself would
        return self.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(*args, **kwargs)

    def __reduce__(self) -> Any:
        return (_ByName, (self.module, self.name))

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


def _shippable(func: Callable) -> Callable:
    """``func``, or a by-name reference if it is a module attribute bound to an object's state."""
    owner = getattr(func, "__self__", None)
    if owner is None or isinstance(owner, types.ModuleType) or not isinstance(
            func, (types.MethodType, types.BuiltinMethodType)):
        return func
    module, name = getattr(func, "__module__", None), getattr(func, "__name__", None)
    if module and name and getattr(sys.modules.get(module), name, None) is func:
        return _ByName(module, name)
    return func


def _unwrap(obj: Any) -> Any:
    """``obj`` with every RemoteData (at any depth of lists, tuples, sets and dicts) as its Future.

    Tasks ``(func, *args)`` are tuples too, so this also rewrites graph values.
    """
    typ = type(obj)
    if typ is RemoteData:
        obj._check()
        return obj.future
    if typ in (list, tuple, set, frozenset):
        return typ(_unwrap(x) for x in obj)
    if typ is dict:
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _handles(obj: Any) -> list[RemoteData]:
    """The RemoteData inside nested lists, tuples, sets and dict values."""
    found: list[RemoteData] = []
    stack = [obj]
    while stack:
        x = stack.pop()
        if type(x) is RemoteData:
            found.append(x)
        elif type(x) in (list, tuple, set, frozenset):
            stack.extend(x)
        elif type(x) is dict:
            stack.extend(x.values())
    return found


class Pool:
    """Run functions on a cluster, keeping their results there as :class:`RemoteData`.

    Parameters
    ----------
    address:
        The scheduler's address for clients (``'tcp://host:port'`` or ``'host:port'``), a
        :class:`~runtime.client.Client` to use (not closed by the pool), a ``LocalCluster`` or a
        ``Scheduler``. ``None`` uses the current default client.
    timeout:
        Seconds to wait for the scheduler to answer when connecting.
    """

    def __init__(self, address: Any = None, timeout: float | None = None) -> None:
        if isinstance(address, Client):
            self.client, self._owns_client = address, False
        elif address is None:
            from .client import default_client

            client = default_client()
            if client is None:
                raise ValueError("Pool() without an address needs an open default Client; "
                                 "give the scheduler's address, e.g. Pool('tcp://127.0.0.1:5555')")
            self.client, self._owns_client = client, False
        else:
            if isinstance(address, str):
                from .cli import normalize_address

                address = normalize_address(address)
            self.client, self._owns_client = Client(address, timeout=timeout, set_as_default=False), True

    @property
    def address(self) -> str:
        """The scheduler's address for clients."""
        return self.client.address

    @property
    def closed(self) -> bool:
        """Has the pool (or the client under it) been closed?"""
        return self.client.closed

    def _wrap(self, futures: list[Future]) -> list[RemoteData]:
        return [RemoteData(f, self) for f in futures]

    def map(self, func: Callable, *iterables: Iterable, workers: Any = None,
            retries: int | None = None) -> list[RemoteData]:
        """``func(*items)`` for the items of the iterables, zipped, each run on the cluster.

        Items may be RemoteData: the call runs next to (or fetches) the value. Every call gets a
        fresh key, so calls with equal arguments still run and hold separate results.
        """
        if not iterables:
            raise TypeError("Pool.map needs at least one iterable")
        columns = [list(_unwrap(list(it))) for it in iterables]
        futures = self.client.map(_shippable(func), *columns, pure=False, workers=workers, retries=retries)
        return self._wrap(futures)

    def apply(self, func: Callable, args: tuple | list = (), kwargs: Mapping | None = None,
              workers: Any = None, retries: int | None = None) -> RemoteData:
        """``func(*args, **kwargs)`` on the cluster; RemoteData in the arguments (at any depth) are
        replaced by their values on the worker."""
        if not isinstance(args, (tuple, list)):
            raise TypeError(f"Pool.apply takes args as a tuple or list, not {type(args).__name__}")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise TypeError(f"Pool.apply takes kwargs as a mapping, not {type(kwargs).__name__}")
        future = self.client.submit(_shippable(func), *_unwrap(tuple(args)), pure=False, workers=workers,
                                    retries=retries, **_unwrap(dict(kwargs or {})))
        return RemoteData(future, self)

    def scatter(self, data: Any, workers: Any = None) -> Any:
        """Send local data to the workers: a RemoteData for an object, a list of them for a list."""
        futures = self.client.scatter(data, workers=workers, hash=False)
        if isinstance(futures, list):
            return self._wrap(futures)
        if isinstance(futures, dict):
            return {k: RemoteData(f, self) for k, f in futures.items()}
        return RemoteData(futures, self)

    def get(self, dsk: Mapping, keys: Any, **kwargs: Any) -> Any:
        """Compute ``keys`` of graph ``dsk``, whose tasks may hold RemoteData (see :meth:`Client.get`)."""
        if not isinstance(dsk, Mapping):
            raise TypeError(f"Pool.get takes a graph (a mapping), not {type(dsk).__name__}")
        return self.client.get({k: _unwrap(v) for k, v in dsk.items()}, keys, **kwargs)

    def gather(self, handles: Any) -> Any:
        """The values of RemoteData, in the same structure (lists, tuples, dicts)."""
        return self.client.gather(_unwrap(handles))

    def delete(self, handles: Any) -> None:
        """Free the values of ``handles`` on the workers (same as :func:`delete`)."""
        delete(handles)

    def close(self) -> None:
        """Disconnect (the pool's own client only); the values of its handles are freed."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Pool {self.address} {'closed' if self.closed else 'open'}>"


def delete(handles: Any) -> None:
    """Free the values behind RemoteData handles (one, or nested lists/tuples/dicts of them).

    The workers drop each value unless something else still needs it (a computation in flight,
    another client's future); the handles then raise an error on ``get()``.
    """
    found = _handles(handles)
    if not found and type(handles) is not RemoteData and not isinstance(handles, (list, tuple, set, dict)):
        raise TypeError(f"delete() takes RemoteData handles (or containers of them), not {type(handles).__name__}")
    by_client: dict[int, tuple[Client, list[Future]]] = {}
    for handle in found:
        if handle._deleted:
            continue
        handle._deleted = True
        client = handle.future.client
        by_client.setdefault(id(client), (client, []))[1].append(handle.future)
    for client, futures in by_client.values():
        if not client.closed:
            client.cancel(futures)
