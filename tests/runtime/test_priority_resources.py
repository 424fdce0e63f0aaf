"""``priority=`` and abstract resources (``resources={'GPU': 1}``): the state machine's decisions
with scripted events, then a scheduler, workers and a client in this process over 127.0.0.1."""
from __future__ import annotations

import logging
import pickle
import threading
import time

import pytest

from runtime import Client, Scheduler, Worker, get_worker
from runtime.resources import parse_resources
from runtime.scheduler_state import CHAINED, CONSTRAINED, MEMORY, PROCESSING, READY
from test_scheduler_state import W1, W2, W3, Sim

pytestmark = pytest.mark.timeout(60)

GPU, CPU = W1, W2
BIG = 50_000_000  # 0.5 s to move at the assumed 100 MB/s


def gpu_sim(**kwargs):
    """W1 has one GPU (and two threads), W2 none."""
    sim = Sim(workers=(), **kwargs)
    sim.feed(sim.s.worker_added(GPU, 2, resources={"GPU": 1}))
    sim.feed(sim.s.worker_added(CPU, 2))
    return sim


def needs(keys, **amounts):
    return {k: dict(amounts) for k in keys}


def steal_requests(sim, worker):
    return [k for op in sim.direct[worker] if op["op"] == "steal-request" for k in op["keys"]]


# ----------------------------------------------------------------------------------------------
# Priority in the state machine


def test_high_priority_submission_overtakes_queued_low_priority_work():
    sim = Sim(workers=(W1,), nthreads=1)
    low = {f"low{i}": [] for i in range(6)}
    sim.graph("A", low, list(low))
    assert sim.computes[W1] == ["low0", "low1"]            # 1 thread + 1 buffered; 4 queued here
    assert "user_prios" not in sim.compute_ops[W1][0]       # default priorities: no extra field
    sim.graph("B", {"high": []}, ["high"], user_priority=10)
    assert sim.computes[W1] == ["low0", "low1"]             # the worker is busy: it waits ...
    sim.finish(W1, "low0")
    assert sim.computes[W1][2] == "high"                    # ... at the head of the line
    op = sim.compute_ops[W1][-1]
    assert op["keys"] == ["high"] and op["user_prios"] == [10]
    assert (op["prios"][0] - (10 << 64)) == sim.s.tasks["high"].priority   # what the worker orders by
    sim.graph("C", {"late": []}, ["late"], user_priority=-1)  # below the default: after every low
    sim.run_all()
    assert sim.computes[W1][3:] == ["low2", "low3", "low4", "low5", "late"]


def test_user_priority_dominates_then_arrival_then_graph_order():
    sim = Sim(workers=())
    sim.graph("A", {"a0": [], "a1": []}, ["a0", "a1"], priorities=[1, 0])
    sim.graph("B", {"b0": [], "b1": []}, ["b0", "b1"], priorities=[0, 1], user_priority=5)
    sim.graph("C", {"c0": []}, ["c0"], user_priority=5)
    sim.graph("D", {"d0": []}, ["d0"], user_priority=-3)
    ranked = sorted(sim.s.tasks, key=lambda k: sim.s.tasks[k].priority)
    assert ranked == ["b0", "b1", "c0", "a1", "a0", "d0"]
    sim.feed(sim.s.worker_added(W1, 1))
    assert sim.computes[W1] == ["b0", "b1"]


@pytest.mark.parametrize("bad", [1.5, "high", True, 1 << 63])
def test_malformed_priority_is_rejected_before_any_change(bad):
    sim = Sim()
    with pytest.raises(ValueError, match="priority"):
        sim.s.update_graph("A", ["x"], [b"t"], [[]], ["x"], user_priority=bad)
    assert sim.s.tasks == {}


# ----------------------------------------------------------------------------------------------
# Resources in the state machine


def test_resource_tasks_run_only_where_declared_and_at_most_capacity_at_once():
    sim = gpu_sim()
    gpu = [f"g{i}" for i in range(4)]
    sim.graph("A", {k: [] for k in gpu}, gpu, resources=needs(gpu, GPU=1))
    assert sim.computes[GPU] == ["g0"] and sim.computes[CPU] == []   # one GPU: one at a time
    assert sim.compute_ops[GPU][0]["resources"] == [{"GPU": 1.0}]
    assert sim.s.workers[GPU].used == {"GPU": 1.0}
    assert all(sim.s.tasks[k].flags & CONSTRAINED for k in gpu[1:])
    info = sim.s.scheduler_info()
    assert info["waiting_for_resources"] == 3 and info["workers"][GPU]["resources"] == {"GPU": 1.0}
    plain = [f"p{i}" for i in range(4)]
    sim.graph("A", {k: [] for k in plain}, plain)      # other tasks use the free threads of both
    assert sim.computes[CPU] and "resources" not in sim.compute_ops[CPU][0]
    for i in range(1, 4):
        sim.finish(GPU, f"g{i - 1}")
        assert [k for k in sim.processing(GPU) if k in gpu] == [f"g{i}"]
    sim.run_all()
    assert all(sim.state(k) == MEMORY for k in gpu + plain)
    assert sim.s.workers[GPU].used == {}


def test_resources_come_back_when_a_task_fails_is_cancelled_or_its_worker_dies(caplog):
    sim = gpu_sim()
    gpu = [f"g{i}" for i in range(4)]
    sim.graph("A", {k: [] for k in gpu}, gpu, resources=needs(gpu, GPU=1))
    sim.feed(sim.s.task_erred(GPU, "g0", pickle.dumps((ValueError("boom"), ""))))
    assert "g1" in sim.processing(GPU)                     # failed: the GPU is free again
    sim.feed(sim.s.release_keys("A", ["g1"]))
    assert "g1" in sim.frees[GPU] and "g2" in sim.processing(GPU)   # cancelled: same
    with caplog.at_level(logging.WARNING, logger="runtime.scheduler"):
        sim.feed(sim.s.worker_removed(GPU, died=True))     # no GPU left: both wait for one
    assert sim.state("g2") == READY and sim.state("g3") == READY
    assert {sim.s.tasks["g2"], sim.s.tasks["g3"]} <= sim.s.unrunnable
    assert "2 task(s) ('g2', ...) need resources {'GPU': 1.0} that no worker has" in caplog.text
    sim.feed(sim.s.worker_added(W3, 1, resources={"GPU": 1}))
    assert sim.computes[W3] == ["g2"]                      # in priority order, one at a time
    sim.finish(W3, "g2")
    assert sim.computes[W3] == ["g2", "g3"]


def test_task_whose_resources_no_worker_has_waits_logged_once(caplog):
    sim = Sim(workers=(W1,))
    with caplog.at_level(logging.WARNING, logger="runtime.scheduler"):
        sim.graph("A", {"x": [], "g": ["x"]}, ["g"], resources={"g": {"GPU": 1}})
        sim.finish(W1, "x")
        assert sim.state("g") == READY and sim.s.tasks["g"] in sim.s.unrunnable
        assert sim.s.scheduler_info()["no_worker"] == 1
        sim.feed(sim.s.worker_added(W2, 1))                 # no GPU there either: no new line
    lines = [r.getMessage() for r in caplog.records if "no worker has" in r.getMessage()]
    assert len(lines) == 1 and "'g'" in lines[0] and "declare: none" in lines[0] and "--resources" in lines[0]
    sim.feed(sim.s.worker_added(W3, 1, resources={"GPU": 2}))
    assert sim.computes[W3] == ["g"] and not sim.s.unrunnable


def test_resource_task_is_never_chained_behind_its_input():
    sim = gpu_sim()
    sim.graph("A", {"x": [], "g": ["x"]}, ["g"], resources={"g": {"GPU": 1}}, restrictions={"x": [CPU]})
    assert sim.computes[CPU] == ["x"] and sim.state("g") == "waiting"   # not sent along with x
    sim.finish(CPU, "x", nbytes=BIG)
    ts = sim.s.tasks["g"]
    assert ts.state == PROCESSING and ts.worker.address == GPU and not ts.flags & CHAINED


def test_resource_amounts_add_up_across_tasks():
    sim = Sim(workers=())
    sim.feed(sim.s.worker_added(W1, 4, resources={"MEM": 10e9, "GPU": 1}))
    keys = ["big0", "big1", "big2", "small"]
    sim.graph("A", {k: [] for k in keys}, keys, resources={"big0": {"MEM": 6e9}, "big1": {"MEM": 6e9},
                                                           "big2": {"MEM": 3e9}, "small": {"MEM": 0.1}})
    assert sim.computes[W1] == ["big0", "big2", "small"]   # big1 would pass 10e9: it waits
    sim.finish(W1, "big0")
    assert sim.computes[W1][-1] == "big1"


def test_malformed_resources_are_rejected():
    sim = Sim()
    for bad in ({"x": {"GPU": -1}}, {"x": {"GPU": "one"}}, {"x": ["GPU"]}, {"x": {"": 1}}):
        with pytest.raises(ValueError, match="resources"):
            sim.s.update_graph("A", ["x"], [b"t"], [[]], ["x"], resources=bad)
    assert sim.s.tasks == {}


def test_work_stealing_respects_resources():
    sim = Sim(workers=(), steal_interval=0.0)
    sim.feed(sim.s.worker_added(W1, 1, resources={"GPU": 2}))
    sim.feed(sim.s.worker_added(W2, 1))
    deps = {"x": [], **{f"t{i}": ["x"] for i in range(4)}, "g": ["x"]}
    sim.graph("A", deps, [k for k in deps if k != "x"], priorities=list(range(len(deps))),
              resources={"g": {"GPU": 1}}, restrictions={"x": [W1]})
    sim.finish(W1, "x", nbytes=BIG)
    assert sim.processing(W1) == {"t0", "t1", "t2", "t3", "g"}
    sim.finish(W1, "t0", duration=2.0)                     # g, last in line, would wait ~8 s
    assert steal_requests(sim, W1) == []                   # but the idle W2 has no GPU
    sim.feed(sim.s.worker_added(W3, 1, resources={"GPU": 1}))   # an idle worker with one joins
    assert steal_requests(sim, W1) == ["g", "t3"]          # one per idle thread
    assert sim.s.stealing[sim.s.tasks["g"]][1].address == W3   # g only where a GPU is free
    sim.feed(sim.s.steal_response(W1, ["g", "t3"], [True, True]))
    assert sim.s.tasks["g"].worker.address == W3 and sim.s.tasks["t3"].worker.address == W2
    assert sim.s.workers[W1].used == {} and sim.s.workers[W3].used == {"GPU": 1.0}


def test_stolen_resource_task_is_placed_anew_if_the_thief_used_its_resources_meanwhile():
    sim = Sim(workers=(), steal_interval=0.0)
    sim.feed(sim.s.worker_added(W1, 1, resources={"GPU": 1}))
    deps = {"x": [], **{f"t{i}": ["x"] for i in range(4)}, "g": ["x"]}
    sim.graph("A", deps, [k for k in deps if k != "x"], priorities=list(range(len(deps))),
              resources={"g": {"GPU": 1}})
    sim.finish(W1, "x", nbytes=BIG)
    sim.finish(W1, "t0", duration=2.0)
    sim.feed(sim.s.worker_added(W2, 1, resources={"GPU": 1}))
    assert steal_requests(sim, W1) == ["g"]
    sim.graph("B", {"h": []}, ["h"], resources={"h": {"GPU": 1}})   # takes W2's GPU first
    assert sim.s.tasks["h"].worker.address == W2
    sim.feed(sim.s.steal_response(W1, ["g"], [True]))
    assert sim.s.tasks["g"].worker.address == W1           # not on W2: back where a GPU is free
    assert sim.compute_ops[W1][-1]["keys"] == ["g"] and "g" in sim.frees[W1]
    assert sim.s.workers[W1].used == sim.s.workers[W2].used == {"GPU": 1.0}


def test_parse_resources_errors():
    assert parse_resources("GPU=1 MEM=1e9") == {"GPU": 1.0, "MEM": 1e9}
    for bad in ("GPU", "GPU=x", "=1", "GPU=1,GPU=2", "GPU=-1"):
        with pytest.raises(ValueError, match="resources"):
            parse_resources(bad)


# ----------------------------------------------------------------------------------------------
# End to end: a scheduler, workers and a client in this process


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


_GATE = threading.Event()
_ORDER: list = []
_RUNNING = {"now": 0, "max": 0}
_RUNNING_LOCK = threading.Lock()


def _blocked() -> int:
    assert _GATE.wait(20)
    return 0


def _record(name: str) -> str:
    _ORDER.append(name)
    return name


def _on_gpu(i: int) -> str:
    """Sleep a little, counting how many such tasks run at once in this process."""
    with _RUNNING_LOCK:
        _RUNNING["now"] += 1
        _RUNNING["max"] = max(_RUNNING["max"], _RUNNING["now"])
    try:
        time.sleep(0.05)
    finally:
        with _RUNNING_LOCK:
            _RUNNING["now"] -= 1
    return get_worker().name


@pytest.fixture
def scheduler():
    with Scheduler(dashboard_address=None) as s:
        yield s


def test_priority_end_to_end(scheduler):
    _GATE.clear()
    _ORDER.clear()
    with Worker(scheduler.address_to_workers, nthreads=1, name="one"), \
            Client(scheduler.address_to_clients, timeout=10, set_as_default=False) as c:
        blocker = c.submit(_blocked, pure=False)
        lows = c.map(_record, [f"low{i}" for i in range(5)])
        high = c.submit(_record, "high", priority=10)
        keys = [blocker.key, high.key] + [f.key for f in lows]
        wait_until(lambda: scheduler.sync(lambda state: all(k in state.tasks for k in keys)))
        _GATE.set()
        c.gather(lows + [high, blocker])
    # one low task was already buffered on the busy worker; high overtakes the other four
    assert _ORDER.index("high") <= 1, _ORDER
    assert [n for n in _ORDER if n != "high"] == [f"low{i}" for i in range(5)]


def test_priority_and_resources_reach_every_graph_op(scheduler, monkeypatch):
    from lazyarr import delayed

    with Worker(scheduler.address_to_workers, nthreads=1, resources={"GPU": 1}), \
            Client(scheduler.address_to_clients, timeout=10, set_as_default=False) as c:
        sent = []
        send = c._send
        monkeypatch.setattr(c, "_send", lambda op: (sent.append(op), send(op)))

        def graph_op(call):
            sent.clear()
            result = call()
            (op,) = [op for op in sent if op["op"] == "update-graph"]
            assert op["priority"] == 3 and [r for _, r in op["resources"]] == [{"GPU": 1.0}] * len(op["keys"])
            return result

        assert graph_op(lambda: c.get({"x": (abs, -3)}, "x", priority=3, resources={"GPU": 1})) == 3
        assert graph_op(lambda: c.compute(delayed(abs)(-4), priority=3, resources={"GPU": 1})).result() == 4
        assert graph_op(lambda: c.persist(delayed(abs)(-5), priority=3, resources={"GPU": 1})).compute(scheduler=c) == 5
        assert c.gather(graph_op(lambda: c.map(abs, [-6, -7], priority=3, resources={"GPU": 1}))) == [6, 7]
        # collections' own compute and persist pass them on to the client
        assert graph_op(lambda: delayed(abs)(-8).compute(scheduler=c, priority=3, resources={"GPU": 1})) == 8
        assert graph_op(lambda: delayed(abs)(-9).persist(scheduler=c, priority=3, resources={"GPU": 1})
                        ).compute(scheduler=c) == 9
        with pytest.raises(TypeError, match="priority"):
            c.submit(abs, 1, priority=1.5)
        with pytest.raises(ValueError, match="resources"):
            c.submit(abs, 1, resources={"GPU": -1})


def test_resources_end_to_end(scheduler, caplog):
    _RUNNING.update(now=0, max=0)
    from lazyarr import delayed

    with Worker(scheduler.address_to_workers, nthreads=2, name="gpu", resources={"GPU": 1}), \
            Worker(scheduler.address_to_workers, nthreads=2, name="cpu"), \
            Client(scheduler.address_to_clients, timeout=10, set_as_default=False) as c:
        wait_until(lambda: len(c.scheduler_info()["workers"]) == 2)
        futures = c.map(_on_gpu, range(8), resources={"GPU": 1}, pure=False)
        assert c.gather(futures) == ["gpu"] * 8          # only where the GPU is ...
        assert _RUNNING["max"] == 1                      # ... and one at a time, with two threads
        assert c.compute(delayed(_on_gpu)(8), resources={"GPU": 1}).result() == "gpu"
        info = c.scheduler_info()["workers"]
        assert {w["name"]: w["resources"] for w in info.values()} == {"gpu": {"GPU": 1.0}, "cpu": {}}
        # nobody has a TPU: the task waits (as in Dask) and the scheduler's log says why
        with caplog.at_level(logging.WARNING, logger="runtime.scheduler"):
            tpu = c.submit(_on_gpu, 9, resources={"TPU": 1}, pure=False)
            wait_until(lambda: c.scheduler_info()["no_worker"] == 1)
            assert tpu.status == "pending"
        assert "need resources {'TPU': 1.0} that no worker has (workers declare: GPU)" in caplog.text
        with Worker(scheduler.address_to_workers, nthreads=1, name="tpu", resources={"TPU": 1}):
            assert tpu.result(timeout=10) == "tpu"


def _gpu_until_gate() -> str:
    """Hold the GPU (as counted in this process) until the gate opens."""
    with _RUNNING_LOCK:
        _RUNNING["now"] += 1
        _RUNNING["max"] = max(_RUNNING["max"], _RUNNING["now"])
    try:
        assert _GATE.wait(20)
    finally:
        with _RUNNING_LOCK:
            _RUNNING["now"] -= 1
    return "done"


def test_worker_holds_a_resource_task_while_a_cancelled_one_still_runs(scheduler):
    _GATE.clear()
    _RUNNING.update(now=0, max=0)
    with Worker(scheduler.address_to_workers, nthreads=2, name="gpu", resources={"GPU": 1}), \
            Client(scheduler.address_to_clients, timeout=10, set_as_default=False) as c:
        first = c.submit(_gpu_until_gate, pure=False, resources={"GPU": 1})
        wait_until(lambda: _RUNNING["now"] == 1)
        first.cancel()      # the scheduler gives the GPU back; Python cannot stop the thread
        second = c.submit(_on_gpu, 1, pure=False, resources={"GPU": 1})
        wait_until(lambda: scheduler.sync(lambda state: second.key in state.tasks
                                          and state.tasks[second.key].state == PROCESSING))
        time.sleep(0.2)
        assert not second.done()   # the worker holds it: the cancelled task still uses the GPU
        _GATE.set()
        assert second.result(timeout=10) == "gpu"
    assert _RUNNING["max"] == 1


def test_workers_declare_resources_from_the_command_line(cli):
    with Scheduler(dashboard_address=None) as s:
        worker = cli.start(["worker", s.address_to_workers, "--nworkers", "2", "--nthreads", "1",
                            "--memory-limit", "0", "--resources", "GPU=1 MEM=2e9"], ["address"])
        try:
            wait_until(lambda: len(s.sync(lambda state: state.workers)) == 2, timeout=30)
            declared = s.sync(lambda state: [ws.resources for ws in state.workers.values()])
            assert declared == [{"GPU": 1.0, "MEM": 2e9}] * 2   # each worker process has them
        finally:
            assert cli.stop(worker) == 0
    bad = cli.run(["worker", "tcp://127.0.0.1:1", "--resources", "GPU"])
    assert bad.returncode == 2 and "NAME=AMOUNT" in bad.stderr


def test_local_cluster_workers_declare_resources():
    from runtime import LocalCluster
    from runtime.cluster import WorkerProcess

    command = WorkerProcess("tcp://127.0.0.1:1", name="w", resources={"GPU": 2}).command()
    assert command[command.index("--resources") + 1] == "GPU=2.0"
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=False, resources={"GPU": 1},
                      dashboard_address=None) as cluster, \
            Client(cluster, timeout=10, set_as_default=False) as c:
        assert [w["resources"] for w in c.scheduler_info()["workers"].values()] == [{"GPU": 1.0}] * 2
        _RUNNING.update(now=0, max=0)
        assert sorted(set(c.gather(c.map(_on_gpu, range(8), resources={"GPU": 1}, pure=False)))) <= ["0", "1"]
        assert _RUNNING["max"] <= 2   # one GPU each
    with pytest.raises(ValueError, match="LocalCluster resources"):
        LocalCluster(n_workers=0, resources={"GPU": "x"})
