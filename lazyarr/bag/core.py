"""The Bag and Item collections and the element-wise operations on bags.

A :class:`Bag` is an unordered-in-spirit (but order-keeping) collection of arbitrary Python
objects split into ``npartitions`` partitions. Its graph holds one key ``(name, i)`` per
partition whose value is a list. Scalars computed from a bag (``b.count()``) are :class:`Item`
objects, themselves collections with a single key.

Aggregations live in :mod:`lazyarr.bag.reductions`, shuffles in :mod:`lazyarr.bag.shuffle`,
text input and output in :mod:`lazyarr.bag.text`; the :class:`Bag` methods call them.
"""
from __future__ import annotations

import random as _random
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from operator import getitem, methodcaller
from typing import Any

from ..base import LazyarrMethodsMixin, is_lazyarr_collection
from ..core import flatten, istask
from ..tokenize import tokenize
from ..utils import funcname, key_split
from . import chunk
from .chunk import Quote, no_default, quote, reify
from ..optimization import is_remote_data
from .optimize import optimize

__all__ = [
    "Bag",
    "Item",
    "StringAccessor",
    "from_sequence",
    "from_delayed",
    "bag_range",
    "bag_map",
    "bag_zip",
    "map_partitions",
    "concat",
]


# -- the collections ------------------------------------------------------------------------------

class Bag(LazyarrMethodsMixin):
    """A parallel collection of Python objects, in ``npartitions`` partitions.

    Build one with :func:`from_sequence`, :func:`bag_range`, :func:`from_delayed` or
    :func:`lazyarr.bag.read_text`; every method returns a new lazy Bag (or an :class:`Item`)
    until you call ``compute()``.

    >>> b = from_sequence(range(10), npartitions=3)
    >>> b
    lazyarr.bag<from_sequence, npartitions=3>
    >>> b.map(lambda x: x * 2).filter(lambda x: x > 10).compute(scheduler='sync')
    [12, 14, 16, 18]
    >>> b.sum().compute(scheduler='sync')
    45
    """

    __lazyarr_scheduler__ = "processes"
    __lazyarr_optimize__ = staticmethod(optimize)

    def __init__(self, dsk: Mapping, name: str, npartitions: int):
        if not isinstance(npartitions, int) or npartitions < 1:
            raise ValueError(f"a Bag needs at least one partition, not npartitions={npartitions!r}")
        self.dask = dsk
        self.name = name
        self.npartitions = npartitions

    # the collection protocol
    def __lazyarr_graph__(self) -> Mapping:
        return self.dask

    def __lazyarr_keys__(self) -> list:
        return [(self.name, i) for i in range(self.npartitions)]

    def __lazyarr_postcompute__(self) -> tuple:
        return finalize_bag, ()

    def __lazyarr_postpersist__(self) -> tuple:
        return rebuild_bag, (self.name, self.npartitions)

    def __lazyarr_tokenize__(self) -> Any:
        return ("Bag", self.name, self.npartitions)

    def __repr__(self) -> str:
        return f"lazyarr.bag<{key_split(self.name)}, npartitions={self.npartitions}>"

    def __iter__(self) -> Iterator:
        """Compute the bag and iterate over its elements."""
        return iter(self.compute())

    @property
    def str(self) -> "StringAccessor":
        """String methods applied to every element: ``b.str.lower()``, ``b.str.match('*.py')``."""
        return StringAccessor(self)

    # element-wise
    def map(self, func: Callable, *args: Any, **kwargs: Any) -> "Bag":
        """``func(x, *args, **kwargs)`` for each element ``x``.

        Bags among ``args`` are walked in lockstep with this one (they must be partitioned the
        same way); Items, Delayed values and anything else are passed whole to every call.

        >>> b = from_sequence([1, 2, 3], npartitions=2)
        >>> b.map(pow, 2).compute(scheduler='sync')
        [1, 4, 9]
        >>> b.map(lambda x, y: x + y, b.map(lambda x: 10 * x)).compute(scheduler='sync')
        [11, 22, 33]
        """
        return bag_map(func, self, *args, **kwargs)

    def starmap(self, func: Callable, **kwargs: Any) -> "Bag":
        """``func(*x, **kwargs)`` for each element ``x`` (a tuple of arguments).

        >>> from_sequence([(1, 2), (3, 4)]).starmap(max).compute(scheduler='sync')
        [2, 4]
        """
        name = f"starmap-{funcname(func)}-{tokenize(self, func, kwargs)}"
        kw, deps = _broadcast_kwargs(kwargs)
        layer = {
            (name, i): (reify, (chunk.starmap_chunk, func, i, (self.name, i), kw))
            for i in range(self.npartitions)
        }
        return _new_bag(name, layer, self.npartitions, self, *deps)

    def filter(self, predicate: Callable) -> "Bag":
        """The elements for which ``predicate(x)`` is true.

        >>> from_sequence(range(6)).filter(lambda x: x % 2).compute(scheduler='sync')
        [1, 3, 5]
        """
        return self._filter(predicate, True, "filter")

    def remove(self, predicate: Callable) -> "Bag":
        """The elements for which ``predicate(x)`` is false.

        >>> from_sequence(range(6)).remove(lambda x: x % 2).compute(scheduler='sync')
        [0, 2, 4]
        """
        return self._filter(predicate, False, "remove")

    def _filter(self, predicate: Callable, keep: bool, opname: str) -> "Bag":
        if not callable(predicate):
            raise TypeError(f"{opname} needs a callable predicate, not {type(predicate).__name__}")
        name = f"{opname}-{funcname(predicate)}-{tokenize(self, predicate)}"
        layer = {
            (name, i): (reify, (chunk.filter_chunk, predicate, keep, i, (self.name, i)))
            for i in range(self.npartitions)
        }
        return _new_bag(name, layer, self.npartitions, self)

    def map_partitions(self, func: Callable, *args: Any, **kwargs: Any) -> "Bag":
        """``func(partition, *args, **kwargs)`` for each partition (given as a list).

        >>> from_sequence(range(6), npartitions=2).map_partitions(sum).compute(scheduler='sync')
        [3, 12]
        """
        return map_partitions(func, self, *args, **kwargs)

    def flatten(self) -> "Bag":
        """Concatenate the elements, which must be iterables, into one bag of their items.

        >>> from_sequence([[1, 2], [], [3]]).flatten().compute(scheduler='sync')
        [1, 2, 3]
        """
        name = f"flatten-{tokenize(self)}"
        layer = {(name, i): (reify, (chain.from_iterable, (self.name, i))) for i in range(self.npartitions)}
        return _new_bag(name, layer, self.npartitions, self)

    def pluck(self, key: Any, default: Any = no_default) -> "Bag":
        """``x[key]`` for each element; a list of keys gives tuples. ``default`` fills gaps.

        Without ``default`` a missing key raises ``KeyError`` (``IndexError`` for sequences)
        naming the key, the element and the partition.

        >>> b = from_sequence([{'name': 'Ann', 'age': 3}, {'name': 'Bo'}])
        >>> b.pluck('name').compute(scheduler='sync')
        ['Ann', 'Bo']
        >>> b.pluck('age', default=None).compute(scheduler='sync')
        [3, None]
        >>> b.pluck(['name', 'age'], default=0).compute(scheduler='sync')
        [('Ann', 3), ('Bo', 0)]
        """
        name = f"pluck-{tokenize(self, key, default)}"
        key_arg = quote(key)
        default_arg = quote(default)
        layer = {
            (name, i): (reify, (chunk.pluck_chunk, key_arg, default_arg, i, (self.name, i)))
            for i in range(self.npartitions)
        }
        return _new_bag(name, layer, self.npartitions, self)

    def product(self, other: "Bag") -> "Bag":
        """Every pair ``(x, y)`` of an element of this bag and one of ``other``.

        The result has ``self.npartitions * other.npartitions`` partitions.

        >>> sorted(from_sequence([1, 2]).product(from_sequence('ab')).compute(scheduler='sync'))
        [(1, 'a'), (1, 'b'), (2, 'a'), (2, 'b')]
        """
        if not isinstance(other, Bag):
            raise TypeError(f"product needs another Bag, not {type(other).__name__}")
        name = f"product-{tokenize(self, other)}"
        m = other.npartitions
        layer = {
            (name, i * m + j): (chunk.product_chunk, (self.name, i), (other.name, j))
            for i in range(self.npartitions)
            for j in range(m)
        }
        return _new_bag(name, layer, self.npartitions * m, self, other)

    def accumulate(self, binop: Callable, initial: Any = no_default) -> "Bag":
        """Running totals: ``x0, binop(x0, x1), binop(binop(x0, x1), x2), ...``.

        Like ``itertools.accumulate``; with ``initial`` the first value is ``initial``. Each
        partition waits for the previous one's last value, so this step is sequential.

        >>> from operator import add
        >>> from_sequence([1, 2, 3, 4], npartitions=2).accumulate(add).compute(scheduler='sync')
        [1, 3, 6, 10]
        >>> from_sequence([1, 2, 3]).accumulate(add, initial=10).compute(scheduler='sync')
        [10, 11, 13, 16]
        """
        token = tokenize(self, binop, initial)
        name = f"accumulate-{token}"
        part = f"accumulate-part-{token}"
        last = f"accumulate-last-{token}"  # its own key, so only this value goes to the next partition
        layer: dict = {(part, 0): (chunk.accumulate_first, binop, (self.name, 0), quote(initial), 0)}
        for i in range(1, self.npartitions):
            layer[(part, i)] = (chunk.accumulate_chunk, binop, (self.name, i), (last, i - 1), i)
        for i in range(self.npartitions):
            layer[(name, i)] = (getitem, (part, i), 0)
            if i < self.npartitions - 1:
                layer[(last, i)] = (getitem, (part, i), 1)
        return _new_bag(name, layer, self.npartitions, self)

    def random_sample(self, prob: float, random_state: int | None = None) -> "Bag":
        """Each element kept independently with probability ``prob``.

        ``random_state`` (an int) makes the sample reproducible.

        >>> b = from_sequence(range(1000), npartitions=4)
        >>> s = b.random_sample(0.1, random_state=42).compute(scheduler='sync')
        >>> s == b.random_sample(0.1, random_state=42).compute(scheduler='sync'), 50 < len(s) < 150
        (True, True)
        """
        if not 0 <= prob <= 1:
            raise ValueError(f"random_sample: prob must be between 0 and 1, not {prob!r}")
        rng = _random.Random(random_state) if random_state is not None else _random.Random()
        seeds = [rng.getrandbits(63) for _ in range(self.npartitions)]
        name = f"random-sample-{tokenize(self, prob, seeds)}"
        layer = {
            (name, i): (chunk.random_sample_chunk, (self.name, i), prob, seeds[i])
            for i in range(self.npartitions)
        }
        return _new_bag(name, layer, self.npartitions, self)

    def join(self, other: Iterable, on_self: Any, on_other: Any = None) -> "Bag":
        """Inner join with an in-memory iterable: ``(other_element, self_element)`` pairs.

        ``on_self`` and ``on_other`` are functions (or keys, for ``x[key]``) giving the join key;
        ``on_other`` defaults to ``on_self``. ``other`` may also be a Delayed value or an Item
        holding an iterable.

        >>> people = from_sequence([('ann', 1), ('bo', 2), ('cy', 1)])
        >>> cities = [(1, 'Paris'), (2, 'Rome')]
        >>> sorted(people.join(cities, on_self=1, on_other=0).compute(scheduler='sync'))
        [((1, 'Paris'), ('ann', 1)), ((1, 'Paris'), ('cy', 1)), ((2, 'Rome'), ('bo', 2))]
        """
        if isinstance(other, Bag):
            raise TypeError("join takes an in-memory iterable; to join two bags, use groupby or foldby")
        on_self_f = chunk.getter(on_self)
        on_other_f = chunk.getter(on_self if on_other is None else on_other)
        token = tokenize(self, other, on_self, on_other)
        index_key = (f"join-index-{token}", 0)
        deps: list = []
        if is_lazyarr_collection(other):
            ref, dep = _broadcast_ref(other)
            deps.append(dep)
            index_task: Any = (chunk.build_join_index, ref, on_other_f)
        else:
            if isinstance(other, (str, bytes)) or not isinstance(other, Iterable):
                raise TypeError(f"join needs an iterable of elements, not {type(other).__name__}")
            index_task = (Quote(chunk.build_join_index(other, on_other_f)),)
        name = f"join-{token}"
        layer: dict = {index_key: index_task}
        for i in range(self.npartitions):
            layer[(name, i)] = (reify, (chunk.join_chunk, index_key, on_self_f, i, (self.name, i)))
        return _new_bag(name, layer, self.npartitions, self, *deps)

    def repartition(self, npartitions: int) -> "Bag":
        """The same elements, in the same order, in ``npartitions`` partitions.

        Fewer partitions concatenate neighbours; more split each partition into near-equal pieces.

        >>> b = from_sequence(range(10), npartitions=5)
        >>> b.repartition(2).npartitions, b.repartition(2).compute(scheduler='sync') == list(range(10))
        (2, True)
        """
        return repartition(self, npartitions)

    def take(self, n: int, npartitions: int = 1, compute: bool = True, warn: bool = True, **kwargs: Any) -> Any:
        """The first ``n`` elements, from the first ``npartitions`` partitions only.

        Only those partitions are computed (``-1`` means all). With ``compute=True`` returns a
        tuple, warning if fewer than ``n`` elements were found (``kwargs`` go to ``compute``);
        otherwise a one-partition Bag.

        >>> b = from_sequence(range(10), npartitions=5)
        >>> b.take(2, scheduler='sync')
        (0, 1)
        >>> b.take(3, npartitions=2, scheduler='sync')
        (0, 1, 2)
        """
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"take: n must be a non-negative integer, not {n!r}")
        if npartitions == -1:
            npartitions = self.npartitions
        if not isinstance(npartitions, int) or not 1 <= npartitions <= self.npartitions:
            raise ValueError(
                f"take: npartitions must be between 1 and {self.npartitions} (or -1 for all), "
                f"not {npartitions!r}"
            )
        name = f"take-{tokenize(self, n, npartitions)}"
        if npartitions == 1:
            layer = {(name, 0): (chunk.take_chunk, (self.name, 0), n)}
        else:
            part = f"take-part-{tokenize(self, n, npartitions)}"
            layer = {(part, i): (chunk.take_chunk, (self.name, i), n) for i in range(npartitions)}
            layer[(name, 0)] = (chunk.concat_take, n, [(part, i) for i in range(npartitions)])
        result = _new_bag(name, layer, 1, self)
        if not compute:
            return result
        values = tuple(result.compute(**kwargs))
        if warn and len(values) < n:
            warnings.warn(
                f"take: {n} elements requested but only {len(values)} found in the first "
                f"{npartitions} partition(s); pass a larger npartitions= (or -1 for all)",
                UserWarning,
                stacklevel=2,
            )
        return values

    # aggregations (see reductions.py)
    def reduction(self, perpartition: Callable, aggregate: Callable, split_every: int | None = None,
                  out_type: type = None, name: str | None = None) -> Any:
        """A tree reduction: ``perpartition(list)`` per partition, ``aggregate(list_of_results)``
        over groups of ``split_every`` results until one is left (so ``aggregate`` must accept
        its own outputs). Empty partitions are skipped. Returns an Item, or a one-partition Bag
        with ``out_type=Bag``.

        >>> b = from_sequence(range(10), npartitions=4)
        >>> b.reduction(sum, sum).compute(scheduler='sync')
        45
        >>> b.reduction(len, sum).compute(scheduler='sync')
        10
        """
        from .reductions import reduction

        return reduction(self, perpartition, aggregate, split_every=split_every,
                         out_type=Item if out_type is None else out_type, name=name)

    def fold(self, binop: Callable, combine: Callable | None = None, initial: Any = no_default,
             split_every: int | None = None, out_type: type = None) -> Any:
        """``functools.reduce(binop, ...)`` per partition, then ``combine`` across partitions.

        ``combine`` defaults to ``binop``; ``initial`` starts each partition (and is the result
        for an empty bag).

        >>> from operator import add
        >>> from_sequence(range(5), npartitions=2).fold(add).compute(scheduler='sync')
        10
        >>> from_sequence([1, 2, 3]).fold(lambda acc, x: acc + [x], add, initial=[]).compute(scheduler='sync')
        [1, 2, 3]
        """
        from .reductions import fold

        return fold(self, binop, combine, initial, split_every, Item if out_type is None else out_type)

    def count(self, split_every: int | None = None) -> "Item":
        """Number of elements."""
        from .reductions import count

        return count(self, split_every)

    def sum(self, split_every: int | None = None) -> "Item":
        """Sum of the elements."""
        from .reductions import bag_sum

        return bag_sum(self, split_every)

    def min(self, split_every: int | None = None) -> "Item":
        """Smallest element (an error for an empty bag, as ``min([])``)."""
        from .reductions import bag_min

        return bag_min(self, split_every)

    def max(self, split_every: int | None = None) -> "Item":
        """Largest element (an error for an empty bag, as ``max([])``)."""
        from .reductions import bag_max

        return bag_max(self, split_every)

    def any(self, split_every: int | None = None) -> "Item":
        """Is any element true?"""
        from .reductions import bag_any

        return bag_any(self, split_every)

    def all(self, split_every: int | None = None) -> "Item":
        """Are all elements true?"""
        from .reductions import bag_all

        return bag_all(self, split_every)

    def mean(self, split_every: int | None = None) -> "Item":
        """Arithmetic mean of the elements."""
        from .reductions import mean

        return mean(self, split_every)

    def var(self, ddof: int = 0, split_every: int | None = None) -> "Item":
        """Variance, ``sum((x - mean)**2) / (n - ddof)``."""
        from .reductions import var

        return var(self, ddof, split_every)

    def std(self, ddof: int = 0, split_every: int | None = None) -> "Item":
        """Standard deviation, the square root of :meth:`var`."""
        from .reductions import std

        return std(self, ddof, split_every)

    def frequencies(self, sort: bool = False, split_every: int | None = None) -> "Bag":
        """``(element, count)`` pairs, most common first if ``sort``.

        >>> from_sequence('abracadabra', npartitions=3).frequencies(sort=True).take(2, scheduler='sync')
        (('a', 5), ('b', 2))
        """
        from .reductions import frequencies

        return frequencies(self, sort, split_every)

    def topk(self, k: int, key: Any = None, split_every: int | None = None) -> "Bag":
        """The ``k`` largest elements, largest first; ``key`` is a function or an index/key.

        >>> from_sequence([5, 1, 9, 3], npartitions=2).topk(2).compute(scheduler='sync')
        [9, 5]
        >>> from_sequence([('a', 3), ('b', 7)]).topk(1, key=1).compute(scheduler='sync')
        [('b', 7)]
        """
        from .reductions import topk

        return topk(self, k, key, split_every)

    def distinct(self, key: Any = None, split_every: int | None = None) -> "Bag":
        """The distinct elements (or the first element for each distinct ``key(x)``).

        >>> sorted(from_sequence('abcab', npartitions=2).distinct().compute(scheduler='sync'))
        ['a', 'b', 'c']
        """
        from .reductions import distinct

        return distinct(self, key, split_every)

    def foldby(self, key: Any, binop: Callable, initial: Any = no_default, combine: Callable | None = None,
               combine_initial: Any = no_default, split_every: int | None = None) -> "Bag":
        """Group by ``key`` and fold each group, without a shuffle: ``(key, value)`` pairs.

        Per partition, ``value = binop(...binop(initial, x1)..., xn)`` for the elements of each
        key; across partitions, values are merged with ``combine`` (default ``binop``), starting
        from ``combine_initial`` if given. A callable ``initial``/``combine_initial`` is called
        to make each key's start value.

        >>> from operator import add
        >>> b = from_sequence(range(10), npartitions=3)
        >>> sorted(b.foldby(lambda x: x % 2, lambda acc, x: acc + x, 0, add).compute(scheduler='sync'))
        [(0, 20), (1, 25)]
        """
        from .reductions import foldby

        return foldby(self, key, binop, initial, combine, combine_initial, split_every)

    # shuffles (see shuffle.py)
    def groupby(self, grouper: Any, shuffle: str | None = None, npartitions: int | None = None,
                max_branch: int | None = None) -> "Bag":
        """``(key, [elements])`` pairs, one per distinct ``grouper(x)``, via a full shuffle.

        ``shuffle='disk'`` spills to files on this machine, ``'tasks'`` moves data between
        tasks (for the distributed runtime); the default follows ``bag.shuffle`` and otherwise
        picks ``'disk'`` when the configured scheduler is a local one, else ``'tasks'``.
        ``npartitions`` (default: as many as the input) sets the output's partitions.

        >>> b = from_sequence(range(10), npartitions=3)
        >>> sorted(b.groupby(lambda x: x % 3).compute(scheduler='sync'))
        [(0, [0, 3, 6, 9]), (1, [1, 4, 7]), (2, [2, 5, 8])]
        """
        from .shuffle import groupby

        return groupby(self, grouper, shuffle=shuffle, npartitions=npartitions, max_branch=max_branch)

    # output
    def to_textfiles(self, path: Any, name_function: Callable[[int], str] | None = None,
                     compression: str | None = "infer", encoding: str = "utf-8", compute: bool = True,
                     last_endline: bool = False, **kwargs: Any) -> Any:
        """Write one text file per partition, one element (a str) per line.

        See :func:`lazyarr.bag.text.to_textfiles`.
        """
        from .text import to_textfiles

        return to_textfiles(self, path, name_function=name_function, compression=compression,
                            encoding=encoding, compute=compute, last_endline=last_endline, **kwargs)

    def to_delayed(self, optimize_graph: bool = True) -> list:
        """One Delayed value per partition (each a list), for custom parallel code."""
        from ..delayed import Delayed

        dsk = _optimized_graph(self, optimize_graph)
        return [Delayed(key, dsk) for key in self.__lazyarr_keys__()]

    def to_dataframe(self, meta: Any = None, columns: Any = None) -> Any:
        """A lazyarr DataFrame with one partition per bag partition.

        Elements may be dicts (keys become columns), or tuples/lists (give ``columns`` or
        ``meta``). ``meta`` is an empty pandas DataFrame (or a dict/list of ``(name, dtype)``)
        fixing the columns and dtypes; without it the first partition is computed to infer them.
        """
        from .convert import to_dataframe

        return to_dataframe(self, meta=meta, columns=columns)


class Item(LazyarrMethodsMixin):
    """One lazily computed value, such as the result of ``bag.count()``.

    >>> item = from_sequence(range(4)).count()
    >>> item
    lazyarr.bag.Item<count-aggregate>
    >>> item.compute(scheduler='sync')
    4
    >>> item.apply(lambda n: n * 10).compute(scheduler='sync')
    40
    """

    __lazyarr_scheduler__ = "processes"
    __lazyarr_optimize__ = staticmethod(optimize)

    def __init__(self, dsk: Mapping, key: Any):
        self.dask = dsk
        self.key = key

    def __lazyarr_graph__(self) -> Mapping:
        return self.dask

    def __lazyarr_keys__(self) -> list:
        return [self.key]

    def __lazyarr_postcompute__(self) -> tuple:
        return finalize_item, ()

    def __lazyarr_postpersist__(self) -> tuple:
        return rebuild_item, (self.key,)

    def __lazyarr_tokenize__(self) -> Any:
        return ("Item", self.key)

    def __repr__(self) -> str:
        return f"lazyarr.bag.Item<{key_split(self.key)}>"

    def apply(self, func: Callable) -> "Item":
        """A new Item holding ``func(value)``."""
        name = f"{funcname(func)}-{tokenize(self, func)}"
        dsk = dict(self.dask)
        dsk[(name, 0)] = (func, self.key)
        return Item(dsk, (name, 0))

    def to_delayed(self, optimize_graph: bool = True) -> Any:
        """This value as a Delayed."""
        from ..delayed import Delayed

        return Delayed(self.key, _optimized_graph(self, optimize_graph))


def finalize_bag(results: Any) -> list:
    """The computed partitions concatenated into one list."""
    results = list(results)
    if results and all(isinstance(r, Iterable) and not isinstance(r, (str, bytes)) for r in results):
        return list(chain.from_iterable(results))
    return results


def finalize_item(results: Any) -> Any:
    """The single computed value of an Item."""
    return results[0]


def rebuild_bag(dsk: Mapping, name: str, npartitions: int) -> Bag:
    """A Bag on ``dsk`` (computed partitions, or an optimized graph) for persist/optimize."""
    dsk = dict(dsk)
    for i in range(npartitions):
        key = (name, i)
        value = dsk.get(key)
        if type(value) is list:  # computed data: keep the graph walker out of it
            dsk[key] = (list, (Quote(value),))
        elif key in dsk and not istask(value) and not is_remote_data(value):
            dsk[key] = (Quote(value),)
    return Bag(dsk, name, npartitions)


def rebuild_item(dsk: Mapping, key: Any) -> Item:
    """An Item on ``dsk`` (a computed value, or an optimized graph) for persist/optimize."""
    dsk = dict(dsk)
    value = dsk.get(key)
    if key in dsk and not istask(value) and not is_remote_data(value):
        dsk[key] = (Quote(value),)
    return Item(dsk, key)


def _optimized_graph(coll: Any, optimize_graph: bool) -> dict:
    if not optimize_graph:
        return dict(coll.__lazyarr_graph__())
    return optimize(coll.__lazyarr_graph__(), coll.__lazyarr_keys__())


# -- graph-building helpers -----------------------------------------------------------------------

def _new_bag(name: str, layer: dict, npartitions: int, *collections: Any) -> Bag:
    """A Bag whose graph is ``layer`` on top of the graphs of ``collections``."""
    dsk: dict = {}
    for coll in collections:
        dsk.update(coll.__lazyarr_graph__())
    dsk.update(layer)
    return Bag(dsk, name, npartitions)


def _broadcast_ref(value: Any) -> tuple:
    """How to pass ``value`` whole to every task: ``(argument, collection_or_None)``.

    An Item or Delayed (any collection with a single output key) is passed by key, so tasks
    get its computed value; anything else is quoted.
    """
    if isinstance(value, Bag):
        raise TypeError("a Bag cannot be broadcast to every element; pass it as a positional argument to map")
    if is_lazyarr_collection(value):
        keys = list(flatten(value.__lazyarr_keys__()))
        if len(keys) != 1:
            raise TypeError(
                f"cannot pass a {type(value).__name__} with {len(keys)} keys as an argument; "
                "pass a Bag, an Item, a Delayed value or a plain object"
            )
        return keys[0], value
    return quote(value), None


def _broadcast_kwargs(kwargs: dict) -> tuple:
    """``kwargs`` as a task argument (a dict, Items/Delayed by key) and the collections used."""
    refs = {}
    deps = []
    for k, v in kwargs.items():
        refs[k], dep = _broadcast_ref(v)
        if dep is not None:
            deps.append(dep)
    return refs, deps


def _partitioned_args(args: tuple, opname: str) -> tuple:
    """Sort ``args`` into per-partition Bags and broadcast values.

    Returns ``(npartitions, positions_of_bags, spec, collections)`` where ``spec[p]`` is a bag
    name (at bag positions) or the broadcast argument.
    """
    bags = [a for a in args if isinstance(a, Bag)]
    if not bags:
        raise TypeError(f"{opname} needs at least one Bag among its arguments")
    npartitions = bags[0].npartitions
    for b in bags[1:]:
        if b.npartitions != npartitions:
            raise ValueError(
                f"{opname}: the bags have different numbers of partitions ({npartitions} and "
                f"{b.npartitions}); repartition them to match first"
            )
    positions = []
    spec = []
    collections: list = list(bags)
    for p, a in enumerate(args):
        if isinstance(a, Bag):
            positions.append(p)
            spec.append(a.name)
        else:
            ref, dep = _broadcast_ref(a)
            spec.append(ref)
            if dep is not None:
                collections.append(dep)
    return npartitions, tuple(positions), spec, collections


def _args_for(i: int, positions: tuple, spec: list) -> list:
    args = list(spec)
    for p in positions:
        args[p] = (spec[p], i)
    return args


# -- creating bags --------------------------------------------------------------------------------

def from_sequence(seq: Iterable, partition_size: int | None = None, npartitions: int | None = None) -> Bag:
    """A Bag holding the elements of an in-memory sequence.

    Give ``npartitions`` (exactly that many near-equal partitions, some empty if the sequence
    is shorter) or ``partition_size`` (elements per partition), not both. By default the
    sequence is split into ``min(len(seq), 100)`` partitions.

    >>> b = from_sequence(range(10), npartitions=3)
    >>> b.npartitions, b.compute(scheduler='sync')
    (3, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> from_sequence('abcde', partition_size=2).npartitions
    3
    """
    seq = list(seq)
    n = len(seq)
    if partition_size is not None and npartitions is not None:
        raise ValueError("from_sequence: give partition_size or npartitions, not both")
    if partition_size is not None:
        if not isinstance(partition_size, int) or partition_size < 1:
            raise ValueError(f"from_sequence: partition_size must be a positive integer, not {partition_size!r}")
        parts = [seq[i:i + partition_size] for i in range(0, n, partition_size)] or [[]]
    else:
        if npartitions is None:
            npartitions = max(1, min(n, 100))
        if not isinstance(npartitions, int) or npartitions < 1:
            raise ValueError(f"from_sequence: npartitions must be a positive integer, not {npartitions!r}")
        parts = [seq[n * j // npartitions:n * (j + 1) // npartitions] for j in range(npartitions)]
    name = f"from_sequence-{tokenize(seq, len(parts))}"
    layer = {(name, i): (list, (Quote(part),)) for i, part in enumerate(parts)}
    return Bag(layer, name, len(parts))


def bag_range(n: int, npartitions: int) -> Bag:
    """The integers ``0 .. n-1`` in ``npartitions`` near-equal partitions.

    >>> bag_range(5, npartitions=2).compute(scheduler='sync')
    [0, 1, 2, 3, 4]
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"range: n must be a non-negative integer, not {n!r}")
    if not isinstance(npartitions, int) or npartitions < 1:
        raise ValueError(f"range: npartitions must be a positive integer, not {npartitions!r}")
    name = f"range-{tokenize(n, npartitions)}"
    layer = {
        (name, j): (reify, (range, n * j // npartitions, n * (j + 1) // npartitions))
        for j in range(npartitions)
    }
    return Bag(layer, name, npartitions)


def from_delayed(values: Any) -> Bag:
    """A Bag with one partition per Delayed value (each computing an iterable).

    >>> from lazyarr import delayed
    >>> parts = [delayed(list)(range(i)) for i in (1, 2)]
    >>> from_delayed(parts).compute(scheduler='sync')
    [0, 0, 1]
    """
    if is_lazyarr_collection(values) and not isinstance(values, Bag):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError("from_delayed needs at least one Delayed value")
    refs = []
    for v in values:
        if isinstance(v, Bag) or not is_lazyarr_collection(v):
            raise TypeError(f"from_delayed takes Delayed values (one per partition), not {type(v).__name__}")
        refs.append(_broadcast_ref(v)[0])
    name = f"from-delayed-{tokenize(*values)}"
    layer = {(name, i): (reify, ref) for i, ref in enumerate(refs)}
    return _new_bag(name, layer, len(values), *values)


def concat(bags: Iterable[Bag]) -> Bag:
    """One Bag with the partitions of ``bags`` one after another.

    >>> a, b = from_sequence([1, 2]), from_sequence([3])
    >>> concat([a, b]).compute(scheduler='sync')
    [1, 2, 3]
    """
    bags = list(bags)
    if not bags or not all(isinstance(b, Bag) for b in bags):
        raise TypeError("concat needs a non-empty list of Bags")
    name = f"concat-{tokenize(*bags)}"
    layer = {}
    for b in bags:
        for i in range(b.npartitions):
            layer[(name, len(layer))] = (reify, (b.name, i))
    return _new_bag(name, layer, len(layer), *bags)


def bag_map(func: Callable, *args: Any, **kwargs: Any) -> Bag:
    """``func`` applied element-wise across the Bags among ``args`` (in lockstep).

    Non-bag arguments (Items, Delayed values, plain objects) and ``kwargs`` are passed whole to
    every call. The bags must have the same partitioning.

    >>> from operator import add
    >>> a = from_sequence([1, 2, 3], npartitions=2)
    >>> bag_map(add, a, 10).compute(scheduler='sync')
    [11, 12, 13]
    >>> bag_map(add, a, a).compute(scheduler='sync')
    [2, 4, 6]
    """
    if not callable(func):
        raise TypeError(f"map needs a callable, not {type(func).__name__}")
    npartitions, positions, spec, collections = _partitioned_args(args, "map")
    name = f"{funcname(func)}-{tokenize(func, 'map', *args, **kwargs)}"
    if positions == (0,) and len(args) == 1 and not kwargs:
        source = spec[0]
        layer = {(name, i): (reify, (chunk.map_elements, func, i, (source, i))) for i in range(npartitions)}
    else:
        kw, deps = _broadcast_kwargs(kwargs)
        collections.extend(deps)
        layer = {
            (name, i): (reify, (chunk.map_chunk, func, i, positions, _args_for(i, positions, spec), kw))
            for i in range(npartitions)
        }
    return _new_bag(name, layer, npartitions, *collections)


def map_partitions(func: Callable, *args: Any, **kwargs: Any) -> Bag:
    """``func(*args, **kwargs)`` once per partition, with each Bag argument's partition (a list).

    ``func`` may return any iterable (it is materialized as the new partition).

    >>> b = from_sequence(range(6), npartitions=3)
    >>> map_partitions(lambda part, k: [x * k for x in part], b, 10).compute(scheduler='sync')
    [0, 10, 20, 30, 40, 50]
    """
    if not callable(func):
        raise TypeError(f"map_partitions needs a callable, not {type(func).__name__}")
    npartitions, positions, spec, collections = _partitioned_args(args, "map_partitions")
    kw, deps = _broadcast_kwargs(kwargs)
    collections.extend(deps)
    name = f"{funcname(func)}-{tokenize(func, 'map-partitions', *args, **kwargs)}"
    layer = {
        (name, i): (chunk.map_partition, func, i, positions, _args_for(i, positions, spec), kw)
        for i in range(npartitions)
    }
    return _new_bag(name, layer, npartitions, *collections)


def bag_zip(*bags: Bag) -> Bag:
    """Tuples of corresponding elements of several identically partitioned bags.

    >>> a = from_sequence([1, 2, 3], npartitions=2)
    >>> bag_zip(a, a.map(str)).compute(scheduler='sync')
    [(1, '1'), (2, '2'), (3, '3')]
    """
    if not bags or not all(isinstance(b, Bag) for b in bags):
        raise TypeError("zip needs one or more Bags")
    npartitions = bags[0].npartitions
    if any(b.npartitions != npartitions for b in bags):
        raise ValueError(
            "zip: the bags have different numbers of partitions "
            f"({[b.npartitions for b in bags]}); they must be partitioned identically"
        )
    name = f"zip-{tokenize(*bags)}"
    layer = {
        (name, i): (reify, (chunk.zip_chunk, i, *[(b.name, i) for b in bags]))
        for i in range(npartitions)
    }
    return _new_bag(name, layer, npartitions, *bags)


def repartition(bag: Bag, npartitions: int) -> Bag:
    """``bag`` with its elements, order kept, in ``npartitions`` partitions."""
    if not isinstance(npartitions, int) or npartitions < 1:
        raise ValueError(f"repartition: npartitions must be a positive integer, not {npartitions!r}")
    n = bag.npartitions
    if npartitions == n:
        return bag
    name = f"repartition-{tokenize(bag, npartitions)}"
    layer: dict = {}
    if npartitions < n:
        for j in range(npartitions):
            lo, hi = n * j // npartitions, n * (j + 1) // npartitions
            layer[(name, j)] = (chunk.concat_partitions, [(bag.name, i) for i in range(lo, hi)])
    else:
        out = 0
        for i in range(n):
            pieces = npartitions * (i + 1) // n - npartitions * i // n
            for piece in range(pieces):
                layer[(name, out)] = (chunk.split_partition, (bag.name, i), pieces, piece)
                out += 1
    return _new_bag(name, layer, npartitions, bag)


# -- strings --------------------------------------------------------------------------------------

class StringAccessor:
    """``bag.str.<method>(...)``: any ``str`` method applied to every element.

    >>> b = from_sequence(['Alice Smith', 'Bob Jones', 'Charlie Smith'])
    >>> b.str.lower().compute(scheduler='sync')
    ['alice smith', 'bob jones', 'charlie smith']
    >>> b.str.match('*Smith').compute(scheduler='sync')
    ['Alice Smith', 'Charlie Smith']
    >>> b.str.split().flatten().count().compute(scheduler='sync')
    6
    """

    def __init__(self, bag: Bag):
        self._bag = bag

    def __dir__(self) -> list:
        return sorted(set(dir(type(self))) | {m for m in dir(str) if not m.startswith("_")})

    def __getattr__(self, name: str) -> Callable[..., Bag]:
        if name.startswith("_") or not callable(getattr(str, name, None)):
            raise AttributeError(f"'str' has no method {name!r} to apply to a bag's elements")

        def method(*args: Any, **kwargs: Any) -> Bag:
            return self._bag.map(methodcaller(name, *args, **kwargs))

        method.__name__ = name
        method.__doc__ = f"``x.{name}(*args, **kwargs)`` for every element ``x`` (see ``str.{name}``)."
        return method

    def match(self, pattern: str) -> Bag:
        """The elements matching a shell-style wildcard ``pattern`` (``fnmatch``, case-sensitive)."""
        from fnmatch import fnmatchcase
        from functools import partial

        return self._bag.filter(partial(_fnmatch_element, pattern, fnmatchcase))


def _fnmatch_element(pattern: str, match: Callable, element: str) -> bool:
    return match(element, pattern)
