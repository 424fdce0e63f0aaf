"""Callables the client wraps user functions in, so that they fit the task spec of :mod:`lazyarr.core`.

* :class:`SubmitCall` — ``client.submit(func, *args, **kwargs)`` becomes the task
  ``(SubmitCall(func, args, kwargs), dep_key_0, dep_key_1, ...)``: futures inside ``args`` and
  ``kwargs`` (at any depth of lists, tuples, sets and dicts) are replaced by :class:`Ref` markers
  and the referenced keys become the task's arguments, so the worker passes their values in.
  Every other argument reaches ``func`` exactly as given (a tuple that looks like a task is not
  run, a string that looks like a key is not replaced).
* :class:`Finalize` — the last step of ``client.compute(collection)``: the collection's
  ``finalize(results, *extra)`` run on a worker.

They live in their own small module because workers unpickle them.
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["Ref", "SubmitCall", "Finalize", "replace_refs"]


class Ref:
    """Placeholder for the ``index``-th dependency value of a :class:`SubmitCall`."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index

    def __reduce__(self) -> Any:
        return (Ref, (self.index,))

    def __repr__(self) -> str:
        return f"Ref({self.index})"


def replace_refs(obj: Any, values: tuple) -> Any:
    """``obj`` with every :class:`Ref` replaced by its value.

    >>> replace_refs([Ref(0), {'a': (Ref(1), 2)}], ('x', 'y'))
    ['x', {'a': ('y', 2)}]
    """
    typ = type(obj)
    if typ is Ref:
        return values[obj.index]
    if typ is list:
        return [replace_refs(x, values) for x in obj]
    if typ is tuple:
        return tuple(replace_refs(x, values) for x in obj)
    if typ is dict:
        return {k: replace_refs(v, values) for k, v in obj.items()}
    if typ is set or typ is frozenset:
        return typ(replace_refs(x, values) for x in obj)
    return obj


class SubmitCall:
    """``func(*args, **kwargs)`` with :class:`Ref` markers filled from the call's arguments.

    >>> SubmitCall(max, ([Ref(0), 5],), {})(7)
    7
    """

    __slots__ = ("func", "args", "kwargs", "has_refs")

    def __init__(self, func: Callable, args: tuple, kwargs: dict, has_refs: bool = True):
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.has_refs = has_refs

    def __call__(self, *values: Any) -> Any:
        if not self.has_refs:
            return self.func(*self.args, **self.kwargs)
        return self.func(*replace_refs(self.args, values), **replace_refs(self.kwargs, values))

    def __reduce__(self) -> Any:
        return (SubmitCall, (self.func, self.args, self.kwargs, self.has_refs))

    def __repr__(self) -> str:
        return f"SubmitCall({getattr(self.func, '__name__', self.func)!r})"


class Finalize:
    """``finalize(results, *extra)``: turns a collection's computed blocks into its result."""

    __slots__ = ("finalize", "extra")

    def __init__(self, finalize: Callable, extra: tuple):
        self.finalize = finalize
        self.extra = tuple(extra)

    def __call__(self, results: Any) -> Any:
        return self.finalize(results, *self.extra)

    def __reduce__(self) -> Any:
        return (Finalize, (self.finalize, self.extra))
