"""compute / persist / optimize, scheduler selection and the collection protocol (lazyarr.base)."""
from __future__ import annotations

import threading
from operator import add, mul

import pytest

import lazyarr
from lazyarr import config, core
from lazyarr.base import (
    LazyarrMethodsMixin,
    collections_to_graph,
    compute,
    get_scheduler,
    is_lazyarr_collection,
    named_schedulers,
    optimize,
    persist,
)
from lazyarr.delayed import Delayed, delayed


class Recorder:
    """A get function that records what it was handed, then runs the reference evaluator."""

    def __init__(self):
        self.calls = []

    def __call__(self, dsk, keys, **kwargs):
        self.calls.append((dict(dsk), keys, kwargs))
        return core.get(dsk, keys)


class Client:
    """A stand-in for a distributed client: an object with a ``get`` method."""

    def __init__(self):
        self.recorder = Recorder()

    def get(self, dsk, keys, **kwargs):
        return self.recorder(dsk, keys, **kwargs)


class Blocks(LazyarrMethodsMixin):
    """A minimal collection of numbered blocks, finalized into a list; optimized by culling."""

    __lazyarr_scheduler__ = "sync"
    optimized = []

    def __init__(self, name, dsk, n):
        self.name, self.dsk, self.n = name, dsk, n

    def __lazyarr_graph__(self):
        return self.dsk

    def __lazyarr_keys__(self):
        return [(self.name, i) for i in range(self.n)]

    def __lazyarr_postcompute__(self):
        return list, ()

    def __lazyarr_postpersist__(self):
        return rebuild_blocks, (self.name, self.n)

    @staticmethod
    def __lazyarr_optimize__(dsk, keys, **kwargs):
        Blocks.optimized.append(kwargs)
        from lazyarr.optimization import cull

        return cull(dsk, keys)[0]


def rebuild_blocks(dsk, name, n):
    return Blocks(name, dsk, n)


def make_blocks(name="b", n=3, extra=True):
    dsk = {(name, i): (mul, i, 10) for i in range(n)}
    if extra:
        dsk["unused"] = (mul, 1, 1)
    return Blocks(name, dsk, n)


def test_protocol_detection():
    assert is_lazyarr_collection(make_blocks())
    assert is_lazyarr_collection(delayed(1))
    assert not is_lazyarr_collection(Blocks)  # the type itself is not a collection
    assert not is_lazyarr_collection({"a": 1})


def test_compute_custom_collection_and_passthrough():
    blocks = make_blocks()
    assert blocks.compute() == [0, 10, 20]
    assert compute(blocks, 5, "x") == ([0, 10, 20], 5, "x")
    assert compute(1, 2) == (1, 2)


def test_compute_traverses_containers():
    a, b = delayed(1) + 1, delayed(2) * 3
    assert compute([a, {"k": b}, (a, 7)]) == ([2, {"k": 6}, (2, 7)],)
    assert compute([a], traverse=False)[0][0] is a


def test_compute_merges_graphs_and_runs_shared_parts_once():
    calls = []

    def load(x):
        calls.append(x)
        return x

    shared = delayed(load, pure=True)(10)
    first, second = shared + 1, shared * 2
    assert compute(first, second, scheduler="sync") == (11, 20)
    assert calls == [10]


@pytest.mark.parametrize("name", sorted(named_schedulers))
def test_every_scheduler_name_gives_the_same_result(name):
    x = delayed(add)(delayed(mul)(3, 4), 5)
    assert x.compute(scheduler=name) == 17


def test_unknown_scheduler_name_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        delayed(1).compute(scheduler="thread")
    message = str(info.value)
    assert "'thread'" in message
    for valid in ("'sync'", "'threads'", "'processes'", "'synchronous'"):
        assert valid in message
    with config.set(scheduler="nonsense"), pytest.raises(ValueError, match="'nonsense'"):
        delayed(1).compute()


def test_bad_scheduler_type_is_a_clear_error():
    with pytest.raises(TypeError, match="scheduler must be"):
        delayed(1).compute(scheduler=42)


def test_compute_with_get_keyword_and_get_function_and_client():
    x = delayed(add)(1, 2)
    by_get, by_function, client = Recorder(), Recorder(), Client()
    assert x.compute(get=by_get) == 3
    assert x.compute(scheduler=by_function) == 3
    assert x.compute(scheduler=client) == 3
    assert lazyarr.compute(x, get=client.get) == (3,)
    assert len(by_get.calls) == len(by_function.calls) == 1
    assert len(client.recorder.calls) == 2
    dsk, keys, _ = by_get.calls[0]
    assert keys == [[x.key]]
    with pytest.raises(ValueError, match="either scheduler= or get="):
        x.compute(get=by_get, scheduler="sync")


def test_extra_compute_keywords_reach_the_scheduler():
    recorder = Recorder()
    delayed(1).compute(scheduler=recorder, num_workers=3)
    assert recorder.calls[0][2] == {"num_workers": 3}


def test_scheduler_precedence():
    recorder, configured = Recorder(), Recorder()
    x = delayed(add)(1, 2)
    with config.set(scheduler=configured):
        assert x.compute() == 3
        assert x.compute(scheduler=recorder) == 3  # the call beats the config
    assert len(configured.calls) == 1 and len(recorder.calls) == 1
    assert get_scheduler(collections=[make_blocks()]) is get_scheduler("sync")  # collection default
    assert get_scheduler(collections=[delayed(1)]) is get_scheduler("threads")
    with config.set(scheduler="sync"):
        assert get_scheduler(collections=[delayed(1)]) is get_scheduler("sync")


def test_global_config_scheduler(monkeypatch):
    recorder = Recorder()
    before = config.get("scheduler", None)
    try:
        config.set(scheduler=recorder)
        assert delayed(5).compute() == 5
    finally:
        config.set(scheduler=before)
    assert len(recorder.calls) == 1


def test_environment_scheduler_is_used(monkeypatch):
    import copy

    saved = copy.deepcopy(config.config)
    try:
        config.refresh(environ={"LAZYARR_SCHEDULER": "sync"})
        assert get_scheduler(collections=[delayed(1)]) is get_scheduler("sync")
    finally:
        config.config.clear()
        config.config.update(saved)


def test_sync_scheduler_runs_in_the_calling_thread():
    x = delayed(threading.get_ident)()
    assert x.compute(scheduler="sync") == threading.get_ident()


def test_optimize_graph_switch():
    recorder = Recorder()
    x = delayed(add)(1, 2)
    y = x + 1  # x -> y is a linear chain
    y.compute(scheduler=recorder)
    y.compute(scheduler=recorder, optimize_graph=False)
    optimized, plain = recorder.calls[0][0], recorder.calls[1][0]
    assert set(optimized) == {y.key}
    assert set(plain) == {x.key, y.key}


def test_collection_optimizer_gets_the_keys_and_culls():
    Blocks.optimized.clear()
    blocks = make_blocks()
    graph = collections_to_graph([blocks])
    assert "unused" not in graph
    assert Blocks.optimized == [{}]
    assert "unused" in collections_to_graph([blocks], optimize_graph=False)


def test_persist_returns_computed_collections():
    calls = []

    def load():
        calls.append(1)
        return 21

    x = delayed(load)()
    (y,) = persist(x, scheduler="sync")
    assert isinstance(y, Delayed) and y.key == x.key
    assert y.__lazyarr_graph__() == {x.key: 21}
    assert y.compute() == 21 and (y * 2).compute() == 42
    assert calls == [1]
    blocks = make_blocks().persist()
    assert blocks.dsk == {("b", 0): 0, ("b", 1): 10, ("b", 2): 20}
    assert blocks.compute() == [0, 10, 20]
    p3, (px,) = persist(3, [x], scheduler="sync")
    assert p3 == 3 and px.__lazyarr_graph__() == {x.key: 21}


def test_persist_with_a_client_uses_its_persist():
    class PersistingClient(Client):
        __lazyarr_client__ = True

        def __init__(self):
            super().__init__()
            self.persisted = []

        def persist(self, collections, optimize_graph=True, **kwargs):
            self.persisted.append(collections)
            return [Delayed(c.key, {c.key: "remote"}) for c in collections]

    client = PersistingClient()
    x = delayed(1) + 1
    (y,) = persist(x, scheduler=client)
    assert client.persisted == [[x]]
    assert y.__lazyarr_graph__() == {x.key: "remote"}
    (z,) = persist(x, get=client.get)  # a bound get counts as its client
    assert len(client.persisted) == 2


def test_persist_with_another_engines_client_stays_local():
    """An object with get and persist that is not a lazyarr client only lends its get."""

    class OtherEnginesClient(Client):
        def persist(self, *args, **kwargs):
            raise AssertionError("lazyarr collections must not be handed to another engine's persist")

    (y,) = persist(delayed(1) + 1, scheduler=OtherEnginesClient())
    assert y.compute(scheduler="sync") == 2


def test_optimize_merges_and_keeps_results():
    inc = delayed(lambda v: v + 1, pure=True)
    base = inc(1)
    a = inc(base)
    b = inc(inc(base))
    a2, b2, other = optimize(a, b, "other")
    assert other == "other"
    assert a2.__lazyarr_graph__() == b2.__lazyarr_graph__()  # one merged graph
    assert compute(a2, b2, scheduler="sync") == (3, 4)
    assert a2.key == a.key and b2.key == b.key
    assert len(a2.__lazyarr_graph__()) < len(collections_to_graph([a, b], optimize_graph=False))
    (lone,) = lazyarr.optimize(inc(5))
    assert lone.compute() == 6
    assert lazyarr.optimize(1, 2) == (1, 2)


def test_import_stays_light():
    """``import lazyarr`` and the graph-level modules never pull in numpy or pandas."""
    import subprocess
    import sys

    code = (
        "import sys, lazyarr, lazyarr.base, lazyarr.core, lazyarr.optimization, lazyarr.delayed, lazyarr.dot,"
        " lazyarr.tokenize, lazyarr.config;"
        "lazyarr.delayed(sum)([lazyarr.delayed(len)('ab')]).compute(scheduler='sync');"
        "print(sorted({'numpy', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
