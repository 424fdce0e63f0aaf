"""Graph optimizations: cull, fuse, inline. They know the graph spec only, never collections.

* :func:`cull` keeps only what the requested keys need.
* :func:`fuse` merges linear chains (and, with ``max_width`` > 1, small exclusive trees) into one
  task each. The fused task keeps the chain's **output key**; intermediate keys are dropped from
  the graph (with ``rename_keys=True`` the task takes a combined name and the output key stays as
  an alias of it). A fused task is flat, ``(Chain(steps), *input_keys)``: the chain runs its steps
  in order with a local cache, so a 100,000-long chain neither nests nor recurses.
* :func:`inline` substitutes constants (and chosen keys) into the tasks that use them;
  :func:`inline_functions` does so for tasks that only call cheap functions.

Every function here leaves the results of the keys you ask for unchanged.

>>> from operator import add
>>> dsk = {'a': 1, 'b': (add, 'a', 1), 'c': (add, 'b', 1), 'unused': (add, 'a', 10)}
>>> culled, deps = cull(dsk, 'c')
>>> sorted(culled)
['a', 'b', 'c']
>>> fused, deps = fuse(culled, keys=['c'])
>>> sorted(fused)
['c']
>>> from lazyarr.core import get
>>> get(fused, 'c')
3
"""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Callable

from . import config
from .core import (
    _reachable,
    execute_task,
    flatten,
    get_dependencies,
    ishashable,
    istask,
    reverse_dict,
    subs,
    toposort,
    validate_keys,
)
from .tokenize import tokenize
from .utils import funcname, key_split

__all__ = ["Chain", "cull", "fuse", "inline", "inline_functions", "functions_of", "cull_and_fuse", "is_remote_data"]


class Chain:
    """A callable that evaluates a fused group of tasks in order, iteratively.

    ``steps`` is a sequence of ``(key, computation)`` in dependency order; ``inputs`` names the
    keys from outside the group whose values the chain is called with. ``release[i]`` lists the
    keys no longer needed once step ``i`` ran, so a long chain holds one intermediate at a time.
    The value of the last step is returned.

    >>> from operator import add
    >>> chain = Chain((('b', (add, 'a', 1)), ('c', (add, 'b', 10))), inputs=('a',))
    >>> chain(1)
    12
    >>> from lazyarr.core import get
    >>> get({'a': 1, 'c': (chain, 'a')}, 'c')
    12
    """

    __slots__ = ("keys", "tasks", "inputs", "release", "_name")

    def __init__(self, steps: Iterable = (), inputs: Iterable = (), release: Iterable | None = None):
        steps = tuple(steps)
        self._set(tuple(k for k, _ in steps), tuple(t for _, t in steps), tuple(inputs),
                  None if release is None else tuple(release))

    def _set(self, keys: tuple, tasks: tuple, inputs: tuple, release: tuple | None) -> None:
        if not keys:
            raise ValueError("a Chain needs at least one step")
        if release is not None and len(release) != len(keys):
            raise ValueError(f"release has {len(release)} entries for {len(keys)} steps")
        self.keys, self.tasks, self.inputs, self.release = keys, tasks, inputs, release
        self._name = None

    @property
    def steps(self) -> tuple:
        """The ``(key, computation)`` pairs, in the order they run."""
        return tuple(zip(self.keys, self.tasks))

    @property
    def __name__(self) -> str:
        """A readable name from the functions called, e.g. ``'load-inc-add'`` (for labels)."""
        if self._name is None:
            self._name = _chain_name(self.tasks)
        return self._name

    def __call__(self, *values: Any) -> Any:
        if len(values) != len(self.inputs):
            raise TypeError(f"{self!r} takes {len(self.inputs)} input values, got {len(values)}")
        cache = dict(zip(self.inputs, values))
        if self.release is None:
            for key, task in zip(self.keys, self.tasks):
                cache[key] = execute_task(task, cache)
        else:
            for key, task, done in zip(self.keys, self.tasks, self.release):
                cache[key] = execute_task(task, cache)
                for finished in done:
                    del cache[finished]
        return cache[self.keys[-1]]

    def __reduce__(self) -> tuple:
        return (_rebuild_chain, (self.keys, self.tasks, self.inputs, self.release))

    def __repr__(self) -> str:
        return f"Chain<{self.__name__}, {len(self.keys)} steps>"


def _rebuild_chain(keys: tuple, tasks: tuple, inputs: tuple, release: tuple | None) -> Chain:
    chain = Chain.__new__(Chain)
    chain._set(keys, tasks, inputs, release)
    return chain


def _chain_name(tasks: tuple) -> str:
    def name(task: Any) -> str:
        return funcname(task[0]) if istask(task) else "value"

    if len(tasks) <= 4:
        return "-".join(name(task) for task in tasks)
    return "-".join([name(tasks[0]), name(tasks[1]), "...", name(tasks[-1])])


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while building large graphs.

    These passes allocate one small container per task and free none; the collector would
    otherwise rescan the whole (cycle-free) graph many times, which costs more than the pass.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _key_set(keys: Any) -> set:
    """The flat set of keys in ``keys`` (one key, or nested lists of keys); empty for None."""
    if keys is None:
        return set()
    return set(flatten(keys))


def cull(dsk: Mapping, keys: Any) -> tuple[dict, dict]:
    """Only the tasks needed to compute ``keys`` (one key or nested lists of keys).

    Returns ``(culled_graph, dependencies)``, the second mapping each kept key to the set of keys
    it depends on, ready to hand to :func:`fuse`. A key missing from ``dsk`` raises ``KeyError``.

    >>> from operator import add
    >>> culled, deps = cull({'x': 1, 'y': (add, 'x', 1), 'z': 5}, ['y'])
    >>> culled == {'x': 1, 'y': (add, 'x', 1)}, deps == {'x': set(), 'y': {'x'}}
    (True, True)
    """
    flat = validate_keys(dsk, keys)
    with _gc_paused():
        dependencies = _reachable(dsk, flat)
        return {k: dsk[k] for k in dependencies}, dependencies


def _fuse_settings(max_width: int | None, max_length: int | None) -> tuple[int, float]:
    width = config.get("optimization.fuse.max-width", 1) if max_width is None else max_width
    length = config.get("optimization.fuse.max-length", None) if max_length is None else max_length
    width = 1 if width is None else width
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"fuse max_width must be an integer >= 1, not {width!r}")
    if length is None:
        return width, float("inf")
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise ValueError(f"fuse max_length must be an integer >= 1 or None, not {length!r}")
    return width, length


_MANY = object()  # marks a key with more than one dependent


def is_remote_data(value: Any) -> bool:
    """Is a graph value a handle to data held elsewhere, such as a distributed future?

    Such keys stay in the graph, where the distributed runtime finds and resolves them; hidden
    inside a fused chain they would reach the task as the handle instead of the data.

    >>> is_remote_data([1, 2]), is_remote_data(3)
    (False, False)
    """
    typ = type(value)
    return typ is not list and typ is not dict and typ is not str and callable(getattr(typ, "result", None)) \
        and hasattr(value, "key")


def fuse(dsk: Mapping, keys: Any = None, dependencies: Mapping | None = None, max_width: int | None = None,
         max_length: int | None = None, rename_keys: bool = False) -> tuple[dict, dict]:
    """Merge chains of tasks into single flat tasks; returns ``(fused_graph, dependencies)``.

    A task is absorbed into its dependent when that dependent is its only one, it is not in
    ``keys`` (requested keys always stay in the graph) and the dependent can absorb *all* of its
    dependencies. With ``max_width=1`` (the default, ``optimization.fuse.max-width``) that means
    linear chains only, so no parallelism is lost; a larger ``max_width`` also fuses trees with up
    to that many leaves. ``max_length`` (``optimization.fuse.max-length``, default unlimited) cuts
    long chains into fused segments of at most that many tasks.

    Keys holding handles to remote data (distributed futures: objects with ``key`` and
    ``result()``) are never absorbed, so the runtime still sees them.

    The fused task sits under the chain's last (output) key; the intermediate keys disappear.
    With ``rename_keys=True`` the fused task is stored under a combined name such as
    ``'load-inc-add-<token>'`` and the output key becomes an alias of it.

    >>> from operator import add
    >>> dsk = {'a': 1, 'b': (add, 'a', 1), 'c': (add, 'b', 1), 'd': (add, 'c', 1)}
    >>> fused, deps = fuse(dsk, keys=['d'])
    >>> sorted(fused), deps
    (['d'], {'d': set()})
    >>> fused['d']
    (Chain<value-add-add-add, 4 steps>,)
    >>> fused, deps = fuse(dsk, keys=['d'], max_length=2)
    >>> sorted(fused), deps
    (['b', 'd'], {'b': set(), 'd': {'b'}})
    """
    width_limit, length_limit = _fuse_settings(max_width, max_length)
    with _gc_paused():
        return _fuse(dsk, _key_set(keys), dependencies, width_limit, length_limit, rename_keys)


def _fuse(dsk: Mapping, protected: set, dependencies: Mapping | None, width_limit: int, length_limit: float,
          rename_keys: bool) -> tuple[dict, dict]:
    if dependencies is None:
        dependencies = {k: get_dependencies(dsk, task=v) for k, v in dsk.items()}

    # parent_of[k]: k's only dependent; _MANY when it has several or must stay (requested).
    parent_of: dict = {}
    for parent, deps in dependencies.items():
        for child in deps:
            parent_of[child] = _MANY if child in parent_of else parent
    for key in protected:
        parent_of[key] = _MANY
    absorbing = set()  # keys whose dependencies may all be fused into them
    for parent, deps in dependencies.items():
        if 0 < len(deps) <= width_limit:
            for child in deps:
                if parent_of[child] != parent:
                    break
                value = dsk.get(child, _MANY)
                if value is _MANY or (type(value) is not tuple and is_remote_data(value)):
                    break
            else:
                absorbing.add(parent)
    if not absorbing:
        return dict(dsk), dict(dependencies)

    fused = dict(dsk)
    new_deps = dict(dependencies)
    for top in absorbing:
        parent = parent_of.get(top)
        if parent is not None and parent is not _MANY and parent in absorbing:
            continue  # not a top: its dependent absorbs it (or decides not to) from above
        for members, merged in _group_tree(top, dependencies, absorbing, width_limit, length_limit):
            if len(members) > 1:
                _emit(members, merged, dsk, dependencies, fused, new_deps, rename_keys)
    return fused, new_deps


def _group_tree(top: Any, dependencies: Mapping, absorbing: set, width_limit: int, length_limit: float) -> list:
    """Split the absorbable tree below ``top`` into groups, bottom up, respecting the limits.

    Returns ``(members, merged)`` pairs: the group's keys in execution order (output last) and,
    for each, whether its dependencies were merged into the group (else they are its inputs).
    """
    preorder = []
    stack = [top]
    while stack:
        key = stack.pop()
        preorder.append(key)
        if key in absorbing:
            stack.extend(dependencies[key])
    done: list = []
    open_groups: dict = {}  # key -> [members, merged, width] of groups still growing
    for key in reversed(preorder):  # every key after all the keys below it
        deps = dependencies[key]
        if key not in absorbing:
            open_groups[key] = [[key], [False], 1]
            continue
        if len(deps) == 1:  # the common case, a link of a linear chain
            for child in deps:
                group = open_groups.pop(child)
            if len(group[0]) < length_limit:
                group[0].append(key)
                group[1].append(True)
                open_groups[key] = group
            else:
                done.append(group)
                open_groups[key] = [[key], [False], 1]
            continue
        children = [open_groups.pop(c) for c in deps]
        width = sum(g[2] for g in children)
        if width <= width_limit and 1 + sum(len(g[0]) for g in children) <= length_limit:
            group = children[0]
            for more in children[1:]:
                group[0].extend(more[0])
                group[1].extend(more[1])
            group[0].append(key)
            group[1].append(True)
            group[2] = width
            open_groups[key] = group
        else:
            done.extend(children)
            open_groups[key] = [[key], [False], 1]
    done.append(open_groups.pop(top))
    return [(members, merged) for members, merged, _ in done]


def _emit(members: list, merged: list, dsk: Mapping, dependencies: Mapping, fused: dict, new_deps: dict,
          rename: bool) -> None:
    """Put the group ``members`` (output last) into ``fused`` as one flat Chain task."""
    inputs: list = []
    release: list = []
    for key, inside in zip(members, merged):
        deps = dependencies[key]
        if inside:  # every member has one dependent, so this was the last use of these
            release.append(tuple(deps))
        else:
            release.append(())
            inputs.extend(deps)
    if len(inputs) > 1:
        inputs = list(dict.fromkeys(inputs))
    for key in members:
        del fused[key]
        del new_deps[key]
    output = members[-1]
    chain = _rebuild_chain(tuple(members), tuple(map(dsk.__getitem__, members)), tuple(inputs), tuple(release))
    task = (chain,) + tuple(inputs)
    if not rename:
        fused[output] = task
        new_deps[output] = set(inputs)
        return
    name = _fused_name(members)
    fused[name] = task
    new_deps[name] = set(inputs)
    fused[output] = name
    new_deps[output] = {name}


def _fused_name(members: list) -> Any:
    parts: list = []
    for key in members:
        part = key_split(key)
        if part not in parts:
            parts.append(part)
    if len(parts) > 3:
        parts = parts[:2] + [parts[-1]]
    name = "-".join(parts) + "-" + tokenize(members)
    output = members[-1]
    return (name,) + output[1:] if type(output) is tuple else name


def inline(dsk: Mapping, keys: Any = None, inline_constants: bool = True, dependencies: Mapping | None = None,
           output: Any = None) -> dict:
    """Substitute the computations of ``keys`` into the tasks that use them, and drop those keys.

    With ``inline_constants`` (default) keys holding plain values or aliases are inlined too.
    Keys in ``output`` are substituted into their dependents but stay in the graph, so they can
    still be requested.

    >>> from operator import add
    >>> dsk = {'x': 1, 'y': (add, 'x', 1), 'z': (add, 'y', 'y')}
    >>> inline(dsk) == {'y': (add, 1, 1), 'z': (add, 'y', 'y')}
    True
    >>> inline(dsk, keys=['y']) == {'z': (add, (add, 1, 1), (add, 1, 1))}
    True
    >>> sorted(inline(dsk, output=['x']))
    ['x', 'y', 'z']
    """
    keep = _key_set(output)
    if dependencies is None:
        dependencies = {k: get_dependencies(dsk, task=v) for k, v in dsk.items()}
    targets = {k for k in _key_set(keys) if k in dsk}
    if inline_constants:
        targets.update(
            k for k, v in dsk.items()
            if (ishashable(v) and not istask(v) and v in dsk) or (not dependencies[k] and not istask(v))
        )
    if not targets:
        return dict(dsk)
    order = toposort({k: dsk[k] for k in targets}, {k: dependencies[k] & targets for k in targets})
    replacement: dict = {}
    for key in order:
        replacement[key] = _substitute(dsk[key], dependencies[key] & targets, replacement)
    result = {}
    for key, task in dsk.items():
        if key in targets and key not in keep:
            continue
        result[key] = replacement[key] if key in targets else _substitute(task, dependencies[key] & targets, replacement)
    return result


def _substitute(task: Any, keys: Iterable, replacement: Mapping) -> Any:
    for key in keys:
        task = subs(task, key, replacement[key])
    return task


def functions_of(task: Any) -> set:
    """Every callable a computation calls, partials unwrapped, nested tasks included.

    >>> from operator import add, neg
    >>> functions_of((add, (neg, 'x'), [(len, 'y')])) == {add, neg, len}
    True
    """
    found: set = set()
    stack = [task]
    while stack:
        item = stack.pop()
        typ = type(item)
        if typ is tuple and item and callable(item[0]):
            func = item[0]
            while hasattr(func, "func") and hasattr(func, "keywords"):  # functools.partial
                func = func.func
            found.add(func)
            stack.extend(item[1:])
        elif typ is list:
            stack.extend(item)
        elif typ is dict:
            stack.extend(item.values())
    return found


def inline_functions(dsk: Mapping, output: Any, fast_functions: Iterable[Callable] | None = None,
                     inline_constants: bool = False, dependencies: Mapping | None = None) -> dict:
    """Inline every task that only calls ``fast_functions`` into its dependents.

    Cheap tasks (``getitem``, ``len``, ...) then run inside the tasks that need them instead of
    costing a scheduler round trip each. Keys in ``output`` and keys nothing depends on stay.

    >>> from operator import add, neg
    >>> dsk = {'x': 1, 'y': (neg, 'x'), 'z': (add, 'y', 10)}
    >>> inline_functions(dsk, ['z'], fast_functions=[neg]) == {'x': 1, 'z': (add, (neg, 'x'), 10)}
    True
    """
    if not fast_functions:
        return dict(dsk)
    keep = _key_set(output)
    fast = set(fast_functions)
    if dependencies is None:
        dependencies = {k: get_dependencies(dsk, task=v) for k, v in dsk.items()}
    dependents = reverse_dict(dependencies)

    def cheap(task: Any) -> bool:
        try:
            return functions_of(task) <= fast
        except TypeError:  # an unhashable callable cannot be among them
            return False

    targets = [k for k, v in dsk.items() if istask(v) and dependents[k] and k not in keep and cheap(v)]
    if not targets:
        return dict(dsk)
    return inline(dsk, targets, inline_constants=inline_constants, dependencies=dependencies)


def cull_and_fuse(dsk: Mapping, keys: Any, **kwargs: Any) -> dict:
    """The default optimization of a collection: cull to ``keys``, then fuse linear chains.

    Fusing follows ``optimization.fuse.active`` (and ``.max-width``/``.max-length``) unless
    ``fuse=True/False`` is given. Other keyword arguments are accepted and ignored, because
    :func:`lazyarr.optimize` passes its options to the optimizer of every collection type.

    >>> from operator import add
    >>> dsk = {'a': 1, 'b': (add, 'a', 1), 'c': (add, 'b', 1), 'other': 0}
    >>> sorted(cull_and_fuse(dsk, ['c']))
    ['c']
    >>> sorted(cull_and_fuse(dsk, ['c'], fuse=False))
    ['a', 'b', 'c']
    """
    culled, dependencies = cull(dsk, keys)
    active = kwargs.get("fuse")
    if active is None:
        active = config.get("optimization.fuse.active", True)
    if not active:
        return culled
    fused, _ = fuse(culled, keys, dependencies)
    return fused
