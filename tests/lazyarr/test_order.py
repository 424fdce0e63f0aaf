"""Static ordering: topological, depth-first, iterative."""
from __future__ import annotations

import time
from operator import add

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lazyarr.core import CycleError
from lazyarr.core import get as reference_get
from lazyarr.local import get_sync
from lazyarr.order import order, order_keys, ordered_dependencies

pytestmark = pytest.mark.timeout(60)


def inc(x):
    return x + 1


def total(*xs):
    return sum(xs)


def test_branches_finish_before_new_roots_start():
    dsk = {
        "load-1": 1, "clean-1": (inc, "load-1"), "small-1": (inc, "clean-1"),
        "load-2": 2, "clean-2": (inc, "load-2"), "small-2": (inc, "clean-2"),
        "out": (add, "small-1", "small-2"),
    }
    o = order(dsk)
    assert sorted(dsk, key=o.get) == ["load-1", "clean-1", "small-1", "load-2", "clean-2", "small-2", "out"]


def test_tree_reduction_combines_as_soon_as_possible():
    dsk = {("x", i): i for i in range(8)}
    dsk.update({("a", i): (add, ("x", 2 * i), ("x", 2 * i + 1)) for i in range(4)})
    dsk.update({("b", i): (add, ("a", 2 * i), ("a", 2 * i + 1)) for i in range(2)})
    dsk["c"] = (add, ("b", 0), ("b", 1))
    o = order(dsk)
    assert o[("a", 0)] == o[("x", 1)] + 1
    assert o[("b", 0)] == o[("a", 1)] + 1
    assert o[("x", 4)] > o[("b", 0)]
    assert o["c"] == len(dsk) - 1


def test_shared_dependency_numbered_once_first_use_wins():
    dsk = {"s": 0, "a": (inc, "s"), "b": (inc, "s"), "c": (add, "a", "b")}
    assert order(dsk) == {"s": 0, "a": 1, "b": 2, "c": 3}


def test_several_outputs_in_mapping_order():
    dsk = {"y": (inc, "x"), "x": 1, "z": (inc, "w"), "w": 2}
    assert list(sorted(dsk, key=order(dsk).get)) == ["x", "y", "w", "z"]
    assert order_keys({"y": ["x"], "x": [], "z": ["w"], "w": []}, roots=["z", "y"]) == ["w", "z", "x", "y"]


def test_dependencies_outside_the_mapping_are_taken_as_available():
    # the distributed client orders only what is left to compute; some inputs live on workers
    assert order_keys({"b": ["held-elsewhere", "a"], "a": []}) == ["a", "b"]
    assert order({"b": (inc, "a"), "a": 1}, {"b": {"a", "future-key"}, "a": set()}) == {"a": 0, "b": 1}


def test_cycles_are_named():
    with pytest.raises(CycleError) as info:
        order({"a": (inc, "b"), "b": (inc, "c"), "c": (inc, "a"), "d": (inc, "a")})
    assert set(info.value.cycle) == {"a", "b", "c"}
    assert info.value.cycle[0] == info.value.cycle[-1]
    with pytest.raises(CycleError):  # a cycle nothing outside depends on: no output to start from
        order({"a": (inc, "b"), "b": (inc, "a"), "ok": 1})


def test_ordered_dependencies_follow_the_arguments():
    dsk = {"a": 1, "b": 2, "c": 3, ("t", 0): 4}
    assert ordered_dependencies(dsk, task=(add, "c", (add, "a", ["b", "c"]))) == ["c", "a", "b"]
    assert ordered_dependencies(dsk, task=(add, ("t", 0), ("lit", [1]), {"k": "a"})) == [("t", 0), "a"]
    assert ordered_dependencies(dsk, task=("c", "b")) == []  # a literal tuple that is not a key
    assert ordered_dependencies(dsk, task="b") == ["b"]  # an alias
    assert ordered_dependencies(dsk, task=(sum, ["a", "a", "b"])) == ["a", "b"]
    assert ordered_dependencies({"n": None}, task=None) == []  # None is a literal, not "no task"
    assert ordered_dependencies({"n": None}, "n") == []


def test_million_task_chain_is_ordered_fast_without_recursion():
    n = 1_000_000
    deps = {0: []}
    for i in range(1, n):
        deps[i] = [i - 1]
    start = time.perf_counter()
    keys = order_keys(deps)
    elapsed = time.perf_counter() - start
    assert keys[:3] == [0, 1, 2] and keys[-1] == n - 1 and len(keys) == n
    assert elapsed < 15, elapsed  # about 1 s on a quiet core


def test_million_task_wide_graph():
    n = 1_000_000
    deps = {("x", i): [] for i in range(n)}
    deps["sum"] = list(deps)
    keys = order_keys(deps)
    assert keys[0] == ("x", 0) and keys[-1] == "sum" and len(keys) == n + 1


@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 40))
    dsk = {}
    for i in range(n):
        deps = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=4)) if i else []
        dsk[f"k{i}"] = (total, i, *[f"k{d}" for d in deps])
    return dsk


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_random_dags_topological_and_same_results(dsk):
    o = order(dsk)
    assert sorted(o.values()) == list(range(len(dsk)))
    for key in dsk:
        for dep in ordered_dependencies(dsk, key):
            assert o[dep] < o[key]
    keys = list(dsk)
    assert get_sync(dsk, keys) == reference_get(dsk, keys)
