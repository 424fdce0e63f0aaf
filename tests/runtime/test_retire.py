"""Retiring workers on purpose: ``client.retire_workers`` closing what it retired
(``close_workers``, ``n=``) and ``LocalCluster.scale(n)`` down moving the data only the leaving
workers hold. First the state machine's decisions (no sockets), then real clusters of threads,
processes, nanny-run processes and the ``lazyarr-worker`` command."""
from __future__ import annotations

import logging
import time

import psutil
import pytest

from runtime import Client, LocalCluster, Scheduler, Worker
from runtime.errors import LostDataError, ProtocolError
from runtime.scheduler_state import MEMORY, SchedulerState

W1, W2, W3 = "tcp://127.0.0.1:1001", "tcp://127.0.0.1:1002", "tcp://127.0.0.1:1003"
CLOSE = {"op": "close", "reason": "retired"}


def _ops(messages, name):
    return [(peer, op) for (kind, peer), op in messages if op["op"] == name]


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _state_with_data():
    """Two workers; ``x``, wanted by a client, held only by W1."""
    s = SchedulerState()
    for w in (W1, W2):
        s.worker_added(w, 1, name=w[-4:])
    s.update_graph("c", ["x"], [b"x"], [[]], wanted=["x"])
    s.tasks_finished(W1, ["x"], [100], 0.1)
    assert s.tasks["x"].who_has == {s.workers[W1]}
    return s


# ----------------------------------------------------------------------------------------------
# The state machine (no sockets)


@pytest.mark.timeout(10)
def test_close_is_sent_once_and_only_after_the_data_is_safe():
    s = _state_with_data()
    out = s.retire_workers([W1], close=True)
    assert _ops(out, "close") == [] and s.closing == {W1} and _ops(out, "acquire-replicas")
    s.validate()
    assert _ops(s.retire_workers([]), "close") == []          # the copy is not confirmed yet
    s.tasks_finished(W2, ["x"], [100])                        # W2 reports its copy
    out = s.retire_workers([])
    assert _ops(out, "close") == [(W1, CLOSE)]
    # the others hear it left before it is told to go
    assert [op["op"] for _, op in out].index("worker-left") < [op["op"] for _, op in out].index("close")
    assert W1 not in s.workers and W1 in s.retired and not s.closing
    assert s.tasks["x"].state == MEMORY and s.tasks["x"].who_has == {s.workers[W2]}
    s.validate()
    assert _ops(s.retire_workers([]), "close") == []          # told once
    assert s.worker_heartbeat(W1) == []                       # shutting down: not asked back
    s.worker_removed(W1)                                      # its goodbye
    assert not s.retired


@pytest.mark.timeout(10)
def test_close_only_when_asked_and_at_once_without_needed_data():
    s = _state_with_data()
    s.release_keys("c", ["x"])
    out = s.retire_workers([W2])                              # close=False: retired, left running
    assert W2 in s.retired and _ops(out, "close") == []
    assert _ops(s.retire_workers(["1001"], close=True), "close") == [(W1, CLOSE)]   # by name
    assert not s.workers and not s.closing
    s.validate()


@pytest.mark.timeout(10)
def test_a_cancelled_or_interrupted_retirement_closes_nothing():
    s = _state_with_data()
    s.retire_workers([W1], close=True)
    s.cancel_retirement([W1])                                 # back in service, and staying open
    assert not s.closing and not s.retiring
    s.retire_workers([W1])                                    # retired again, without close
    s.tasks_finished(W2, ["x"], [100])
    assert _ops(s.retire_workers([]), "close") == [] and W1 in s.retired
    s.validate()

    s = _state_with_data()
    s.retire_workers([W1])
    s.retire_workers([W1], close=True)                        # close asked of one already retiring
    assert s.closing == {W1}
    out = s.worker_removed(W1, died=True, reason="killed")    # it died meanwhile: nothing to tell
    assert not s.closing and not s.retiring and _ops(out, "close") == []
    s.validate()


@pytest.mark.timeout(10)
def test_workers_to_retire_idle_first_then_fewest_bytes():
    s = SchedulerState()
    for w in (W1, W2, W3):
        s.worker_added(w, 1)
    s.scatter("c", ["big"], [b"b"], workers=[W1])
    s.tasks_finished(W1, ["big"], [1000])
    s.scatter("c", ["small"], [b"s"], workers=[W2])
    s.tasks_finished(W2, ["small"], [10])
    s.scatter("c", ["busy"], [b"z"], workers=[W3])            # not confirmed: W3 is processing
    assert s.workers[W3].processing and s.workers[W3].nbytes == 0
    assert s.workers_to_retire(1) == [W2]
    assert s.workers_to_retire(2) == [W2, W1]
    assert s.workers_to_retire(10) == [W2, W1, W3]            # busy ones last; never more than exist
    assert s.workers_to_retire(0) == []
    s.retire_workers([W2])
    assert s.workers_to_retire(1) == [W1]                     # not one already retiring


# ----------------------------------------------------------------------------------------------
# Client arguments


@pytest.mark.timeout(20)
def test_retire_workers_bad_arguments_give_clear_errors():
    with Scheduler(dashboard_address=None) as s, \
            Client(s.address_to_clients, set_as_default=False, timeout=10) as client:
        with pytest.raises(ValueError, match="got neither"):
            client.retire_workers()
        with pytest.raises(ValueError, match="not both"):
            client.retire_workers(["a"], n=1)
        for bad in (-1, 1.5, True, "2"):
            with pytest.raises(ValueError, match="n must be a non-negative number"):
                client.retire_workers(n=bad)
        for bad in ([1], 5):
            with pytest.raises(TypeError, match="addresses or names"):
                client.retire_workers(bad)
        with pytest.raises(TypeError, match="close_workers must be True or False"):
            client.retire_workers(["a"], close_workers="yes")
        with pytest.raises(ValueError, match="timeout must be a positive"):
            client.retire_workers(["a"], timeout=0)
        # the scheduler checks the op as well (a hand-made or foreign client)
        with pytest.raises(ProtocolError, match="malformed 'retire-workers'"):
            client._request({"op": "retire-workers", "timeout": 1.0}, time.monotonic() + 10)
        assert client.retire_workers(["nobody"], timeout=5) == []   # no such worker: nothing retired
        assert client.retire_workers(n=3, timeout=5) == []          # no workers at all


# ----------------------------------------------------------------------------------------------
# Real workers told to close


@pytest.mark.timeout(30)
def test_in_process_worker_told_to_close_stops_and_tells_its_owner():
    reasons: list = []
    with Scheduler(dashboard_address=None) as s, \
            Worker(s.address_to_workers, nthreads=1, name="a", on_close_request=reasons.append) as a, \
            Worker(s.address_to_workers, nthreads=1, name="b") as b, \
            Client(s.address_to_clients, set_as_default=False) as client:
        _wait(lambda: len(s.sync(lambda st: list(st.workers))) == 2, 10, "two workers")
        data = client.scatter({"k": "held by a"}, workers=["a"])
        assert client.retire_workers("a", timeout=10) == [a.address]
        _wait(lambda: reasons == ["retired"], 10, "the close request")
        assert a.closing and not b.closing
        a._io.join(5)                                  # it stopped serving by itself ...
        assert not a._io.is_alive()
        _wait(lambda: not s.sync(lambda st: bool(st.retired)), 10, "its goodbye")   # ... saying unregister
        a.close()                                      # the owner's close joins the rest
        assert client.gather(data) == {"k": "held by a"}
        assert s.sync(lambda st: list(st.workers)) == [b.address]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("nanny", [True, False], ids=["nanny", "no-nanny"])
def test_retired_worker_process_exits_with_code_0_and_is_not_restarted(nanny):
    with LocalCluster(n_workers=2, threads_per_worker=1, nanny=nanny, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False, timeout=10) as client:
        handle = cluster.workers["1"]
        pid = handle.pid
        data = client.scatter({"k": list(range(100))}, workers=["1"])
        assert client.retire_workers(["1"], timeout=20) == [handle.address]
        _wait(lambda: handle.poll() == 0, 15, "the retired worker's process to exit")
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        if nanny:
            exited = [e for e in handle.nanny.events if e["event"] == "worker-exited"]
            assert [(e["pid"], e["exitcode"]) for e in exited] == [(pid, 0)]
            time.sleep(1.5)                            # longer than the nanny's restart backoff
            events = [e["event"] for e in handle.nanny.events]
            assert events.count("worker-started") == 1 and "worker-died" not in events
            assert handle.nanny.pid is None
            assert handle.nanny.restarts == 0 and handle.nanny.status == "stopped"
        assert [i["name"] for i in client.scheduler_info()["workers"].values()] == ["0"]
        assert list(cluster.workers) == ["0"]          # the cluster forgot the exited worker
        assert client.gather(data) == {"k": list(range(100))}
        cluster.scale(2)                               # and counts only the live one
        assert sorted(cluster.workers) == ["0", "2"]


@pytest.mark.timeout(60)
def test_close_workers_false_keeps_the_process_running():
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False, timeout=10) as client:
        handle = cluster.workers["1"]
        data = client.scatter({"k": "v"}, workers=["1"])
        assert client.retire_workers("1", timeout=20, close_workers=False) == [handle.address]
        time.sleep(1.0)                                # heartbeats go on, ignored
        assert handle.poll() is None and handle.is_alive() and psutil.pid_exists(handle.pid)
        assert handle.address not in client.scheduler_info()["workers"]
        assert sorted(cluster.workers) == ["0", "1"]   # still running: the cluster closes it later
        assert client.gather(data) == {"k": "v"}


@pytest.mark.timeout(30)
def test_retire_n_workers_chooses_idle_ones_holding_the_least():
    with LocalCluster(n_workers=3, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False, timeout=10) as client:
        handles = cluster.workers
        address = {name: h.address for name, h in handles.items()}
        big = client.scatter({"big": b"x" * 100_000}, workers=["0"])
        small = client.scatter({"small": b"x" * 10}, workers=["1"])
        assert client.retire_workers(n=1, timeout=20) == [address["2"]]     # holds nothing
        assert client.retire_workers(n=1, timeout=20) == [address["1"]]     # holds less than "0"
        _wait(lambda: handles["1"].poll() == 0 and handles["2"].poll() == 0, 10, "the workers closing")
        assert list(cluster.workers) == ["0"]
        assert client.gather(small) == {"small": b"x" * 10} and client.gather(big) == {"big": b"x" * 100_000}
        # the last worker holds needed data: there is nowhere to move it, so it stays
        assert client.retire_workers(n=5, timeout=20) == []
        assert client.retire_workers(n=0) == []
        assert list(cluster.workers) == ["0"] and handles["0"].poll() is None


def _wait_for_children(proc: psutil.Process, n: int) -> list:
    deadline = time.monotonic() + 20
    while True:
        children = [p for p in proc.children() if p.status() != psutil.STATUS_ZOMBIE]
        if len(children) >= n or time.monotonic() > deadline:
            return children
        time.sleep(0.05)


@pytest.mark.timeout(90)
def test_retired_cli_worker_exits_and_so_does_its_nanny_command(cli):
    sched = cli.start(["scheduler", "--dashboard-address", "none"], ["workers", "clients"])
    commands = []
    try:
        for name in ("leaving", "staying"):
            commands.append(cli.start(["worker", sched.addresses["workers"], "--nthreads", "1", "--name", name,
                                       "--memory-limit", "0"], ["address"], with_logs=True))
        leaving = commands[0]
        with Client(sched.addresses["clients"], timeout=10, set_as_default=False) as c:
            cli.wait_for_workers(c, 2)
            [worker] = _wait_for_children(psutil.Process(leaving.proc.pid), 1)   # the nanny's worker
            data = c.scatter({"k": 41}, workers=["leaving"])
            assert c.retire_workers("leaving", timeout=20) == [leaving.addresses["address"]]
            assert leaving.proc.wait(20) == 0           # the nanny command ends with its worker
            assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
            assert c.gather(data) == {"k": 41}
            assert [i["name"] for i in c.scheduler_info()["workers"].values()] == ["staying"]
    finally:
        for command in commands:
            cli.stop(command)
        cli.stop(sched)
    log = "\n".join(leaving.output)
    assert "exited cleanly (exit code 0)" in log and "restarting" not in log, log


# ----------------------------------------------------------------------------------------------
# LocalCluster.scale down


def produce(path, size):
    """A result whose computation leaves a trace: one line in ``path`` per run."""
    with open(path, "a") as f:
        f.write("ran\n")
    return b"x" * size


@pytest.mark.timeout(60)
@pytest.mark.parametrize("processes", [True, False], ids=["processes", "threads"])
def test_scale_down_moves_the_data_of_the_leaving_worker(tmp_path, processes):
    counter = tmp_path / "runs"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False, timeout=10) as client:
        leaving = cluster.workers["1"]
        data = client.scatter([b"a" * 1000, 42], workers=["1"])           # cannot be recomputed
        computed = client.submit(produce, str(counter), 100, workers=["1"], pure=False)
        assert computed.result(timeout=20) == b"x" * 100
        cluster.scale(1)                                                  # removes "1", the newest
        assert list(cluster.workers) == ["0"] and leaving.poll() == 0
        assert client.gather(data) == [b"a" * 1000, 42]
        assert client.gather(computed) == b"x" * 100 and counter.read_text() == "ran\n"   # moved, not rerun
        keys = [f.key for f in data] + [computed.key]
        assert cluster.scheduler.sync(lambda st: {ws.name for k in keys for ws in st.tasks[k].who_has}) == {"0"}


@pytest.mark.timeout(30)
def test_scale_to_zero_closes_the_workers_even_if_their_data_cannot_move(caplog):
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False, timeout=10) as client:
        [data] = client.scatter([41], hash=False)
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="runtime.cluster"):
            cluster.scale(0)                          # nowhere to move it: closed anyway, at once
        assert time.monotonic() - start < 10 and cluster.workers == {}
        assert "could not be moved elsewhere" in caplog.text and "['0']" in caplog.text
        with pytest.raises(LostDataError):
            data.result(timeout=10)
