"""Aggregations against plain Python, on random data, across partitionings and tree shapes."""
from __future__ import annotations

import functools
import heapq
import math
import operator
import statistics
from collections import Counter

import pytest

import lazyarr
import lazyarr.bag as db

from ._bag_data import random_ints, random_records, random_words

# (npartitions, split_every): one partition; a tree of several levels; no tree; more
# partitions than elements, so some are empty
SHAPES = [(1, None), (9, 2), (9, False), (12, 3)]


def bag_of(data: list, npartitions: int) -> db.Bag:
    return db.from_sequence(data, npartitions=npartitions)


@pytest.mark.parametrize("npartitions, split_every", SHAPES)
def test_scalar_aggregations(scheduler, npartitions, split_every):
    data = random_ints(npartitions, 10 if npartitions == 12 else 80)
    b = bag_of(data, npartitions)
    kw = {"split_every": split_every}
    items = [b.count(**kw), b.sum(**kw), b.min(**kw), b.max(**kw), b.any(**kw), b.all(**kw),
             b.map(lambda x: x > -49).all(**kw), b.map(lambda x: x > 48).any(**kw)]
    got = lazyarr.compute(*items, scheduler=scheduler)
    assert list(got) == [len(data), sum(data), min(data), max(data), any(data), all(data),
                         all(x > -49 for x in data), any(x > 48 for x in data)]
    mean, pvar, var, pstd, std = lazyarr.compute(
        b.mean(**kw), b.var(**kw), b.var(ddof=1, **kw), b.std(**kw), b.std(ddof=1, **kw), scheduler=scheduler)
    assert mean == pytest.approx(statistics.fmean(data), rel=1e-12)
    assert pvar == pytest.approx(statistics.pvariance(data), rel=1e-9)
    assert var == pytest.approx(statistics.variance(data), rel=1e-9)
    assert pstd == pytest.approx(statistics.pstdev(data), rel=1e-9)
    assert std == pytest.approx(statistics.stdev(data), rel=1e-9)


def test_variance_is_numerically_stable(scheduler):
    data = [1e9 + x / 7 for x in random_ints(5, 200)]
    b = bag_of(data, 8)
    assert b.var(ddof=1).compute(scheduler=scheduler) == pytest.approx(statistics.variance(data), rel=1e-6)


def test_empty_bag_aggregations(scheduler):
    b = db.from_sequence([], npartitions=1).filter(bool)
    three = db.from_sequence([0, 0, 0], npartitions=3).filter(bool)  # every partition empties out
    for empty in (b, three):
        count, total, anything, everything = lazyarr.compute(empty.count(), empty.sum(), empty.any(), empty.all(),
                                                             scheduler=scheduler)
        assert (count, total, anything, everything) == (0, 0, False, True)
        with pytest.raises(ValueError, match="empty"):
            empty.max().compute(scheduler=scheduler)
        with pytest.raises(ValueError, match="mean of an empty bag"):
            empty.mean().compute(scheduler=scheduler)
        assert empty.frequencies().compute(scheduler=scheduler) == []
        assert empty.topk(3).compute(scheduler=scheduler) == []
        assert empty.distinct().compute(scheduler=scheduler) == []
        assert empty.fold(operator.add, initial=0).compute(scheduler=scheduler) == 0
    with pytest.raises(ValueError, match="ddof=1 needs more than 1"):
        db.from_sequence([5]).var(ddof=1).compute(scheduler=scheduler)


@pytest.mark.parametrize("npartitions, split_every", SHAPES)
def test_reduction_and_fold(scheduler, npartitions, split_every):
    data = random_ints(npartitions + 20, 60)
    b = bag_of(data, npartitions)
    # perpartition receives a real list: len() works
    sizes = b.reduction(len, sum, split_every=split_every)
    sumsq = b.reduction(lambda part: sum(x * x for x in part), sum, split_every=split_every)
    folded = b.fold(operator.add, split_every=split_every)
    with_initial = b.fold(lambda acc, x: acc + [x], operator.add, initial=[], split_every=split_every)
    as_bag = b.reduction(sorted, lambda parts: sorted(x for p in parts for x in p), split_every=split_every,
                         out_type=db.Bag)
    got = lazyarr.compute(sizes, sumsq, folded, with_initial, scheduler=scheduler)
    assert got == (len(data), sum(x * x for x in data), functools.reduce(operator.add, data), data)
    assert as_bag.npartitions == 1 and as_bag.compute(scheduler=scheduler) == sorted(data)


@pytest.mark.parametrize("npartitions, split_every", SHAPES)
def test_frequencies_topk_distinct(scheduler, npartitions, split_every):
    words = random_words(npartitions, 100)
    b = bag_of(words, npartitions)
    counts = Counter(words)
    freqs = b.frequencies(split_every=split_every).compute(scheduler=scheduler)
    assert dict(freqs) == counts and len(freqs) == len(counts)
    ranked = b.frequencies(sort=True, split_every=split_every).compute(scheduler=scheduler)
    assert dict(ranked) == counts
    assert [c for _, c in ranked] == sorted(counts.values(), reverse=True)
    nums = random_ints(npartitions, 70)
    nb = bag_of(nums, npartitions)
    assert nb.topk(5, split_every=split_every).compute(scheduler=scheduler) == heapq.nlargest(5, nums)
    assert nb.topk(4, key=abs, split_every=split_every).compute(scheduler=scheduler) == heapq.nlargest(4, nums, key=abs)
    pairs = nb.map(lambda x: (str(x), x))
    assert pairs.topk(3, key=1).compute(scheduler=scheduler) == [(str(x), x) for x in heapq.nlargest(3, nums)]
    assert b.distinct(split_every=split_every).compute(scheduler=scheduler) == list(dict.fromkeys(words))
    first_by_len: dict = {}
    for w in words:
        first_by_len.setdefault(len(w), w)
    assert b.distinct(key=len, split_every=split_every).compute(scheduler=scheduler) == list(first_by_len.values())


@pytest.mark.parametrize("npartitions, split_every", SHAPES)
def test_foldby(scheduler, npartitions, split_every):
    records = random_records(npartitions, 90)
    b = bag_of(records, npartitions)
    expected: dict = {}
    for r in records:
        expected[r["name"]] = expected.get(r["name"], 0) + r["age"]
    got = b.foldby("name", lambda acc, r: acc + r["age"], 0, operator.add, split_every=split_every)
    assert sorted(got.compute(scheduler=scheduler)) == sorted(expected.items())
    # no initial: the first element starts each key; combine defaults to binop
    nums = random_ints(npartitions, 50)
    maxes = bag_of(nums, npartitions).foldby(lambda x: x % 4, max, split_every=split_every)
    want: dict = {}
    for x in nums:
        want[x % 4] = max(want.get(x % 4, x), x)
    assert sorted(maxes.compute(scheduler=scheduler)) == sorted(want.items())
    # mutable initial made per key by calling it; combine_initial seeds each key once
    lists = bag_of(nums, npartitions).foldby(lambda x: x % 3, lambda acc, x: acc + [x], list, operator.add,
                                            combine_initial=list, split_every=split_every)
    grouped: dict = {}
    for x in nums:
        grouped.setdefault(x % 3, []).append(x)
    assert sorted((k, sorted(v)) for k, v in lists.compute(scheduler=scheduler)) == sorted(
        (k, sorted(v)) for k, v in grouped.items())
    counted = bag_of(nums, npartitions).foldby(lambda x: x > 0, lambda acc, _: acc + 1, 0, operator.add,
                                              combine_initial=100, split_every=split_every)
    assert dict(counted.compute(scheduler=scheduler)) == {k: v + 100 for k, v in Counter(x > 0 for x in nums).items()}


def test_split_every_validation():
    b = bag_of([1, 2, 3], 3)
    with pytest.raises(ValueError, match="split_every must be an integer >= 2"):
        b.sum(split_every=1)
    with lazyarr.config.set({"bag.split-every": 2}):
        assert b.sum().compute(scheduler="sync") == 6
        assert any("combine-1" in str(k) for k in b.sum().__lazyarr_graph__())


def test_tree_depth_follows_split_every():
    b = db.from_sequence(range(64), npartitions=64)
    levels = {k[0].split("-")[2] for k in b.count(split_every=4).__lazyarr_graph__() if "combine" in str(k[0])}
    assert levels == {"1", "2"}  # 64 -> 16 -> 4 -> final
    assert b.count(split_every=4).compute(scheduler="sync") == 64
    assert math.isclose(b.mean(split_every=4).compute(scheduler="sync"), 31.5)
