"""The bag graph optimization: cull, fuse per-partition chains, then let fused steps stream.

Every bag task that yields a partition is written ``(reify, <step>)``, so a partition stored
under a key is a list (safe to ship to another process, safe to read twice). Once
:func:`lazyarr.optimization.fuse` has merged a per-partition chain (read -> map -> flatten ->
count, say) into one task, the intermediate partitions never leave that task, so the ``reify``
around each of them is dropped (:func:`lazify`): the elements then flow through the chain as
iterators and no intermediate list is built. A step keeps its ``reify`` if a later step of the
chain refers to it more than once (one iterator cannot be read twice).

A key whose value is a distributed future (a bag persisted on a cluster) is never fused into
its dependent: the client finds futures in tasks, not inside fused chains.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..core import get_dependencies
from ..optimization import Chain, cull_and_fuse
from .chunk import reify

__all__ = ["optimize", "lazify", "lazify_task"]


def optimize(dsk: Mapping, keys: Any, **kwargs: Any) -> dict:
    """Cull ``dsk`` to ``keys``, fuse linear chains (per ``optimization.fuse.*``), lazify them.

    >>> from lazyarr.bag.chunk import reify
    >>> dsk = {'a': (reify, (range, 3)), 'b': (reify, (map, str, 'a')), 'c': (sorted, 'b'), 'x': 1}
    >>> out = optimize(dsk, ['c'])
    >>> sorted(out)
    ['c']
    >>> from lazyarr.core import get
    >>> get(out, 'c')
    ['0', '1', '2']
    """
    return lazify(cull_and_fuse(dsk, keys, **kwargs))


def lazify(dsk: Mapping) -> dict:
    """``dsk`` with the ``reify`` dropped around intermediate steps of fused chains."""
    return {key: lazify_task(task) for key, task in dsk.items()}


def lazify_task(task: Any) -> Any:
    """One task with the ``reify`` of its chain's intermediate, singly-used steps removed."""
    if type(task) is not tuple or not task or type(task[0]) is not Chain:
        return task
    chain = task[0]
    steps = chain.steps
    step_keys = {key: None for key, _ in steps}
    uses: Counter = Counter()
    for _, step in steps:
        uses.update(get_dependencies(step_keys, task=step, as_list=True))
    new_steps = []
    last = len(steps) - 1
    for i, (key, step) in enumerate(steps):
        if i != last and uses[key] == 1 and type(step) is tuple and len(step) == 2 and step[0] is reify:
            step = step[1]
        new_steps.append((key, step))
    return (Chain(tuple(new_steps), chain.inputs, chain.release),) + task[1:]
