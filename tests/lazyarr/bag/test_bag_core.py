"""Bag creation, element-wise operations, take, persist, delayed conversion, fusion."""
from __future__ import annotations

import itertools
from collections import Counter
import operator
import subprocess
import sys
from fnmatch import fnmatchcase

import pytest

import lazyarr
import lazyarr.bag as db
from lazyarr.bag.chunk import reify
from lazyarr.bag.core import Bag, Item
from lazyarr.optimization import Chain

from ._bag_data import random_ints, random_records, random_words

PARTITIONINGS = [1, 3, 7]


def partitions(bag: Bag, scheduler: str = "sync") -> list:
    """The partitions of ``bag`` as lists."""
    return [list(p) for p in lazyarr.compute(*bag.to_delayed(), scheduler=scheduler)]


# -- creation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 5, 23])
@pytest.mark.parametrize("npartitions", [1, 4, 30])
def test_from_sequence_npartitions(n, npartitions):
    data = random_ints(n, n)
    b = db.from_sequence(data, npartitions=npartitions)
    assert b.npartitions == npartitions
    parts = partitions(b)
    assert [x for p in parts for x in p] == data
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_from_sequence_partition_size_and_default():
    data = list(range(25))
    b = db.from_sequence(data, partition_size=10)
    assert partitions(b) == [data[:10], data[10:20], data[20:]]
    assert db.from_sequence(range(500)).npartitions == 100
    assert db.from_sequence(range(7)).npartitions == 7
    empty = db.from_sequence([])
    assert empty.npartitions == 1 and empty.compute(scheduler="sync") == []
    with pytest.raises(ValueError, match="not both"):
        db.from_sequence(data, partition_size=2, npartitions=2)
    with pytest.raises(ValueError, match="npartitions"):
        db.from_sequence(data, npartitions=0)


def test_from_sequence_elements_are_data_not_keys_or_tasks(scheduler):
    b = db.from_sequence(range(3), npartitions=1)
    # elements that look like a key of the graph or like a task stay what they are
    tricky = [(b.name, 0), (len, "abc"), [(b.name, 0)], {"k": (len, "x")}]
    c = db.from_sequence(tricky, npartitions=2)
    assert db.concat([b.map(lambda x: ("n", x)), c]).compute(scheduler=scheduler)[3:] == tricky


def test_range(scheduler):
    assert db.range(17, npartitions=4).compute(scheduler=scheduler) == list(range(17))
    assert db.range(0, npartitions=2).compute(scheduler=scheduler) == []
    assert db.range(10, npartitions=3).npartitions == 3


def test_repr_and_iter():
    b = db.from_sequence(range(4), npartitions=2)
    assert repr(b) == "lazyarr.bag<from_sequence, npartitions=2>"
    assert repr(b.map(str)) == "lazyarr.bag<str, npartitions=2>"
    assert repr(b.count()).startswith("lazyarr.bag.Item<count")
    assert isinstance(b.count(), Item)
    with lazyarr.config.set(scheduler="sync"):
        assert list(b) == [0, 1, 2, 3]


def test_import_lazyarr_does_not_import_bag():
    code = "import sys, lazyarr; lazyarr.compute; print('lazyarr.bag' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_names_are_deterministic():
    def build():
        return db.from_sequence(range(10), npartitions=2).map(lambda x: x + 1).filter(bool).frequencies()

    assert build().name == build().name
    assert build().name != db.from_sequence(range(10), npartitions=2).map(lambda x: x + 2).filter(bool).frequencies().name


# -- element-wise -----------------------------------------------------------------------------------

@pytest.mark.parametrize("npartitions", PARTITIONINGS)
def test_map_filter_remove(scheduler, npartitions):
    data = random_ints(npartitions, 60)
    b = db.from_sequence(data, npartitions=npartitions)
    assert b.map(lambda x: x * 3).compute(scheduler=scheduler) == [x * 3 for x in data]
    assert b.filter(lambda x: x % 3 == 0).compute(scheduler=scheduler) == [x for x in data if x % 3 == 0]
    assert b.remove(lambda x: x % 3 == 0).compute(scheduler=scheduler) == [x for x in data if x % 3 != 0]


def test_map_several_bags_items_and_kwargs(scheduler):
    xs, ys = random_ints(1, 40), random_ints(2, 40)
    a = db.from_sequence(xs, npartitions=4)
    b = db.from_sequence(ys, npartitions=4)
    offset = a.count()  # an Item, broadcast to every call

    def f(x, y, scale, shift=0, extra=()):
        return (x + y) * scale + shift + len(extra)

    got = db.map(f, a, b, 2, shift=offset, extra=(a.name, 0)).compute(scheduler=scheduler)
    assert got == [(x + y) * 2 + 40 + 2 for x, y in zip(xs, ys)]
    assert a.map(operator.sub, b).compute(scheduler=scheduler) == [x - y for x, y in zip(xs, ys)]
    assert a.map(f, a, offset).compute(scheduler=scheduler) == [2 * x * 40 for x in xs]


def test_map_with_delayed_argument(scheduler):
    from lazyarr import delayed

    total = delayed(sum)([1, 2, 3])
    b = db.from_sequence([1, 2], npartitions=2)
    assert b.map(operator.add, total).compute(scheduler=scheduler) == [7, 8]


def test_map_mismatched_bags():
    a = db.from_sequence(range(6), npartitions=2)
    with pytest.raises(ValueError, match="different numbers of partitions"):
        a.map(operator.add, db.from_sequence(range(6), npartitions=3))
    shorter = db.from_sequence(range(5), npartitions=2)
    with pytest.raises(ValueError, match="partition 0 has different lengths"):
        a.map(operator.add, shorter).compute(scheduler="sync")
    with pytest.raises(TypeError, match="needs at least one Bag"):
        db.map(len, [1, 2])


def test_starmap(scheduler):
    pairs = list(zip(random_ints(3, 30), random_ints(4, 30)))
    b = db.from_sequence(pairs, npartitions=3)
    k = db.from_sequence([1, 2, 3]).sum()
    got = b.starmap(lambda x, y, z=0: x * y + z, z=k).compute(scheduler=scheduler)
    assert got == list(itertools.starmap(lambda x, y: x * y + 6, pairs))


def test_map_partitions(scheduler):
    data = random_ints(5, 50)
    b = db.from_sequence(data, npartitions=5)
    sizes = db.map_partitions(len, b).compute(scheduler=scheduler)
    assert sizes == [10] * 5
    got = b.map_partitions(lambda part, other, k: [x * k + y for x, y in zip(part, other)], b.map(abs), 3)
    assert got.compute(scheduler=scheduler) == [x * 3 + abs(x) for x in data]
    gen = b.map_partitions(lambda part: (x for x in part if x > 0))  # a generator is materialized
    assert gen.compute(scheduler=scheduler) == [x for x in data if x > 0]
    assert gen.count().compute(scheduler=scheduler) == sum(1 for x in data if x > 0)


def test_flatten(scheduler):
    nested = [list(range(i % 4)) for i in range(30)]
    b = db.from_sequence(nested, npartitions=4)
    assert b.flatten().compute(scheduler=scheduler) == list(itertools.chain.from_iterable(nested))


def test_pluck(scheduler):
    records = random_records(6, 40)
    b = db.from_sequence(records, npartitions=3)
    assert b.pluck("name").compute(scheduler=scheduler) == [r["name"] for r in records]
    assert b.pluck(["name", "age"]).compute(scheduler=scheduler) == [(r["name"], r["age"]) for r in records]
    assert b.pluck(["age"]).compute(scheduler=scheduler) == [(r["age"],) for r in records]
    tuples = db.from_sequence([(i, -i) for i in range(10)], npartitions=2)
    assert tuples.pluck(1).compute(scheduler=scheduler) == [-i for i in range(10)]
    ragged = db.from_sequence([{"a": 1}, {"a": 2, "b": 3}, {}], npartitions=2)
    assert ragged.pluck("b", default=None).compute(scheduler=scheduler) == [None, 3, None]
    assert ragged.pluck(["a", "b"], default=0).compute(scheduler=scheduler) == [(1, 0), (2, 3), (0, 0)]


def test_pluck_missing_key_names_key_and_partition():
    b = db.from_sequence([{"a": 1}, {"a": 2}, {"b": 3}], npartitions=2)
    with pytest.raises(KeyError, match=r"key 'a' not found in element \{'b': 3\} of partition 1"):
        b.pluck("a").compute(scheduler="sync")
    with pytest.raises(IndexError, match="key 2 not found .* partition 0"):
        db.from_sequence([(1, 2)], npartitions=1).pluck(2).compute(scheduler="sync")
    with pytest.raises(KeyError, match="'c'"):
        b.pluck(["a", "c"]).compute(scheduler="sync")


def test_str_accessor(scheduler):
    lines = [f"  {w.upper()} and {w}\n" for w in random_words(7, 30)]
    b = db.from_sequence(lines, npartitions=3)
    assert b.str.strip().compute(scheduler=scheduler) == [s.strip() for s in lines]
    assert b.str.lower().compute(scheduler=scheduler) == [s.lower() for s in lines]
    assert b.str.upper().compute(scheduler=scheduler) == [s.upper() for s in lines]
    assert b.str.split().compute(scheduler=scheduler) == [s.split() for s in lines]
    assert b.str.split(" and ", 1).compute(scheduler=scheduler) == [s.split(" and ", 1) for s in lines]
    assert b.str.replace("a", "@").compute(scheduler=scheduler) == [s.replace("a", "@") for s in lines]
    assert b.str.startswith("  A").compute(scheduler=scheduler) == [s.startswith("  A") for s in lines]
    assert b.str.count("a").compute(scheduler=scheduler) == [s.count("a") for s in lines]
    words = db.from_sequence(random_words(8, 50), npartitions=4)
    expected = [w for w in random_words(8, 50) if fnmatchcase(w, "*a?")]
    assert words.str.match("*a?").compute(scheduler=scheduler) == expected
    with pytest.raises(AttributeError, match="no method 'frobnicate'"):
        b.str.frobnicate()
    assert "split" in dir(b.str)


def test_product(scheduler):
    xs, ys = random_ints(9, 7), random_words(9, 5)
    b = db.from_sequence(xs, npartitions=3).product(db.from_sequence(ys, npartitions=2))
    assert b.npartitions == 6
    assert sorted(b.compute(scheduler=scheduler)) == sorted(itertools.product(xs, ys))


def test_zip(scheduler):
    xs, ys = random_ints(10, 33), random_words(10, 33)
    a, b = db.from_sequence(xs, npartitions=4), db.from_sequence(ys, npartitions=4)
    assert db.zip(a, b, a).compute(scheduler=scheduler) == list(zip(xs, ys, xs))
    with pytest.raises(ValueError, match="different numbers of partitions"):
        db.zip(a, db.from_sequence(ys, npartitions=3))
    with pytest.raises(ValueError, match="partition 0 has different lengths"):
        db.zip(a, db.from_sequence(ys[:-9], npartitions=4)).compute(scheduler="sync")


@pytest.mark.parametrize("npartitions", [1, 4])
def test_accumulate(scheduler, npartitions):
    data = random_ints(11, 25)
    b = db.from_sequence(data, npartitions=npartitions)
    assert b.accumulate(operator.add).compute(scheduler=scheduler) == list(itertools.accumulate(data))
    assert b.accumulate(max, initial=-100).compute(scheduler=scheduler) == list(
        itertools.accumulate(data, max, initial=-100))
    sparse = db.from_sequence([1, 2, 3], npartitions=6)  # empty partitions carry the running value
    assert sparse.accumulate(operator.mul).compute(scheduler=scheduler) == [1, 2, 6]


def test_random_sample(scheduler):
    data = list(range(2000))
    b = db.from_sequence(data, npartitions=5)
    s1 = b.random_sample(0.2, random_state=3).compute(scheduler=scheduler)
    s2 = b.random_sample(0.2, random_state=3).compute(scheduler=scheduler)
    assert s1 == s2 and s1 == sorted(set(s1)) and set(s1) <= set(data)
    assert 250 < len(s1) < 550
    assert b.random_sample(0.0).compute(scheduler=scheduler) == []
    assert b.random_sample(1.0).compute(scheduler=scheduler) == data
    with pytest.raises(ValueError, match="between 0 and 1"):
        b.random_sample(1.5)


def test_join(scheduler):
    people = random_records(12, 40)
    cities = [("ann", "Paris"), ("bo", "Rome"), ("bo", "Oslo"), ("zed", "Lima")]
    b = db.from_sequence(people, npartitions=3)
    got = b.join(cities, on_self="name", on_other=0).compute(scheduler=scheduler)
    expected = [(c, p) for p in people for c in cities if c[0] == p["name"]]
    assert got == expected
    ints = db.from_sequence(range(10), npartitions=2)
    got = ints.join(range(0, 20, 3), on_self=lambda x: x % 5).compute(scheduler=scheduler)
    assert sorted(got) == sorted((y, x) for x in range(10) for y in range(0, 20, 3) if x % 5 == y % 5)
    with pytest.raises(TypeError, match="in-memory iterable"):
        b.join(b, on_self="name")


def test_concat_and_repartition(scheduler):
    data = random_ints(13, 41)
    b = db.from_sequence(data, npartitions=5)
    for n in (1, 2, 5, 9, 60):
        r = b.repartition(n)
        assert r.npartitions == n
        assert r.compute(scheduler=scheduler) == data
    sizes = [len(p) for p in partitions(b.repartition(9))]
    assert sum(sizes) == 41 and min(sizes) >= 4  # partitions are split, never left empty
    c = db.concat([b, db.from_sequence("xyz", npartitions=2)])
    assert c.npartitions == 7 and c.compute(scheduler=scheduler) == data + list("xyz")


# -- take -------------------------------------------------------------------------------------------

def _explode_past_first(part):
    if part and part[0] >= 10:
        raise RuntimeError("this partition must not be computed")
    return part


def test_take_computes_only_needed_partitions(scheduler):
    b = db.from_sequence(range(40), npartitions=4).map_partitions(_explode_past_first)
    with lazyarr.config.set(scheduler=scheduler):
        assert b.take(3) == (0, 1, 2)
        with pytest.warns(UserWarning, match="5 elements requested but only 3"):
            assert db.from_sequence(range(6), npartitions=2).take(5) == (0, 1, 2)
        assert db.from_sequence(range(6), npartitions=2).take(5, npartitions=-1) == (0, 1, 2, 3, 4)
        lazy = b.take(2, compute=False)
        assert isinstance(lazy, Bag) and lazy.compute() == [0, 1]
        with pytest.raises(RuntimeError, match="must not be computed"):
            b.take(12, npartitions=2)
    with pytest.raises(ValueError, match="npartitions must be between 1 and 4"):
        b.take(1, npartitions=5)


def test_take_is_lazy_inside_a_partition():
    seen = []

    def record(x):
        seen.append(x)
        return x

    b = db.from_sequence(range(1000), npartitions=1).map(record)
    assert b.take(3, compute=False).compute(scheduler="sync") == [0, 1, 2]
    assert len(seen) <= 4  # the fused map stops once take has its elements


# -- persist, optimize, delayed ---------------------------------------------------------------------

def test_persist_and_optimize(scheduler):
    data = random_ints(14, 30)
    b = db.from_sequence(data, npartitions=3).map(lambda x: (x, str(x)))
    p = b.persist(scheduler=scheduler)
    assert isinstance(p, Bag) and p.npartitions == 3
    assert p.compute(scheduler=scheduler) == [(x, str(x)) for x in data]
    assert p.pluck(0).sum().compute(scheduler=scheduler) == sum(data)
    item = p.pluck(0).max().persist(scheduler=scheduler)
    assert item.compute(scheduler=scheduler) == max(data)
    tupled = db.from_sequence([1], npartitions=1).map(lambda x: ("x", 0)).reduction(lambda p: p[0], lambda ps: ps[0])
    assert tupled.persist(scheduler=scheduler).compute(scheduler=scheduler) == ("x", 0)
    (o,) = lazyarr.optimize(b.count())
    assert o.compute(scheduler=scheduler) == 30


def test_to_delayed_and_from_delayed(scheduler):
    from lazyarr import delayed

    data = random_ints(15, 20)
    b = db.from_sequence(data, npartitions=4)
    parts = b.map(abs).to_delayed()
    assert len(parts) == 4
    back = db.from_delayed(parts)
    assert back.npartitions == 4 and back.compute(scheduler=scheduler) == [abs(x) for x in data]
    made = db.from_delayed([delayed(list)(range(i)) for i in range(4)])
    assert made.compute(scheduler=scheduler) == [0, 0, 1, 0, 1, 2]
    assert db.from_delayed(delayed(lambda: iter("ab"))()).compute(scheduler=scheduler) == ["a", "b"]
    assert b.count().to_delayed().compute(scheduler=scheduler) == 20
    with pytest.raises(TypeError, match="Delayed values"):
        db.from_delayed([[1, 2]])


def test_item_apply_and_compute_together(scheduler):
    data = random_ints(16, 30)
    b = db.from_sequence(data, npartitions=3)
    n, s, doubled = lazyarr.compute(b.count(), b.sum(), b.count().apply(lambda v: v * 2), scheduler=scheduler)
    assert (n, s, doubled) == (30, sum(data), 60)


# -- optimization -----------------------------------------------------------------------------------

def test_per_partition_chain_fuses_into_one_lazy_task():
    words = db.from_sequence(["a b", "b c", "c d e"], npartitions=3)
    out = words.str.split().flatten().frequencies()
    dsk = Bag.__lazyarr_optimize__(out.__lazyarr_graph__(), out.__lazyarr_keys__())
    chains = [task[0] for task in dsk.values() if isinstance(task[0], Chain)]
    assert len(chains) == 3 and len(dsk) == 4  # one task per partition plus the aggregate
    for chain in chains:
        inner = [step for _, step in chain.steps[:-1]]
        assert all(step[0] is not reify for step in inner), "intermediate partitions must stream"
    assert sorted(out.compute(scheduler="sync")) == [("a", 1), ("b", 2), ("c", 2), ("d", 1), ("e", 1)]


def test_partition_read_twice_in_one_task_stays_a_list(scheduler):
    b = db.from_sequence(range(10), npartitions=2).map(lambda x: x + 1)
    both = db.map(operator.mul, b, b)  # one task reads the same partition twice
    assert both.compute(scheduler=scheduler) == [(x + 1) ** 2 for x in range(10)]
    assert db.zip(b, b).compute(scheduler=scheduler) == [(x + 1, x + 1) for x in range(10)]


def test_without_fusion(scheduler):
    data = random_words(17, 40)
    b = db.from_sequence(data, npartitions=4).map(str.upper).frequencies(sort=True)
    with lazyarr.config.set({"optimization.fuse.active": False}):
        assert dict(b.compute(scheduler=scheduler)) == dict(Counter(map(str.upper, data)))


# -- to_dataframe -----------------------------------------------------------------------------------

def test_to_dataframe(scheduler):
    import pandas as pd

    records = random_records(18, 25)
    b = db.from_sequence(records, npartitions=3)
    expected = pd.DataFrame(records)
    got = b.to_dataframe().compute(scheduler=scheduler)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)
    typed = b.to_dataframe(meta={"name": object, "age": "f8", "score": "f8"}).compute(scheduler=scheduler)
    assert typed["age"].dtype == "float64"
    assert typed["age"].tolist() == [float(r["age"]) for r in records]
    rows = b.map(lambda r: (r["name"], r["age"])).to_dataframe(columns=["who", "years"])
    assert rows.years.sum().compute(scheduler=scheduler) == sum(r["age"] for r in records)
    ages = b.pluck("age").to_dataframe(meta=("age", "i8")).compute(scheduler=scheduler)
    assert ages.tolist() == [r["age"] for r in records] and ages.name == "age"
    with pytest.raises(ValueError, match="give meta="):
        db.from_sequence([], npartitions=1).to_dataframe()
