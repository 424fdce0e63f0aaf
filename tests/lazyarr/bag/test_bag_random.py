"""db.random.sample and db.random.choices: uniform over the whole bag, reproducible, clear errors."""
from __future__ import annotations

from collections import Counter

import pytest

import lazyarr.bag as db


@pytest.mark.parametrize("npartitions, split_every", [(1, None), (7, 2), (12, None)])
def test_sample_is_distinct_elements_of_the_bag(scheduler, npartitions, split_every):
    b = db.from_sequence(range(50), npartitions=npartitions)
    s = db.random.sample(b, 20, split_every=split_every, random_state=5)
    assert s.npartitions == 1
    got = s.compute(scheduler=scheduler)
    assert len(got) == 20 and len(set(got)) == 20 and set(got) <= set(range(50))
    assert got == s.compute(scheduler=scheduler)  # random_state makes it reproducible
    assert sorted(db.random.sample(b, 50).compute(scheduler="sync")) == list(range(50))


def test_sample_is_uniform_across_unequal_partitions():
    # 10 elements in one partition and 990 in the others: a per-partition sample would favour the 10
    b = db.concat([db.from_sequence(range(10), npartitions=1), db.from_sequence(range(10, 1000), npartitions=3)])
    hits = sum(x < 10 for seed in range(300) for x in db.random.sample(b, 10, random_state=seed).compute(scheduler="sync"))
    # expected 300 * 10 * 10/1000 = 30 hits; a per-partition-uniform merge would give about 750
    assert 10 < hits < 60


def test_choices_with_replacement_uniform_over_the_bag():
    b = db.concat([db.from_sequence(["rare"], npartitions=1), db.from_sequence(["common"] * 99, npartitions=4)])
    got = db.random.choices(b, 5000, random_state=11).compute(scheduler="sync")
    assert len(got) == 5000
    assert 20 < Counter(got)["rare"] < 90  # about 50 expected


def test_choices_and_sample_errors():
    b = db.from_sequence(range(3), npartitions=2)
    with pytest.raises(ValueError, match="k=5 is larger than the bag"):
        db.random.sample(b, 5).compute(scheduler="sync")
    with pytest.raises(ValueError, match="empty bag"):
        db.random.choices(b.filter(lambda x: x > 10), 2).compute(scheduler="sync")
    with pytest.raises(ValueError, match="non-negative integer"):
        db.random.sample(b, -1)
    with pytest.raises(TypeError, match="must be a lazyarr Bag"):
        db.random.choices([1, 2, 3], 2)
