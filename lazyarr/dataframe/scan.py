"""Sequential carry chains over partitions: the state each partition receives from its predecessors.

Cumulative sums, ``shift`` and rolling windows need something from the partitions before (or
after) each one: a running total, or the last few rows. Each partition first condenses itself
into a small *summary* (its own running total, its last rows), then a chain of tiny tasks folds
the summaries in partition order::

    into[1] = summary[0]
    into[2] = step(into[1], summary[1])
    into[3] = step(into[2], summary[2])   ...

so the heavy per-partition work stays parallel and only the small summaries are sequential, as
in Dask's cumulative reductions.
"""
from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

__all__ = ["carry_chain"]


def carry_chain(name: str, summaries: list, step: Callable, reverse: bool = False) -> tuple[dict, list]:
    """Tasks folding ``summaries`` (task keys, one per partition) into the state carried into each partition.

    Returns ``(layer, into)``: ``into[i]`` is the key of the state built from the summaries of all
    partitions before ``i`` (after ``i`` with ``reverse=True``), or ``None`` for the partition
    that has none. ``step(state, summary)`` adds one partition's summary to a state; the first
    state is the first summary itself.

    >>> layer, into = carry_chain('c', ['s0', 's1', 's2'], max)
    >>> into
    [None, ('c', 0), ('c', 1)]
    >>> layer[('c', 1)][1:]
    (('c', 0), 's1')
    """
    n = len(summaries)
    order = list(range(n - 1, -1, -1)) if reverse else list(range(n))
    layer: dict = {}
    into: list = [None] * n
    previous = None
    for i, following in pairwise(order):
        key = (name, i)
        # an alias when there is nothing to fold yet: the first state is the summary itself
        layer[key] = summaries[i] if previous is None else (step, previous, summaries[i])
        into[following] = key
        previous = key
    return layer, into
