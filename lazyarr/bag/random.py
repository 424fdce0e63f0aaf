"""Uniform random samples of a whole bag: ``sample`` (without replacement) and ``choices`` (with).

Both are tree reductions whose partial results are small: each partition draws at most ``k``
elements and remembers how many it had; merging two partials gives exactly the distribution a
draw from the two partitions together would have had, so the final sample is uniform over the
whole bag, not just over each partition.

* ``sample``: two uniform samples without replacement, of populations ``n1`` and ``n2``, merge
  by first drawing how many of the ``k`` come from the first population (a hypergeometric
  count, drawn here by simulating the ``k`` draws), then taking that many from the first
  sample and the rest from the second.
* ``choices``: each of the ``k`` draws picks a partition with probability proportional to its
  size, then uses the next unused draw of that partition (its draws are independent uniform
  picks, so taking them in order is as good as drawing afresh).

``random_state`` (an int) makes the result reproducible: every partition and every merge gets
its own seed derived from it.
"""
from __future__ import annotations

import random as _random
from typing import Any

from ..tokenize import tokenize
from .core import Bag, _new_bag
from .reductions import tree_reduce

__all__ = ["choices", "sample"]


def sample(population: Bag, k: int, split_every: int | None = None, random_state: int | None = None) -> Bag:
    """``k`` distinct elements chosen uniformly from the bag (``random.sample`` over all of it).

    Returns a one-partition Bag. Raises ``ValueError`` at compute time if the bag has fewer
    than ``k`` elements, as ``random.sample`` does.

    >>> import lazyarr.bag as db
    >>> b = db.from_sequence(range(100), npartitions=5)
    >>> s = db.random.sample(b, 10, random_state=1).compute(scheduler='sync')
    >>> len(s), len(set(s)), all(0 <= x < 100 for x in s)
    (10, 10, True)
    """
    _check_k(k, "sample")
    return _reduce(population, "random-sample", _sample_partition, _merge_samples, k, split_every, random_state)


def choices(population: Bag, k: int = 1, split_every: int | None = None, random_state: int | None = None) -> Bag:
    """``k`` elements drawn uniformly with replacement from the bag (``random.choices``).

    Returns a one-partition Bag; an empty bag raises ``ValueError`` at compute time.

    >>> import lazyarr.bag as db
    >>> b = db.from_sequence(range(4), npartitions=2)
    >>> c = db.random.choices(b, 20, random_state=3).compute(scheduler='sync')
    >>> len(c), set(c) <= {0, 1, 2, 3}
    (20, True)
    """
    _check_k(k, "choices")
    return _reduce(population, "random-choices", _choices_partition, _merge_choices, k, split_every, random_state)


def _check_k(k: Any, what: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"{what}: k must be a non-negative integer, not {k!r}")


def _reduce(population: Bag, opname: str, per_partition: Any, merge: Any, k: int, split_every: Any,
            random_state: int | None) -> Bag:
    if not isinstance(population, Bag):
        raise TypeError(f"{opname}: population must be a lazyarr Bag, not {type(population).__name__}")
    rng = _random.Random(random_state)
    seeds = [rng.getrandbits(63) for _ in range(population.npartitions)]
    token = tokenize(population, opname, k, split_every, seeds)
    name = f"{opname}-draw-{token}"
    layer = {(name, i): (per_partition, (population.name, i), k, seeds[i]) for i in range(population.npartitions)}
    partials = _new_bag(name, layer, population.npartitions, population)
    return tree_reduce(partials, _only, _Merge(merge, k), opname=opname, token=token, split_every=split_every,
                       out_type=Bag, finalize=_Finish(opname, k), lazy_ok=False)


# A partial result: [(drawn elements, population size, seed for the next merge)], one per partition
# (wrapped in a list so a partition with no elements still passes its size of 0 up the tree).

def _sample_partition(seq: Any, k: int, seed: int) -> list:
    items = list(seq)
    return [(_random.Random(seed).sample(items, min(k, len(items))), len(items), seed)]


def _choices_partition(seq: Any, k: int, seed: int) -> list:
    items = list(seq)
    drawn = _random.Random(seed).choices(items, k=k) if items else []
    return [(drawn, len(items), seed)]


def _only(parts: list) -> tuple:
    return parts[0]


class _Merge:
    """Fold a list of partials pairwise with ``merge`` (picklable, unlike a closure)."""

    def __init__(self, merge: Any, k: int) -> None:
        self.merge, self.k = merge, k

    def __call__(self, partials: list) -> tuple:
        if not partials:  # a bag of no partitions
            return ([], 0, 0)
        acc = partials[0]
        for other in partials[1:]:
            seed = hash((acc[2], other[2])) & (2**63 - 1)
            acc = (self.merge(acc, other, self.k, _random.Random(seed)), acc[1] + other[1], seed)
        return acc


def _merge_samples(a: tuple, b: tuple, k: int, rng: _random.Random) -> list:
    (sa, na, _), (sb, nb, _) = a, b
    want = min(k, na + nb)
    from_a, left_a, left_b = 0, na, nb
    for _ in range(want):  # how many of a uniform draw of `want` come from a: hypergeometric
        if rng.randrange(left_a + left_b) < left_a:
            from_a, left_a = from_a + 1, left_a - 1
        else:
            left_b -= 1
    merged = rng.sample(sa, from_a) + rng.sample(sb, want - from_a)
    rng.shuffle(merged)
    return merged


def _merge_choices(a: tuple, b: tuple, k: int, rng: _random.Random) -> list:
    (ca, na, _), (cb, nb, _) = a, b
    if na + nb == 0:
        return []
    merged, ia, ib = [], 0, 0
    for _ in range(k):
        if rng.randrange(na + nb) < na:
            merged.append(ca[ia])
            ia += 1
        else:
            merged.append(cb[ib])
            ib += 1
    return merged


class _Finish:
    """The last step: the drawn elements, or the error ``random`` would raise."""

    def __init__(self, opname: str, k: int) -> None:
        self.opname, self.k = opname, k

    def __call__(self, partial: tuple) -> list:
        drawn, n, _ = partial
        if self.opname == "random-sample" and n < self.k:
            raise ValueError(f"sample: k={self.k} is larger than the bag ({n} elements)")
        if self.opname == "random-choices" and n == 0 and self.k:
            raise ValueError("choices: cannot choose from an empty bag")
        return drawn
