"""Static task ordering: a priority for every key that keeps memory low when followed.

The policy is a depth-first **post-order walk from the outputs**:

* the walk starts at the keys nothing depends on (the graph's outputs), in the order the
  dependency mapping lists them;
* from a key it first visits that key's dependencies, in the order they appear in the task's
  arguments, and only then numbers the key itself;
* a key reached a second time (a shared dependency) keeps its first, lower number.

Running tasks by increasing number therefore finishes each branch (a block loaded, mapped and
reduced) before the loading of the next block starts, so intermediates are released soon after
they are made and a wide reduction holds only about one branch per level at a time. The numbers
are a topological order: every key comes after all its dependencies. A single thread that runs
tasks in this order (the ``'sync'`` scheduler) is exactly a depth-first evaluator; parallel
schedulers take the lowest-numbered ready tasks first.

The walk is iterative (an explicit stack of argument iterators) and linear in the size of the
graph, so a 1,000,000-task graph or a 1,000,000-long chain is ordered in about a second and never
hits the recursion limit. A cycle raises :class:`lazyarr.core.CycleError` naming its keys.

The distributed runtime uses the same numbers as task priorities.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from .core import CycleError

__all__ = ["order", "order_keys", "ordered_dependencies"]


_ATOMS = frozenset({str, bytes, int, float})


_NOT_GIVEN: Any = object()
_OUTSIDE: Any = object()


def ordered_dependencies(dsk: Mapping, key: Any = None, task: Any = _NOT_GIVEN) -> list:
    """The dependencies of a computation without repeats, in the order its arguments name them.

    Give ``key`` (look up ``dsk[key]``) or ``task`` (any computation, ``None`` included). Same keys as
    :func:`lazyarr.core.get_dependencies`, but as a list in a guaranteed order.

    >>> from operator import add
    >>> ordered_dependencies({'a': 1, 'b': 2, 'c': (add, 'b', (add, 'a', 'b'))}, 'c')
    ['b', 'a']
    """
    if task is _NOT_GIVEN:
        task = dsk[key]
    if type(task) is tuple and task and callable(task[0]):
        found = []
        for arg in task[1:]:  # the common flat task: keys and literals only
            typ = type(arg)
            if typ in _ATOMS:
                if arg in dsk:
                    found.append(arg)
            elif typ is tuple or typ is list or typ is dict:
                break
        else:
            return list(dict.fromkeys(found)) if len(found) > 1 else found
    found = []
    stack = [iter((task,))]
    while stack:
        for arg in stack[-1]:
            typ = type(arg)
            if typ is tuple and arg and callable(arg[0]):
                stack.append(iter(arg[1:]))
                break
            if typ is list:
                stack.append(iter(arg))
                break
            if typ is dict:
                stack.append(iter(arg.values()))
                break
            if typ in _ATOMS or typ is tuple:
                try:
                    if arg in dsk:
                        found.append(arg)
                except TypeError:  # a literal tuple holding unhashables
                    pass
        else:
            stack.pop()
    return list(dict.fromkeys(found))


def order_keys(dependencies: Mapping[Hashable, Iterable], roots: Iterable | None = None) -> list:
    """All keys of ``dependencies`` in execution order (the post-order walk described above).

    ``dependencies`` maps each key to the keys it needs; needed keys that are not themselves
    in the mapping are taken as available already and left unnumbered. ``roots`` optionally
    says where to start the walk (default: every key that nothing depends on, in mapping
    order); keys not reached from the roots follow.

    >>> order_keys({'a': [], 'b': ['a'], 'c': [], 'd': ['c'], 'e': ['b', 'd']})
    ['a', 'b', 'c', 'd', 'e']
    """
    if roots is None:
        needed: set = set()
        for deps in dependencies.values():
            needed.update(deps)
        roots = [k for k in dependencies if k not in needed]
    result: list = []
    mark: dict = {}  # 1 while on the current path, 2 once numbered
    append = result.append
    for start in _starts(roots, dependencies):
        if start in mark:
            continue
        if start not in dependencies:
            continue
        mark[start] = 1
        path = [start]
        iters = [iter(dependencies[start])]
        while iters:
            for dep in iters[-1]:
                state = mark.get(dep)
                if state is None:
                    below = dependencies.get(dep, _OUTSIDE)
                    if below is _OUTSIDE:  # held elsewhere (e.g. a value already computed)
                        continue
                    if not below:  # a leaf: number it right away, no need to descend
                        mark[dep] = 2
                        append(dep)
                        continue
                    mark[dep] = 1
                    path.append(dep)
                    iters.append(iter(below))
                    break
                if state == 1:
                    raise CycleError(path[path.index(dep):] + [dep])
            else:
                iters.pop()
                key = path.pop()
                mark[key] = 2
                append(key)
    return result


def _starts(roots: Iterable, dependencies: Mapping) -> Iterable:
    """The requested roots, then every key (the walk skips those already numbered)."""
    yield from roots
    yield from dependencies


def order(dsk: Mapping, dependencies: Mapping | None = None) -> dict:
    """A priority for every key of ``dsk``: run lower numbers first to keep memory low.

    ``dependencies`` (key -> iterable of keys) may be given to save recomputing it; only its
    keys are ordered then.

    >>> from operator import add
    >>> dsk = {'a': 1, 'b': (add, 'a', 1), 'c': 2, 'd': (add, 'c', 1), 'e': (add, 'b', 'd')}
    >>> order(dsk)
    {'a': 0, 'b': 1, 'c': 2, 'd': 3, 'e': 4}
    """
    if dependencies is None:
        dependencies = {k: ordered_dependencies(dsk, k) for k in dsk}
    return {key: i for i, key in enumerate(order_keys(dependencies))}
