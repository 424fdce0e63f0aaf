"""Aggregations of bags as tree reductions.

Each partition is reduced on its own (``perpartition``); the partial results are then combined
``split_every`` at a time (config ``bag.split-every``, default 8) by ``aggregate`` until one is
left, so no single task ever receives more than ``split_every`` inputs and only small partial
results (counts, dicts of counts, the k best candidates) move between workers. Empty partitions
contribute nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from .. import config
from ..tokenize import tokenize
from ..utils import funcname
from . import chunk
from .chunk import no_default
from .core import Bag, Item

__all__ = [
    "reduction",
    "fold",
    "count",
    "bag_sum",
    "bag_min",
    "bag_max",
    "bag_any",
    "bag_all",
    "mean",
    "var",
    "std",
    "frequencies",
    "topk",
    "distinct",
    "foldby",
]


def _split_every(split_every: Any) -> int | None:
    """The fan-in of the tree: an int >= 2, or None for a single aggregate step (``False``)."""
    if split_every is None:
        split_every = config.get("bag.split-every", 8)
    if split_every is False:
        return None
    if not isinstance(split_every, int) or isinstance(split_every, bool) or split_every < 2:
        raise ValueError(f"split_every must be an integer >= 2 (or False), not {split_every!r}")
    return split_every


def tree_reduce(bag: Bag, perpartition: Callable, aggregate: Callable, *, opname: str, token: str,
                split_every: Any = None, out_type: type = Item, final: Callable | None = None,
                finalize: Callable | None = None, lazy_ok: bool = True) -> Any:
    """Build the reduction graph; see the module docstring.

    ``final`` replaces ``aggregate`` at the last level and ``finalize`` post-processes its
    result. ``lazy_ok`` says ``perpartition`` accepts a one-pass iterator (else it gets a list).
    With ``out_type=Bag`` the final value must be an iterable: it becomes the only partition.
    """
    fan_in = _split_every(split_every)
    part = f"{opname}-part-{token}"
    name = f"{opname}-aggregate-{token}"
    layer: dict = {
        (part, i): (chunk.apply_nonempty, perpartition, (bag.name, i), lazy_ok)
        for i in range(bag.npartitions)
    }
    keys = [(part, i) for i in range(bag.npartitions)]
    level = 0
    while fan_in is not None and len(keys) > fan_in:
        level += 1
        inner = f"{opname}-combine-{level}-{token}"
        grouped = [keys[j:j + fan_in] for j in range(0, len(keys), fan_in)]
        for j, group in enumerate(grouped):
            layer[(inner, j)] = (chunk.aggregate_nonempty, aggregate, group, False)
        keys = [(inner, j) for j in range(len(grouped))]
    last = final if final is not None else aggregate
    layer[(name, 0)] = (chunk.aggregate_nonempty, last, keys, True, finalize)
    dsk = dict(bag.__lazyarr_graph__())
    dsk.update(layer)
    if out_type is Bag:
        return Bag(dsk, name, 1)
    if out_type is not Item:
        raise ValueError(f"out_type must be Item or Bag, not {out_type!r}")
    return Item(dsk, (name, 0))


def reduction(bag: Bag, perpartition: Callable, aggregate: Callable, split_every: Any = None,
              out_type: type = Item, name: str | None = None) -> Any:
    """A user-defined tree reduction (see :meth:`Bag.reduction`); ``perpartition`` gets lists."""
    opname = name or f"reduction-{funcname(perpartition)}"
    token = tokenize(bag, perpartition, aggregate, split_every, out_type)
    return tree_reduce(bag, perpartition, aggregate, opname=opname, token=token, split_every=split_every,
                       out_type=out_type, lazy_ok=False)


def fold(bag: Bag, binop: Callable, combine: Callable | None = None, initial: Any = no_default,
         split_every: Any = None, out_type: type = Item) -> Any:
    """``reduce(binop)`` within partitions, ``reduce(combine)`` across them (see :meth:`Bag.fold`)."""
    combine = binop if combine is None else combine
    token = tokenize(bag, binop, combine, initial, split_every)
    return tree_reduce(bag, partial(chunk.fold_chunk, binop, initial), partial(chunk.fold_parts, combine, initial),
                       opname=f"fold-{funcname(binop)}", token=token, split_every=split_every, out_type=out_type)


def _simple(bag: Bag, opname: str, perpartition: Callable, aggregate: Callable, split_every: Any,
            finalize: Callable | None = None, *extra: Any) -> Item:
    token = tokenize(bag, opname, split_every, *extra)
    return tree_reduce(bag, perpartition, aggregate, opname=opname, token=token, split_every=split_every,
                       finalize=finalize)


def count(bag: Bag, split_every: Any = None) -> Item:
    """Number of elements."""
    return _simple(bag, "count", chunk.count_elements, sum, split_every)


def bag_sum(bag: Bag, split_every: Any = None) -> Item:
    """Sum of the elements (0 for an empty bag)."""
    return _simple(bag, "sum", sum, sum, split_every)


def bag_min(bag: Bag, split_every: Any = None) -> Item:
    """Smallest element."""
    return _simple(bag, "min", min, min, split_every)


def bag_max(bag: Bag, split_every: Any = None) -> Item:
    """Largest element."""
    return _simple(bag, "max", max, max, split_every)


def bag_any(bag: Bag, split_every: Any = None) -> Item:
    """Is any element true? (False for an empty bag.)"""
    return _simple(bag, "any", chunk.any_of, chunk.any_of, split_every)


def bag_all(bag: Bag, split_every: Any = None) -> Item:
    """Are all elements true? (True for an empty bag.)"""
    return _simple(bag, "all", chunk.all_of, chunk.all_of, split_every)


def mean(bag: Bag, split_every: Any = None) -> Item:
    """Arithmetic mean; an empty bag raises ``ValueError``."""
    return _simple(bag, "mean", chunk.sum_count, chunk.combine_sum_count, split_every, chunk.finish_mean)


def var(bag: Bag, ddof: int = 0, split_every: Any = None) -> Item:
    """Variance with ``ddof`` delta degrees of freedom (numerically stable pairwise merge)."""
    return _simple(bag, "var", chunk.moments, chunk.combine_moments, split_every,
                   partial(chunk.finish_var, ddof), ddof)


def std(bag: Bag, ddof: int = 0, split_every: Any = None) -> Item:
    """Standard deviation with ``ddof`` delta degrees of freedom."""
    return _simple(bag, "std", chunk.moments, chunk.combine_moments, split_every,
                   partial(chunk.finish_std, ddof), ddof)


def frequencies(bag: Bag, sort: bool = False, split_every: Any = None) -> Bag:
    """``(element, count)`` pairs in one partition; most common first when ``sort``.

    Each partition is counted by one ``collections.Counter`` call over the whole partition, so
    only a dict of counts leaves the task that read the data.
    """
    token = tokenize(bag, sort, split_every)
    return tree_reduce(bag, chunk.count_frequencies, chunk.merge_frequencies, opname="frequencies", token=token,
                       split_every=split_every, out_type=Bag, finalize=partial(chunk.frequencies_items, sort))


def topk(bag: Bag, k: int, key: Any = None, split_every: Any = None) -> Bag:
    """The ``k`` largest elements (by ``key``, a function or an index/key), largest first."""
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"topk: k must be a non-negative integer, not {k!r}")
    keyfunc = None if key is None else chunk.getter(key)
    token = tokenize(bag, k, key, split_every)
    return tree_reduce(bag, partial(chunk.nlargest, k, keyfunc), partial(chunk.nlargest_of_parts, k, keyfunc),
                       opname="topk", token=token, split_every=split_every, out_type=Bag)


def distinct(bag: Bag, key: Any = None, split_every: Any = None) -> Bag:
    """The distinct elements (first one per ``key``), in order of first appearance."""
    keyfunc = None if key is None else chunk.getter(key)
    token = tokenize(bag, key, split_every)
    return tree_reduce(bag, partial(chunk.distinct_chunk, keyfunc), chunk.merge_distinct, opname="distinct",
                       token=token, split_every=split_every, out_type=Bag,
                       finalize=partial(chunk.distinct_values, keyfunc))


def foldby(bag: Bag, key: Any, binop: Callable, initial: Any = no_default, combine: Callable | None = None,
           combine_initial: Any = no_default, split_every: Any = None) -> Bag:
    """Per-key folds without a shuffle: ``(key, value)`` pairs in one partition.

    ``combine`` (default ``binop``) merges two partitions' values for a key; it must be
    associative since it is applied level by level up the tree. ``combine_initial`` seeds each
    key once, at the last level.
    """
    keyfunc = chunk.getter(key)
    combine = binop if combine is None else combine
    token = tokenize(bag, key, binop, initial, combine, combine_initial, split_every)
    return tree_reduce(
        bag,
        partial(chunk.foldby_chunk, keyfunc, binop, initial),
        partial(chunk.foldby_combine, combine),
        opname="foldby",
        token=token,
        split_every=split_every,
        out_type=Bag,
        final=partial(chunk.foldby_finish, combine, combine_initial),
    )
