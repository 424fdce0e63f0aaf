"""lazyarr collections computed by other engines' ``get``: Dask distributed, Dask's local schedulers, Ray.

Our graphs follow Dask's format, so ``x.compute(scheduler=dask_client.get)`` must give the same
answers as lazyarr's own schedulers. These tests run every kind of collection, and the corners
of the graph spec (literal tuples, aliases, nested tasks, dict arguments, tuple/int/float keys,
fused chains), through Dask distributed's ``Client.get``, ``dask.threaded.get``, Ray's
``ray_dask_get`` and (for real pickling between processes) ``dask.multiprocessing.get``. Skipped
when Dask (the ``[bench]`` extra) is not installed; the Ray cases run only with Ray installed and
``LAZYARR_TEST_RAY=1``.
"""
from __future__ import annotations

import operator
import os
from collections import Counter

import cloudpickle
import pytest

dask = pytest.importorskip("dask", reason="dask is not installed (pip install 'lazyarr[bench]')")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                                        "(pip install 'lazyarr[bench]')")

import dask.multiprocessing  # noqa: E402
import dask.threaded  # noqa: E402
from dask.core import validate_key  # noqa: E402

import lazyarr  # noqa: E402
from lazyarr import delayed  # noqa: E402
from lazyarr.base import collections_to_graph  # noqa: E402
from lazyarr.optimization import Chain  # noqa: E402

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def dask_client():
    """A Dask distributed Client of an in-process LocalCluster (one worker, two threads).

    ``dashboard_address=None`` would still serve HTTP on every interface (port 8787, or any port
    when that is taken): these addresses keep both HTTP servers on loopback, on free ports.
    """
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def ray_dask_get():
    """Ray's Dask scheduler on a local Ray instance (two CPUs); opt-in with LAZYARR_TEST_RAY=1.

    Opt-in because Ray's daemons listen on every interface (Ray 2.60, even with
    ``_node_ip_address='127.0.0.1'``), which the suite's loopback-only rule forbids by default.
    """
    if os.environ.get("LAZYARR_TEST_RAY") != "1":
        pytest.skip("Ray listens on every interface: set LAZYARR_TEST_RAY=1 (and pip install ray) to run")
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'ray>=2.40'); see docs/other-engines.md")
    from ray.util.dask import ray_dask_get

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        yield ray_dask_get
    finally:
        ray.shutdown()


@pytest.fixture(params=["distributed", "dask-threaded", "ray"])
def get(request):
    """A ``get`` function of another engine: Dask distributed's, Dask's threaded one, Ray's."""
    if request.param == "distributed":
        return request.getfixturevalue("dask_client").get
    if request.param == "ray":
        return request.getfixturevalue("ray_dask_get")
    return dask.threaded.get


# ----------------------------------------------------------------------------------------------
# Collections


def _inc(x):
    return x + 1


def test_delayed(get):
    a = delayed(operator.add)(1, 2)
    b = delayed(operator.mul)(a, 10)
    pair = delayed(divmod)(b, 7)
    kw = delayed(sorted)([3, 1, 2], reverse=True)       # keyword arguments travel as an apply task
    assert lazyarr.compute(b, pair, kw, scheduler=get) == (30, (4, 2), [3, 2, 1])
    assert delayed(_inc)(delayed(len)("abcd")).compute(scheduler=get) == 5


def test_array(get):
    la = pytest.importorskip("lazyarr.array")
    data = np.arange(600, dtype="f8").reshape(20, 30)
    x = la.from_array(data, chunks=(7, 11))
    y = (x + 1) * 2
    assert y.mean().compute(scheduler=get) == pytest.approx(((data + 1) * 2).mean())
    np.testing.assert_allclose(y.sum(axis=0).compute(scheduler=get), ((data + 1) * 2).sum(axis=0))
    np.testing.assert_array_equal(x.T[3:15, ::4].compute(scheduler=get), data.T[3:15, ::4])


def test_bag(get):
    lb = pytest.importorskip("lazyarr.bag")
    words = "the cat and the dog and the bird saw the cat".split()
    b = lb.from_sequence(words, npartitions=4)
    assert sorted(b.frequencies().compute(scheduler=get)) == sorted(Counter(words).items())
    lengths = b.map(len).filter(lambda n: n > 2)
    assert sorted(lengths.compute(scheduler=get)) == sorted(len(w) for w in words if len(w) > 2)
    assert b.distinct().count().compute(scheduler=get) == len(set(words))


def test_dataframe_groupby(get):
    ld = pytest.importorskip("lazyarr.dataframe")
    pdf = pd.DataFrame({"k": [i % 5 for i in range(100)], "v": range(100), "w": [i * 0.5 for i in range(100)]})
    df = ld.from_pandas(pdf, npartitions=4)
    pd.testing.assert_series_equal(df.groupby("k").v.sum().compute(scheduler=get), pdf.groupby("k").v.sum())
    pd.testing.assert_frame_equal(df.groupby("k").agg({"v": "max", "w": "mean"}).compute(scheduler=get),
                                  pdf.groupby("k").agg({"v": "max", "w": "mean"}))
    filtered = df[df.v > 50].w.sum()
    assert filtered.compute(scheduler=get) == pytest.approx(pdf[pdf.v > 50].w.sum())


def test_dask_client_object_as_scheduler(dask_client):
    """The Client itself (not only its ``get``) is accepted, as lazyarr looks up its ``get``."""
    assert (delayed(operator.add)(20, 22)).compute(scheduler=dask_client) == 42


# ----------------------------------------------------------------------------------------------
# The graph spec's corners


def _first(t):
    return t[0]


SPEC_GRAPH = {
    "a": 1,
    ("b", 0): (operator.add, "a", 10),
    ("b", 1): (operator.add, ("b", 0), 1),
    "literal": (_first, ("not", "keys")),                # a tuple that is not a task nor a key: literal
    "keys-in-list": (sum, ["a", ("b", 0), ("b", 1)]),
    "nested": (operator.add, (operator.mul, "a", 3), 1),  # a task inside a task
    "tuple-of-keys": (_first, (tuple, [("b", 1), "a"])),  # the portable way to build a tuple of values
    "dict-of-keys": (operator.itemgetter("k"), (dict, [["k", ("b", 1)]])),  # ... and a dict
    "alias": ("b", 1),
    7: (operator.neg, "a"),                             # int and float keys
    2.5: (operator.mul, 7, 2),
    ("deep", ("x", 1)): (len, [["a"], ["a", "a"]]),
}
SPEC_KEYS = ["literal", "keys-in-list", "nested", "tuple-of-keys", "dict-of-keys", "alias", 2.5, ("deep", ("x", 1))]
SPEC_EXPECTED = ("not", 24, 4, 12, 12, 12, -2, 2)


def test_graph_spec_corners(get):
    assert lazyarr.get(SPEC_GRAPH, SPEC_KEYS) == SPEC_EXPECTED
    assert tuple(get(SPEC_GRAPH, SPEC_KEYS)) == SPEC_EXPECTED


def _identity(x):
    return x


def test_where_dask_reads_a_graph_differently():
    """The arguments docs/other-engines.md warns about (Dask's task spec since 2024.12): Dask looks
    for keys inside literal tuples and sets, and not inside plain dicts; lazyarr does the opposite.
    Collections never build such arguments (see test_collection_graphs_read_the_same_by_dask)."""
    graph = {"a": 1, "tuple": (_identity, ("a", "z")), "set": (_identity, {"a"}), "dict": (_identity, {"k": "a"})}
    keys = ["tuple", "set", "dict"]
    assert lazyarr.get(graph, keys) == (("a", "z"), {"a"}, {"k": 1})
    assert dask.threaded.get(graph, keys) == ((1, "z"), {1}, {"k": "a"})
    assert sorted(map(repr, _read_differently(graph))) == sorted(map(repr, [("tuple", ("a", "z")), ("set", {"a"}),
                                                                           ("dict", {"k": "a"})]))


def _holds_key(x, dsk) -> bool:
    """Does ``x`` (any nesting of tuples, lists, sets, dicts) contain a key of ``dsk`` or a task?"""
    stack = [x]
    while stack:
        item = stack.pop()
        if type(item) is tuple and item and callable(item[0]):
            return True
        try:
            if item in dsk:
                return True
        except TypeError:
            pass
        if type(item) in (tuple, list, set, frozenset):
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item.values())
    return False


def _read_differently(dsk) -> list:
    """``(key, argument)`` for each argument that lazyarr and Dask would evaluate differently:
    a literal tuple or set holding keys, or a plain dict holding keys or tasks."""
    found = []
    for key, comp in dsk.items():
        stack = [comp]
        while stack:
            arg = stack.pop()
            typ = type(arg)
            if typ is tuple and arg and callable(arg[0]):
                stack.extend(arg[1:])
            elif typ is list:
                stack.extend(arg)
            elif typ is tuple and arg in dsk:
                continue
            elif typ in (tuple, set, frozenset) and any(_holds_key(x, dsk) for x in arg):
                found.append((key, arg))
            elif typ is dict and any(_holds_key(v, dsk) for v in arg.values()):
                found.append((key, arg))
    return found


def test_collection_graphs_read_the_same_by_dask():
    for coll in _collections():
        for optimize in (True, False):
            graph = collections_to_graph([coll], optimize_graph=optimize)
            assert _read_differently(graph) == [], (coll, optimize)


def test_fused_chains(get):
    """Fused tasks (``lazyarr.optimization.Chain``) are plain callables to Dask."""
    lb = pytest.importorskip("lazyarr.bag")
    b = lb.from_sequence(range(40), npartitions=4).map(_inc).filter(lambda v: v % 3).map(operator.neg)
    graph = collections_to_graph([b])
    assert any(type(v) is tuple and isinstance(v[0], Chain) for v in graph.values()), "nothing was fused"
    expected = [-(v + 1) for v in range(40) if (v + 1) % 3]
    assert sorted(b.compute(scheduler=get)) == sorted(expected)
    # the raw optimized graph too
    parts = get(graph, list(b.__lazyarr_keys__()))
    assert sorted(x for part in parts for x in part) == sorted(expected)


def _collections() -> list:
    """One of each kind of collection, small, with the task shapes each kind builds."""
    shared = delayed(operator.add)(1, 2)  # used twice below, so it is not fused away
    colls = [delayed(sorted)([3, 1, 2], reverse=True),
             delayed(divmod)(shared, 2), delayed(_first)((shared, 5)),
             delayed(operator.itemgetter("k"))({"k": shared}), delayed(sorted)([shared, 1], key=_identity)]
    try:
        import lazyarr.array as la
        colls.append((la.ones((10, 10), chunks=5) + 1).sum(axis=1))
    except ImportError:
        pass
    try:
        import lazyarr.bag as lb
        colls.append(lb.from_sequence(range(10), npartitions=3).map(_inc).frequencies())
    except ImportError:
        pass
    try:
        import lazyarr.dataframe as ld
        colls.append(ld.from_pandas(pd.DataFrame({"k": [1, 2, 1], "v": [1, 2, 3]}), npartitions=2)
                     .groupby("k").v.sum())
    except ImportError:
        pass
    return colls


def test_keys_are_valid_dask_keys():
    """Every key of every collection's optimized graph passes Dask's own key check (Dask
    distributed rejects some keys lazyarr's spec allows, such as bytes)."""
    for coll in _collections():
        for key in collections_to_graph([coll]):
            validate_key(key)


def test_graphs_survive_cloudpickle():
    """What a distributed engine ships to its workers: the optimized graphs, pickled and back."""
    for coll in _collections():
        graph = collections_to_graph([coll])
        copy = cloudpickle.loads(cloudpickle.dumps(graph))
        keys = coll.__lazyarr_keys__()
        finalize, extra = coll.__lazyarr_postcompute__()
        expected = coll.compute(scheduler="sync")
        result = finalize(dask.threaded.get(copy, keys), *extra)
        if hasattr(expected, "equals"):
            assert expected.equals(result)
        elif isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(expected, result)
        else:
            assert result == expected


@pytest.mark.timeout(120)
def test_dask_multiprocessing_get():
    """Tasks pickled with cloudpickle into other processes, fused chains and lambdas included."""
    lb = pytest.importorskip("lazyarr.bag")
    b = lb.from_sequence(range(30), npartitions=3).map(lambda v: v * v).filter(lambda v: v % 2)
    assert sorted(b.compute(scheduler=dask.multiprocessing.get, num_workers=2)) == \
        [v * v for v in range(30) if v % 2]


def test_bytes_keys_do_not_work_in_dask(dask_client):
    """A documented difference: lazyarr's spec allows bytes keys; Dask distributed refuses them
    and Dask's local schedulers take a bytes argument for a literal. No lazyarr collection makes
    bytes keys (see test_keys_are_valid_dask_keys)."""
    graph = {b"x": 1, "y": (operator.add, b"x", 1)}
    assert lazyarr.get(graph, "y") == 2
    with pytest.raises(TypeError, match="key type"):
        dask_client.get(graph, [b"x", "y"])
    with pytest.raises(TypeError, match="bytes"):
        dask.threaded.get(graph, "y")


def test_persist_with_dask_client(dask_client):
    (x,) = lazyarr.persist(delayed(operator.add)(1, 2), scheduler=dask_client.get)
    assert x.compute(scheduler="sync") == 3
