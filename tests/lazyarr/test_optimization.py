"""cull, fuse, inline: unit tests and property tests on random DAGs."""
from __future__ import annotations

import pickle
from operator import add, mul

import cloudpickle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazyarr import config
from lazyarr.core import get, get_dependencies, istask
from lazyarr.optimization import (
    Chain,
    cull,
    cull_and_fuse,
    functions_of,
    fuse,
    inline,
    inline_functions,
)


def inc(x):
    return x + 1


def combine(*args):
    """Order-sensitive mixing of any number of ints, so a wrong wiring changes the result."""
    acc = len(args)
    for a in args:
        acc = (acc * 31 + a) % 1_000_003
    return acc


def chain_graph(n, name="x"):
    dsk = {(name, 0): 1}
    for i in range(1, n):
        dsk[(name, i)] = (inc, (name, i - 1))
    return dsk


# -- cull ---------------------------------------------------------------------------------------

def test_cull_keeps_what_is_needed_and_returns_dependencies():
    dsk = {"a": 1, "b": (inc, "a"), "c": (add, "a", "b"), "d": (inc, "c"), "other": (inc, "a")}
    culled, deps = cull(dsk, "c")
    assert culled == {"a": 1, "b": (inc, "a"), "c": (add, "a", "b")}
    assert deps == {"a": set(), "b": {"a"}, "c": {"a", "b"}}
    culled, _ = cull(dsk, [["d"], "other"])
    assert set(culled) == set(dsk)
    assert cull(dsk, []) == ({}, {})


def test_cull_missing_key_is_a_keyerror_naming_it():
    with pytest.raises(KeyError, match="'zz'"):
        cull({"a": 1}, ["a", "zz"])


def test_cull_long_chain():
    dsk = chain_graph(100_000)
    dsk["unused"] = 0
    culled, deps = cull(dsk, [("x", 99_999)])
    assert len(culled) == 100_000 and "unused" not in culled


# -- fuse ---------------------------------------------------------------------------------------

def test_fuse_linear_chain_keeps_the_output_key():
    dsk = {"a": 1, "b": (inc, "a"), "c": (inc, "b"), "d": (mul, "c", 10)}
    fused, deps = fuse(dsk, keys=["d"])
    assert list(fused) == ["d"]
    assert deps == {"d": set()}
    task = fused["d"]
    assert istask(task) and isinstance(task[0], Chain) and len(task) == 1
    assert get(fused, "d") == 30
    assert task[0].__name__ == "value-inc-inc-mul"


def test_fuse_never_fuses_requested_keys_away():
    dsk = {"a": 1, "b": (inc, "a"), "c": (inc, "b"), "d": (inc, "c")}
    fused, deps = fuse(dsk, keys=["d", "b"])
    assert set(fused) == {"b", "d"}
    assert deps == {"b": set(), "d": {"b"}}
    assert get(fused, ["b", "d"]) == (2, 4)


def test_fuse_leaves_shared_values_and_fan_in_alone():
    dsk = {"a": 1, "b": (inc, "a"), "c": (inc, "a"), "d": (add, "b", "c")}
    fused, deps = fuse(dsk, keys=["d"])
    assert fused == dsk  # 'a' has two dependents, 'd' has two dependencies
    assert deps == {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}}


def test_fuse_chain_with_external_inputs():
    dsk = {"shared": 5, "s1": (inc, "shared"), "s2": (inc, "shared"), "b": (add, "shared", 1), "c": (inc, "b"),
           "out": (add, "s1", "s2")}
    fused, deps = fuse(dsk, keys=["out", "c"])
    assert set(fused) == {"shared", "s1", "s2", "c", "out"}  # b fused into c, its input kept
    assert deps["c"] == {"shared"}
    assert get(fused, ["c", "out"]) == (7, 12)


def test_fuse_max_width_fuses_small_trees():
    dsk = {"a": 1, "b": 2, "c": (add, "a", "b"), "d": (inc, "c")}
    narrow, _ = fuse(dsk, keys=["d"])
    assert set(narrow) == {"a", "b", "d"}  # c + d only: 'c' has two dependencies
    wide, deps = fuse(dsk, keys=["d"], max_width=2)
    assert set(wide) == {"d"} and deps == {"d": set()}
    assert get(wide, "d") == 4
    tree = {("l", i): i for i in range(4)}
    tree.update({("m", 0): (add, ("l", 0), ("l", 1)), ("m", 1): (add, ("l", 2), ("l", 3)),
                 "top": (add, ("m", 0), ("m", 1))})
    fused, _ = fuse(tree, keys=["top"], max_width=2)
    assert set(fused) == {("m", 0), ("m", 1), "top"}  # the whole tree has 4 leaves: too wide
    assert get(fused, "top") == 6
    fused, _ = fuse(tree, keys=["top"], max_width=4)
    assert set(fused) == {"top"} and get(fused, "top") == 6


def test_fused_tree_takes_the_inputs_of_all_its_leaves():
    dsk = {"x": 1, "y": 10, "use_x": (inc, "x"), "use_y": (inc, "y"),
           "l1": (inc, "x"), "l2": (mul, "y", 2), "top": (add, "l1", "l2"), "all": (combine, "top", "use_x", "use_y")}
    fused, deps = fuse(dsk, keys=["all"], max_width=2)
    assert set(fused) == {"x", "y", "use_x", "use_y", "top", "all"}
    assert deps["top"] == {"x", "y"}
    assert sorted(fused["top"][1:]) == ["x", "y"]  # the inputs are the fused task's arguments
    assert get(fused, "all") == get(dsk, "all")


def test_fuse_max_length_cuts_chains_into_segments():
    dsk = chain_graph(10)
    fused, deps = fuse(dsk, keys=[("x", 9)], max_length=3)
    assert set(fused) == {("x", 2), ("x", 5), ("x", 8), ("x", 9)}
    assert deps[("x", 9)] == {("x", 8)} and deps[("x", 2)] == set()
    assert fused[("x", 9)] == (inc, ("x", 8))  # a segment of one stays a plain task
    assert get(fused, ("x", 9)) == 10
    with config.set({"optimization.fuse.max-length": 4}):
        by_config, _ = fuse(dsk, keys=[("x", 9)])
    assert set(by_config) == {("x", 3), ("x", 7), ("x", 9)}


def test_fuse_width_from_config():
    dsk = {"a": 1, "b": 2, "c": (add, "a", "b")}
    with config.set({"optimization.fuse.max-width": 2}):
        fused, _ = fuse(dsk, keys=["c"])
    assert set(fused) == {"c"}


@pytest.mark.parametrize("bad", [{"max_width": 0}, {"max_width": 1.5}, {"max_length": 0}, {"max_length": "3"}])
def test_fuse_rejects_bad_limits(bad):
    with pytest.raises(ValueError, match="max_"):
        fuse({"a": 1}, **bad)


def test_fuse_rename_keys_keeps_the_output_as_an_alias():
    dsk = {"load-123abc45": 1, "inc-9f8e7d6c": (inc, "load-123abc45"), ("out", 0): (inc, "inc-9f8e7d6c")}
    fused, deps = fuse(dsk, keys=[("out", 0)], rename_keys=True)
    assert len(fused) == 2
    (name,) = [k for k in fused if k != ("out", 0)]
    assert fused[("out", 0)] == name and deps[("out", 0)] == {name}
    assert name[0].startswith("load-inc-out-") and name[1:] == (0,)
    assert get(fused, ("out", 0)) == 3


class RemoteHandle:
    """Looks like a distributed future: a ``key`` and a ``result()``."""

    def __init__(self, key):
        self.key = key

    def result(self):
        return 5


def test_fuse_keeps_keys_holding_remote_data():
    dsk = {"remote": RemoteHandle("remote"), "b": (inc, "remote"), "c": (inc, "b")}
    fused, deps = fuse(dsk, keys=["c"])
    assert set(fused) == {"remote", "c"}
    assert fused["remote"] is dsk["remote"] and deps["c"] == {"remote"}
    plain = {"local": 5, "b": (inc, "local"), "c": (inc, "b")}
    assert set(fuse(plain, keys=["c"])[0]) == {"c"}


def test_fused_long_chain_is_flat_and_runs_everywhere():
    n = 20_000
    dsk = chain_graph(n)
    key = ("x", n - 1)
    fused, _ = fuse(dsk, keys=[key])
    task = fused[key]
    assert len(task) == 1 and len(task[0].steps) == n
    assert get(fused, key) == n
    restored = pickle.loads(pickle.dumps(fused))  # no deep nesting: plain pickle copes
    assert get(restored, key) == n
    from lazyarr import multiprocessing as mp

    assert mp.get(fused, key) == n


def test_chain_holds_one_intermediate_at_a_time():
    class Value:
        live = 0
        most = 0

        def __init__(self):
            Value.live += 1
            Value.most = max(Value.most, Value.live)

        def __del__(self):
            Value.live -= 1

    def step(_previous):
        return Value()

    dsk = {0: (Value,)}
    for i in range(1, 50):
        dsk[i] = (step, i - 1)
    fused, _ = fuse(dsk, keys=[49])
    result = get(fused, 49)
    assert isinstance(result, Value)
    assert Value.most <= 2


def test_chain_checks_its_inputs():
    chain = Chain((("b", (inc, "a")),), inputs=("a",))
    assert chain(1) == 2
    with pytest.raises(TypeError, match="takes 1 input"):
        chain()
    with pytest.raises(ValueError):
        Chain(())
    assert pickle.loads(cloudpickle.dumps(chain))(5) == 6
    assert "1 steps" in repr(chain)


def test_fuse_chains_of_nested_tasks_and_lists():
    dsk = {"a": [1, 2], "b": (sum, "a"), "c": (add, (inc, "b"), 0), "d": (list, ["c", (inc, "c")])}
    fused, _ = fuse(dsk, keys=["d"])
    assert list(fused) == ["d"]
    assert get(fused, "d") == get(dsk, "d") == [4, 5]


def test_refusing_twice_is_fine():
    dsk = chain_graph(30)
    once, deps = fuse(dsk, keys=[("x", 29)], max_length=5)
    twice, _ = fuse(once, keys=[("x", 29)], dependencies=deps)
    assert list(twice) == [("x", 29)]
    assert get(twice, ("x", 29)) == 30


# -- inline ---------------------------------------------------------------------------------------

def test_inline_constants_and_aliases():
    dsk = {"x": 1, "alias": "y", "y": (inc, "x"), "z": (add, "alias", "x")}
    result = inline(dsk)
    assert result == {"y": (inc, 1), "z": (add, "y", 1)}
    assert get(result, "z") == get(dsk, "z") == 3


def test_inline_chosen_keys_in_dependency_order():
    dsk = {"a": 1, "b": (inc, "a"), "c": (inc, "b"), "d": (add, "c", "b")}
    result = inline(dsk, keys=["b", "c"], inline_constants=False)
    assert result == {"a": 1, "d": (add, (inc, (inc, "a")), (inc, "a"))}
    assert get(result, "d") == get(dsk, "d")


def test_inline_output_keys_stay():
    dsk = {"x": 1, "y": (inc, "x")}
    assert inline(dsk, output=["x"]) == {"x": 1, "y": (inc, 1)}
    assert inline({"x": 1}, inline_constants=False) == {"x": 1}


def test_functions_of():
    import functools

    task = (add, (functools.partial(mul, 2), "x"), [(inc, 1), {"k": (len, "y")}])
    assert functions_of(task) == {add, mul, inc, len}
    assert functions_of("x") == set()


def test_inline_functions_inlines_cheap_tasks():
    dsk = {"x": 1, "y": (inc, "x"), "z": (mul, "y", 10), "w": (inc, "z"), "lone": (inc, 5)}
    result = inline_functions(dsk, ["w", "lone"], fast_functions=[inc])
    assert result == {"x": 1, "z": (mul, (inc, "x"), 10), "w": (inc, "z"), "lone": (inc, 5)}
    assert get(result, "w") == get(dsk, "w")
    assert inline_functions(dsk, ["w"], fast_functions=None) == dsk
    assert inline_functions(dsk, ["w", "y"], fast_functions=[inc])["y"] == (inc, "x")


# -- cull_and_fuse, the collections' default ---------------------------------------------------------

def test_cull_and_fuse_follows_config_and_keyword():
    dsk = chain_graph(5)
    dsk["unused"] = 1
    key = [[("x", 4)]]
    assert list(cull_and_fuse(dsk, key)) == [("x", 4)]
    with config.set({"optimization.fuse.active": False}):
        assert len(cull_and_fuse(dsk, key)) == 5
        assert list(cull_and_fuse(dsk, key, fuse=True)) == [("x", 4)]
    assert len(cull_and_fuse(dsk, key, fuse=False, unrelated_option=1)) == 5


# -- properties on random DAGs ---------------------------------------------------------------------

KEY_NAMES = ["a", ("b", 0), ("b", 1), "load-0123456789ab", ("c", 0, 1)]


def key_of(i):
    base = KEY_NAMES[i % len(KEY_NAMES)]
    return f"{base}-{i}" if isinstance(base, str) else (f"{base[0]}-{i}",) + base[1:]


@st.composite
def random_dags(draw, max_nodes=30):
    n = draw(st.integers(1, max_nodes))
    keys = [key_of(i) for i in range(n)]
    dsk = {}
    for i, key in enumerate(keys):
        if i == 0 or draw(st.integers(0, 9)) == 0:
            dsk[key] = draw(st.integers(0, 100))
            continue
        # bias towards one dependency on the previous key, so chains are common
        if draw(st.booleans()):
            deps = [keys[i - 1]]
        else:
            deps = draw(st.lists(st.sampled_from(keys[:i]), min_size=0, max_size=3))
        shape = draw(st.integers(0, 4))
        if shape == 0:
            dsk[key] = (combine, *deps)
        elif shape == 1:
            dsk[key] = (combine, (inc, deps[0]) if deps else 7, *deps[1:])
        elif shape == 2:
            dsk[key] = (sum, list(deps) + [i])
        elif shape == 3 and deps:
            dsk[key] = (inc, deps[0])
        elif shape == 4 and len(deps) == 1 and draw(st.booleans()):
            dsk[key] = deps[0]  # an alias
        else:
            dsk[key] = (combine, i, *deps)
    wanted = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=4, unique=True))
    return dsk, wanted


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(random_dags())
def test_cull_never_changes_requested_results(case):
    dsk, wanted = case
    culled, deps = cull(dsk, wanted)
    assert get(culled, wanted) == get(dsk, wanted)
    assert set(culled) <= set(dsk)
    for key, task in culled.items():
        assert deps[key] == get_dependencies(dsk, task=task)
        assert deps[key] <= set(culled)


@PROPERTY_SETTINGS
@given(random_dags(), st.sampled_from([1, 2, 3]), st.sampled_from([None, 1, 2, 5]), st.booleans(), st.booleans())
def test_fuse_never_changes_requested_results(case, max_width, max_length, rename, culled_first):
    dsk, wanted = case
    expected = get(dsk, wanted)
    source, deps = cull(dsk, wanted) if culled_first else (dsk, None)
    fused, new_deps = fuse(source, keys=wanted, dependencies=deps, max_width=max_width, max_length=max_length,
                           rename_keys=rename)
    assert get(fused, wanted) == expected
    assert len(fused) <= len(source) + (len(source) if rename else 0)
    assert set(new_deps) == set(fused)
    for key, task in fused.items():
        assert new_deps[key] == get_dependencies(fused, task=task), key
    restored = cloudpickle.loads(cloudpickle.dumps(fused))
    assert get(restored, wanted) == expected


@PROPERTY_SETTINGS
@given(random_dags(), st.booleans())
def test_inline_never_changes_requested_results(case, inline_constants):
    dsk, wanted = case
    expected = get(dsk, wanted)
    assert get(inline(dsk, inline_constants=inline_constants, output=wanted), wanted) == expected
    chosen = [k for k in dsk if k not in wanted][:3]
    assert get(inline(dsk, keys=chosen, output=wanted), wanted) == expected
    assert get(inline_functions(dsk, wanted, fast_functions=[inc, sum]), wanted) == expected


@PROPERTY_SETTINGS
@given(random_dags())
def test_optimization_pipeline_never_changes_requested_results(case):
    dsk, wanted = case
    culled, deps = cull(dsk, wanted)
    fused, deps = fuse(culled, wanted, deps)
    final = inline_functions(fused, wanted, fast_functions=[inc], dependencies=deps)
    assert get(final, wanted) == get(dsk, wanted)
