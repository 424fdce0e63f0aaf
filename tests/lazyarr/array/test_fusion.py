"""The array optimizer: blockwise fusion, layer-level culling, graph build speed."""
from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lazyarr
import lazyarr.array as da
from lazyarr import config
from lazyarr.array.layers import Blockwise, Fused, LayeredGraph
from lazyarr.base import collections_to_graph
from lazyarr.core import execute_task, get

from _array_helpers import SCHEDULERS, assert_eq, chunkings

pytestmark = pytest.mark.timeout(60)


def optimized(*collections) -> dict:
    return collections_to_graph(list(collections))


def count_keys(graph: dict, prefix: str) -> int:
    return sum(1 for k in graph if isinstance(k, tuple) and k[0].startswith(prefix))


def test_elementwise_chain_and_reduction_compile_to_one_task_per_chunk():
    n = 10_000
    x = da.ones((n,), chunks=1)
    y = ((x + 1) * 2).sum()
    graph = optimized(y)
    tree = 1250 + 157 + 20 + 3 + 1
    assert len(graph) == n + tree
    assert count_keys(graph, "ones") == count_keys(graph, "add") == count_keys(graph, "mul") == 0
    first = graph[(y.name.replace("aggregate", "chunk"), 0)]
    assert isinstance(first[0], Fused) and len(first[0].steps) == 4  # ones -> add -> mul -> sum
    assert float(y.compute()) == 4.0 * n
    # without fusion: every operation is its own task
    with config.set({"optimization.fuse.active": False}):
        assert len(optimized(y)) == 4 * n + tree
        assert float(y.compute()) == 4.0 * n


def test_build_and_optimize_50000_chunks_well_under_a_second():
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        x = da.ones((50_000,), chunks=1)
        graph = optimized(((x + 1) * 2).sum())
        best = min(best, time.perf_counter() - start)
    assert len(graph) < 60_000
    assert best < 1.0, best


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_fused_results_equal_unfused_results(scheduler):
    values = np.arange(60.0).reshape(6, 10)
    x = da.from_array(values, chunks=(4, 3))
    expr = np.sin(x * 2 + 1) - x / 3
    out = (expr ** 2).mean(axis=0)
    fused = out.compute(scheduler=scheduler)
    unfused = out.compute(scheduler=scheduler, optimize_graph=False)
    expected = ((np.sin(values * 2 + 1) - values / 3) ** 2).mean(axis=0)
    np.testing.assert_allclose(fused, expected)
    np.testing.assert_allclose(unfused, expected)


def test_shared_intermediates_are_computed_once():
    calls = []

    def expensive(block):
        calls.append(block.shape)
        return block + 1

    x = da.ones(12, chunks=4)
    a = x.map_blocks(expensive, dtype=float)
    total, doubled = lazyarr.compute(a.sum(), (a * 2).sum(), scheduler="sync")
    assert (total, doubled) == (24.0, 48.0)
    assert len(calls) == 3  # a is read by two operations: not fused into either


def test_output_layers_are_kept():
    x = da.arange(6, chunks=2)
    a = x + 1
    b = a * 10
    graph = optimized(a, b)
    assert all((a.name, i) in graph for i in range(3))
    ra, rb = lazyarr.compute(a, b)
    np.testing.assert_array_equal(rb, (np.arange(6) + 1) * 10)


def test_broadcast_producers_are_not_recomputed_per_reader_block():
    row = da.arange(4, chunks=2) + 1  # read by every row of blocks below
    grid = da.ones((6, 4), chunks=(2, 2)) * row
    graph = optimized(grid)
    assert count_keys(graph, "add") == 2  # still its own tasks
    assert_eq(grid, np.ones((6, 4)) * (np.arange(4) + 1))


def test_transposed_and_contracted_readers():
    a = da.from_array(np.arange(12.0).reshape(3, 4), chunks=2)
    b = a + 1
    c = da.blockwise(lambda u: u.T, "ji", b, "ij", dtype=float)
    assert_eq(c, (np.arange(12.0).reshape(3, 4) + 1).T)
    prod = da.blockwise(np.dot, "ik", a + 1, "ij", a.T if hasattr(a, "T") else a, "jk", concatenate=True, dtype=float)
    expected = (np.arange(12.0).reshape(3, 4) + 1) @ np.arange(12.0).reshape(3, 4).T
    assert_eq(prod, expected)


def test_random_generation_fuses_with_the_reduction():
    x = da.random.default_rng(0).normal(10, 1, size=(1000,), chunks=100)
    m = x.mean()
    graph = optimized(m)
    assert count_keys(graph, "random_normal") == 0
    assert len(graph) == 10 + 2 + 1  # chunks, one combine level, aggregate
    assert abs(float(m.compute()) - 10) < 0.2


def test_slicing_culls_unneeded_blocks():
    x = da.ones((100_000,), chunks=100) + 1
    y = x[:250]
    graph = optimized(y)
    assert len(graph) <= 3 * 3 + 1
    np.testing.assert_array_equal(y.compute(), np.full(250, 2.0))


def test_plain_dict_layers_that_copy_other_tasks():
    x = da.from_array(np.arange(6.0), chunks=3) + 1
    copied = dict(x.dask)  # every task of x, flat
    copied.update({("y", 0): (np.negative, (x.name, 0)), ("y", 1): (np.negative, (x.name, 1))})
    y = da.Array(copied, "y", x.chunks, x.dtype)
    z = y + x  # x is read by y (hidden inside a plain dict) and by z
    assert_eq(z, np.zeros(6))
    assert_eq((y * 2).sum(), np.float64(-2 * (np.arange(6.0) + 1).sum()))


def test_fused_tasks_pickle_and_run():
    x = da.arange(8, chunks=4)
    y = (x + 1) * 3
    graph = optimized(y)
    restored = pickle.loads(pickle.dumps(graph))
    assert get(restored, (y.name, 1)).tolist() == [15, 18, 21, 24]
    task = graph[(y.name, 0)]
    assert execute_task(task, {}).tolist() == [3, 6, 9, 12]


def test_layered_graph_is_a_mapping():
    x = da.arange(4, chunks=2)
    y = x * 2
    g = y.dask
    assert isinstance(g, LayeredGraph)
    assert isinstance(g.layers[y.name], Blockwise)
    assert (y.name, 1) in g and (x.name, 0) in g and ("nope", 0) not in g
    assert len(dict(g)) == len(g) == 4  # two blocks of x (generated), two of y
    assert get(g, (y.name, 1)).tolist() == [4, 6]
    assert g.dependencies[y.name] == {x.name}


def test_scheduler_independent_keys_for_persisted_arrays():
    x = (da.arange(10, chunks=3) * 2).persist()
    y = (x + 1).sum()
    assert int(y.compute()) == int((np.arange(10) * 2 + 1).sum())


def test_fused_graphs_run_on_the_process_scheduler():
    x = da.random.default_rng(0).normal(size=(1000,), chunks=100)
    y = ((x + 1) * 2).mean()
    assert y.compute(scheduler="processes") == y.compute(scheduler="sync")
    z = da.from_array(np.arange(10), chunks=3).cumsum()
    np.testing.assert_array_equal(z.compute(scheduler="processes"), np.arange(10).cumsum())


def test_blocks_living_in_a_differently_named_layer():
    x = da.arange(6, chunks=3)
    layer = {("y", 0): (np.negative, (x.name, 0)), ("y", 1): (np.negative, (x.name, 1))}
    graph = LayeredGraph.from_collections("not-y", layer, [x])
    y = da.Array(graph, "y", x.chunks, x.dtype)
    assert_eq(y + 1, -np.arange(6) + 1)
    assert_eq(y.sum(), np.int64(-15))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_random_expressions_fuse_correctly(data):
    """Random trees of elementwise operations over differently chunked, broadcasting inputs, with
    shared subexpressions and a final reduction: fused, unfused and NumPy agree."""
    shape = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    leaves = []
    for _ in range(data.draw(st.integers(1, 3))):
        sub = shape[data.draw(st.integers(0, len(shape) - 1)):]
        sub = [n if data.draw(st.booleans()) else 1 for n in sub]
        values = np.random.default_rng(len(leaves)).random(sub) + 0.5
        leaves.append((values, da.from_array(values, chunks=data.draw(chunkings(tuple(sub))))))
    pool = list(leaves)
    ops = [np.add, np.multiply, np.subtract, np.maximum, lambda a, b: a / (b + 1)]
    for _ in range(data.draw(st.integers(1, 6))):
        (va, xa), (vb, xb) = data.draw(st.sampled_from(pool)), data.draw(st.sampled_from(pool))
        op = data.draw(st.sampled_from(ops))
        if data.draw(st.booleans()):
            pool.append((np.sqrt(abs(op(va, vb))), np.sqrt(abs(op(xa, xb)))))
        else:
            pool.append((op(va, vb) * 2, op(xa, xb) * 2))
    (v1, x1), (v2, x2) = pool[-1], data.draw(st.sampled_from(pool))
    combos = [(x1, v1), (x1 + x2, v1 + v2)]
    reduce = data.draw(st.sampled_from(["none", "sum", "mean", "max"]))
    outputs = []
    for lazy, expected in combos:
        if reduce != "none":
            axis = data.draw(st.one_of(st.none(), st.integers(0, lazy.ndim - 1)))
            lazy, expected = getattr(lazy, reduce)(axis=axis), getattr(expected, reduce)(axis=axis)
        outputs.append((lazy, np.asarray(expected)))
    fused = lazyarr.compute(*[o[0] for o in outputs], scheduler=data.draw(st.sampled_from(SCHEDULERS)))
    unfused = lazyarr.compute(*[o[0] for o in outputs], scheduler="sync", optimize_graph=False)
    for (lazy, expected), f, u in zip(outputs, fused, unfused):
        np.testing.assert_allclose(f, expected, rtol=1e-12)
        np.testing.assert_allclose(u, expected, rtol=1e-12)
        assert np.shape(f) == expected.shape == lazy.shape
