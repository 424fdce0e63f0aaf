"""Functions that run inside tasks, one partition at a time.

Every function here is a plain module-level function (so it pickles by reference to worker
processes) taking partitions as *iterables consumed once*: after fusion the bag optimizer hands
a partition from one step to the next as a lazy iterator instead of a list (see
:mod:`lazyarr.bag.optimize`). A function that needs a real list calls :func:`reify` itself.

Errors raised by user functions keep their type; a note naming the function, the element and
the partition is attached (``BaseException.add_note``), so the traceback the caller sees says
where the bad element came from.
"""
from __future__ import annotations

import heapq
import math
import reprlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from operator import itemgetter
from typing import Any

from ..utils import funcname
from ..core import Literal as Quote


class _Sentinel:
    """A named singleton that survives pickling (so identity checks work in worker processes)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def __reduce__(self) -> str:
        return self.name


#: "no value given" for optional arguments such as ``initial`` and ``default``.
no_default = _Sentinel("no_default")
#: what a reduction step returns for an empty partition; aggregates skip it.
no_result = _Sentinel("no_result")

_short_repr = reprlib.Repr()
_short_repr.maxstring = 80
_short_repr.maxother = 80


def quote(value: Any) -> Any:
    """``value`` as a task argument: plain numbers pass as they are, anything else is quoted."""
    if value is None or type(value) in (int, float, bool, complex):
        return value
    return (Quote(value),)


def reify(seq: Any) -> Any:
    """Materialize a lazy partition into a list (lists and non-iterators pass through).

    >>> reify(iter([1, 2]))
    [1, 2]
    >>> reify((x for x in range(0)))
    []
    """
    if isinstance(seq, Iterator):
        return list(seq)
    return seq


def annotate(exc: BaseException, func: Any, element: Any, partition: int) -> None:
    """Attach a note naming where ``exc`` came from (once: the innermost step wins)."""
    if getattr(exc, "_lazyarr_annotated", False):
        return
    try:
        exc._lazyarr_annotated = True  # type: ignore[attr-defined]
    except Exception:
        return
    exc.add_note(
        f"lazyarr.bag: raised by {funcname(func)} on element {_short_repr.repr(element)} "
        f"of partition {partition}"
    )


# -- element-wise steps ---------------------------------------------------------------------------

def map_elements(func: Callable, partition: int, seq: Iterable) -> Iterator:
    """``func(x)`` for each element ``x`` of one partition."""
    for x in seq:
        try:
            yield func(x)
        except Exception as e:
            annotate(e, func, x, partition)
            raise


def map_chunk(func: Callable, partition: int, bag_positions: tuple, args: list, kwargs: dict) -> Iterator:
    """``func(*args, **kwargs)`` with the arguments at ``bag_positions`` taken element by element
    from partitions of several bags in lockstep, the others broadcast."""
    iterables = [args[p] for p in bag_positions]
    call_args = list(args)
    rows = zip(*iterables, strict=True)
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except ValueError as e:
            if str(e).startswith("zip()"):
                raise ValueError(
                    f"map over several bags: partition {partition} has different lengths in the "
                    f"bags given ({e}); the bags must be partitioned identically"
                ) from None
            raise
        for p, v in zip(bag_positions, values):
            call_args[p] = v
        try:
            yield func(*call_args, **kwargs)
        except Exception as e:
            annotate(e, func, values if len(values) > 1 else values[0], partition)
            raise


def starmap_chunk(func: Callable, partition: int, seq: Iterable, kwargs: dict) -> Iterator:
    """``func(*x, **kwargs)`` for each element ``x``."""
    for x in seq:
        try:
            yield func(*x, **kwargs)
        except Exception as e:
            annotate(e, func, x, partition)
            raise


def filter_chunk(predicate: Callable, keep: bool, partition: int, seq: Iterable) -> Iterator:
    """The elements for which ``bool(predicate(x)) == keep``."""
    for x in seq:
        try:
            verdict = predicate(x)
        except Exception as e:
            annotate(e, predicate, x, partition)
            raise
        if bool(verdict) is keep:
            yield x


def pluck_chunk(key: Any, default: Any, partition: int, seq: Iterable) -> Iterator:
    """``x[key]`` for each element (a tuple of values when ``key`` is a list)."""
    if isinstance(key, list):
        keys = key
        if default is no_default:
            getter = itemgetter(*keys)
            if len(keys) == 1:
                getter = _tuple_of(getter)
        else:
            getter = _getter_with_default(keys, default)
    else:
        keys = [key]
        getter = itemgetter(key) if default is no_default else _getter_with_default(key, default)
    for x in seq:
        try:
            yield getter(x)
        except (KeyError, IndexError) as e:
            missing = e.args[0] if isinstance(e, KeyError) and e.args else key
            if isinstance(key, list) and missing not in keys:
                missing = key
            raise type(e)(
                f"pluck: key {missing!r} not found in element {_short_repr.repr(x)} of partition "
                f"{partition}; pass default= to pluck to use a fill value"
            ) from None
        except TypeError as e:
            raise TypeError(
                f"pluck: cannot take {key!r} from element {_short_repr.repr(x)} of partition "
                f"{partition}: {e}"
            ) from None


def _tuple_of(getter: Callable) -> Callable:
    return lambda x: (getter(x),)


def _getter_with_default(key: Any, default: Any) -> Callable:
    def get_one(x: Any, k: Any) -> Any:
        try:
            return x[k]
        except (KeyError, IndexError):
            return default

    if isinstance(key, list):
        return lambda x: tuple(get_one(x, k) for k in key)
    return lambda x: get_one(x, key)


def zip_chunk(partition: int, *seqs: Iterable) -> Iterator:
    """Tuples of corresponding elements of several partitions, which must be equally long."""
    rows = zip(*seqs, strict=True)
    while True:
        try:
            yield next(rows)
        except StopIteration:
            return
        except ValueError as e:
            if str(e).startswith("zip()"):
                raise ValueError(
                    f"zip: partition {partition} has different lengths in the bags given ({e}); "
                    "the bags must be partitioned identically"
                ) from None
            raise


def product_chunk(left: Iterable, right: Iterable) -> list:
    """All pairs ``(a, b)`` of an element of ``left`` and one of ``right``."""
    right = list(right)
    return [(a, b) for a in left for b in right]


def map_partition(func: Callable, partition: int, bag_positions: tuple, args: list, kwargs: dict) -> Any:
    """``func(*args, **kwargs)`` with whole partitions (as lists) at ``bag_positions``."""
    call_args = list(args)
    for p in bag_positions:
        call_args[p] = reify(call_args[p])
    try:
        return reify(func(*call_args, **kwargs))
    except Exception as e:
        if not getattr(e, "_lazyarr_annotated", False):
            e._lazyarr_annotated = True  # type: ignore[attr-defined]
            e.add_note(f"lazyarr.bag: raised by {funcname(func)} on partition {partition}")
        raise


def random_sample_chunk(seq: Iterable, prob: float, seed: int) -> list:
    """Each element kept with probability ``prob``, reproducibly for a given ``seed``."""
    import random

    draw = random.Random(seed).random
    return [x for x in seq if draw() < prob]


def accumulate_chunk(binop: Callable, seq: Iterable, carry: Any, partition: int) -> tuple:
    """Running ``binop`` over one partition, starting from the previous partition's last value.

    Returns ``(values, last)``; ``last`` is ``carry`` unchanged for an empty partition.
    """
    out = []
    acc = carry
    for x in seq:
        if acc is no_default:
            acc = x
        else:
            try:
                acc = binop(acc, x)
            except Exception as e:
                annotate(e, binop, x, partition)
                raise
        out.append(acc)
    return out, acc


def accumulate_first(binop: Callable, seq: Iterable, initial: Any, partition: int) -> tuple:
    """:func:`accumulate_chunk` for the first partition: ``initial`` is emitted as the first value."""
    values, last = accumulate_chunk(binop, seq, initial, partition)
    if initial is not no_default:
        values.insert(0, initial)
    return values, last


def join_chunk(index: dict, on_self: Callable, partition: int, seq: Iterable) -> Iterator:
    """``(other, x)`` for each element ``x`` and each ``other`` in ``index`` sharing its key."""
    for x in seq:
        try:
            k = on_self(x)
        except Exception as e:
            annotate(e, on_self, x, partition)
            raise
        for other in index.get(k, ()):
            yield (other, x)


def build_join_index(other: Iterable, on_other: Callable) -> dict:
    """Elements of ``other`` grouped by ``on_other``, in their original order."""
    index: dict = {}
    for y in other:
        index.setdefault(on_other(y), []).append(y)
    return index


def take_chunk(seq: Iterable, n: int) -> list:
    """The first ``n`` elements of a partition (only those are computed, when lazy)."""
    return list(islice(seq, n))


def concat_take(n: int, parts: list) -> list:
    """The first ``n`` elements of several partitions, in order."""
    return list(islice(chain.from_iterable(parts), n))


def concat_partitions(parts: list) -> list:
    """Several partitions concatenated into one list."""
    return list(chain.from_iterable(parts))


def split_partition(seq: Iterable, pieces: int, which: int) -> list:
    """Piece ``which`` of ``pieces`` near-equal contiguous pieces of a partition."""
    seq = seq if isinstance(seq, list) else list(seq)
    n = len(seq)
    start = n * which // pieces
    stop = n * (which + 1) // pieces
    return seq[start:stop]


def getter(key: Any) -> Callable:
    """``key`` if it is callable, else a function returning ``x[key]``."""
    if callable(key):
        return key
    return itemgetter(key)


# -- reduction steps ------------------------------------------------------------------------------

def apply_nonempty(func: Callable, seq: Any, lazy_ok: bool) -> Any:
    """``func(seq)``, or :data:`no_result` if the partition is empty.

    ``lazy_ok`` says ``func`` accepts a one-pass iterator; otherwise it is given a list.
    """
    if isinstance(seq, Iterator):
        try:
            first = next(seq)
        except StopIteration:
            return no_result
        seq = chain((first,), seq)
        if not lazy_ok:
            seq = list(seq)
    elif not lazy_ok and not isinstance(seq, list):
        seq = list(seq)
    if not isinstance(seq, Iterator) and len(seq) == 0:
        return no_result
    return func(seq)


def aggregate_nonempty(func: Callable, parts: list, is_last: bool, finalize: Callable | None = None) -> Any:
    """``func`` of the partial results that are not :data:`no_result`.

    An intermediate level with nothing to combine passes :data:`no_result` up; the last level
    calls ``func`` anyway (``sum([])`` is ``0``, ``max([])`` is an error, as in Python), then
    ``finalize`` if given.
    """
    parts = [p for p in parts if p is not no_result]
    if not parts and not is_last:
        return no_result
    result = func(parts)
    if is_last and finalize is not None:
        result = finalize(result)
    return result


def count_elements(seq: Iterable) -> int:
    """Number of elements of an iterable, without building a list."""
    if hasattr(seq, "__len__"):
        return len(seq)
    n = 0
    for n, _ in enumerate(seq, 1):
        pass
    return n


def sum_count(seq: Iterable) -> tuple:
    """``(sum, count)`` of one partition."""
    total = 0
    n = 0
    for x in seq:
        total = total + x
        n += 1
    return total, n


def combine_sum_count(parts: list) -> tuple:
    """Sum the ``(sum, count)`` pairs of several partitions."""
    total = 0
    n = 0
    for s, c in parts:
        total = total + s
        n += c
    return total, n


def finish_mean(pair: tuple) -> float:
    """Mean from a ``(sum, count)`` pair; an empty bag has none."""
    total, n = pair
    if n == 0:
        raise ValueError("mean of an empty bag: there are no elements")
    return total / n


def moments(seq: Iterable) -> tuple:
    """``(count, mean, sum of squared deviations)`` of one partition (Welford's update)."""
    n = 0
    mean = 0.0
    m2 = 0.0
    for x in seq:
        n += 1
        delta = x - mean
        mean += delta / n
        m2 += delta * (x - mean)
    return n, mean, m2


def combine_moments(parts: list) -> tuple:
    """Merge ``(count, mean, M2)`` triples (Chan et al.'s pairwise formula)."""
    n, mean, m2 = 0, 0.0, 0.0
    for nb, meanb, m2b in parts:
        if nb == 0:
            continue
        total = n + nb
        delta = meanb - mean
        mean += delta * nb / total
        m2 += m2b + delta * delta * n * nb / total
        n = total
    return n, mean, m2


def finish_var(ddof: int, triple: tuple) -> float:
    """Variance from ``(count, mean, M2)`` with ``ddof`` delta degrees of freedom."""
    n, _, m2 = triple
    if n - ddof <= 0:
        raise ValueError(f"variance with ddof={ddof} needs more than {ddof} elements; the bag has {n}")
    return m2 / (n - ddof)


def finish_std(ddof: int, triple: tuple) -> float:
    """Standard deviation from ``(count, mean, M2)``."""
    return math.sqrt(finish_var(ddof, triple))


def any_of(seq: Iterable) -> bool:
    """``any`` as a named, picklable task function."""
    return any(seq)


def all_of(seq: Iterable) -> bool:
    """``all`` as a named, picklable task function."""
    return all(seq)


def count_frequencies(seq: Iterable) -> Counter:
    """Occurrences of each element of one partition (counted in C by ``Counter``)."""
    return Counter(seq)


def merge_frequencies(parts: list) -> Counter:
    """Add up several partitions' counts."""
    if not parts:
        return Counter()
    total = Counter(parts[0])
    for counts in parts[1:]:
        total.update(counts)
    return total


def frequencies_items(sort: bool, counts: Counter) -> list:
    """``(element, count)`` pairs, most frequent first when ``sort``."""
    if sort:
        return counts.most_common()
    return list(counts.items())


def nlargest(k: int, key: Callable | None, seq: Iterable) -> list:
    """The ``k`` largest elements of one partition, largest first."""
    return heapq.nlargest(k, seq, key=key)


def nlargest_of_parts(k: int, key: Callable | None, parts: list) -> list:
    """The ``k`` largest among several partitions' candidates."""
    return heapq.nlargest(k, chain.from_iterable(parts), key=key)


def distinct_chunk(key: Callable | None, seq: Iterable) -> dict:
    """First element seen for each distinct key (the element itself when ``key`` is None)."""
    if key is None:
        return dict.fromkeys(seq)
    seen: dict = {}
    for x in seq:
        k = key(x)
        if k not in seen:
            seen[k] = x
    return seen


def merge_distinct(parts: list) -> dict:
    """Merge per-partition :func:`distinct_chunk` results, keeping the first element per key."""
    merged: dict = {}
    for part in parts:
        for k, v in part.items():
            if k not in merged:
                merged[k] = v
    return merged


def distinct_values(key: Callable | None, merged: dict) -> list:
    """The distinct elements, in order of first appearance."""
    return list(merged) if key is None else list(merged.values())


def fold_chunk(binop: Callable, initial: Any, seq: Iterable) -> Any:
    """``functools.reduce(binop, seq[, initial])`` on one partition."""
    it = iter(seq)
    if initial is no_default:
        try:
            acc = next(it)
        except StopIteration:
            return no_result
    else:
        acc = initial
    for x in it:
        acc = binop(acc, x)
    return acc


def fold_parts(combine: Callable, initial: Any, parts: list) -> Any:
    """Combine partial folds; an empty bag folds to ``initial`` (an error without one)."""
    if not parts:
        if initial is no_default:
            raise TypeError("fold of an empty bag with no initial value")
        return initial
    acc = parts[0]
    for x in parts[1:]:
        acc = combine(acc, x)
    return acc


def foldby_chunk(key: Callable, binop: Callable, initial: Any, seq: Iterable) -> dict:
    """Per-key fold of one partition: ``{key(x): binop(...binop(initial, x1)..., xn)}``.

    A callable ``initial`` is called to make each key's starting value (so mutable starts such
    as ``list`` are not shared between keys).
    """
    acc: dict = {}
    make_initial = callable(initial)
    for x in seq:
        k = key(x)
        if k in acc:
            acc[k] = binop(acc[k], x)
        elif initial is no_default:
            acc[k] = x
        else:
            acc[k] = binop(initial() if make_initial else initial, x)
    return acc


def foldby_combine(combine: Callable, parts: list) -> dict:
    """Merge per-partition fold dicts with ``combine`` (an intermediate tree level)."""
    acc: dict = {}
    for part in parts:
        for k, v in part.items():
            acc[k] = combine(acc[k], v) if k in acc else v
    return acc


def foldby_finish(combine: Callable, combine_initial: Any, parts: list) -> list:
    """The last level: merge, start each key from ``combine_initial`` if given, emit pairs."""
    if combine_initial is no_default:
        merged = foldby_combine(combine, parts)
        return list(merged.items())
    make_initial = callable(combine_initial)
    acc: dict = {}
    for part in parts:
        for k, v in part.items():
            if k not in acc:
                acc[k] = combine(combine_initial() if make_initial else combine_initial, v)
            else:
                acc[k] = combine(acc[k], v)
    return list(acc.items())
