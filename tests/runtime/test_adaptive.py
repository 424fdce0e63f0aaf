"""Adaptive scaling: the pure decision, retiring workers in the state machine, and real clusters
(threads, processes, and a job-queue cluster on the fake batch system) growing under a burst of
slow tasks and shrinking back, with data held by a retired worker moved rather than recomputed."""
from __future__ import annotations

import time

import pytest

from runtime import Client, LocalCluster
from runtime.adaptive import AdaptivePolicy, SchedulerLoad, WorkerLoad, parse_seconds, scheduler_load
from runtime.scheduler_state import MEMORY, SchedulerState

W1, W2, W3 = "tcp://127.0.0.1:1001", "tcp://127.0.0.1:1002", "tcp://127.0.0.1:1003"


def _load(queued=0, processing=(), nbytes=None, duration=0.5, nthreads=1):
    nbytes = nbytes or [0] * len(processing)
    workers = tuple(WorkerLoad(f"w{i}", f"w{i}", nthreads, p, b) for i, (p, b) in enumerate(zip(processing, nbytes)))
    return SchedulerLoad(queued, sum(processing), duration, workers)


# ----------------------------------------------------------------------------------------------
# The decision (pure)


@pytest.mark.timeout(10)
def test_queued_work_scales_up_at_once_within_maximum():
    p = AdaptivePolicy(minimum=0, maximum=10, target_duration=2.0, wait_count=3)
    # 12 tasks of 1 s on 1-thread workers, 2 s each: 6 workers
    assert p.recommend(_load(queued=10, processing=[2], duration=1.0)).target == 6
    assert p.recommend(_load(queued=1000, processing=[2], duration=1.0)).target == 10      # maximum
    # two threads per worker: half the workers
    assert p.recommend(_load(queued=10, processing=[2], duration=1.0, nthreads=2)).target == 3
    # no workers at all yet, and work waiting: at least one
    assert p.recommend(_load(queued=1, duration=0.001)).target == 1


@pytest.mark.timeout(10)
def test_minimum_is_kept_and_reached_without_work():
    p = AdaptivePolicy(minimum=2, maximum=4, wait_count=1)
    assert p.recommend(_load()).target == 2                     # nothing running: start the minimum
    idle = _load(processing=[0, 0, 0])
    rec = p.recommend(idle)
    assert rec.target == 2 and len(rec.retire) == 1             # never below the minimum


@pytest.mark.timeout(10)
def test_idle_workers_retire_only_after_wait_count_intervals_least_data_first():
    p = AdaptivePolicy(minimum=1, maximum=5, wait_count=3)
    idle = _load(processing=[0, 0, 0], nbytes=[500, 10, 0])
    assert p.recommend(idle).retire == ()
    assert p.recommend(idle).retire == ()
    rec = p.recommend(idle)
    assert rec.target == 1 and rec.retire == ("w2", "w1")       # w0 holds the most: kept


@pytest.mark.timeout(10)
def test_hysteresis_busy_interval_resets_the_idle_count():
    p = AdaptivePolicy(minimum=0, maximum=5, wait_count=2, target_duration=100)
    idle = _load(processing=[0, 0])
    one_busy = _load(processing=[1, 0])
    assert p.recommend(idle).retire == ()
    rec = p.recommend(one_busy)                  # w0 worked: its count starts again, w1's goes on
    assert rec.retire == ("w1",) and rec.target == 1
    assert p.recommend(_load(processing=[0])).retire == ()
    assert p.recommend(_load(processing=[0])).retire == ("w0",)


@pytest.mark.timeout(10)
def test_workers_not_joined_yet_are_given_up_after_wait_count():
    p = AdaptivePolicy(minimum=0, maximum=5, wait_count=2)
    busy_one = _load(processing=[1], duration=0.01)
    assert p.recommend(busy_one, requested=3).target == 3       # two jobs still queued: low, wait
    rec = p.recommend(busy_one, requested=3)
    assert rec.target == 1 and rec.retire == ()                 # give up the two not joined
    assert p.recommend(_load(queued=50, processing=[2]), requested=1).target == 5   # busy again: up


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kwargs, match", [
    (dict(minimum=-1), "minimum"), (dict(minimum=3, maximum=2), "less than minimum"),
    (dict(wait_count=0), "wait_count"), (dict(target_duration="soon"), "target_duration"),
    (dict(maximum=1.5), "maximum"),
])
def test_bad_policy_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaptivePolicy(**kwargs)


@pytest.mark.timeout(10)
def test_parse_seconds():
    assert parse_seconds("250ms") == 0.25 and parse_seconds("1.5s") == 1.5 and parse_seconds(2) == 2.0
    for bad in ("-1s", 0, "1 fortnight"):
        with pytest.raises(ValueError):
            parse_seconds(bad)


# ----------------------------------------------------------------------------------------------
# Retiring in the state machine (no sockets)


def _ops(messages, name):
    return [(peer, op) for (kind, peer), op in messages if op["op"] == name]


def _state_with_data():
    """Two workers; ``x`` (wanted by a client) and ``y`` (an intermediate nobody needs) on W1."""
    s = SchedulerState()
    for w in (W1, W2):
        s.worker_added(w, 1, name=w[-4:])
    s.update_graph("c", ["y", "x"], [b"y", b"x"], [[], ["y"]], wanted=["x"])
    s.tasks_finished(W1, ["y"], [10], 0.1)
    s.tasks_finished(W1, ["x"], [100], 0.1)
    assert s.tasks["x"].who_has == {s.workers[W1]} and s.tasks["y"].state != MEMORY
    return s


@pytest.mark.timeout(10)
def test_retire_moves_needed_data_then_removes_the_worker():
    s = _state_with_data()
    out = s.retire_workers(["1001"])                   # by name
    (peer, op), = _ops(out, "acquire-replicas")
    assert peer == W2 and op["keys"] == ["x"] and dict(op["who_has"]) == {"x": [W1]}
    assert W1 in s.retiring and W1 in s.workers
    s.validate()
    # nothing new goes to the retiring worker
    s.update_graph("c", ["z"], [b"z"], [["x"]], wanted=["z"])
    assert s.tasks["z"].worker is s.workers[W2]
    s.update_graph("c", ["r1", "r2", "r3"], [b"r"] * 3, [[]] * 3, wanted=["r1", "r2", "r3"])
    assert not s.workers[W1].processing and s.workers[W1] not in s.idle
    assert _ops(s.retire_workers([]), "acquire-replicas") == []      # already asked: not again
    s.tasks_finished(W2, ["x"], [100])                 # W2 reports its copy
    out = s.retire_workers([])
    assert W1 not in s.workers and W1 in s.retired and not s.retiring
    assert s.tasks["x"].state == MEMORY and s.tasks["x"].who_has == {s.workers[W2]}
    assert _ops(out, "key-lost") == [] and ("w", W2) in [d for d, _ in out]   # worker-left to W2
    s.validate()
    # the retired worker's heartbeat does not bring it back; its goodbye clears it
    assert s.worker_heartbeat(W1) == []
    s.worker_removed(W1)
    assert W1 not in s.retired


@pytest.mark.timeout(10)
def test_retire_resends_an_unconfirmed_copy_and_waits_when_there_is_nowhere_to_go():
    s = _state_with_data()
    s.retire_workers([W1], now=0.0)
    assert _ops(s.retire_workers([], now=1.0), "acquire-replicas") == []
    assert len(_ops(s.retire_workers([], now=10.0), "acquire-replicas")) == 1   # resent
    # retiring both: W2 holds nothing and goes; x has nowhere to go, so W1 stays retiring
    s.cancel_retirement([W1])
    s.retire_workers([W1, W2])
    assert set(s.retiring) == {W1} and set(s.workers) == {W1}
    assert s.tasks["x"].state == MEMORY
    s.cancel_retirement([W1])
    assert not s.retiring and s.workers[W1].capacity > 0
    s.validate()


@pytest.mark.timeout(10)
def test_retire_without_needed_data_is_immediate():
    s = _state_with_data()
    s.release_keys("c", ["x"])
    s.retire_workers([W1])
    assert set(s.workers) == {W2} and not s.retiring
    s.validate()


@pytest.mark.timeout(10)
def test_scheduler_load_reads_the_state():
    s = _state_with_data()
    s.update_graph("c", ["r1", "r2", "r3", "r4"], [b"r"] * 4, [[]] * 4, wanted=["r1", "r2", "r3", "r4"])
    load = scheduler_load(s)
    assert load.queued + load.processing == 4 and load.avg_duration == pytest.approx(0.1)
    assert {(w.address, w.nbytes) for w in load.workers} == {(W1, 100), (W2, 0)}
    s.retire_workers([W1])
    assert [w.address for w in scheduler_load(s).workers] == [W2]    # retiring: not counted


# ----------------------------------------------------------------------------------------------
# Real clusters


@pytest.mark.timeout(30)
def test_scheduler_retire_workers_moves_scattered_data():
    """Scattered data cannot be recomputed: it survives its worker only if it was moved."""
    from runtime import Scheduler, Worker

    with Scheduler() as s, Worker(s.address_to_workers, nthreads=1, name="a") as a, \
            Worker(s.address_to_workers, nthreads=1, name="b") as b, \
            Client(s.address_to_clients, set_as_default=False) as client:
        _wait(lambda: len(s.sync(lambda st: list(st.workers))) == 2, 10, "two workers")
        data = client.scatter(list(range(5)), workers=["a"])
        assert s.sync(lambda st: {ws.name for f in data for ws in st.tasks[f.key].who_has}) == {"a"}
        assert s.retire_workers(["a"], timeout=10) == [a.address]
        assert s.sync(lambda st: list(st.workers)) == [b.address]
        a.close()
        assert client.gather(data) == list(range(5))
        assert s.sync(lambda st: {ws.name for f in data for ws in st.tasks[f.key].who_has}) == {"b"}
        # the last worker holding needed data cannot go: it stays, at once
        start = time.monotonic()
        assert s.retire_workers([b.address], timeout=10) == []
        assert time.monotonic() - start < 5
        assert s.sync(lambda st: (list(st.workers), dict(st.retiring))) == ([b.address], {})
        assert client.submit(sum, data).result(timeout=10) == 10


def slow(i, seconds=0.2):
    time.sleep(seconds)
    return i


def produce(path, size):
    """A result whose computation leaves a trace: one line in ``path`` per run."""
    with open(path, "a") as f:
        f.write("ran\n")
    return b"x" * size


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _burst_then_idle(cluster, client, tmp_path, top, keep_name, move_name, ntasks, seconds, **adapt):
    """Slow tasks scale the cluster up to ``top`` workers; data is put on ``move_name`` (little) and
    ``keep_name`` (much, so that worker is kept); then idling scales down to one worker, and
    the little data is still there, computed once. Returns the future, the run counter, the
    names of the workers left and the Adaptive objects used."""
    counter = tmp_path / "runs"
    first = cluster.adapt(**adapt)
    futures = client.map(slow, range(ntasks), seconds=seconds, pure=False)
    _wait(lambda: len(cluster.scheduler.sync(lambda s: list(s.workers))) == top, 30, f"{top} workers")
    ballast = client.submit(produce, str(tmp_path / "ballast"), 10**6, workers=[keep_name], pure=False)
    x = client.submit(produce, str(counter), 1000, workers=[move_name], pure=False)
    assert x.result(timeout=30) == b"x" * 1000 and ballast.result(timeout=30) == b"x" * 10**6
    # Workers finishing the burst a little apart would be retired in that order; adapting again
    # once all are idle makes which ones go depend only on the bytes they hold.
    first.stop()
    assert client.gather(futures) == list(range(ntasks))
    del futures
    second = cluster.adapt(**adapt)
    _wait(lambda: len(cluster.scheduler.sync(lambda s: list(s.workers))) == 1, 30, "scaling down to 1 worker")
    names = cluster.scheduler.sync(lambda s: [ws.name for ws in s.workers.values()])
    return x, counter, names, (first, second)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("processes, top, ntasks, seconds", [(False, 3, 24, 0.2), (True, 2, 16, 0.3)],
                         ids=["threads", "processes"])
def test_local_cluster_scales_up_and_down_keeping_data(tmp_path, processes, top, ntasks, seconds):
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=processes) as cluster, \
            Client(cluster, set_as_default=False) as client:
        x, counter, names, (first, second) = _burst_then_idle(
            cluster, client, tmp_path, top, "0", str(top - 1), ntasks=ntasks, seconds=seconds,
            minimum=1, maximum=top, interval=0.1, wait_count=3, target_duration=seconds)
        assert names == ["0"] and list(cluster.workers) == ["0"]
        assert ("up", top) in [(a, t) for _, a, t, _ in first.log]
        assert [r for _, a, _, r in second.log if a == "down"]            # retired by the policy
        assert not first._thread.is_alive()
        assert x.result(timeout=10) == b"x" * 1000                     # moved, not lost ...
        assert counter.read_text() == "ran\n"                           # ... and not recomputed
        assert client.submit(len, x).result(timeout=10) == 1000         # and usable by new tasks
        assert counter.read_text() == "ran\n"
        second.stop()
        assert len(cluster.workers) == 1            # stopping keeps the workers it has
    assert not second._thread.is_alive()


@pytest.mark.timeout(10)
def test_adapt_checks_its_arguments_and_starts_the_minimum():
    with LocalCluster(n_workers=0, processes=False) as cluster:
        with pytest.raises(ValueError, match="less than minimum"):
            cluster.adapt(minimum=2, maximum=1)
        with pytest.raises(ValueError, match="interval"):
            cluster.adapt(interval="often")
        adaptive = cluster.adapt(minimum=1, maximum=1, interval="50ms")
        assert adaptive.interval == 0.05
        _wait(lambda: len(cluster.workers) == 1, 10, "the minimum of one worker")   # without any work
    assert not adaptive._thread.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        cluster.adapt()


@pytest.mark.timeout(30)
def test_client_retire_workers_drains_a_worker():
    from runtime import Scheduler, Worker

    with Scheduler() as s, Worker(s.address_to_workers, nthreads=1, name="a") as a, \
            Worker(s.address_to_workers, nthreads=1, name="b") as b, \
            Worker(s.address_to_workers, nthreads=1, name="c") as c, \
            Client(s.address_to_clients, set_as_default=False) as client:
        _wait(lambda: len(s.sync(lambda st: list(st.workers))) == 3, 10, "three workers")
        data = client.scatter({"k": "held by a"}, workers=["a"])
        with pytest.raises(TypeError, match="addresses or names"):
            client.retire_workers([1])
        assert client.retire_workers("a", timeout=10, close_workers=False) == [a.address]
        time.sleep(1.0)   # heartbeats of the retired worker (still running) do not bring it back
        assert not a.closing
        assert a.address not in s.sync(lambda st: list(st.workers))
        a.close()
        assert client.gather(data) == {"k": "held by a"}
        holder = s.sync(lambda st: next(iter(st.tasks["k"].who_has)).name)
        other = c if holder == "b" else b
        # both: the one holding k would take it nowhere, so only the other goes
        assert client.retire_workers(["b", "c"], timeout=10, close_workers=False) == [other.address]
        assert client.gather(data) == {"k": "held by a"}


def _commands(fake):
    return [c[0] for c in fake.calls()]


@pytest.mark.timeout(90)
def test_slurm_cluster_scales_up_and_down(fake_batch, tmp_path):
    from runtime.jobqueue import SLURMCluster

    with SLURMCluster(cores=1, memory="1GB", walltime="00:02:00", log_directory=tmp_path / "logs") as cluster, \
            Client(cluster, set_as_default=False, timeout=20) as client:
        adaptive = cluster.adapt(minimum=1, maximum=2, interval=0.2, wait_count=3, target_duration=0.5)
        cluster.wait_for_workers(1, timeout=40)
        futures = client.map(slow, range(16), seconds=0.5, pure=False)
        _wait(lambda: len(cluster.workers) == 2, 40, "a second job's worker")
        assert client.gather(futures) == list(range(16))
        _wait(lambda: len(cluster.workers) == 1 and len(cluster._resources.jobs) == 1, 30, "scaling down")
        assert _commands(fake_batch).count("sbatch") == 2 and "scancel" in _commands(fake_batch)
        assert ("up", 2) in [(a, t) for _, a, t, _ in adaptive.log]


@pytest.mark.timeout(90)
def test_pbs_job_of_two_workers_is_retired_whole_down_to_zero(fake_batch, tmp_path):
    from runtime.jobqueue import PBSCluster

    with PBSCluster(cores=2, processes=2, memory="1GB", walltime="00:02:00", log_directory=tmp_path / "logs") as cluster, \
            Client(cluster, set_as_default=False, timeout=20) as client:
        cluster.adapt(minimum=0, maximum=2, interval=0.2, wait_count=3, target_duration=0.5)
        futures = client.map(slow, range(8), seconds=0.5, pure=False)
        assert client.gather(futures, timeout=60) == list(range(8))
        assert _commands(fake_batch).count("qsub") == 1              # two workers: one job
        del futures
        _wait(lambda: not cluster._resources.jobs and not cluster.workers, 30, "scaling down to nothing")
        assert "qdel" in _commands(fake_batch)


@pytest.mark.timeout(30)
def test_jobs_that_never_start_are_cancelled_once_the_work_is_gone(fake_batch):
    from runtime.jobqueue import SLURMCluster

    # Held jobs stay pending, as on a full cluster.
    with SLURMCluster(cores=1, memory="1GB", walltime="00:02:00", job_extra=["--hold"]) as cluster, \
            Client(cluster, set_as_default=False, timeout=20) as client:
        cluster.adapt(minimum=0, maximum=3, interval=0.1, wait_count=2, target_duration=0.5)
        futures = client.map(slow, range(6), seconds=0.5, pure=False)
        _wait(lambda: len(cluster._resources.jobs) == 3, 20, "three jobs submitted")
        client.cancel(futures)
        _wait(lambda: not cluster._resources.jobs, 20, "the pending jobs cancelled")
        assert _commands(fake_batch).count("sbatch") == 3 and "scancel" in _commands(fake_batch)
