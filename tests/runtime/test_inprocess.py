"""Scheduler, workers and clients in one process (threads), talking over real sockets on 127.0.0.1."""
from __future__ import annotations

import gc
import os
import random
import socket
import threading
import time
from operator import add, mul

import numpy as np
import pytest
import zmq

from runtime import (Client, ConnectionTimeoutError, Future, Scheduler, SerializationError, Worker,
                     as_completed, wait)
from runtime import protocol
from runtime.errors import RemoteTraceback, VersionMismatchError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="session", autouse=True)
def _zmq_gc_thread():
    """pyzmq starts one process-wide thread for zero-copy sends on first use; start it up front so
    the leak check does not count it against whichever test happens to send first."""
    from zmq.utils.garbage import gc as zmq_gc

    if not zmq_gc.is_alive():
        zmq_gc.start()
    yield


@pytest.fixture(autouse=True)
def _threads_return_to_baseline():
    """Every scheduler, worker and client a test starts is closed, its threads joined."""
    baseline = threading.active_count()
    yield
    deadline = time.monotonic() + 5
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    left = [t.name for t in threading.enumerate() if t.name.startswith("lazyarr-")]
    assert threading.active_count() <= baseline and not left, f"threads left running: {left}"


class Cluster:
    def __init__(self, nworkers=2, nthreads=1):
        self.scheduler = Scheduler()
        self.workers = [Worker(self.scheduler.address_to_workers, nthreads=nthreads, name=f"w{i}")
                        for i in range(nworkers)]
        self.clients = []
        self.client = self.new_client()
        wait_until(lambda: len(self.client.scheduler_info()["workers"]) == nworkers)

    def new_client(self):
        c = Client(self.scheduler.address_to_clients, timeout=10, set_as_default=False)
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            c.close()
        for w in self.workers:
            w.close()
        self.scheduler.close()


def wait_until(predicate, timeout=10.0, interval=0.01):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


@pytest.fixture
def cluster():
    cl = Cluster()
    try:
        yield cl
    finally:
        cl.close()


@pytest.fixture
def c(cluster):
    return cluster.client


def inc(x):
    return x + 1


def slow_inc(x, delay=0.01):
    time.sleep(delay)
    return x + 1


def div(a, b):
    return a / b


def explode(x):
    def inner():
        return 1 / 0

    return inner()


def scheduler_tasks(cluster):
    return cluster.scheduler.sync(lambda s: len(s.tasks))


# --------------------------------------------------------------------------------------------- get


def test_get_simple_and_nested(c):
    dsk = {"x": 1, "y": (add, "x", 2), "z": (mul, "y", "y"), ("t", 0): (sum, ["x", "y", "z"])}
    assert c.get(dsk, "y") == 3
    assert c.get(dsk, ["z", ["x", ("t", 0)]]) == (9, (1, 13))
    assert c.get({"a": [1, 2], "b": (len, "a")}, ["b"]) == (2,)


def test_get_matches_core_on_random_graphs(c):
    from lazyarr.core import get as core_get

    rng = random.Random(1)
    for trial in range(5):
        dsk = {f"k{i}": i for i in range(5)}
        for i in range(5, 60):
            deps = rng.sample(range(i), rng.randint(1, 3))
            dsk[f"k{i}"] = (sum, [f"k{d}" for d in deps])
        keys = [f"k{i}" for i in rng.sample(range(60), 5)]
        assert c.get(dsk, keys) == core_get(dsk, keys)


def test_collections_compute_and_persist(cluster, c):
    import lazyarr.array as la
    import lazyarr.bag as lb
    from lazyarr import compute, delayed

    x = la.ones((100,), chunks=10) * 2
    assert x.sum().compute(scheduler=c) == 200.0
    assert x.mean().compute(get=c.get) == 2.0
    b = lb.from_sequence(range(5), npartitions=2).map(inc)
    assert b.compute(scheduler=c) == [1, 2, 3, 4, 5]
    d = delayed(add)(1, 2)
    assert compute(d, d * 10, scheduler=c) == (3, 30)

    future = c.compute(x.sum())
    assert isinstance(future, Future) and future.result() == 200.0
    assert c.compute([d, b], sync=True) == [3, [1, 2, 3, 4, 5]]

    y = x.persist(scheduler=c)
    assert type(y) is type(x)
    assert all(type(v) is Future for v in y.__lazyarr_graph__().values())
    assert (y + 1).sum().compute(scheduler=c) == 300.0
    np.testing.assert_array_equal(y.compute(scheduler=c), np.full(100, 2.0))
    (p,) = c.persist([d])
    assert p.compute(scheduler=c) == 3


def test_get_errors_on_bad_input(c):
    with pytest.raises(KeyError, match="nope"):
        c.get({"x": 1}, "nope")
    with pytest.raises(TypeError, match="num_workers"):
        c.get({"x": 1}, "x", num_workers=3)
    from lazyarr.core import CycleError

    with pytest.raises(CycleError):
        c.get({"a": (inc, "b"), "b": (inc, "a")}, "a")


# ----------------------------------------------------------------------------------------- futures


def test_submit_map_gather_scatter(c):
    f = c.submit(add, 1, 2)
    assert f.result(timeout=10) == 3 and f.done() and f.status == "finished"
    assert c.submit(add, 1, 2).key == f.key                  # pure: same key
    assert c.submit(add, 1, 2, pure=False).key != f.key
    g = c.submit(add, f, 10, key="my-key")
    assert g.key == "my-key" and g.result() == 13
    fs = c.map(inc, range(20))
    assert c.gather(fs) == list(range(1, 21))
    assert c.gather({"a": fs[0], "b": [fs[1], 7]}) == {"a": 1, "b": [2, 7]}
    assert [fut.result() for fut in c.map(add, [1, 2], [10, 20], key=["p", "q"])] == [11, 22]

    [d1, d2] = c.scatter([np.arange(5), {"k": 1}])
    assert c.submit(np.sum, d1).result() == 10
    assert c.gather(d2) == {"k": 1}
    scattered = c.scatter({"sx": 5})
    assert scattered["sx"].key == "sx" and c.submit(inc, scattered["sx"]).result() == 6
    one = c.scatter(41)
    assert c.submit(inc, one).result() == 42
    many = c.scatter([1, 2], broadcast=True)
    assert c.gather(many) == [1, 2]


def test_submit_arguments_are_passed_exactly(c):
    def echo(*args, **kwargs):
        return args, kwargs

    tricky = (inc, 1)                                        # looks like a task: must not run
    f = c.submit(echo, tricky, "x", [("y", 0)], opt={"a": (len, "s")})
    assert f.result() == ((tricky, "x", [("y", 0)]), {"opt": {"a": (len, "s")}})
    base = c.submit(inc, 1)
    nested = c.submit(echo, [base, {"deep": (base,)}], kw={base})
    assert nested.result() == (([2, {"deep": (2,)}],), {"kw": {2}})


def test_futures_and_persisted_data_in_graphs_stay_on_the_cluster(cluster, c, monkeypatch):
    gathered = []
    original = Client._gather_keys

    def spy(self, keys, timeout=None):
        gathered.extend(keys)
        return original(self, keys, timeout)

    monkeypatch.setattr(Client, "_gather_keys", spy)
    x = c.submit(np.arange, 1000)
    y = c.submit(np.sum, x)
    z = c.submit(add, y, x)
    assert c.get({"w": (np.max, "v"), "v": z}, "w") == 999 + 499500
    assert c.get({"total": (add, x, y)}, "total")[0] == 499500
    assert gathered == ["w", "total"]                        # only the final values came back


def test_as_completed_and_wait(c):
    fs = [c.submit(slow_inc, i, 0.05 * (3 - i)) for i in range(3)]
    seen = [f.result() for f in as_completed(fs)]
    assert sorted(seen) == [1, 2, 3]
    pairs = list(as_completed([c.submit(inc, 10), c.submit(explode, 0)], with_results=True))
    assert {type(r) for _, r in pairs} == {int, ZeroDivisionError}
    slow = c.submit(slow_inc, 0, 0.5)
    fast = c.submit(inc, 100)
    done, not_done = wait([slow, fast], return_when="FIRST_COMPLETED", timeout=10)
    assert fast in done
    with pytest.raises(TimeoutError):
        wait([c.submit(slow_inc, 5, 2.0)], timeout=0.05)
    done, not_done = wait([slow, fast], timeout=10)
    assert not not_done and done == {slow, fast}
    called = threading.Event()
    fast.add_done_callback(lambda fut: called.set())
    assert called.wait(5)
    errors = []

    def greedy(fut):
        try:
            fut.result()
        except RuntimeError as e:
            errors.append(e)

    late = c.submit(slow_inc, 7, 0.3)
    late.add_done_callback(greedy)                           # would deadlock: refused clearly
    assert late.result(timeout=10) == 8
    wait_until(lambda: errors)
    assert "callback" in str(errors[0])


def test_cancel_and_release_free_the_data(cluster, c):
    fs = c.map(slow_inc, range(10), delay=0.2)
    fs[0].cancel()
    assert fs[0].cancelled() and fs[0].status == "cancelled"
    with pytest.raises(Exception, match="cancelled"):
        fs[0].result()
    kept = c.submit(inc, 1)
    assert kept.result() == 2
    del fs
    gc.collect()
    wait_until(lambda: scheduler_tasks(cluster) == 1)
    wait_until(lambda: sum(len(w.data) for w in cluster.workers) == 1)
    del kept
    gc.collect()
    wait_until(lambda: scheduler_tasks(cluster) == 0)
    wait_until(lambda: sum(len(w.data) for w in cluster.workers) == 0)


def test_wide_graph_does_not_overproduce_root_tasks(cluster, c):
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(max(len(w.tasks) for w in cluster.workers))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        fs = c.map(slow_inc, range(40), delay=0.02)
        assert c.gather(fs) == list(range(1, 41))
    finally:
        stop.set()
        watcher.join()
    assert max(seen) <= 2          # 1 thread + a buffer of 1 for 20 ms tasks; 38 waited at the scheduler


def test_get_releases_everything_it_computed(cluster, c):
    dsk = {("x", i): (inc, i) for i in range(50)}
    dsk["s"] = (sum, [("x", i) for i in range(50)])
    assert c.get(dsk, "s") == sum(range(1, 51))
    wait_until(lambda: scheduler_tasks(cluster) == 0)
    wait_until(lambda: sum(len(w.data) for w in cluster.workers) == 0)


def test_client_close_releases_its_keys(cluster):
    c2 = cluster.new_client()
    futures = c2.map(inc, range(5))
    c2.gather(futures)
    assert scheduler_tasks(cluster) == 5
    c2.close()
    wait_until(lambda: scheduler_tasks(cluster) == 0)
    with pytest.raises(Exception, match="closed"):
        c2.submit(inc, 1)


def test_retries(c, tmp_path):
    marker = tmp_path / "attempts"

    def flaky(path):
        with open(path, "a") as f:
            f.write("x")
        if os.path.getsize(path) < 3:
            raise OSError("transient")
        return "ok"

    assert c.submit(flaky, str(marker), retries=5).result() == "ok"
    assert marker.read_text() == "xxx"
    with pytest.raises(OSError, match="transient"):
        c.submit(flaky, str(tmp_path / "other"), retries=1).result()


def test_workers_restriction(cluster, c):
    target = cluster.workers[1]
    fs = c.map(inc, range(6), workers=[target.address])
    c.gather(fs)
    assert set(f.key for f in fs) <= set(target.data)
    by_name = c.submit(inc, 100, workers="w0")
    assert by_name.result() == 101 and by_name.key in cluster.workers[0].data


# -------------------------------------------------------------------------------------- collections


def test_named_collections_across_clients(cluster, c):
    import lazyarr.bag as lb

    b = lb.from_sequence(range(5), npartitions=2).map(inc)
    c.set_collection("mybag", b)
    persisted = b.persist(scheduler=c)
    c.set_collection("persisted", persisted)
    assert sorted(c.list_collections()) == ["mybag", "persisted"]
    expected = b.compute(scheduler=c)
    del persisted
    c.close()
    gc.collect()

    c2 = cluster.new_client()
    b2 = c2.get_collection("mybag")
    assert type(b2) is type(b) and b2.compute(scheduler=c2) == expected
    p2 = c2.get_collection("persisted")
    assert all(type(v) is Future and v.client is c2 for v in p2.__lazyarr_graph__().values())
    assert p2.compute(scheduler=c2) == expected
    assert scheduler_tasks(cluster) >= 2                    # the persisted partitions are still held

    c3 = cluster.new_client()
    c3.set_collection("mybag", lb.from_sequence([7]))        # any client may replace it
    assert c2.get_collection("mybag").compute(scheduler=c2) == [7]
    c3.delete_collection("persisted")
    with pytest.raises(KeyError, match="persisted"):
        c2.get_collection("persisted")
    with pytest.raises(KeyError):
        c3.delete_collection("persisted")
    assert p2.compute(scheduler=c2) == expected             # c2's futures keep its data alive
    with pytest.raises(TypeError):
        c3.set_collection("x", [1, 2])


# ------------------------------------------------------------------------------------------ errors


def test_task_exception_has_original_type_and_remote_traceback(cluster, c):
    with pytest.raises(ZeroDivisionError) as info:
        c.get({"x": 1, "y": (explode, "x"), "z": (inc, "y")}, "z")
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback) and "inner" in cause.tb and "explode" in cause.tb
    f = c.submit(explode, 1)
    assert isinstance(f.exception(timeout=10), ZeroDivisionError) and f.status == "error"
    with pytest.raises(ZeroDivisionError):
        f.result()
    dependent = c.submit(inc, f)
    with pytest.raises(ZeroDivisionError):
        dependent.result(timeout=10)
    other = cluster.new_client()                            # other work and clients go on
    assert other.submit(div, 6, 3).result() == 2.0
    assert c.get({"a": (div, 1, 4)}, "a") == 0.25


def test_unpicklable_function_or_argument_fails_before_sending(cluster, c):
    lock = threading.Lock()

    def uses_lock(x):
        with lock:
            return x

    with pytest.raises(SerializationError, match="lock"):
        c.submit(uses_lock, 1)
    with pytest.raises(SerializationError, match="bad"):
        c.get({"bad": (inc, threading.Lock())}, "bad")
    with pytest.raises(TypeError):                           # SerializationError is a TypeError
        c.scatter(threading.Lock())
    assert scheduler_tasks(cluster) == 0                     # nothing reached the scheduler
    assert c.submit(lambda v: v * 2, 21).result() == 42     # lambdas and closures are fine


def test_connection_timeout_names_the_address():
    start = time.monotonic()
    with pytest.raises(ConnectionTimeoutError, match=r"tcp://127\.0\.0\.1:1\b"):
        Client("tcp://127.0.0.1:1", timeout=1.5)
    assert time.monotonic() - start < 2.5
    with pytest.raises(ValueError, match="tcp://"):
        Client("localhost:5555")


def _raw_dealer(ctx, address):
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    return sock


def test_garbage_on_every_port_is_dropped(cluster, c):
    ctx = zmq.Context()
    ports = [cluster.scheduler.address_to_workers, cluster.scheduler.address_to_clients,
             cluster.workers[0].address]
    rng = random.Random(7)
    good = protocol.encode([{"op": "heartbeat"}])[0]
    payloads = [[b""], [b"\x00"], [bytes(rng.getrandbits(8) for _ in range(200))],
                [good[:5]], [good[:4] + b"\xc1\xc1"], [good, b"extra frame"],
                [protocol.encode([{"op": "gather"}])[0]],                      # missing fields
                [protocol.encode([{"op": "no-such-op"}])[0]],
                [protocol.encode([{"op": "update-graph", "keys": [1], "tasks": [], "deps": []}])[0]],
                [good[:4] + b"\x91\x92\x01\x02"],                              # ops that are not dicts
                [protocol.MAGIC + bytes([1]) + b"\xd4\x01\x00"]]               # unknown ext type
    socks = []
    try:
        for address in ports:
            sock = _raw_dealer(ctx, address)
            socks.append(sock)
            for frames in payloads:
                sock.send_multipart(frames)
            for _ in range(20):
                sock.send_multipart([bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
                                     for _ in range(rng.randint(1, 3))])
        for address in ports:                                # raw TCP bytes, not even ZMTP
            host, port = address[6:].rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=5) as raw:
                raw.sendall(os.urandom(4096))
        assert c.get({"x": 1, "y": (inc, "x")}, "y") == 2
        assert c.submit(add, 2, 3).result() == 5
        assert cluster.scheduler.messages_dropped > 0
    finally:
        for sock in socks:
            sock.close(0)
        ctx.term()


def test_other_protocol_version_gets_a_clear_error(cluster):
    ctx = zmq.Context()
    sock = _raw_dealer(ctx, cluster.scheduler.address_to_clients)
    try:
        frames = protocol.encode([{"op": "hello"}])
        frames[0] = protocol.MAGIC + bytes([protocol.VERSION + 1]) + frames[0][4:]
        sock.send_multipart(frames)
        assert sock.poll(5000)
        reply = sock.recv_multipart()
        (op,) = protocol.decode(reply)
        assert op["op"] == "error" and f"version {protocol.VERSION + 1}" in op["message"]
        assert f"version {protocol.VERSION}" in op["message"]
    finally:
        sock.close(0)
        ctx.term()
    with pytest.raises(VersionMismatchError, match="version 9"):
        protocol.decode([protocol.MAGIC + bytes([9]) + b"\x90"])


# ------------------------------------------------------------------------------- workers and data


def test_worker_closing_mid_graph_result_still_right(cluster, c):
    n = 40
    dsk = {("a", i): (slow_inc, i, 0.02) for i in range(n)}
    dsk.update({("b", i): (slow_inc, ("a", i), 0.02) for i in range(n)})
    dsk["total"] = (sum, [("b", i) for i in range(n)])
    result = {}
    runner = threading.Thread(target=lambda: result.update(v=c.get(dsk, "total")))
    runner.start()
    wait_until(lambda: len(cluster.workers[0].data) + len(cluster.workers[1].data) >= 6)
    cluster.workers[0].close()                               # holds intermediates and running tasks
    runner.join(60)
    assert not runner.is_alive()
    assert result["v"] == sum(range(2, n + 2))
    assert c.get({"x": (inc, 1)}, "x") == 2


def test_worker_joining_mid_graph_takes_work(cluster, c):
    fs = c.map(slow_inc, range(30), delay=0.02)
    late = Worker(cluster.scheduler.address_to_workers, nthreads=1)
    try:
        assert c.gather(fs) == list(range(1, 31))
        more = c.map(slow_inc, range(100, 130), delay=0.01)
        c.gather(more)
        assert any(f.key in late.data for f in more)
    finally:
        late.close()


def test_worker_started_before_scheduler_registers_when_it_appears():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    w = Worker(f"tcp://127.0.0.1:{port}", nthreads=1)
    try:
        time.sleep(0.2)
        with Scheduler(port_to_workers=port) as s:
            with Client(s.address_to_clients, timeout=10, set_as_default=False) as c:
                wait_until(lambda: len(c.scheduler_info()["workers"]) == 1)
                assert c.submit(inc, 1).result(timeout=10) == 2
    finally:
        w.close()


def test_peer_to_peer_numpy_transfer(cluster, c):
    a, b = cluster.workers
    x = c.submit(np.arange, 1_000_000, dtype="f8", workers=[a.address])
    y = c.submit(np.multiply, x, 2, workers=[b.address])
    assert y.result()[-1] == 1_999_998.0
    assert x.key in a.data and y.key in b.data and x.key in b.data   # b fetched a copy of x
    received = b.data[x.key]
    assert received.flags.writeable and received.sum() == x.result().sum()


def test_many_clients_at_once(cluster):
    clients = [cluster.new_client() for _ in range(3)]
    results = {}

    def work(i, cl):
        dsk = {(f"x{i}", j): (add, j, i) for j in range(200)}       # keys name their computation
        dsk["s", i] = (sum, [(f"x{i}", j) for j in range(200)])
        dsk["shared"] = (sum, [("base", j) for j in range(100)])   # the same in every client
        dsk.update({("base", j): (inc, j) for j in range(100)})
        results[i] = (cl.get(dsk, [("s", i), "shared"]), cl.submit(mul, i, 3).result())

    threads = [threading.Thread(target=work, args=(i, cl)) for i, cl in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: ((sum(range(200)) + 200 * i, sum(range(1, 101))), 3 * i) for i in range(3)}


def test_scheduler_info_and_context_managers():
    with Scheduler() as s, Worker(s.address_to_workers, nthreads=2, name="solo", memory_limit="1GiB") as w:
        with Client(s.address_to_clients, timeout=10, set_as_default=False) as c:
            wait_until(lambda: len(c.scheduler_info()["workers"]) == 1)
            info = c.scheduler_info()
            (entry,) = info["workers"].values()
            assert entry["name"] == "solo" and entry["nthreads"] == 2 and entry["memory_limit"] == 2**30
            assert info["clients"] == 1
            assert repr(w).startswith("<Worker tcp://127.0.0.1:")


def test_client_becomes_default_scheduler_until_closed(cluster):
    from lazyarr import config, delayed

    c = Client(cluster.scheduler.address_to_clients, timeout=10)
    try:
        assert config.get("scheduler") is c
        assert delayed(inc)(1).compute() == 2
    finally:
        c.close()
    assert config.get("scheduler", None) is not c


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="tcp://"):
        Worker("127.0.0.1:4444")
    with pytest.raises(TypeError, match="MutableMapping"):
        Worker("tcp://127.0.0.1:4444", data=[1])
    with pytest.raises(ValueError, match="nthreads"):
        Worker("tcp://127.0.0.1:4444", nthreads=0)
    with Scheduler() as s:
        with pytest.raises(OSError, match="cannot listen"):
            Scheduler(port_to_clients=s.port_to_clients)


def test_client_of_another_version_gets_a_clear_error():
    """A 'scheduler' that speaks protocol version + 1 answers the hello: Client raises at once."""
    ctx = zmq.Context()
    server = ctx.socket(zmq.ROUTER)
    server.setsockopt(zmq.LINGER, 0)
    port = server.bind_to_random_port("tcp://127.0.0.1")

    def answer():
        if server.poll(10_000):
            ident, *frames = server.recv_multipart()
            reply = protocol.encode([{"op": "error", "message": "I speak the future"}])
            reply[0] = protocol.MAGIC + bytes([protocol.VERSION + 1]) + reply[0][4:]
            server.send_multipart([ident, *reply])

    responder = threading.Thread(target=answer)
    responder.start()
    try:
        start = time.monotonic()
        with pytest.raises(VersionMismatchError, match=f"version {protocol.VERSION + 1}.*I speak the future"):
            Client(f"tcp://127.0.0.1:{port}", timeout=10)
        assert time.monotonic() - start < 5
    finally:
        responder.join(15)
        server.close(0)
        ctx.term()


def test_scheduler_never_unpickles_payloads(scheduler_unpickles):
    """Spy on every unpickling entry point: none may run in the scheduler's thread."""
    cl = Cluster()
    try:
        c = cl.client
        big = c.scatter(np.arange(100_000))
        assert c.submit(np.sum, big).result() == np.arange(100_000).sum()
        assert c.get({"x": (np.ones, 50_000), "y": (np.sum, "x")}, "y") == 50_000
        with pytest.raises(ZeroDivisionError):
            c.submit(explode, 1).result()
        import lazyarr.bag as lb

        c.set_collection("b", lb.from_sequence([1, 2]))
        assert c.get_collection("b").compute(scheduler=c) == [1, 2]
        assert c.submit(lambda: "closure").result() == "closure"
    finally:
        cl.close()
    assert scheduler_unpickles == []
