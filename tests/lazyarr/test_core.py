"""The graph spec (lazyarr.core): tasks, keys, dependencies, ordering and the reference get."""
from __future__ import annotations

from operator import add, mul

import pytest

from lazyarr import core
from lazyarr.core import (
    CycleError,
    execute_task,
    flatten,
    get,
    get_dependencies,
    get_deps,
    getcycle,
    iskey,
    istask,
    subs,
    toposort,
)


def inc(x):
    return x + 1


def test_headline_example():
    dsk = {"x": 1, "y": 2, "z": (add, "x", "y")}
    assert get(dsk, "z") == 3


def test_get_accepts_the_top_level_package_names():
    import lazyarr

    assert lazyarr.get({"a": (inc, 1)}, "a") == 2
    assert lazyarr.istask((inc, 1))


def test_nested_keys_give_nested_tuples():
    dsk = {"a": 1, "b": (inc, "a"), "c": (add, "a", "b")}
    assert get(dsk, ["a", ["b", ["c"]], "c"]) == (1, (2, (3,)), 3)
    assert get(dsk, []) == ()
    assert get(dsk, [[]]) == ((),)


def test_tuple_keys():
    dsk = {("x", 0): 1, ("x", 1): (inc, ("x", 0)), "total": (sum, [("x", 0), ("x", 1)])}
    assert get(dsk, "total") == 3
    assert get(dsk, [("x", 1), "total"]) == (2, 3)


def test_arguments_lists_and_nested_tasks_are_evaluated():
    dsk = {"a": 2, "b": (sum, [1, "a", [3, "a"][0], (inc, "a")]), "c": (max, [(mul, "a", 10), ["a"][0]])}
    assert get(dsk, "b") == 1 + 2 + 3 + 3
    assert get(dsk, "c") == 20
    assert get({"a": 1, "l": ["a", (inc, "a"), [["a"]]]}, "l") == [1, 2, [[1]]]


def test_dict_arguments_are_evaluated():
    dsk = {"a": 1, "d": (dict, {"k": "a"}), "e": {"k": (inc, "a")}}
    assert get(dsk, ["d", "e"]) == ({"k": 1}, {"k": 2})


def test_non_callable_head_tuple_is_a_literal():
    dsk = {"a": 1, "lit": ("a", 2, 3), "use": (len, ("a", "b"))}
    assert get(dsk, "lit") == ("a", 2, 3)  # 'a' inside a literal tuple is not replaced
    assert get(dsk, "use") == 2
    assert not istask(("a", 2))
    assert istask((inc, 1))
    assert not istask(())
    assert not istask([inc, 1])


def test_literal_tuple_holding_unhashables_is_passed_through():
    assert get({"a": (len, (1, [2, 3]))}, "a") == 2
    assert execute_task((1, [2]), {}) == (1, [2])


def test_alias_and_literal_values():
    dsk = {"a": 5, "b": "a", "c": "not-a-key", "d": [1, "a"]}
    assert get(dsk, ["b", "c", "d"]) == (5, "not-a-key", [1, 5])


def test_none_is_a_valid_computation():
    dsk = {"n": None, "s": (str, "n")}
    assert get(dsk, ["n", "s"]) == (None, "None")
    assert get_dependencies(dsk, "n") == set() and get_dependencies(dsk, task=None) == set()


def test_missing_key_is_a_keyerror_naming_it():
    with pytest.raises(KeyError, match="'nope'"):
        get({"a": 1}, "nope")
    with pytest.raises(KeyError, match=r"\('x', 3\)"):
        get({"a": 1}, ["a", [("x", 3)]])


def test_unhashable_requested_key_is_a_typeerror():
    with pytest.raises(TypeError, match="not a valid key"):
        get({"a": 1}, [{"a"}])


def test_cycle_error_names_the_keys_on_the_cycle():
    dsk = {"a": (inc, "c"), "b": (inc, "a"), "c": (inc, "b"), "ok": 1, "d": (inc, "ok")}
    with pytest.raises(CycleError) as info:
        get(dsk, "a")
    err = info.value
    assert set(err.cycle) == {"a", "b", "c"} and err.cycle[0] == err.cycle[-1]
    for key in "abc":
        assert repr(key) in str(err)
    assert "'ok'" not in str(err)


def test_self_cycle():
    with pytest.raises(CycleError, match="'a' -> 'a'"):
        toposort({"a": (inc, "a")})


def test_getcycle_returns_empty_for_dags():
    assert getcycle({"a": 1, "b": (inc, "a")}) == []
    assert getcycle({"a": (inc, "b"), "b": (inc, "a")}) in (["a", "b", "a"], ["b", "a", "b"])


def test_long_chain_through_get_neither_recurses_nor_hangs():
    n = 100_000
    dsk = {("x", 0): 0}
    for i in range(1, n):
        dsk[("x", i)] = (inc, ("x", i - 1))
    assert get(dsk, ("x", n - 1)) == n - 1
    order = toposort(dsk)
    assert order[0] == ("x", 0) and order[-1] == ("x", n - 1)


def test_long_cycle_is_reported_without_recursion():
    n = 50_000
    dsk = {i: (inc, i - 1) for i in range(1, n)}
    dsk[0] = (inc, n - 1)
    with pytest.raises(CycleError) as info:
        toposort(dsk)
    assert len(info.value.cycle) == n + 1


def test_get_dependencies():
    dsk = {"x": 1, "y": 2, ("t", 0): 3}
    assert get_dependencies(dsk, task=(add, "x", (inc, "y"))) == {"x", "y"}
    assert get_dependencies(dsk, task=[("t", 0), ["x", {"k": "y"}]]) == {("t", 0), "x", "y"}
    assert get_dependencies(dsk, task=("x", "y")) == set()  # literal tuple, not a key
    assert get_dependencies(dsk, task=(inc, ("x", [1]))) == set()
    assert get_dependencies(dsk, task="x") == {"x"}
    assert get_dependencies(dsk, task=(add, "x", "x"), as_list=True) == ["x", "x"]
    assert get_dependencies({"z": (inc, "x"), "x": 1}, "z") == {"x"}


def test_bool_and_int_keys_are_not_confused():
    dsk = {1: "one", "t": (str, True), "u": (inc, 1)}
    assert get_dependencies(dsk, task=(str, True)) == set()
    assert get(dsk, "t") == "True"
    with pytest.raises(TypeError):  # 1 refers to key 1, whose value is a string
        get(dsk, "u")


def test_get_deps_and_reverse():
    deps, dependents = get_deps({"a": 1, "b": (inc, "a"), "c": (add, "a", "b")})
    assert deps == {"a": set(), "b": {"a"}, "c": {"a", "b"}}
    assert dependents == {"a": {"b", "c"}, "b": {"c"}, "c": set()}


def test_toposort_orders_dependencies_first():
    dsk = {"d": (add, "b", "c"), "c": (inc, "a"), "b": (inc, "a"), "a": 1}
    order = toposort(dsk)
    position = {k: i for i, k in enumerate(order)}
    for key in dsk:
        for dep in get_dependencies(dsk, key):
            assert position[dep] < position[key]


def test_subs():
    assert subs((add, "x", (inc, "x")), "x", "y") == (add, "y", (inc, "y"))
    assert subs(("x", 1), "x", 2) == ("x", 1)  # literal tuple untouched
    assert subs({"k": "x"}, "x", 1) == {"k": 1}
    assert subs((add, ("k", 0), 1), ("k", 0), 7) == (add, 7, 1)
    assert subs((add, 1, 1.0), 1, 5) == (add, 5, 1.0)  # float 1.0 is not the int key 1


def test_flatten_and_iskey():
    assert list(flatten([["a", ("b", 0)], [[["c"]]]])) == ["a", ("b", 0), "c"]
    assert list(flatten(("x", 1), container=list)) == [("x", 1)]
    assert iskey(("x", 0, (1, "y"))) and not iskey(("x", [1])) and not iskey(None)


def test_execute_task_reads_the_cache():
    assert execute_task((add, "a", (inc, "b")), {"a": 1, "b": 10}) == 12
    assert execute_task("a", {"a": 3}) == 3
    assert execute_task("zz", {"a": 3}) == "zz"


def test_task_exception_propagates():
    def boom(x):
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match="bad 1"):
        get({"a": 1, "b": (boom, "a")}, "b")


def test_only_needed_tasks_run():
    ran = []

    def record(name):
        ran.append(name)
        return name

    get({"a": (record, "A"), "b": (record, "B"), "c": (add, "a", "a")}, "c")
    assert ran == ["A"]


def test_module_all_names_exist():
    for name in core.__all__:
        assert hasattr(core, name), name
