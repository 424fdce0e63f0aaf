"""Deterministic content hashes (tokens) used to name collections and tasks.

``tokenize(*args, **kwargs)`` gives the same hex string for equal inputs, in this process and in
any other (no reliance on ``id`` or on Python's salted ``hash`` of strings). Collections name their
outputs ``f"{opname}-{tokenize(inputs...)}"`` so building the same computation twice yields the
same keys, and shared parts are computed once.

How objects are normalised, in order:

1. an object with a ``__lazyarr_tokenize__()`` method: its return value;
2. a handler registered for its type with :func:`normalize_token.register`
   (numpy arrays by content, pandas objects by content and dtype, registered lazily so that
   importing lazyarr does not import numpy or pandas);
3. builtins: containers recursively, functions by module, name and code, partials by parts;
4. anything else: its cloudpickle bytes, or, if it cannot be pickled, a random token so that two
   such objects are never confused.

>>> tokenize(1, 'a', [1.5, None]) == tokenize(1, 'a', [1.5, None])
True
>>> tokenize({'b': 2, 'a': 1}) == tokenize({'a': 1, 'b': 2})
True
>>> tokenize(1) == tokenize(1.0)
False
"""
from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import functools
import hashlib
import pathlib
import pickle
import types
import uuid
from typing import Any, Callable

__all__ = ["tokenize", "normalize_token"]


class _TypeDispatch:
    """Dispatch on an object's type (through its MRO), with handlers registered lazily by module.

    ``register_lazy('numpy', setup)`` runs ``setup()`` the first time an object from a module
    whose top-level name is ``numpy`` is normalised, so the registrations cost nothing otherwise.
    """

    def __init__(self, name: str):
        self.name = name
        self._handlers: dict[type, Callable] = {}
        self._lazy: dict[str, Callable[[], None]] = {}

    def register(self, types_: type | tuple, func: Callable | None = None):
        def store(f: Callable) -> Callable:
            for typ in types_ if isinstance(types_, tuple) else (types_,):
                self._handlers[typ] = f
            return f

        return store(func) if func is not None else store

    def register_lazy(self, toplevel: str, setup: Callable[[], None]) -> None:
        self._lazy[toplevel] = setup

    def dispatch(self, typ: type) -> Callable | None:
        toplevel = typ.__module__.partition(".")[0]
        if toplevel in self._lazy:
            self._lazy.pop(toplevel)()
        for cls in typ.__mro__:
            handler = self._handlers.get(cls)
            if handler is not None:
                return handler
        return None

    def __call__(self, obj: Any) -> Any:
        handler = self.dispatch(type(obj))
        if handler is None:
            return _normalize_object(obj)
        return handler(obj)


normalize_token = _TypeDispatch("normalize_token")


def tokenize(*args: Any, **kwargs: Any) -> str:
    """A deterministic hex token for the arguments.

    >>> len(tokenize('anything'))
    32
    """
    parts = (args, kwargs) if kwargs else args
    return hashlib.md5(repr(_normalize(parts)).encode(), usedforsecurity=False).hexdigest()


def _normalize(obj: Any) -> Any:
    hook = getattr(type(obj), "__lazyarr_tokenize__", None)
    if hook is not None and not isinstance(obj, type):
        return ("__lazyarr_tokenize__", _normalize(hook(obj)))
    return normalize_token(obj)


_IDENTITY_TYPES = (
    int, float, complex, str, bytes, type(None), bool, slice, type(Ellipsis), decimal.Decimal,
    datetime.date, datetime.time, datetime.datetime, datetime.timedelta, pathlib.PurePath, uuid.UUID,
)


@normalize_token.register(_IDENTITY_TYPES)
def _normalize_identity(obj: Any) -> Any:
    return (type(obj).__name__, obj)


@normalize_token.register((tuple, list))
def _normalize_sequence(seq: Any) -> Any:
    return (type(seq).__name__, [_normalize(x) for x in seq])


@normalize_token.register((set, frozenset))
def _normalize_set(s: Any) -> Any:
    return (type(s).__name__, sorted((_normalize(x) for x in s), key=repr))


@normalize_token.register(dict)
def _normalize_dict(d: dict) -> Any:
    items = sorted(((_normalize(k), _normalize(v)) for k, v in d.items()), key=lambda kv: repr(kv[0]))
    return ("dict", items)


@normalize_token.register(enum.Enum)
def _normalize_enum(e: enum.Enum) -> Any:
    return ("enum", type(e).__module__, type(e).__qualname__, e.name)


@normalize_token.register(functools.partial)
def _normalize_partial(p: functools.partial) -> Any:
    return ("partial", _normalize(p.func), _normalize(p.args), _normalize(p.keywords or {}))


@normalize_token.register((types.FunctionType, types.BuiltinFunctionType, types.MethodType, type))
def _normalize_function(func: Any) -> Any:
    return ("function", _function_identity(func))


@functools.lru_cache(maxsize=4096)
def _function_identity_cached(func: Any) -> Any:
    return _function_identity_uncached(func)


def _function_identity(func: Any) -> Any:
    try:
        return _function_identity_cached(func)
    except TypeError:  # unhashable callable
        return _function_identity_uncached(func)


def _function_identity_uncached(func: Any) -> Any:
    if isinstance(func, types.MethodType):
        return ("method", _normalize(func.__self__), func.__func__.__name__)
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    code = getattr(func, "__code__", None)
    if code is None or (qualname and "<lambda>" not in qualname and "<locals>" not in qualname):
        if module and qualname:
            return (module, qualname)
    # lambdas and closures: identify by what they do, not where they were written
    try:
        import cloudpickle

        return ("pickled", hashlib.md5(cloudpickle.dumps(func, protocol=5), usedforsecurity=False).hexdigest())
    except Exception:
        return ("unpicklable", uuid.uuid4().hex)


def _normalize_object(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = [(f.name, _normalize(getattr(obj, f.name))) for f in dataclasses.fields(obj)]
        return ("dataclass", type(obj).__module__, type(obj).__qualname__, fields)
    if callable(obj) and hasattr(obj, "__code__"):
        return ("function", _function_identity(obj))
    try:
        import cloudpickle

        data = cloudpickle.dumps(obj, protocol=5)
    except Exception:
        # Not picklable, so not comparable by content: never share a token with anything else.
        return ("object", type(obj).__qualname__, uuid.uuid4().hex)
    return ("pickled", type(obj).__qualname__, hashlib.md5(data, usedforsecurity=False).hexdigest())


def _register_numpy() -> None:
    import numpy as np

    @normalize_token.register(np.ndarray)
    def _normalize_ndarray(x: np.ndarray) -> Any:
        if x.dtype.hasobject:
            try:
                data = pickle.dumps(x, protocol=5)
            except Exception:
                return ("ndarray-object", uuid.uuid4().hex)
            return ("ndarray", "object", x.shape, hashlib.md5(data, usedforsecurity=False).hexdigest())
        if isinstance(x, np.memmap) and getattr(x, "filename", None):
            import os

            path = str(x.filename)
            return ("memmap", path, os.path.getmtime(path), x.dtype.str, x.shape, x.strides, x.offset)
        data = np.ascontiguousarray(x).view("u1").data if x.size else b""
        return ("ndarray", x.dtype.str, x.shape, hashlib.md5(data, usedforsecurity=False).hexdigest())

    @normalize_token.register((np.generic, np.dtype))
    def _normalize_numpy_scalar(x: Any) -> Any:
        return (type(x).__name__, repr(x), str(getattr(x, "dtype", x)))

    @normalize_token.register(np.ufunc)
    def _normalize_ufunc(f: np.ufunc) -> Any:
        return ("ufunc", f.__name__)

    @normalize_token.register(np.random.RandomState)
    def _normalize_random_state(rs: np.random.RandomState) -> Any:
        state = rs.get_state()
        return ("RandomState", _normalize(list(state)))

    @normalize_token.register(np.random.Generator)
    def _normalize_generator(g: np.random.Generator) -> Any:
        return ("Generator", _normalize(g.bit_generator.state))


def _register_pandas() -> None:
    import numpy as np
    import pandas as pd

    normalize_token.dispatch(np.ndarray)  # make sure numpy's handlers are in

    def values_token(values: Any) -> Any:
        if isinstance(values, np.ndarray):
            return _normalize(values)
        if isinstance(values, pd.Categorical):  # its dtype's str() omits the categories
            return ("categorical", _normalize(values.dtype), _normalize(values.codes))
        try:
            arr = np.asarray(values, dtype=object)
            return ("ext", str(values.dtype), _normalize(arr))
        except Exception:
            return _normalize_object(values)

    @normalize_token.register(pd.Index)
    def _normalize_index(ix: pd.Index) -> Any:
        return ("Index", type(ix).__name__, ix.name, str(ix.dtype), values_token(ix.array))

    @normalize_token.register(pd.Series)
    def _normalize_series(s: pd.Series) -> Any:
        return ("Series", s.name, str(s.dtype), values_token(s.array), _normalize(s.index))

    @normalize_token.register(pd.DataFrame)
    def _normalize_frame(df: pd.DataFrame) -> Any:
        columns = [(_normalize(c), str(df[c].dtype) if not isinstance(df[c], pd.DataFrame) else "frame") for c in df.columns]
        blocks = [values_token(df.iloc[:, i].array) for i in range(df.shape[1])]
        return ("DataFrame", columns, blocks, _normalize(df.index))

    @normalize_token.register((pd.api.extensions.ExtensionDtype,))
    def _normalize_ext_dtype(dt: Any) -> Any:
        if isinstance(dt, pd.CategoricalDtype):
            categories = None if dt.categories is None else _normalize(dt.categories)
            return ("dtype", "category", categories, dt.ordered)
        return ("dtype", str(dt))

    @normalize_token.register((pd.Timestamp, pd.Timedelta, pd.Period, pd.Interval))
    def _normalize_pandas_scalar(x: Any) -> Any:
        return (type(x).__name__, repr(x))


normalize_token.register_lazy("numpy", _register_numpy)
normalize_token.register_lazy("pandas", _register_pandas)
