"""``delayed``: build task graphs from ordinary Python calls.

Wrapping a function with :func:`delayed` makes its calls lazy: they return :class:`Delayed`
objects that record the call, and arguments that are themselves ``Delayed`` (or any lazyarr
collection, also inside lists, tuples, sets and dicts) become references to their results::

    >>> def inc(x):
    ...     return x + 1
    >>> total = delayed(sum)([delayed(inc)(i) for i in range(8)])
    >>> total.compute()
    36

Building is linear in the number of calls: each ``Delayed`` holds only its own task and
references to the ``Delayed`` objects it depends on. The graph dict is put together once, by an
iterative walk, when it is needed (``__lazyarr_graph__``, i.e. on compute, persist, visualize).
"""
from __future__ import annotations

import functools
import operator
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .base import LazyarrMethodsMixin, collections_to_graph, is_lazyarr_collection
from .optimization import cull_and_fuse
from .tokenize import tokenize
from .utils import funcname
from .core import Literal as _Literal

__all__ = ["delayed", "Delayed", "DelayedLeaf", "DelayedAttr", "apply"]

_MISSING = object()
_CONTAINERS = (list, tuple, set, frozenset, dict)
_PLAIN = frozenset((int, float, str, bytes, bool, complex, type(None)))


def _unique_token() -> str:
    """128 random bits as hex: unique across calls, processes and machines (impure keys)."""
    return os.urandom(16).hex()


def apply(func: Callable, args: list, kwargs: dict | None = None) -> Any:
    """Call ``func(*args, **kwargs)``: the task form of a call with keyword arguments.

    >>> apply(max, [1, 5], {'key': lambda x: -x})
    1
    """
    return func(*args, **kwargs) if kwargs else func(*args)


class _MethodCall:
    """``_MethodCall(name)(obj, *args, **kwargs)`` calls ``obj.name(*args, **kwargs)``; it pickles."""

    __slots__ = ("method",)

    def __init__(self, method: str):
        self.method = method

    def __call__(self, obj: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(obj, self.method)(*args, **kwargs)

    def __reduce__(self) -> tuple:
        return (_MethodCall, (self.method,))

    def __repr__(self) -> str:
        return f"methodcall({self.method!r})"

    @property
    def __name__(self) -> str:
        return self.method


def _finalize(results: Any, finalize: Callable, extra: tuple) -> Any:
    return finalize(results, *extra)


def _first(results: Any) -> Any:
    return results[0]


def _to_task(arg: Any, traverse: bool, parents: list) -> Any:
    """The task form of an argument, appending the collections it depends on to ``parents``.

    Delayed values become their keys, other collections a finalize step, containers holding
    either are rebuilt by tasks; any other value is passed as it is (containers quoted, so that
    nothing inside them is mistaken for a key or a task).
    """
    typ = type(arg)
    if typ in _PLAIN:
        return arg
    if isinstance(arg, Delayed):
        parents.append(arg)
        return arg.key
    if is_lazyarr_collection(arg):
        wrapped = _from_collection(arg)
        parents.append(wrapped)
        return wrapped.key
    if typ not in _CONTAINERS:
        return arg
    if not traverse:
        return (_Literal(arg),)
    before = len(parents)
    if typ is dict:
        items = [[k, _to_task(v, True, parents)] for k, v in arg.items()]
        task: Any = (dict, items)
    else:
        items = [_to_task(item, True, parents) for item in arg]
        task = items if typ is list else (typ, items)
    if len(parents) == before:  # nothing lazy inside: keep the value itself, quoted
        return (_Literal(arg),)
    return task


def _from_collection(coll: Any) -> "Delayed":
    """A Delayed for the finished result of another collection (an Array, a Bag, ...)."""
    finalize, extra = coll.__lazyarr_postcompute__()
    keys = coll.__lazyarr_keys__()
    name = f"finalize-{tokenize(coll)}"
    task = (functools.partial(_finalize, finalize=finalize, extra=tuple(extra)), keys)
    return Delayed(name, {name: task}, dependencies=(coll,))


def _check_nout(nout: Any) -> int | None:
    if nout is None:
        return None
    if isinstance(nout, bool) or not isinstance(nout, int) or nout < 0:
        raise ValueError(f"nout must be None or an integer >= 0, not {nout!r}")
    return nout


def _call(func: Callable, prefix: str, args: tuple, kwargs: dict, pure: bool, nout: int | None,
          traverse: bool, func_parents: tuple = ()) -> "Delayed":
    """A Delayed for ``func(*args, **kwargs)``; ``func`` may be a key (then ``func_parents``)."""
    key = kwargs.pop("lazyarr_key_name", None)
    pure = kwargs.pop("lazyarr_pure", pure)
    if key is None:
        token = tokenize(func, args, kwargs, nout) if pure else _unique_token()
        key = f"{prefix}-{token}"
    parents: list = list(func_parents)
    task_args = [_to_task(a, traverse, parents) for a in args]
    if kwargs or func_parents:
        task_kwargs = _to_task(kwargs, traverse, parents) if kwargs else {}
        task = (apply, func, task_args, task_kwargs) if kwargs else (apply, func, task_args)
    else:
        task = (func, *task_args)
    return Delayed(key, {key: task}, length=nout, dependencies=tuple(parents))


class Delayed(LazyarrMethodsMixin):
    """A lazy value: the result of a task not yet run.

    ``Delayed(key, graph)`` wraps the value of ``key`` in ``graph``. Operators, attribute access,
    method calls, indexing and calls on a Delayed build new Delayed values; ``compute()`` runs
    the graph (default scheduler ``'threads'``), ``persist()`` keeps the result in memory.

    A Delayed cannot be used as a truth value, and has a ``len()`` and can be iterated over only
    when made with ``nout=``: those need the value, which is not known until computed.
    """

    __slots__ = ("_key", "_layer", "_dependencies", "_length")
    __lazyarr_scheduler__ = "threads"
    # numpy defers to our reflected operators (``array @ delayed``) instead of looping over us
    __array_ufunc__ = None
    __lazyarr_optimize__ = staticmethod(cull_and_fuse)

    def __init__(self, key: Any, dsk: Mapping, length: int | None = None, dependencies: tuple = ()):
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_layer", dsk)
        object.__setattr__(self, "_dependencies", dependencies)
        object.__setattr__(self, "_length", _check_nout(length))

    @property
    def key(self) -> Any:
        """The key of this value in its graph."""
        return self._key

    # -- the collection protocol ------------------------------------------------------------
    def __lazyarr_graph__(self) -> dict:
        """The whole graph behind this value, merged once by an iterative walk over the parents."""
        graph: dict = {}
        seen: set = set()
        stack: list = [self]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, Delayed):
                layer = node._own_layer()
                if len(layer) == 1:
                    graph.update(layer)
                elif id(layer) not in seen:  # values of one optimize() or persist() share a graph
                    seen.add(id(layer))
                    graph.update(layer)
                stack.extend(node._dependencies)
            else:  # another kind of collection, optimized by its own type's rules
                graph.update(collections_to_graph([node]))
        return graph

    def _own_layer(self) -> Mapping:
        return self._layer

    def __lazyarr_keys__(self) -> list:
        return [self.key]

    def __lazyarr_postcompute__(self) -> tuple:
        return _first, ()

    def __lazyarr_postpersist__(self) -> tuple:
        return _rebuild, (self.key, self._length)

    def __lazyarr_tokenize__(self) -> Any:
        return self.key

    # -- behaving like the value ---------------------------------------------------------------
    def __getattr__(self, attr: str) -> "DelayedAttr":
        if attr.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")
        return DelayedAttr(self, attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise TypeError(f"Delayed objects are immutable: cannot set attribute {attr!r}")

    def __call__(self, *args: Any, **kwargs: Any) -> "Delayed":
        return _call(self.key, "call", args, kwargs, False, None, True, func_parents=(self,))

    def __getitem__(self, index: Any) -> "Delayed":
        return _operator_call(operator.getitem, self, index)

    def __iter__(self) -> Iterator["Delayed"]:
        if self._length is None:
            raise TypeError(
                "a Delayed of unknown length cannot be iterated over; give nout= to delayed(...) "
                "to say how many values the call returns"
            )
        return iter([self[i] for i in range(self._length)])

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError(
                "len() of a Delayed is not known until it is computed; use delayed(len)(x) for a "
                "lazy length, or give nout= when the call returns a fixed number of values"
            )
        return self._length

    def __bool__(self) -> bool:
        raise TypeError(
            "the truth value of a Delayed is not known until it is computed: call .compute() "
            "first, or build the condition into a delayed function"
        )

    def __hash__(self) -> int:
        return hash(self.key)

    def __dir__(self) -> list:
        return sorted(set(dir(type(self))) | {"key"})

    def __repr__(self) -> str:
        return f"Delayed({self.key!r})"

    def __reduce__(self) -> tuple:
        return (_rebuild, (self.__lazyarr_graph__(), self.key, self._length))


def _rebuild(dsk: Mapping, key: Any, length: int | None) -> Delayed:
    return Delayed(key, dsk, length=length)


class DelayedLeaf(Delayed):
    """A function (or other callable) wrapped by :func:`delayed`: calling it builds a task.

    Its own key, used only when the function itself is an input, is made on first use.
    """

    __slots__ = ("_func", "_pure", "_nout", "_name", "_traverse")

    def __init__(self, func: Callable, pure: bool = False, nout: int | None = None, name: str | None = None,
                 traverse: bool = True):
        Delayed.__init__(self, None, {}, length=None)
        object.__setattr__(self, "_func", func)
        object.__setattr__(self, "_pure", bool(pure))
        object.__setattr__(self, "_nout", _check_nout(nout))
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_traverse", traverse)

    @property
    def key(self) -> Any:
        if self._key is None:
            object.__setattr__(self, "_key", f"{self._name or funcname(self._func)}-{tokenize(self._func)}")
        return self._key

    def _own_layer(self) -> Mapping:
        return {self.key: self._func}

    @property
    def __name__(self) -> str:
        return funcname(self._func)

    def __call__(self, *args: Any, **kwargs: Any) -> Delayed:
        prefix = self._name or funcname(self._func)
        return _call(self._func, prefix, args, kwargs, self._pure, self._nout, self._traverse)

    def __repr__(self) -> str:
        return f"delayed({funcname(self._func)})"

    def __reduce__(self) -> tuple:
        return (DelayedLeaf, (self._func, self._pure, self._nout, self._name, self._traverse))


class DelayedAttr(Delayed):
    """``obj.attr`` of a Delayed ``obj``; calling it calls the method ``obj.attr(...)``."""

    __slots__ = ("_obj", "_attr")

    def __init__(self, obj: Delayed, attr: str):
        key = f"getattr-{tokenize(obj, attr)}"
        Delayed.__init__(self, key, {key: (operator.attrgetter(attr), obj.key)}, dependencies=(obj,))
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_attr", attr)

    def __call__(self, *args: Any, **kwargs: Any) -> Delayed:
        return _call(_MethodCall(self._attr), self._attr, (self._obj,) + args, kwargs, False, None, True)


def _operator_call(op: Callable, *args: Any) -> Delayed:
    """An operator applied to Delayed values: pure, so the same expression gets the same key."""
    return _call(op, funcname(op), args, {}, True, None, True)


def _bind_operators() -> None:
    binary = ["add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "lshift", "rshift", "and",
              "xor", "or"]
    for name in binary:
        op = getattr(operator, f"{name}_" if name in ("and", "or") else name)

        def forward(self: Delayed, other: Any, op: Callable = op) -> Delayed:
            return _operator_call(op, self, other)

        def reflected(self: Delayed, other: Any, op: Callable = op) -> Delayed:
            return _operator_call(op, other, self)

        forward.__name__ = f"__{name}__"
        reflected.__name__ = f"__r{name}__"
        setattr(Delayed, forward.__name__, forward)
        setattr(Delayed, reflected.__name__, reflected)
    for name in ["eq", "ne", "lt", "le", "gt", "ge"]:
        op = getattr(operator, name)

        def compare(self: Delayed, other: Any, op: Callable = op) -> Delayed:
            return _operator_call(op, self, other)

        compare.__name__ = f"__{name}__"
        setattr(Delayed, compare.__name__, compare)
    for name, op in [("neg", operator.neg), ("pos", operator.pos), ("invert", operator.invert), ("abs", abs)]:

        def unary(self: Delayed, op: Callable = op) -> Delayed:
            return _operator_call(op, self)

        unary.__name__ = f"__{name}__"
        setattr(Delayed, unary.__name__, unary)


_bind_operators()


def delayed(obj: Any = _MISSING, name: str | None = None, pure: bool | None = None, nout: int | None = None,
            traverse: bool = True) -> Any:
    """Make a function's calls lazy, or wrap a value as a :class:`Delayed`.

    * ``delayed(func)`` (or ``@delayed``) returns a wrapper whose calls build tasks.
      ``pure=True`` names each call by a hash of the function and its arguments, so repeating a
      call reuses the result; the default names every call uniquely (for functions with side
      effects or randomness). ``nout=n`` says the call returns ``n`` values, so the result can
      be unpacked. ``name=`` replaces the function's name as the prefix of the call keys; a
      single call takes an exact key with the keyword ``lazyarr_key_name=``.
    * ``delayed(value)`` wraps a value; containers holding Delayed values or collections become a
      task that builds the container from their results (unless ``traverse=False``).
      ``name=`` gives the exact key.

    >>> @delayed(pure=True)
    ... def add(a, b):
    ...     return a + b
    >>> x = add(1, 2)
    >>> x.key == add(1, 2).key
    True
    >>> (x * 10).compute()
    30
    >>> q, r = delayed(divmod, nout=2)(17, 5)
    >>> (q.compute(), r.compute())
    (3, 2)
    >>> delayed({'a': x, 'b': [x, 1]}).compute()
    {'a': 3, 'b': [3, 1]}
    """
    if obj is _MISSING:
        return lambda func: delayed(func, name=name, pure=pure, nout=nout, traverse=traverse)
    if isinstance(obj, Delayed):
        return obj
    if is_lazyarr_collection(obj):
        return _from_collection(obj)
    if callable(obj):
        return DelayedLeaf(obj, pure=bool(pure), nout=nout, name=name, traverse=traverse)
    parents: list = []
    task = _to_task(obj, traverse, parents)
    if name is None:
        token = tokenize(obj) if pure else _unique_token()
        name = f"{type(obj).__name__}-{token}"
    return Delayed(name, {name: task}, length=_check_nout(nout), dependencies=tuple(parents))
