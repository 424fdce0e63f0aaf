"""Layered task graphs for arrays: one layer per operation, materialised only when computed.

Building an array expression must cost O(1) per operation, not O(number of blocks): every
operation adds one **layer** (a mapping of its own block keys to tasks) and records which layers
it reads. :class:`LayeredGraph` is the read-only union of those layers; it is a ``Mapping`` of
keys to tasks like any graph in :mod:`lazyarr.core`, so schedulers and users can treat it as a
dict, while the array optimizer works on whole layers (cull, blockwise fusion) and materialises
each surviving task exactly once.

Layer kinds:

* a plain ``dict`` (anything materialised);
* :class:`Blockwise`: the symbolic description ``out[i, j] = func(a[i, j], b[j], ...)``, whose
  tasks are generated on demand and which the optimizer fuses with its neighbours;
* :class:`BlockLayer`: a function from block index to task (tree reductions, carries, ...).

To add an operation, build its layer and call ``LayeredGraph.from_collections(name, layer,
dependencies=[input arrays])``, then ``Array(graph, name, chunks, dtype)``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import product
from typing import Any

from ..core import get_dependencies
from ..core import Literal

__all__ = [
    "LayeredGraph",
    "Blockwise",
    "BlockLayer",
    "Fused",
    "Literal",
    "quote",
]


_NEEDS_QUOTE = (tuple, list, dict, str, bytes, set)


def quote(value: Any) -> Any:
    """``value`` as a task argument that evaluates to itself (containers and strings are wrapped).

    >>> quote(3)
    3
    >>> quote((1, 2))
    (Literal((1, 2)),)
    """
    if isinstance(value, _NEEDS_QUOTE):
        return (Literal(value),)
    return value


class Fused:
    """A callable that runs a fixed sequence of function calls: the body of fused blockwise tasks.

    ``steps`` is a tuple of ``(func, refs)``; each ref is ``(0, i)`` for the i-th positional
    input, ``(1, j)`` for the result of step ``j`` or ``(2, value)`` for a constant. The last
    step's result is returned. Picklable whenever its functions are.

    >>> from operator import add, mul
    >>> f = Fused(((add, ((0, 0), (2, 1))), (mul, ((1, 0), (2, 2)))))
    >>> f(5)
    12
    """

    __slots__ = ("steps",)

    def __init__(self, steps: tuple):
        self.steps = tuple(steps)

    def __call__(self, *inputs: Any) -> Any:
        results: list = []
        for func, refs in self.steps:
            args = [inputs[v] if kind == 0 else results[v] if kind == 1 else v for kind, v in refs]
            results.append(func(*args))
        return results[-1]

    def __reduce__(self):
        return (Fused, (self.steps,))

    def __repr__(self) -> str:
        from ..utils import funcname

        return "Fused(" + " -> ".join(funcname(f) for f, _ in self.steps) + ")"


# --------------------------------------------------------------------------------------------
# Blockwise layers
# --------------------------------------------------------------------------------------------

class _BlockKeys(Mapping):
    """A graph layer whose keys are ``(name, i, j, ...)`` over ``numblocks``; subclasses give
    the task of block ``idx`` with ``_task(idx)``. Layers compare by identity (they are large)."""

    __slots__ = ("name", "numblocks", "_len")

    def _set_blocks(self, name: str, numblocks: Iterable) -> None:
        self.name = name
        self.numblocks = tuple(int(n) for n in numblocks)
        n = 1
        for b in self.numblocks:
            n *= b
        self._len = n

    def _task(self, idx: tuple) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator:
        name = self.name
        for idx in product(*map(range, self.numblocks)):
            yield (name,) + idx

    def __contains__(self, key: Any) -> bool:
        if type(key) is not tuple or len(key) != len(self.numblocks) + 1 or key[0] != self.name:
            return False
        for i, n in zip(key[1:], self.numblocks):  # a plain loop: this runs for every key looked up
            if type(i) is not int or not 0 <= i < n:
                return False
        return True

    def __getitem__(self, key: Any) -> Any:
        if key not in self:
            raise KeyError(key)
        return self._task(key[1:])

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: Any) -> bool:
        return self is other


class Blockwise(_BlockKeys):
    """Symbolic layer ``out[idx] = func(*args(idx))`` over the blocks of an output array.

    ``out_ind`` names the output dimensions (a tuple of hashable index labels) and ``numblocks``
    gives their block counts. Each entry of ``args`` is one of

    * ``('key', name, ind, nblocks)``: the block of array ``name`` at the labels ``ind``; a
      dimension with a single block is broadcast (always block 0); labels that are not in
      ``out_ind`` are *contracted*: the argument becomes a (nested) list of the blocks along them;
    * ``('key', name, None, None)``: the single graph key ``name`` itself;
    * ``('index', table, ind)``: the per-block literal ``table[(i, j, ...)]`` (e.g. the block's
      shape or a seed), indexed by the labels ``ind``;
    * ``('lit', value)``: the same literal for every block.
    """

    __slots__ = ("out_ind", "func", "args", "_dims")

    def __init__(self, name: str, out_ind: tuple, numblocks: tuple, func: Callable, args: list):
        self._set_blocks(name, numblocks)
        self.out_ind = tuple(out_ind)
        if len(self.out_ind) != len(self.numblocks):
            raise ValueError(f"out_ind {self.out_ind} and numblocks {self.numblocks} differ in length")
        self.func = func
        self.args = list(args)
        dims = dict(zip(self.out_ind, self.numblocks))
        for arg in self.args:
            if arg[0] == "key" and arg[2] is not None:
                for label, n in zip(arg[2], arg[3]):
                    if label in dims:
                        if n != 1 and n != dims[label]:
                            raise ValueError(
                                f"blockwise input {arg[1]!r} has {n} blocks along index {label!r} "
                                f"but the output has {dims[label]}"
                            )
                    else:
                        dims[label] = n
        self._dims = dims

    def _task(self, idx: tuple) -> Any:
        return self.task(idx)

    # -- tasks -----------------------------------------------------------------------------
    def contracted(self) -> list:
        """Labels read by some input but not in the output."""
        return [label for label in self._dims if label not in self.out_ind]

    def _arg_value(self, arg: tuple, where: dict) -> Any:
        kind = arg[0]
        if kind == "key":
            name, ind, nblocks = arg[1], arg[2], arg[3]
            if ind is None:
                return name
            return self._key_arg(name, ind, nblocks, where)
        if kind == "index":
            table, ind = arg[1], arg[2]
            return quote(table[tuple(where[label] for label in ind)])
        return quote(arg[1])

    def _key_arg(self, name: str, ind: tuple, nblocks: tuple, where: dict) -> Any:
        free = [label for label in ind if label not in where]
        if not free:
            return (name,) + tuple(0 if n == 1 else where[label] for label, n in zip(ind, nblocks))
        label = free[0]
        pos = ind.index(label)
        out = []
        for i in range(nblocks[pos]):
            inner = dict(where)
            inner[label] = i
            out.append(self._key_arg(name, ind, nblocks, inner))
        return out

    def task(self, idx: tuple) -> tuple:
        """The task of the output block at ``idx``."""
        where = dict(zip(self.out_ind, idx))
        return (self.func,) + tuple(self._arg_value(arg, where) for arg in self.args)

    def materialize(self) -> dict:
        """All tasks of the layer as a dict (the fast path of :meth:`task` for every block)."""
        name, func = self.name, self.func
        out_pos = {label: p for p, label in enumerate(self.out_ind)}
        contracted = bool(self.contracted())
        makers: list = []
        for arg in self.args:
            kind = arg[0]
            if kind == "key" and arg[2] is None:
                makers.append((0, arg[1]))
            elif kind == "key" and not contracted:
                picks = tuple(-1 if n == 1 else out_pos[label] for label, n in zip(arg[2], arg[3]))
                if picks == tuple(range(len(self.out_ind))):
                    makers.append((1, arg[1]))
                else:
                    makers.append((2, (arg[1], picks)))
            elif kind == "index":
                picks = tuple(out_pos[label] for label in arg[2])
                if picks == tuple(range(len(self.out_ind))) and hasattr(arg[1], "in_order"):
                    makers.append((5, iter(arg[1].in_order())))  # every block's value, in C order
                else:
                    makers.append((3, (arg[1], picks)))
            elif kind == "lit":
                makers.append((0, quote(arg[1])))
            else:
                makers.append((4, arg))
        out: dict = {}
        for idx in product(*map(range, self.numblocks)):
            vals = []
            for mode, spec in makers:
                if mode == 1:
                    vals.append((spec,) + idx)
                elif mode == 0:
                    vals.append(spec)
                elif mode == 2:
                    vals.append((spec[0],) + tuple(0 if p < 0 else idx[p] for p in spec[1]))
                elif mode == 5:
                    value = next(spec)
                    vals.append((Literal(value),) if isinstance(value, _NEEDS_QUOTE) else value)
                elif mode == 3:
                    value = spec[0][tuple(idx[p] for p in spec[1])]
                    vals.append((Literal(value),) if isinstance(value, _NEEDS_QUOTE) else value)
                else:
                    vals.append(self._arg_value(spec, dict(zip(self.out_ind, idx))))
            out[(name,) + idx] = (func, *vals)
        return out

    def input_names(self) -> set:
        """Names of the graph layers (or single keys) this layer reads."""
        return {arg[1] for arg in self.args if arg[0] == "key"}

    def block_dependencies(self, idx: tuple) -> list:
        """The graph keys the task at ``idx`` reads."""
        where = dict(zip(self.out_ind, idx))
        found: list = []
        for arg in self.args:
            if arg[0] != "key":
                continue
            if arg[2] is None:
                found.append(arg[1])
                continue
            value = self._key_arg(arg[1], arg[2], arg[3], where)
            stack = [value]
            while stack:
                v = stack.pop()
                if type(v) is list:
                    stack.extend(v)
                else:
                    found.append(v)
        return found

    def __repr__(self) -> str:
        from ..utils import funcname

        return f"Blockwise<{self.name}: {funcname(self.func)}, {self._len} tasks>"


class BlockLayer(_BlockKeys):
    """A layer whose keys are ``(name, *idx)`` over ``numblocks`` and tasks come from ``task_fn(idx)``.

    ``reads`` optionally names layers this layer reads *entirely* (every block), which lets the
    optimizer skip scanning the tasks for dependencies when the whole layer is needed.
    """

    __slots__ = ("task_fn", "reads")

    def __init__(self, name: str, numblocks: tuple, task_fn: Callable[[tuple], Any], reads: Iterable = ()):
        self._set_blocks(name, numblocks)
        self.task_fn = task_fn
        self.reads = frozenset(reads)

    def _task(self, idx: tuple) -> Any:
        return self.task_fn(idx)

    def materialize(self) -> dict:
        """All tasks as a dict."""
        name, fn = self.name, self.task_fn
        return {(name,) + idx: fn(idx) for idx in product(*map(range, self.numblocks))}

    def __repr__(self) -> str:
        return f"BlockLayer<{self.name}, {self._len} tasks>"


def materialize_layer(layer: Mapping) -> dict:
    """Any layer as a plain dict."""
    if isinstance(layer, dict):
        return layer
    method = getattr(layer, "materialize", None)
    if method is not None:
        return method()
    return dict(layer)


# --------------------------------------------------------------------------------------------
# The layered graph
# --------------------------------------------------------------------------------------------

class LayeredGraph(Mapping):
    """A read-only graph made of named layers, with the layer-level dependencies between them.

    ``layers`` maps a layer name to a mapping of keys to tasks (by convention the layer of an
    array holds the keys ``(name, i, j, ...)``); ``dependencies`` maps a layer name to the set of
    layer names it reads. As a ``Mapping`` it is the union of its layers; ``dict(graph)`` gives
    the flat graph.
    """

    __slots__ = ("layers", "dependencies", "_flat")

    def __init__(self, layers: Mapping[str, Mapping], dependencies: Mapping[str, Iterable] | None = None):
        self.layers: dict = dict(layers)
        deps = dependencies or {}
        self.dependencies: dict = {name: set(deps.get(name, ())) for name in self.layers}
        self._flat: dict | None = None

    @classmethod
    def from_collections(cls, name: str, layer: Mapping, dependencies: Iterable = ()) -> "LayeredGraph":
        """The graph of the input collections (or graphs) ``dependencies`` plus ``layer`` named ``name``.

        >>> g = LayeredGraph.from_collections('x', {('x', 0): 1})
        >>> h = LayeredGraph.from_collections('y', {('y', 0): (abs, ('x', 0))}, [g])
        >>> dict(h)
        {('x', 0): 1, ('y', 0): (<built-in function abs>, ('x', 0))}
        >>> h.dependencies['y']
        {'x'}
        """
        layers: dict = {}
        deps: dict = {}
        direct: set = set()
        for dep in dependencies:
            graph, top = _graph_of(dep)
            if isinstance(graph, LayeredGraph):
                layers.update(graph.layers)
                deps.update(graph.dependencies)
                direct.update(top)
            else:
                layer_name = top[0]
                layers[layer_name] = graph
                deps[layer_name] = set()
                direct.add(layer_name)
        direct.discard(name)
        layers[name] = layer
        deps[name] = direct
        out = cls.__new__(cls)
        out.layers = layers
        out.dependencies = deps
        out._flat = None
        return out

    @staticmethod
    def __lazyarr_merge__(graphs: Iterable[Mapping]) -> "LayeredGraph":
        """Union of several graphs, keeping their layers apart (used by ``lazyarr.base``)."""
        layers: dict = {}
        deps: dict = {}
        for graph in graphs:
            if isinstance(graph, LayeredGraph):
                layers.update(graph.layers)
                for name, d in graph.dependencies.items():
                    deps.setdefault(name, set()).update(d)
            else:
                layer_name = f"merged-{len(layers)}-{id(graph)}"
                layers[layer_name] = graph
                deps[layer_name] = set()
        return LayeredGraph(layers, deps)

    # -- Mapping ---------------------------------------------------------------------------
    def layer_of(self, key: Any) -> str | None:
        """Name of the layer holding ``key`` (``None`` if none does)."""
        layers = self.layers
        head = key[0] if type(key) is tuple and key else key
        try:
            layer = layers.get(head)
        except TypeError:
            return None
        if layer is not None:
            try:
                if key in layer:
                    return head
            except TypeError:
                return None
        for name, layer in layers.items():
            try:
                if key in layer:
                    return name
            except TypeError:
                return None
        return None

    def __contains__(self, key: Any) -> bool:
        return self.layer_of(key) is not None

    def __getitem__(self, key: Any) -> Any:
        name = self.layer_of(key)
        if name is None:
            raise KeyError(key)
        return self.layers[name][key]

    def __iter__(self) -> Iterator:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def to_dict(self) -> dict:
        """The flat graph (materialised once and cached)."""
        if self._flat is None:
            flat: dict = {}
            for layer in self.layers.values():
                flat.update(materialize_layer(layer))
            self._flat = flat
        return self._flat

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: Any) -> bool:
        if self is other:
            return True
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __repr__(self) -> str:
        return f"LayeredGraph<{len(self.layers)} layers>"


def _graph_of(dep: Any) -> tuple[Mapping, list]:
    """The graph of a collection or graph, and the names of its top layers."""
    graph_method = getattr(type(dep), "__lazyarr_graph__", None)
    if graph_method is not None and not isinstance(dep, type):
        graph = dep.__lazyarr_graph__()
        if hasattr(type(dep), "__lazyarr_layer__"):
            name = dep.__lazyarr_layer__()
        else:
            # named like the head of the collection's keys ((name, i) -> name); no attribute
            # lookups, which some collections (Delayed) turn into lazy values
            from ..core import flatten

            first = next(iter(flatten(dep.__lazyarr_keys__())), None)
            head = first[0] if type(first) is tuple and first else first
            name = head if isinstance(head, str) else f"graph-{id(graph)}"
        if isinstance(graph, LayeredGraph):
            return graph, [name] if name in graph.layers else list(graph.layers)
        return graph, [name]
    if isinstance(dep, LayeredGraph):
        dependents = set()
        for d in dep.dependencies.values():
            dependents.update(d)
        return dep, [n for n in dep.layers if n not in dependents]
    if isinstance(dep, Mapping):
        return dep, [f"graph-{id(dep)}"]
    raise TypeError(f"expected a collection or a graph mapping, got {type(dep).__name__}")


def scan_dependencies(graph: LayeredGraph, tasks: Mapping) -> dict:
    """``{key: [keys of graph it reads]}`` for every task in ``tasks``."""
    return {k: get_dependencies(graph, task=v, as_list=True) for k, v in tasks.items()}
