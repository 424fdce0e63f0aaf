"""Ghost cells: overlap, trim_internal and map_overlap against stencils on the whole NumPy array."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lazyarr.array as la
from lazyarr.array.overlap import map_overlap, normalize_boundary, normalize_depth, overlap, trim_internal

from _array_helpers import SCHEDULERS, assert_eq, chunkings

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PAD_MODES = {"reflect": "symmetric", "periodic": "wrap", "nearest": "edge"}


def padded(values: np.ndarray, depths: tuple, rules: tuple) -> np.ndarray:
    """``values`` padded the NumPy way, axis by axis, following the boundary rules."""
    for axis, (d, rule) in enumerate(zip(depths, rules)):
        if not d or rule == "none":
            continue
        widths = [(0, 0)] * values.ndim
        widths[axis] = (d, d)
        if rule in PAD_MODES:
            values = np.pad(values, widths, mode=PAD_MODES[rule])
        else:
            values = np.pad(values, widths, mode="constant", constant_values=rule)
    return values


def box_sum(block: np.ndarray, depths: tuple) -> np.ndarray:
    """A box stencil: every cell plus its neighbours up to ``depths`` away, along each axis in turn
    (cells near the block's edge see fewer neighbours; trimming removes them)."""
    out = block.astype(float)
    for axis, d in enumerate(depths):
        acc = out.copy()
        for shift in range(1, d + 1):
            for sign in (1, -1):
                moved = np.roll(out, sign * shift, axis=axis)
                index = [slice(None)] * out.ndim
                index[axis] = slice(0, shift) if sign == 1 else slice(out.shape[axis] - shift, None)
                moved[tuple(index)] = 0
                acc += moved
        out = acc
    return out


@st.composite
def stencil_cases(draw):
    ndim = draw(st.integers(1, 3))
    depths = tuple(draw(st.lists(st.integers(0, 2), min_size=ndim, max_size=ndim)))
    shape = tuple(draw(st.integers(max(d, 1), 7)) for d in depths)
    rules = tuple(draw(st.lists(st.sampled_from(["reflect", "periodic", "nearest", "none", 0, 2.5]),
                                min_size=ndim, max_size=ndim)))
    values = (np.arange(np.prod(shape), dtype=float).reshape(shape) * 7) % 11
    return values, draw(chunkings(shape)), depths, rules


@SETTINGS
@given(case=stencil_cases())
def test_map_overlap_box_stencil_matches_numpy_on_the_whole_array(case):
    values, chunks, depths, rules = case
    x = la.from_array(values, chunks=chunks)
    result = map_overlap(box_sum, x, depth=depths, boundary=rules, depths=depths)
    expected = box_sum(padded(values, depths, rules), depths)
    # cut the padding off again: axes with a boundary were padded by depth on both sides
    index = tuple(slice(d, expected.shape[a] - d) if d and rule != "none" else slice(None)
                  for a, (d, rule) in enumerate(zip(depths, rules)))
    np.testing.assert_allclose(result.compute(scheduler="sync"), expected[index])
    assert result.chunks[0] and result.shape == values.shape


@SETTINGS
@given(case=stencil_cases())
def test_overlap_then_trim_is_the_identity(case):
    values, chunks, depths, rules = case
    x = la.from_array(values, chunks=chunks)
    grown = overlap(x, depths, rules)
    for axis, (d, rule) in enumerate(zip(depths, rules)):
        n = grown.numblocks[axis]
        extra = sum(grown.chunks[axis]) - values.shape[axis]
        assert extra == (2 * d * n if rule != "none" else 2 * d * (n - 1))
    assert_eq(trim_internal(grown, depths, rules), values)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_moving_average_and_gradient(scheduler):
    rng = np.random.default_rng(0)
    values = rng.normal(size=50)
    x = la.from_array(values, chunks=((7, 13, 5, 25),))

    def moving_average(block):
        return np.convolve(block, np.ones(5) / 5, mode="same")

    result = x.map_overlap(moving_average, depth=2, boundary="none").compute(scheduler=scheduler)
    expected = np.convolve(values, np.ones(5) / 5, mode="same")
    np.testing.assert_allclose(result[2:-2], expected[2:-2])  # the ends see zeros in both
    np.testing.assert_allclose(map_overlap(np.gradient, x, depth=1).compute(scheduler=scheduler),
                               np.gradient(values))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_two_dimensional_laplacian_with_periodic_boundary(scheduler):
    values = np.arange(120, dtype=float).reshape(10, 12) ** 1.5

    def laplacian(b):
        return np.roll(b, 1, 0) + np.roll(b, -1, 0) + np.roll(b, 1, 1) + np.roll(b, -1, 1) - 4 * b

    x = la.from_array(values, chunks=(4, 5))
    result = map_overlap(laplacian, x, depth={0: 1, 1: 1}, boundary="periodic")
    np.testing.assert_allclose(result.compute(scheduler=scheduler), laplacian(values))


def test_periodic_overlap_values_and_chunks():
    x = la.from_array(np.arange(6), chunks=3)
    g = overlap(x, 1, "periodic")
    assert g.chunks == ((5, 5),)
    assert_eq(g, np.array([5, 0, 1, 2, 3, 2, 3, 4, 5, 0]))
    r = overlap(la.from_array(np.arange(10), chunks=3), 2, "reflect")
    # chunks shorter than the depth are merged into their neighbour first
    assert r.chunks == ((7, 7, 8),)
    assert_eq(r, np.array([1, 0, 0, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7, 8, 9, 9, 8]))


def test_map_overlap_dtype_and_kwargs():
    x = la.from_array(np.arange(12).reshape(3, 4), chunks=2)
    y = map_overlap(lambda b, scale: b * scale, x, depth=1, boundary="nearest", scale=0.5)
    assert y.dtype == np.float64
    assert_eq(y, np.arange(12).reshape(3, 4) * 0.5)
    z = map_overlap(lambda b: b, x, depth=1, boundary=0, trim=False)
    assert z.shape == (3 + 2 * 2, 4 + 2 * 2)
    w = map_overlap(lambda b: b.astype(np.float32), x, depth=0, dtype=np.float32)
    assert_eq(w, np.arange(12, dtype=np.float32).reshape(3, 4))


def test_nearest_and_constant_allow_depth_beyond_the_length():
    values = np.array([1.0, 2.0])
    x = la.from_array(values, chunks=1)
    assert_eq(overlap(x, 3, "nearest"), np.pad(values, 3, mode="edge"))
    assert_eq(overlap(x, 3, -1.0), np.pad(values, 3, constant_values=-1.0))


@pytest.mark.parametrize("depth, boundary, error, message", [
    (-1, "reflect", ValueError, "non-negative integer"),
    (1.5, "reflect", ValueError, "non-negative integer"),
    ((1,), "reflect", ValueError, r"depth \(1,\) has 1 entries but the array has 2"),
    ({3: 1}, "reflect", ValueError, "axis 3 is out of range"),
    (1, "mirror", ValueError, "unknown boundary 'mirror'"),
    (1, ("reflect",), ValueError, "1 entries but the array has 2"),
    (1, object(), ValueError, "must be one of"),
    (5, "reflect", ValueError, "depth 5 along axis 0 is larger than the axis length 4"),
    (5, "periodic", ValueError, "depth 5 along axis 0 is larger than the axis length 4"),
])
def test_bad_depths_and_boundaries(depth, boundary, error, message):
    x = la.ones((4, 6), chunks=2)
    with pytest.raises(error, match=message):
        overlap(x, depth, boundary)


def test_empty_axes_and_unknown_chunks():
    empty = la.ones((0, 3), chunks=(2, 3))
    assert_eq(overlap(empty, 1, 0.0), np.pad(np.ones((0, 3)), 1))  # one block: overlap is padding
    assert_eq(map_overlap(lambda b: b * 2, empty, depth=1, boundary="none"), np.ones((0, 3)))
    with pytest.raises(ValueError, match="'nearest' boundary needs at least one cell along axis 0"):
        overlap(empty, 1, "nearest")
    x = la.from_array(np.arange(6.0), chunks=2)
    with pytest.raises(ValueError, match="axis 0: its chunk sizes are unknown"):
        overlap(x[x > 2], 1, "none")


def test_map_overlap_needs_a_function():
    with pytest.raises(TypeError, match="callable"):
        map_overlap("sum", la.ones(3, chunks=1), depth=1)


def test_normalizers():
    assert normalize_depth({1: 2}, 3) == (0, 2, 0)
    assert normalize_depth(None, 2) == (0, 0)
    assert normalize_boundary(None, 2) == ("none", "none")
    assert normalize_boundary({-1: 3}, 2) == ("none", 3)
    x = la.ones((4,), chunks=2)
    assert trim_internal(x, 0) is x
