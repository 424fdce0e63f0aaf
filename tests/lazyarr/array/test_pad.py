"""pad against np.pad: every mode and keyword, widths wider than the axis, corners, empty axes."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr.array as la

from _array_helpers import assert_eq

RNG = np.random.default_rng(80)
FLOATS = RNG.integers(-9, 9, (5, 4)).astype(float)
INTS = RNG.integers(-9, 9, (5, 4))
CASES = [
    ((2, 3), "constant", {}),
    (((1, 2), (0, 3)), "constant", {"constant_values": ((1, 2), (3, 4))}),
    (3, "edge", {}),
    (((2, 1), (3, 0)), "linear_ramp", {"end_values": (5, -2)}),
    (2, "maximum", {}),
    (((1, 3), (2, 2)), "mean", {"stat_length": 2}),
    (2, "median", {"stat_length": ((1, 3), (2, 4))}),
    (2, "minimum", {}),
    (((3, 2), (1, 3)), "reflect", {}),
    (((9, 12), (7, 3)), "reflect", {}),
    (((9, 12), (7, 3)), "reflect", {"reflect_type": "odd"}),
    (((9, 12), (7, 3)), "symmetric", {}),
    (((9, 12), (7, 3)), "symmetric", {"reflect_type": "odd"}),
    (((11, 2), (9, 5)), "wrap", {}),
    ((0, 2), "wrap", {}),
]


@pytest.mark.parametrize("values", [FLOATS, INTS], ids=["float", "int"])
@pytest.mark.parametrize("chunks", [2, (5, 4), ((1, 4), (3, 1))])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_pad(values, chunks, case):
    width, mode, kwargs = case
    assert_eq(la.pad(la.from_array(values, chunks=chunks), width, mode=mode, **kwargs),
              np.pad(values, width, mode=mode, **kwargs))


def test_pad_function_and_empty_mode():
    def fill(vector, width, axis, kwargs):
        vector[:width[0]] = kwargs.get("padder", 10)
        if width[1]:
            vector[-width[1]:] = kwargs.get("padder", 10) + axis

    x = la.from_array(FLOATS, chunks=2)
    assert_eq(la.pad(x, ((1, 2), (2, 1)), fill, padder=7), np.pad(FLOATS, ((1, 2), (2, 1)), fill, padder=7))
    assert la.pad(x, 2, mode="empty").shape == (9, 8)
    assert_eq(np.pad(x, 1), np.pad(FLOATS, 1))  # NumPy's function dispatches here
    assert_eq(la.pad(x, {-1: (1, 0), 0: 2}, mode="wrap"), np.pad(FLOATS, {-1: (1, 0), 0: 2}, mode="wrap"))


def test_pad_edge_cases():
    assert_eq(la.pad(la.from_array(np.array([5.]), chunks=1), 3, "reflect"), np.pad([5.], 3, "reflect"))
    assert_eq(la.pad(la.zeros((0, 3)), 1), np.pad(np.zeros((0, 3)), 1))
    assert la.pad(la.zeros((0, 3)), ((0, 0), (1, 1)), "edge").shape == (0, 5)
    with pytest.raises(ValueError, match="can't extend empty axis 0"):
        la.pad(la.zeros((0, 3)), 1, "edge")
    with pytest.raises(ValueError, match="negative"):
        la.pad(la.ones(3), -1)
    with pytest.raises(ValueError, match="unsupported keyword arguments for mode 'edge'"):
        la.pad(la.ones(3), 1, "edge", constant_values=3)
    with pytest.raises(ValueError, match="not supported"):
        la.pad(la.ones(3), 1, "spiral")
