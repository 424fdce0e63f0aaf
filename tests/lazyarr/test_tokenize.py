"""tokenize: deterministic content hashes, in one process and across processes."""
from __future__ import annotations

import dataclasses
import enum
import functools
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pandas as pd
import pytest

from lazyarr.tokenize import normalize_token, tokenize


def inc(x):
    return x + 1


def dec(x):
    return x - 1


def test_same_input_same_token_and_hex_form():
    token = tokenize(1, "a", [1.5, None], {"k": (2, 3)})
    assert token == tokenize(1, "a", [1.5, None], {"k": (2, 3)})
    assert len(token) == 32 and int(token, 16) >= 0


@pytest.mark.parametrize(
    "a, b",
    [
        (1, 1.0),
        (1, True),
        (1, "1"),
        ("a", b"a"),
        ([1, 2], (1, 2)),
        ([1, 2], [2, 1]),
        ({1, 2}, frozenset({1, 2})),
        ({"a": 1}, {"a": 2}),
        ({"a": 1}, {"b": 1}),
        (None, "None"),
        (slice(1, 2), slice(1, 3)),
    ],
)
def test_different_inputs_differ(a, b):
    assert tokenize(a) != tokenize(b)


def test_dicts_and_sets_ignore_order():
    assert tokenize({"b": 2, "a": 1}) == tokenize({"a": 1, "b": 2})
    assert tokenize({"x", "y", "z"}) == tokenize({"z", "y", "x"})


def test_kwargs_are_part_of_the_token_in_any_order():
    assert tokenize(1, a=1, b=2) == tokenize(1, b=2, a=1)
    assert tokenize(1, a=1) != tokenize(1)
    assert tokenize(1, a=1) != tokenize(1, a=2)


def test_numpy_arrays_by_content():
    x = np.arange(12, dtype="i8")
    assert tokenize(x) == tokenize(np.arange(12, dtype="i8"))
    y = x.copy()
    y[5] = -1
    assert tokenize(x) != tokenize(y)
    assert tokenize(x) != tokenize(x.astype("i4"))
    assert tokenize(x) != tokenize(x.reshape(3, 4))
    assert tokenize(x[::-1]) == tokenize(np.arange(12, dtype="i8")[::-1].copy())  # views by content
    assert tokenize(np.array(5)) == tokenize(np.array(5)) != tokenize(np.array(6))
    assert tokenize(np.zeros((0, 3))) != tokenize(np.zeros((3, 0)))
    assert tokenize(np.array(["a", None], dtype=object)) == tokenize(np.array(["a", None], dtype=object))
    assert tokenize(np.array(["a", "b"], dtype=object)) != tokenize(np.array(["a", "c"], dtype=object))
    dates = np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]")
    assert tokenize(dates) == tokenize(dates.copy()) != tokenize(dates[::-1])


def test_numpy_scalars_dtypes_and_random_states():
    assert tokenize(np.float64(1.5)) == tokenize(np.float64(1.5)) != tokenize(np.float32(1.5))
    assert tokenize(np.dtype("f8")) != tokenize(np.dtype("f4"))
    assert tokenize(np.random.RandomState(1)) == tokenize(np.random.RandomState(1))
    assert tokenize(np.random.RandomState(1)) != tokenize(np.random.RandomState(2))
    assert tokenize(np.random.default_rng(3)) != tokenize(np.random.default_rng(4))
    assert tokenize(np.add) != tokenize(np.multiply)


def test_pandas_objects_by_content():
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert tokenize(df) == tokenize(df.copy())
    changed = df.copy()
    changed.loc[1, "a"] = 20
    assert tokenize(df) != tokenize(changed)
    assert tokenize(df) != tokenize(df.rename(columns={"a": "A"}))
    assert tokenize(df) != tokenize(df.set_axis([10, 11, 12]))
    assert tokenize(df) != tokenize(df.astype({"a": "f8"}))
    s = df["a"]
    assert tokenize(s) == tokenize(s.copy()) != tokenize(s.rename("other"))
    assert tokenize(pd.Index([1, 2])) != tokenize(pd.Index([1, 2], name="n"))
    assert tokenize(pd.Timestamp("2020-01-01")) != tokenize(pd.Timestamp("2020-01-02"))
    assert tokenize(pd.Timedelta("1s")) == tokenize(pd.Timedelta("1s"))


def test_pandas_categoricals_include_their_categories():
    plain = pd.Series([1, 2], dtype="category")
    wider = pd.Series([1, 2], dtype=pd.CategoricalDtype([1, 2, 3]))
    assert tokenize(plain) == tokenize(pd.Series([1, 2], dtype="category"))
    assert tokenize(plain) != tokenize(wider)
    assert tokenize(plain.dtype) != tokenize(wider.dtype)
    frame_a = pd.DataFrame({"c": pd.Categorical(["a", "b"])})
    frame_b = pd.DataFrame({"c": pd.Categorical(["a", "b"], categories=["b", "a"])})
    assert tokenize(frame_a) != tokenize(frame_b)


def test_functions_partials_and_lambdas():
    assert tokenize(inc) == tokenize(inc) != tokenize(dec)
    assert tokenize(functools.partial(inc, 1)) == tokenize(functools.partial(inc, 1))
    assert tokenize(functools.partial(inc, 1)) != tokenize(functools.partial(inc, 2))
    assert tokenize(functools.partial(inc, x=1)) != tokenize(functools.partial(inc, x=2))
    assert tokenize(functools.partial(inc, 1)) != tokenize(functools.partial(dec, 1))
    plus_one, plus_two = (lambda x: x + 1), (lambda x: x + 2)
    assert tokenize(plus_one) == tokenize(plus_one) != tokenize(plus_two)
    assert tokenize(len) != tokenize(max)
    assert tokenize(int) != tokenize(float)


def test_closures_differ_by_captured_values():
    def make(n):
        def add_n(x):
            return x + n

        return add_n

    assert tokenize(make(1)) == tokenize(make(1))
    assert tokenize(make(1)) != tokenize(make(2))


def test_bound_methods_by_owner():
    @dataclasses.dataclass
    class Box:
        v: int

        def get(self):
            return self.v

    assert tokenize(Box(1).get) == tokenize(Box(1).get) != tokenize(Box(2).get)


class Hooked:
    def __init__(self, name, payload=None):
        self.name = name
        self.payload = payload

    def __lazyarr_tokenize__(self):
        return ("Hooked", self.name)


def test_lazyarr_tokenize_hook_is_used():
    assert tokenize(Hooked("a", payload=1)) == tokenize(Hooked("a", payload=2))  # payload ignored
    assert tokenize(Hooked("a")) != tokenize(Hooked("b"))
    assert tokenize([Hooked("a")]) == tokenize([Hooked("a", payload=object())])
    assert tokenize(Hooked) == tokenize(Hooked)  # the class itself is not passed to its hook


def test_registered_handler_wins_for_its_type():
    class Special:
        def __init__(self, v):
            self.v = v
            self.noise = object()

    normalize_token.register(Special, lambda s: ("Special", s.v))
    assert tokenize(Special(1)) == tokenize(Special(1)) != tokenize(Special(2))


def test_dataclasses_enums_and_plain_objects():
    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    class Color(enum.Enum):
        RED = 1
        BLUE = 2

    assert tokenize(Point(1, 2)) == tokenize(Point(1, 2)) != tokenize(Point(2, 1))
    assert tokenize(Color.RED) == tokenize(Color.RED) != tokenize(Color.BLUE)
    assert tokenize(Plain(1)) == tokenize(Plain(1)) != tokenize(Plain(2))


class Plain:
    def __init__(self, v):
        self.v = v


def test_unpicklable_objects_never_share_a_token():
    lock = threading.Lock()
    assert tokenize(lock) != tokenize(lock)


HELPER = textwrap.dedent(
    '''
    import functools, operator
    import numpy as np
    import pandas as pd
    from lazyarr.tokenize import tokenize

    square = lambda x: x * x

    def double(x):
        return 2 * x

    def tokens():
        frame = pd.DataFrame({"a": [1, 2], "s": ["x", "y"]}, index=pd.Index([3, 4], name="i"))
        return {
            "builtins": tokenize(1, 2.5, "s", b"b", None, True, [1, (2, 3)]),
            "strings-set": tokenize({"alpha", "beta", "gamma", "delta"}),
            "dict": tokenize({"zeta": 1, "alpha": {"nested": ["x"]}}),
            "numpy": tokenize(np.arange(10.0), np.array(["a", "b"], dtype=object)),
            "pandas": tokenize(frame, frame["s"], frame.index),
            "function": tokenize(double, operator.add),
            "partial": tokenize(functools.partial(double, 3)),
            "lambda": tokenize(square),
            "kwargs": tokenize(1, k=2, j=3),
        }
    '''
)


def test_tokens_are_the_same_across_processes(tmp_path, monkeypatch):
    (tmp_path / "tok_helper.py").write_text(HELPER)
    script = "import json, tok_helper; print(json.dumps(tok_helper.tokens()))"
    outputs = []
    for seed in ("1", "2"):  # different string hash salts
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(tmp_path))
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        outputs.append(json.loads(proc.stdout))
    monkeypatch.syspath_prepend(str(tmp_path))
    import tok_helper

    here = tok_helper.tokens()
    assert outputs[0] == outputs[1] == here
    assert len(set(here.values())) == len(here)
