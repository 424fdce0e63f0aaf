"""The array graph optimizer: blockwise fusion and culling over layers, then one materialisation.

:func:`optimize` receives a :class:`~lazyarr.array.layers.LayeredGraph` and the output keys and

1. **fuses** chains of :class:`~lazyarr.array.layers.Blockwise` layers: a layer whose blocks are
   read, one block each, by exactly one other blockwise layer (and that is not itself an output)
   is folded into its reader, whose tasks then run both functions in one call. So
   ``((x + 1) * 2).sum()`` has one task per block (``ones -> add -> mul -> partial sum``) plus the
   small reduction tree. This works on the handful of layers, never on the tasks;
2. **culls**, starting from the output keys: a layer needed entirely is materialised in one pass
   (its inputs are then needed entirely too, without looking at its tasks); a layer needed only in
   part (slicing) is materialised block by block, and only the blocks those read are needed
   below; plain dict layers are walked key by key.

A plain dict graph is culled with :func:`lazyarr.optimization.cull`.
"""
from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from typing import Any

from .. import config
from ..core import flatten, get_dependencies
from .layers import Blockwise, BlockLayer, Fused, LayeredGraph

__all__ = ["optimize", "fuse_blockwise", "fuse_pair"]

_ALL = object()


def optimize(dsk: Mapping, keys: Any, fuse: bool | None = None, **kwargs: Any) -> dict:
    """Fuse blockwise layers and keep only the tasks ``keys`` need; returns a plain dict graph.

    ``fuse`` defaults to the ``optimization.fuse.active`` setting.
    """
    flat_keys = list(flatten(keys))
    if not isinstance(dsk, LayeredGraph):
        from ..optimization import cull

        return cull(dsk, flat_keys)[0]
    if fuse is None:
        fuse = config.get("optimization.fuse.active", True) is not False
    layers = dict(dsk.layers)
    deps = {name: set(d) & layers.keys() for name, d in dsk.dependencies.items() if name in layers}
    graph = LayeredGraph(layers, deps)
    needs: dict = {}
    for key in flat_keys:
        name = graph.layer_of(key)
        if name is None:
            raise KeyError(f"key {key!r} is not in the task graph")
        needs.setdefault(name, set()).add(key)
    for name, wanted in list(needs.items()):
        layer = layers[name]
        if isinstance(layer, (Blockwise, BlockLayer)) and len(wanted) == len(layer):
            needs[name] = _ALL
    if fuse:
        _add_scanned_dependencies(graph)
        fuse_blockwise(graph.layers, graph.dependencies, set(needs))
    return _cull_layers(graph, needs)


def _add_scanned_dependencies(graph: LayeredGraph) -> None:
    """Declare the layers that plain dict layers without declared dependencies actually read.

    (A dict given straight to ``Array(...)`` may hold the tasks of any layer; fusion must know
    every reader of a layer.)
    """
    for name, layer in graph.layers.items():
        if isinstance(layer, (Blockwise, BlockLayer)) or graph.dependencies.get(name):
            continue
        found: set = set()
        for task in layer.values():
            for dep in get_dependencies(graph, task=task, as_list=True):
                owner = graph.layer_of(dep)
                if owner is not None and owner != name:
                    found.add(owner)
        graph.dependencies[name] = found


def _toposort_layers(deps: dict) -> list:
    order: list = []
    state: dict = {}
    for start in deps:
        if start in state:
            continue
        stack = [(start, iter(deps.get(start, ())))]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            for dep in it:
                if dep not in state and dep in deps:
                    state[dep] = 1
                    stack.append((dep, iter(deps.get(dep, ()))))
                    break
            else:
                stack.pop()
                state[node] = 2
                order.append(node)
    return order


def fuse_blockwise(layers: dict, deps: dict, outputs: set) -> None:
    """Fold every blockwise layer read one-to-one by a single blockwise reader into that reader.

    ``layers`` and ``deps`` are changed in place; layers named in ``outputs`` are kept.
    """
    dependents: dict = {name: set() for name in layers}
    for name, ds in deps.items():
        for d in ds:
            if d in dependents:
                dependents[d].add(name)
    for name in _toposort_layers(deps):
        layer = layers.get(name)
        if not isinstance(layer, Blockwise) or name in outputs:
            continue
        readers = dependents.get(name, ())
        if len(readers) != 1:
            continue
        (reader_name,) = readers
        reader = layers.get(reader_name)
        if not isinstance(reader, Blockwise):
            continue
        fused = fuse_pair(layer, reader)
        if fused is None:
            continue
        layers[reader_name] = fused
        del layers[name]
        inner = deps.pop(name, set())
        deps[reader_name] = (deps.get(reader_name, set()) - {name}) | inner
        for d in inner:
            if d in dependents:
                dependents[d].discard(name)
                dependents[d].add(reader_name)
        dependents.pop(name, None)


def _program(layer: Blockwise) -> tuple[list, tuple]:
    """A blockwise layer as (leaf arguments, steps of a :class:`Fused` program)."""
    if isinstance(layer.func, Fused) and all(arg[0] != "lit" for arg in layer.args):
        return list(layer.args), layer.func.steps
    leaves: list = []
    refs = []
    for arg in layer.args:
        if arg[0] == "lit":
            refs.append((2, arg[1]))
        else:
            refs.append((0, len(leaves)))
            leaves.append(arg)
    return leaves, ((layer.func, tuple(refs)),)


def _leaf_id(arg: tuple) -> Any:
    if arg[0] == "index":
        return ("index", id(arg[1]), arg[2])
    return arg


def fuse_pair(producer: Blockwise, reader: Blockwise) -> Blockwise | None:
    """``reader`` computing ``producer``'s blocks itself, or ``None`` when that would repeat work.

    Fusion requires each producer block to be read by exactly one reader block: every use has
    the same index, all its labels are output labels of the reader, and no broadcasting.
    """
    if producer.contracted():
        return None
    uses = [arg for arg in reader.args if arg[0] == "key" and arg[1] == producer.name]
    if not uses or any(arg[2] is None for arg in uses):
        return None
    ind = uses[0][2]
    if any(arg[2] != ind for arg in uses):
        return None
    if len(ind) != len(reader.out_ind) or set(ind) != set(reader.out_ind) or len(set(ind)) != len(ind):
        return None
    reader_blocks = dict(zip(reader.out_ind, reader.numblocks))
    if any(producer.numblocks[p] != reader_blocks[label] for p, label in enumerate(ind)):
        return None
    relabel = dict(zip(producer.out_ind, ind))

    def translate(arg: tuple) -> tuple:
        if arg[0] == "key" and arg[2] is not None:
            return ("key", arg[1], tuple(relabel[label] for label in arg[2]), arg[3])
        if arg[0] == "index":
            return ("index", arg[1], tuple(relabel[label] for label in arg[2]))
        return arg

    p_leaves, p_steps = _program(producer)
    r_leaves, r_steps = _program(reader)
    leaves: list = []
    position: dict = {}

    def leaf(arg: tuple) -> int:
        ident = _leaf_id(arg)
        try:
            return position[ident]
        except KeyError:
            position[ident] = len(leaves)
            leaves.append(arg)
            return position[ident]
        except TypeError:  # unhashable labels: no deduplication
            leaves.append(arg)
            return len(leaves) - 1

    p_map = [leaf(translate(arg)) for arg in p_leaves]
    steps = []
    for func, refs in p_steps:
        steps.append((func, tuple((0, p_map[v]) if kind == 0 else (kind, v) for kind, v in refs)))
    offset = len(steps)
    produced = (1, offset - 1)
    r_map = []
    for arg in r_leaves:
        if arg[0] == "key" and arg[1] == producer.name:
            r_map.append(produced)
        else:
            r_map.append((0, leaf(arg)))
    for func, refs in r_steps:
        new_refs = []
        for kind, v in refs:
            if kind == 0:
                new_refs.append(r_map[v])
            elif kind == 1:
                new_refs.append((1, v + offset))
            else:
                new_refs.append((kind, v))
        steps.append((func, tuple(new_refs)))
    return Blockwise(reader.name, reader.out_ind, reader.numblocks, Fused(tuple(steps)), leaves)


def _cull_layers(graph: LayeredGraph, needs: dict) -> dict:
    """Materialise the tasks reachable from ``needs`` (layer name -> set of keys or ``_ALL``)."""
    layers = graph.layers
    out: dict = {}
    done: dict = {}  # layer -> _ALL or set of keys already emitted
    pending = list(needs)
    while pending:
        name = pending.pop()
        want = needs.pop(name, None)
        if want is None:
            continue
        seen = done.get(name)
        if seen is _ALL:
            continue
        layer = layers[name]
        new_needs: dict = {}
        if isinstance(layer, Blockwise):
            if want is _ALL:
                tasks = layer.materialize()
                if seen:
                    for k in seen:
                        tasks.pop(k, None)
                out.update(tasks)
                done[name] = _ALL
                for arg in layer.args:
                    if arg[0] != "key":
                        continue
                    if arg[2] is None:
                        owner = graph.layer_of(arg[1])
                        if owner is not None:
                            _add_need(new_needs, owner, arg[1])
                    else:
                        _need_every_block(graph, arg[1], arg[3], new_needs)
            else:
                seen = done.setdefault(name, set())
                for key in want:
                    if key in seen:
                        continue
                    seen.add(key)
                    idx = key[1:]
                    out[key] = layer.task(idx)
                    for dep in layer.block_dependencies(idx):
                        owner = graph.layer_of(dep)
                        if owner is not None:
                            _add_need(new_needs, owner, dep)
        elif isinstance(layer, BlockLayer) and want is _ALL and layer.reads:
            tasks = layer.materialize()
            out.update(tasks)
            done[name] = _ALL
            for r in layer.reads:
                new_needs[r] = _ALL
        else:
            _walk_mapping(graph, name, layer, want, seen, done, out, new_needs)
        for owner, keys in new_needs.items():
            if owner not in layers:
                continue
            if done.get(owner) is _ALL:
                continue
            current = needs.get(owner)
            if keys is _ALL or current is _ALL:
                needs[owner] = _ALL
            elif current is None:
                needs[owner] = keys
            else:
                current.update(keys)
            pending.append(owner)
    return out


def _add_need(new_needs: dict, owner: str, key: Any) -> None:
    current = new_needs.setdefault(owner, set())
    if current is not _ALL:
        current.add(key)


def _need_every_block(graph: LayeredGraph, name: str, numblocks: tuple, new_needs: dict) -> None:
    """Record that every block ``(name, ...)`` is needed: the whole layer ``name`` if it holds
    them (the usual case), else each block in whichever layer holds it."""
    layer = graph.layers.get(name)
    if isinstance(layer, (Blockwise, BlockLayer)) or (layer is not None and (name,) + (0,) * len(numblocks) in layer):
        new_needs[name] = _ALL
        return
    for idx in product(*map(range, numblocks)):
        key = (name,) + idx
        owner = graph.layer_of(key)
        if owner is not None:
            _add_need(new_needs, owner, key)


def _walk_mapping(graph: LayeredGraph, name: str, layer: Mapping, want: Any, seen: Any, done: dict, out: dict,
                  new_needs: dict) -> None:
    """Key-by-key cull inside a dict-like layer."""
    if want is _ALL:
        own = [k for k in layer if (k[0] if type(k) is tuple and k else k) == name]
        want = own if own else list(layer)
    seen = done.setdefault(name, set()) if not isinstance(seen, set) else seen
    stack = list(want)
    while stack:
        key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        task = layer[key]
        out[key] = task
        for dep in get_dependencies(graph, task=task, as_list=True):
            owner = graph.layer_of(dep)
            if owner == name:
                if dep not in seen:
                    stack.append(dep)
            elif owner is not None:
                _add_need(new_needs, owner, dep)
