"""Dask's client API on the runtime: ``run``, ``run_on_scheduler``, who has what, tasks that
launch tasks (``get_worker``, ``get_client``, ``worker_client``, ``secede``/``rejoin``),
``fire_and_forget``, datasets, ``replicate`` and ``upload_file``.

The state machine's side is driven by scripted events first; then scheduler, workers and
clients run in this process over 127.0.0.1; the last test uses worker processes and nannies.
"""
from __future__ import annotations

import os
import pickle
import sys
import threading
import time
import uuid
import zipfile
from operator import add

import numpy as np
import pytest

import lazyarr.bag as lb
from runtime import (Client, Scheduler, SerializationError, Worker, WorkerLeftError, fire_and_forget, get_client,
                     get_worker, rejoin, secede, worker_client)
from runtime.scheduler_state import FIRE_AND_FORGET, SECEDED, SchedulerState

pytestmark = pytest.mark.timeout(60)

W1, W2 = "tcp://127.0.0.1:1001", "tcp://127.0.0.1:1002"


# ----------------------------------------------------------------------------------------------
# the state machine alone


def ops(messages, name, peer=None):
    return [op for (_, p), op in messages if op["op"] == name and (peer is None or p == peer)]


def graph(s, client, deps, wanted):
    keys = list(deps)
    return s.update_graph(client, keys, [f"task {k}".encode() for k in keys], [list(deps[k]) for k in keys], wanted)


def test_state_seceded_task_stops_taking_a_slot():
    s = SchedulerState(min_buffer=1, work_stealing=False)
    s.worker_added(W1, 1)
    out = graph(s, "c", {"a": [], "b": [], "c": []}, ["a", "b", "c"])
    assert [op["keys"] for op in ops(out, "compute")] == [["a", "b"]]  # one thread + a buffer of one
    out = s.task_seceded(W1, ["a"])
    assert [op["keys"] for op in ops(out, "compute")] == [["c"]]      # a's slot went to c
    assert s.tasks["a"].flags & SECEDED and s.workers[W1].nready == 2
    s.validate()
    assert s.task_seceded(W1, ["a", "unknown"]) == []                 # twice, or stale: nothing
    s.tasks_finished(W1, ["a"], [8])
    assert s.workers[W1].nready == 2 and not s.tasks["a"].flags & SECEDED
    s.validate()


def test_state_fire_and_forget_outlives_the_client_then_lets_go():
    s = SchedulerState()
    s.worker_added(W1, 2)
    graph(s, "c", {"x": [], "y": ["x"]}, ["y"])
    s.fire_and_forget(["y", "unknown"])
    out = s.client_removed("c")
    assert not ops(out, "free-keys") and s.tasks["y"].who_wants == {FIRE_AND_FORGET}
    s.tasks_finished(W1, ["x"], [8])
    out = s.tasks_finished(W1, ["y"], [8])
    assert ops(out, "free-keys") and not s.tasks  # done: released and forgotten, x with it
    s.validate()
    graph(s, "c", {"z": []}, ["z"])
    s.tasks_finished(W1, ["z"], [8])
    s.fire_and_forget(["z"])                       # already done: not held any further
    assert s.tasks["z"].who_wants == {"c"}
    s.validate()


def test_state_calls_answer_once_every_worker_did_or_left():
    s = SchedulerState()
    s.worker_added(W1, 1, name="one")
    s.worker_added(W2, 1)
    out = s.run_on_workers("c", 7, b"call")
    assert sorted(p for (_, p), op in out if op["op"] == "run") == [W1, W2]
    assert s.call_answered(W2, "c", 7, W1, True, b"forged") == []      # only the worker asked answers
    assert s.call_answered(W1, "c", 7, W1, True, b"one") == []
    (reply,) = ops(s.worker_removed(W2), "reply")
    (w1, ok1, _), (w2, ok2, exc) = reply["result"]
    assert (w1, ok1, w2, ok2) == (W1, True, W2, False)
    assert isinstance(pickle.loads(exc)[0], WorkerLeftError)
    (reply,) = ops(s.run_on_workers("c", 8, b"call", workers=["nope"]), "reply")
    assert reply["ok"] is False and reply["error"] == "ValueError" and "nope" in reply["message"]
    (reply,) = ops(s.run_on_workers("c", 9, b"call", workers=["one"], nannies={}), "reply")
    assert "without a nanny" in str(pickle.loads(reply["result"][0][2])[0])
    out = s.run_on_workers("c", 10, b"call", wait=False)
    assert ops(out, "reply")[0]["result"] is None and ops(out, "run")[0]["reply"] is False and not s.calls


def test_state_questions_replicas_and_uploads():
    s = SchedulerState()
    s.worker_added(W1, 2, name="one")
    s.worker_added(W2, 4)
    graph(s, "c", {("x", 0): [], "y": []}, [("x", 0), "y"])
    s.tasks_finished(W1, [("x", 0)], [100])
    assert s.who_has() == {("x", 0): [W1]} and s.who_has(["y", "z"]) == {"y": [], "z": []}
    assert s.has_what(["one"]) == {W1: [("x", 0)]} and s.nthreads() == {W1: 2, W2: 4}
    assert sum(map(len, s.processing().values())) == 1
    assert s.nbytes() == {"x": 100} and s.nbytes(summary=False) == {("x", 0): 100}
    with pytest.raises(ValueError, match="unknown workers"):
        s.has_what(["nope"])
    out = s.replicate("c", 1, [("x", 0)])
    (acquire,) = ops(out, "acquire-replicas", W2)
    assert acquire["who_has"] == [[("x", 0), [W1]]] and ops(out, "reply")[0]["result"] == 1
    s.tasks_finished(W2, [("x", 0)], [100])                          # the copy arrived
    assert ops(s.replicate("c", 2, [("x", 0)]), "reply")[0]["result"] == 0
    out = s.replicate("c", 3, [("x", 0)], n=1)
    assert len(s.tasks[("x", 0)].who_has) == 1 and ops(out, "free-keys")
    assert "not in memory" in ops(s.replicate("c", 4, ["y"]), "reply")[0]["message"]
    s.validate()
    s.upload_file("c", 5, "mod.py", b"x = 1\n")
    out = s.worker_added("tcp://127.0.0.1:1003", 1)
    assert out[0][1]["op"] == "upload-file" and out[0][1]["reply"] is False  # first: tasks may import it


# ----------------------------------------------------------------------------------------------
# in this process, over 127.0.0.1


class Cluster:
    def __init__(self, nworkers=2, nthreads=1, **scheduler_kwargs):
        self.scheduler = Scheduler(dashboard_address=None, **scheduler_kwargs)
        self.workers = []
        self.clients = []
        try:
            for i in range(nworkers):
                self.add_worker(nthreads=nthreads, name=f"w{i}")
            self.client = self.new_client()
            wait_until(lambda: len(self.client.scheduler_info()["workers"]) == nworkers)
        except BaseException:
            self.close()
            raise

    def add_worker(self, **kwargs):
        worker = Worker(self.scheduler.address_to_workers, **kwargs)
        self.workers.append(worker)
        return worker

    def new_client(self):
        client = Client(self.scheduler.address_to_clients, timeout=10, set_as_default=False)
        self.clients.append(client)
        return client

    @property
    def addresses(self):
        return sorted(w.address for w in self.workers)

    def close(self):
        for c in self.clients:
            c.close()
        for w in self.workers:
            w.close()
        self.scheduler.close()


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture
def cluster():
    cl = Cluster()
    yield cl
    cl.close()


def inc(x):
    return x + 1


def fib(n):
    if n < 2:
        return n
    with worker_client() as client:
        a, b = client.submit(fib, n - 1), client.submit(fib, n - 2)
        return a.result() + b.result()


_GATE = threading.Event()
_STARTED = threading.Event()
_EFFECTS: list = []


def wait_for_gate(x=None):
    _STARTED.set()
    if not _GATE.wait(10):
        raise TimeoutError("the test never opened the gate")
    _EFFECTS.append(x)
    return x


def wait_until_closing(lazyarr_worker):
    _STARTED.set()
    while not lazyarr_worker.closing:
        time.sleep(0.01)


def fail_on(name, dask_worker):
    if dask_worker.name == name:
        raise ZeroDivisionError(f"failed on {name}")
    return "ok"


async def async_double(x):
    return 2 * x


def import_value(module, attribute="value"):
    value = getattr(__import__(module), attribute)
    return value() if callable(value) else value


@pytest.fixture(autouse=True)
def _reset_events():
    for event in (_GATE, _STARTED):
        event.clear()
    _EFFECTS.clear()
    yield
    _GATE.set()  # never leave a task waiting


def test_run_on_every_worker_or_some(cluster):
    c = cluster.client
    assert c.run(add, 1, 2) == dict.fromkeys(cluster.addresses, 3)
    w0 = cluster.workers[0]
    assert c.run(lambda x, dask_worker: (x, dask_worker.name), 5, workers=["w0"]) == {w0.address: (5, "w0")}
    assert c.run(lambda lazyarr_worker, k=0: lazyarr_worker.address + str(k), k=1, workers=w0.address) == {
        w0.address: w0.address + "1"}
    assert c.run(lambda: get_worker().name, workers=["w1"]) == {cluster.workers[1].address: "w1"}
    assert c.run(async_double, 4, workers=["w1"]) == {cluster.workers[1].address: 8}   # awaited, as Dask does


def test_run_errors_are_clear(cluster):
    c = cluster.client
    w0, w1 = (w.address for w in cluster.workers)
    with pytest.raises(ValueError, match=r"unknown workers \['nope'\].*w0"):
        c.run(add, 1, 2, workers=["nope"])
    lock = threading.Lock()
    with pytest.raises(SerializationError, match="cannot send"):
        c.run(lambda: lock)
    with pytest.raises(ZeroDivisionError, match="failed on w0") as info:
        c.run(fail_on, "w0")
    assert "fail_on" in str(info.value.__cause__)                     # the worker's traceback
    results = c.run(fail_on, "w0", on_error="return")
    assert isinstance(results[w0], ZeroDivisionError) and results[w1] == "ok"
    assert c.run(fail_on, "w0", on_error="ignore") == {w1: "ok"}
    with pytest.raises(ValueError, match="on_error"):
        c.run(add, 1, 2, on_error="skip")
    with pytest.raises(SerializationError, match="cannot be pickled"):
        c.run(threading.Lock)
    with pytest.raises(TypeError, match="worker addresses or names"):
        c.run(add, 1, 2, workers=[0])


def test_run_without_waiting(cluster):
    c = cluster.client
    assert c.run(wait_for_gate, "ran", wait=False, workers=["w0"]) is None
    assert _STARTED.wait(10)
    _GATE.set()
    wait_until(lambda: _EFFECTS == ["ran"])


def test_run_worker_leaving_mid_call_fails_with_worker_left(cluster):
    c = cluster.client
    w1 = cluster.workers[1]
    outcome: dict = {}

    def call():
        try:
            outcome["value"] = c.run(wait_until_closing, workers=[w1.address])
        except Exception as e:
            outcome["error"] = e

    caller = threading.Thread(target=call)
    caller.start()
    try:
        assert _STARTED.wait(10)
        w1.close()
    finally:
        caller.join(15)
    assert isinstance(outcome.get("error"), WorkerLeftError) and w1.address in str(outcome["error"])


def test_run_on_scheduler_is_refused_without_the_opt_in(cluster, scheduler_unpickles, tmp_path):
    """The scheduler still unpickles nothing a client sends, whatever the new calls carry."""
    c = cluster.client
    with pytest.raises(PermissionError, match="allow_run_on_scheduler=True"):
        c.run_on_scheduler(lambda: 1)
    assert c.run(lambda: "on workers", workers=["w0"])
    c.publish_dataset(x=c.submit(inc, 1))
    path = tmp_path / f"lazyarr_upload_{uuid.uuid4().hex[:8]}.py"
    path.write_text("X = 1\n")
    c.upload_file(str(path), load=False)
    assert scheduler_unpickles == []


def test_run_on_scheduler_with_the_opt_in():
    from runtime import LocalCluster
    from runtime.cli import scheduler_parser

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None, allow_run_on_scheduler=True) as cluster, \
            Client(cluster, set_as_default=False) as c:
        c.run(add, 1, 1)  # the worker is there
        assert c.run_on_scheduler(lambda x, dask_scheduler: (x, list(dask_scheduler.state.workers)), 1) == (
            1, list(c.nthreads()))
        assert c.run_on_scheduler(lambda sid, lazyarr_scheduler: id(lazyarr_scheduler) == sid, id(cluster.scheduler))
        with pytest.raises(ZeroDivisionError):
            c.run_on_scheduler(divmod, 1, 0)
    with pytest.raises(TypeError, match="allow_run_on_scheduler"):
        Scheduler(dashboard_address=None, allow_run_on_scheduler="yes")
    assert scheduler_parser().parse_args(["--allow-run-on-scheduler"]).allow_run_on_scheduler
    assert not scheduler_parser().parse_args([]).allow_run_on_scheduler


def test_who_has_what_threads_processing_nbytes(cluster):
    c = cluster.client
    w0, w1 = (w.address for w in cluster.workers)
    x = c.submit(inc, 1, workers=["w0"])
    y = c.scatter(np.zeros(1000), workers=["w1"])
    x.result()
    assert c.who_has(x) == {x.key: [w0]} and c.who_has([x, y]) == {x.key: [w0], y.key: [w1]}
    assert c.who_has()[y.key] == [w1]
    assert c.has_what() == {w0: [x.key], w1: [y.key]} and c.has_what("w1") == {w1: [y.key]}
    assert c.nthreads() == {w0: 1, w1: 1} and c.ncores(["w0"]) == {w0: 1}
    blocked = c.submit(wait_for_gate, workers=["w1"], pure=False)
    wait_until(lambda: c.processing() == {w0: [], w1: [blocked.key]})
    _GATE.set()
    blocked.result()
    assert c.nbytes(summary=False)[y.key] >= 8000 and c.nbytes()["inc"] == c.nbytes([x], summary=False)[x.key]
    with pytest.raises(ValueError, match="unknown workers"):
        c.has_what(["nope"])


def test_get_worker_and_friends_outside_a_task():
    for call in (get_worker, secede, rejoin):
        with pytest.raises(ValueError, match="outside a task"):
            call()
    with pytest.raises(ValueError, match="outside a task"):
        with worker_client():
            pass


def client_in_task():
    client = get_client()
    assert get_client() is client          # one per worker, shared by its tasks
    secede()
    try:
        return get_worker().name, client.submit(inc, 1).result()
    finally:
        rejoin()


def test_get_worker_and_get_client_in_tasks(cluster):
    c = cluster.client
    assert c.submit(lambda: get_worker().name, workers=["w1"]).result() == "w1"
    assert c.submit(client_in_task, workers=["w0"]).result() == ("w0", 2)


def test_recursive_fib_on_a_single_one_thread_worker():
    """Every fib task waits for the two it submits: without secede() the one thread would wait
    for itself forever."""
    cl = Cluster(nworkers=1, nthreads=1)
    try:
        assert cl.client.submit(fib, 10).result(timeout=30) == 55
        assert cl.scheduler.sync(lambda s: s.workers[cl.workers[0].address].nready) == 0
    finally:
        cl.close()


def test_tasks_open_clients_with_their_workers_keys(tmp_path):
    """Under CURVE, the client of get_client() in a task connects with its worker's keys."""
    from runtime.security import Security, generate_keys

    keys = str(tmp_path / "keys")
    generate_keys(keys, ["worker", "client"])
    with Scheduler(dashboard_address=None, security=Security.from_directory(keys)) as s, \
            Worker(s.address_to_workers, nthreads=1, security=Security.from_directory(keys, "worker")), \
            Client(s.address_to_clients, security=Security.from_directory(keys, "client"), set_as_default=False) as c:
        assert c.submit(fib, 5).result(timeout=30) == 5


def test_fire_and_forget_keeps_computing_after_the_client_goes(cluster):
    c = cluster.new_client()
    first = c.submit(inc, 1)
    last = c.submit(wait_for_gate, first, pure=False)
    fire_and_forget(last)
    key = last.key
    del first, last
    assert _STARTED.wait(10)
    c.close()
    _GATE.set()
    wait_until(lambda: _EFFECTS == [2])
    wait_until(lambda: cluster.scheduler.sync(lambda s: key not in s.tasks))   # then forgotten


def test_datasets_are_named_collections_of_anything(cluster):
    c, other = cluster.client, cluster.new_client()
    x = c.submit(inc, 1)
    c.publish_dataset(x=x, numbers=lb.from_sequence([1, 2, 3]))
    c.publish_dataset([x, 5], name="pair")
    assert c.list_datasets() == ["numbers", "pair", "x"] == c.list_collections()
    with pytest.raises(KeyError, match="already exists"):
        c.publish_dataset(x=x)
    c.publish_dataset(x=c.submit(inc, 10), override=True)
    del x
    pair = other.get_dataset("pair")
    assert pair[0].result() == 2 and pair[1] == 5
    assert other.get_dataset("numbers").compute(scheduler=other) == [1, 2, 3]
    assert other.get_dataset("nope", default=None) is None
    with pytest.raises(KeyError, match="nope"):
        other.get_dataset("nope")
    c.close()                                                # the data outlives its publisher
    assert other.get_dataset("x").result() == 11
    datasets = other.datasets
    datasets["y"] = other.scatter(7)
    assert "y" in datasets and len(datasets) == 4 and list(datasets) == ["numbers", "pair", "x", "y"]
    assert datasets["y"].result() == 7
    with pytest.raises(KeyError, match="already exists"):
        datasets["y"] = 8
    del datasets["y"]
    other.unpublish_dataset("pair")
    with pytest.raises(KeyError, match="pair"):
        other.unpublish_dataset("pair")
    with pytest.raises(TypeError, match="needs a name"):
        other.publish_dataset(1)
    with pytest.raises(TypeError, match="needs the value"):
        other.publish_dataset(name="a")
    with pytest.raises(SerializationError, match="'lock'"):
        other.publish_dataset(lock=threading.Lock())
    with pytest.raises(TypeError, match="lazyarr collections"):
        other.set_collection("n", 1)


def test_replicate_copies_peer_to_peer_and_trims(cluster):
    c = cluster.client
    w0, w1 = (w.address for w in cluster.workers)
    [x] = c.scatter([np.arange(100_000)], workers=["w0"])
    c.replicate(x)
    assert c.who_has(x) == {x.key: sorted([w0, w1])}
    assert np.array_equal(cluster.workers[1].data[x.key], np.arange(100_000))   # the copy itself
    c.replicate([x], n=1)
    assert len(c.who_has(x)[x.key]) == 1
    c.replicate(x, n=1, workers=["w0"])
    assert w0 in c.who_has(x)[x.key]
    assert c.submit(np.sum, x).result() == np.arange(100_000).sum()
    with pytest.raises(ValueError, match="unknown workers"):
        c.replicate(x, workers=["nope"])
    with pytest.raises(ValueError, match="positive"):
        c.replicate(x, n=0)
    with pytest.raises(ValueError, match="error"):
        c.replicate(c.submit(divmod, 1, 0))


@pytest.fixture
def module_name():
    """A fresh module name, forgotten again after the test (workers here share our sys.modules)."""
    name = f"lazyarr_upload_{uuid.uuid4().hex[:8]}"
    yield name
    sys.modules.pop(name, None)


def test_upload_file_reaches_every_worker_now_and_later(cluster, tmp_path, module_name):
    c = cluster.client
    path = tmp_path / f"{module_name}.py"
    path.write_text("def value():\n    return 42\n")
    c.upload_file(str(path))
    assert c.run(import_value, module_name) == dict.fromkeys(cluster.addresses, 42)
    path.write_text("def value():\n    return 43\n")     # same size, same second: still the new one
    c.upload_file(str(path))
    assert set(c.run(import_value, module_name).values()) == {43}
    late = cluster.add_worker(nthreads=1, name="late")
    wait_until(lambda: len(c.nthreads()) == 3)
    assert c.run(lambda lazyarr_worker: os.listdir(lazyarr_worker._upload_dir), workers=["late"]) == {
        late.address: [path.name]}
    package = f"{module_name}_pkg"
    archive = tmp_path / f"{package}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{package}/__init__.py", "VALUE = 7\n")
    try:
        c.upload_file(str(archive))
        assert set(c.run(import_value, package, "VALUE").values()) == {7}
        assert c.submit(import_value, package, "VALUE").result() == 7
    finally:
        sys.modules.pop(package, None)


def test_upload_file_errors(cluster, tmp_path, module_name):
    c = cluster.client
    with pytest.raises(ValueError, match=r"\.py, \.zip, \.egg"):
        c.upload_file(str(tmp_path / "data.csv"))
    with pytest.raises(FileNotFoundError):
        c.upload_file(str(tmp_path / "missing.py"))
    broken = tmp_path / f"{module_name}.py"
    broken.write_text("def broken(:\n")
    with pytest.raises(SyntaxError):
        c.upload_file(str(broken))


# ----------------------------------------------------------------------------------------------
# worker processes under nannies (conftest's LocalCluster)


def nanny_info(dask_worker):
    return os.getpid(), type(dask_worker).__name__


def test_run_and_upload_in_worker_processes_and_their_nannies(client, tmp_path, module_name):
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    # a LocalCluster's nannies live in this process
    assert set(client.run(nanny_info, nanny=True).values()) == {(os.getpid(), "Nanny")}
    path = tmp_path / f"{module_name}.py"
    path.write_text("def value():\n    return os.getpid()\n\nimport os\n")
    client.upload_file(str(path))
    assert client.run(lambda: __import__(module_name).value()) == pids
