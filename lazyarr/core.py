"""The graph specification: what a lazyarr task graph is, and a reference evaluator.

A **graph** is a mapping from keys to computations::

    >>> from operator import add
    >>> dsk = {'x': 1, 'y': 2, 'z': (add, 'x', 'y')}
    >>> get(dsk, 'z')
    3

* A **key** is a ``str`` (or ``bytes``, ``int``, ``float``) or a tuple of those, conventionally
  ``(name, i, j, ...)`` for the blocks of a chunked collection.
* A **task** is a tuple whose first element is callable: ``(func, arg1, arg2, ...)``.
* An **argument** of a task is a key (replaced by that key's value), a literal, a list of
  arguments (each evaluated, recursively) or a nested task (evaluated first). A tuple whose first
  element is not callable is a literal tuple, left as it is. The graphs lazyarr's collections
  build use only forms that Dask and Ray read the same way, so they run there too (see
  ``docs/other-engines.md`` for the few hand-written shapes that differ).
* Any other **computation** is a literal value, or an alias: a value that is itself a key.

Everything here is iterative, so 100,000-long chains neither recurse to a crash nor hang.
This module knows nothing of collections or schedulers; they all build on it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CycleError",
    "Literal",
    "istask",
    "iskey",
    "ishashable",
    "get_dependencies",
    "get_deps",
    "reverse_dict",
    "toposort",
    "getcycle",
    "subs",
    "flatten",
    "execute_task",
    "get",
    "validate_keys",
]

_KEY_ATOMS = (str, bytes, int, float)
_KEY_ATOM_SET = frozenset(_KEY_ATOMS)


class CycleError(RuntimeError):
    """The graph has a cycle; ``.cycle`` lists the keys on it, first key repeated at the end."""

    def __init__(self, cycle: list):
        self.cycle = list(cycle)
        path = " -> ".join(repr(k) for k in self.cycle)
        super().__init__(f"the task graph has a cycle: {path}")


class Literal:
    """A task head returning its value untouched: ``(Literal(value),)`` evaluates to ``value``.

    Evaluation walks lists and tuples looking for keys and nested tasks; data held in a graph
    (a partition of a sequence, a container passed to ``delayed``) must not be walked: walking is
    slow, and an element that happens to look like a key or a task would be replaced.

    >>> execute_task((Literal(['x', (len, 'x')]),), {'x': 'abc'})
    ['x', (<built-in function len>, 'x')]
    """

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __call__(self) -> Any:
        return self.value

    def __reduce__(self) -> tuple:
        return (Literal, (self.value,))

    def __repr__(self) -> str:
        import reprlib

        return f"Literal({reprlib.repr(self.value)})"

    @property
    def __name__(self) -> str:  # read by funcname() for progress bars and graph drawings
        return "literal"

    def __lazyarr_tokenize__(self) -> Any:
        from .tokenize import tokenize

        return ("Literal", tokenize(self.value))


def istask(x: Any) -> bool:
    """Is ``x`` a runnable task, a tuple with a callable first element?

    >>> from operator import add
    >>> istask((add, 1, 2))
    True
    >>> istask(('not', 'callable'))
    False
    """
    return type(x) is tuple and bool(x) and callable(x[0])


def ishashable(x: Any) -> bool:
    """Can ``x`` be used as a dict key?

    >>> ishashable('a'), ishashable([1])
    (True, False)
    """
    try:
        hash(x)
        return True
    except TypeError:
        return False


def iskey(x: Any) -> bool:
    """Has ``x`` the form of a key: an atom (str, bytes, int, float) or a tuple of keys?

    >>> iskey('x'), iskey(('x', 0, 1)), iskey([1]), iskey((len, 1))
    (True, True, False, False)
    """
    typ = type(x)
    if typ is tuple:
        return all(iskey(part) for part in x)
    return typ in _KEY_ATOMS


def _refers(arg: Any, dsk: Mapping) -> bool:
    """Is ``arg`` (not a task, not a list) a reference to a key of ``dsk``?"""
    typ = type(arg)
    if typ in _KEY_ATOMS or typ is tuple:
        try:
            return arg in dsk
        except TypeError:
            return False
    return False


_NO_TASK = object()  # ``None`` is a valid computation (a literal), so it cannot mean "not given"


def get_dependencies(dsk: Mapping, key: Any = None, task: Any = _NO_TASK, as_list: bool = False):
    """The keys of ``dsk`` that a computation refers to.

    Give either ``key`` (look up ``dsk[key]``) or ``task`` (any computation).

    >>> from operator import add
    >>> dsk = {'x': 1, 'y': (add, 'x', 1), 'z': (sum, ['x', 'y'])}
    >>> sorted(get_dependencies(dsk, 'z'))
    ['x', 'y']
    >>> get_dependencies(dsk, task=(add, 'x', 10))
    {'x'}
    """
    if task is _NO_TASK:
        task = dsk[key]
    found: list = []
    stack = [task]
    while stack:
        arg = stack.pop()
        typ = type(arg)
        if typ is tuple and arg and callable(arg[0]):
            items = arg[1:]
        elif typ is list:
            items = arg
        elif typ is dict:
            items = arg.values()
        else:
            if _refers(arg, dsk):
                found.append(arg)
            continue
        # Settle plain keys and literals here; only containers go on the stack (this loop runs
        # for every task of every graph, so it is kept tight).
        for item in items:
            kind = type(item)
            if kind in _KEY_ATOM_SET:
                if item in dsk:
                    found.append(item)
            elif kind is tuple and not (item and callable(item[0])):
                try:
                    if item in dsk:
                        found.append(item)
                except TypeError:  # a literal tuple holding unhashables
                    pass
            elif kind is tuple or kind is list or kind is dict:
                stack.append(item)
    if as_list:
        return found
    return set(found)


def get_deps(dsk: Mapping) -> tuple[dict, dict]:
    """Dependencies and dependents of every key of ``dsk``.

    >>> from operator import add
    >>> deps, dependents = get_deps({'a': 1, 'b': (add, 'a', 1)})
    >>> deps
    {'a': set(), 'b': {'a'}}
    >>> dependents
    {'a': {'b'}, 'b': set()}
    """
    dependencies = {k: get_dependencies(dsk, task=v) for k, v in dsk.items()}
    return dependencies, reverse_dict(dependencies)


def reverse_dict(d: Mapping) -> dict:
    """Invert a mapping of key -> set of keys.

    >>> reverse_dict({'a': {'b'}, 'b': set()})
    {'a': set(), 'b': {'a'}}
    """
    result: dict = {k: set() for k in d}
    for k, vals in d.items():
        for v in vals:
            result.setdefault(v, set()).add(k)
    return result


def getcycle(dsk: Mapping, keys: Iterable | None = None, dependencies: Mapping | None = None) -> list:
    """A cycle among the keys reachable from ``keys`` (all keys by default), or ``[]``.

    >>> getcycle({'a': (len, 'b'), 'b': (len, 'a')})
    ['a', 'b', 'a']
    """
    if dependencies is None:
        dependencies = {k: get_dependencies(dsk, task=v) for k, v in dsk.items()}
    starts = list(dsk) if keys is None else list(keys)
    state: dict = {}  # key -> 1 while on the current path, 2 when finished
    for start in starts:
        if state.get(start) == 2:
            continue
        path: list = [start]
        iters = [iter(dependencies.get(start, ()))]
        state[start] = 1
        while iters:
            for dep in iters[-1]:
                mark = state.get(dep)
                if mark == 1:
                    return path[path.index(dep):] + [dep]
                if mark is None:
                    state[dep] = 1
                    path.append(dep)
                    iters.append(iter(dependencies.get(dep, ())))
                    break
            else:
                state[path.pop()] = 2
                iters.pop()
    return []


def toposort(dsk: Mapping, dependencies: Mapping | None = None) -> list:
    """The keys of ``dsk`` ordered so that every key comes after its dependencies.

    Raises :class:`CycleError`, naming the keys on the cycle, if there is none.

    >>> from operator import add
    >>> toposort({'c': (add, 'a', 'b'), 'a': 1, 'b': (add, 'a', 1)})
    ['a', 'b', 'c']
    """
    if dependencies is None:
        dependencies = {k: get_dependencies(dsk, task=v) for k, v in dsk.items()}
    waiting = {k: len(deps) for k, deps in dependencies.items()}
    dependents = reverse_dict(dependencies)
    ready = [k for k, n in waiting.items() if n == 0]
    ready.reverse()
    order = []
    while ready:
        key = ready.pop()
        order.append(key)
        for parent in dependents.get(key, ()):
            waiting[parent] -= 1
            if waiting[parent] == 0:
                ready.append(parent)
    if len(order) != len(dependencies):
        stuck = [k for k, n in waiting.items() if n > 0]
        raise CycleError(getcycle(dsk, stuck, dependencies) or stuck)
    return order


def subs(task: Any, key: Any, val: Any) -> Any:
    """Replace every reference to ``key`` in ``task`` by ``val``.

    >>> from operator import add
    >>> subs((add, 'x', 1), 'x', 'y')
    (<built-in function add>, 'y', 1)
    >>> subs([['x'], 'x', 'z'], 'x', 5)
    [[5], 5, 'z']
    """
    typ = type(task)
    if typ is tuple and task and callable(task[0]):
        return (task[0],) + tuple(subs(arg, key, val) for arg in task[1:])
    if typ is list:
        return [subs(arg, key, val) for arg in task]
    if typ is dict:
        return {k: subs(v, key, val) for k, v in task.items()}
    if typ is type(key):
        try:
            if task == key:
                return val
        except Exception:
            return task
    return task


def flatten(seq: Any, container: type = list):
    """Iterate over the leaves of nested ``container`` s.

    >>> list(flatten([1, [2, [3, 4]], 5]))
    [1, 2, 3, 4, 5]
    >>> list(flatten('x'))
    ['x']
    """
    if not isinstance(seq, container):
        yield seq
        return
    stack = [iter(seq)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, container):
                stack.append(iter(item))
                break
            yield item
        else:
            stack.pop()


def execute_task(task: Any, cache: Mapping) -> Any:
    """Evaluate one computation, reading the values of keys it refers to from ``cache``.

    >>> from operator import add
    >>> execute_task((add, 'x', (add, 1, 2)), {'x': 10})
    13
    >>> execute_task(['x', 2], {'x': 1})
    [1, 2]
    """
    typ = type(task)
    if typ is tuple:
        if task and callable(task[0]):
            func = task[0]
            return func(*[execute_task(arg, cache) for arg in task[1:]])
        try:
            if task in cache:
                return cache[task]
        except TypeError:  # a literal tuple holding unhashables cannot be a key
            pass
        return task
    if typ is list:
        return [execute_task(arg, cache) for arg in task]
    if typ is dict:
        return {k: execute_task(v, cache) for k, v in task.items()}
    if typ in _KEY_ATOMS:
        try:
            if task in cache:
                return cache[task]
        except TypeError:
            pass
    return task


def validate_keys(dsk: Mapping, keys: Any) -> list:
    """The flat list of requested keys, raising ``KeyError`` for any that ``dsk`` lacks.

    >>> validate_keys({'x': 1, 'y': 2}, ['x', ['y']])
    ['x', 'y']
    """
    flat = list(flatten(keys))
    for key in flat:
        try:
            present = key in dsk
        except TypeError:
            raise TypeError(f"{key!r} is not a valid key: keys are str, bytes, int, float or tuples of them")
        if not present:
            raise KeyError(f"key {key!r} is not in the task graph")
    return flat


def _reachable(dsk: Mapping, keys: list) -> dict:
    """Dependencies of every key needed for ``keys`` (an inline cull)."""
    dependencies: dict = {}
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key in dependencies:
            continue
        deps = get_dependencies(dsk, task=dsk[key])
        dependencies[key] = deps
        stack.extend(deps)  # keys seen already are skipped when popped
    return dependencies


def pack_results(keys: Any, results: Mapping) -> Any:
    """Arrange ``results`` in the nesting of ``keys``, lists becoming tuples.

    >>> pack_results(['a', ['b']], {'a': 1, 'b': 2})
    (1, (2,))
    """
    if isinstance(keys, list):
        return tuple(pack_results(k, results) for k in keys)
    return results[keys]


def get(dsk: Mapping, keys: Any) -> Any:
    """Evaluate ``keys`` of ``dsk`` one task at a time: the reference semantics of a graph.

    ``keys`` is one key or a nested list of keys; the result has the same nesting with tuples
    in place of lists, as with Dask.

    >>> from operator import add
    >>> dsk = {'x': 1, 'y': 2, 'z': (add, 'x', 'y'), 'w': (sum, ['x', 'y', 'z'])}
    >>> get(dsk, 'z')
    3
    >>> get(dsk, ['w', ['x', 'z']])
    (6, (1, 3))
    """
    flat = validate_keys(dsk, keys)
    dependencies = _reachable(dsk, flat)
    cache: dict = {}
    for key in toposort(dsk, dependencies):
        cache[key] = execute_task(dsk[key], cache)
    return pack_results(keys, cache)
