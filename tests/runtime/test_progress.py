"""Progress on a cluster: ``progress(futures or persisted collections)``, the scheduler's progress
sessions, and the local ``lazyarr.diagnostics`` callbacks (ProgressBar) with a Client."""
from __future__ import annotations

import io
import threading
import time

import pytest

import lazyarr
from lazyarr import delayed
from lazyarr.diagnostics import Callback, ProgressBar
from runtime import Client, LocalCluster, progress
from runtime.progress import ProgressTracker, format_bar
from runtime.scheduler_state import SchedulerState

pytestmark = pytest.mark.timeout(120)


def inc(x):
    return x + 1


def slow_inc(x, delay=0.01):
    time.sleep(delay)
    return x + 1


def boom(x):
    raise ValueError(f"boom {x}")


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=False, dashboard_address=None) as cl:
        with Client(cl, set_as_default=False) as c:
            yield c


def test_exported_from_lazyarr_distributed():
    import lazyarr.distributed as dist
    import runtime

    assert dist.progress is runtime.progress is progress
    assert dist.performance_report is runtime.performance_report
    assert {"progress", "performance_report"} <= set(dist.__all__) & set(runtime.__all__)


def test_format_bar():
    assert format_bar(0, 0, 0, 0.0, width=4) == "[####] 100% | 0/0 tasks | 0.0s"
    assert format_bar(1, 4, 1, 2.25, width=4) == "[#   ]  25% | 1/4 tasks | 1 erred | 2.2s"


# ----------------------------------------------------------------------------------------------
# progress()


def test_progress_of_futures_follows_their_dependencies(client):
    a = client.map(slow_inc, range(40), pure=False)
    total = client.submit(sum, a)
    out = io.StringIO()
    result = progress(total, out=out, dt=0.05)
    assert result["total"] == 41 and result["done"] == 41 and result["erred"] == 0
    assert result["prefixes"]["slow_inc"] == [40, 40, 0] and result["prefixes"]["sum"] == [1, 1, 0]
    text = out.getvalue()
    assert text.endswith("100% | 41/41 tasks | " + text.rsplit("| ", 1)[1])
    assert text.endswith("s\n") and text.count("\r") >= 1
    assert total.done()


def test_progress_of_several_and_of_done_futures(client):
    a = client.submit(inc, 1)
    b = client.submit(inc, 2)
    a.result()
    out = io.StringIO()
    assert progress(a, [b], out=out)["done"] == 2
    assert "2/2 tasks" in out.getvalue()


def test_progress_of_a_persisted_collection(client):
    parts = [delayed(slow_inc)(i) for i in range(20)]
    total = delayed(sum)(parts)
    (persisted,) = lazyarr.persist(total, scheduler=client)
    out = io.StringIO()
    result = progress(persisted, out=out, dt=0.05)
    assert result["done"] == result["total"] >= 21
    assert persisted.compute(scheduler=client) == sum(range(1, 21))


def test_progress_stops_at_an_error(client):
    bad = client.submit(boom, 1)
    after = client.submit(inc, bad)
    out = io.StringIO()
    result = progress(after, out=out, dt=0.05)
    assert result["erred"] >= 1
    assert "erred" in out.getvalue()


def test_progress_rejects_what_it_cannot_follow(client):
    with pytest.raises(TypeError, match="at least one"):
        progress()
    with pytest.raises(TypeError, match="not persisted"):
        progress(delayed(inc)(1))
    with pytest.raises(TypeError, match="futures or persisted"):
        progress(42)
    with pytest.raises(ValueError, match="dt"):
        progress(client.submit(inc, 1), dt=0)


def test_progress_timeout(client):
    slow = client.submit(time.sleep, 2, pure=False)
    with pytest.raises(TimeoutError):
        progress(slow, out=io.StringIO(), dt=0.05, timeout=0.2)
    slow.result()


def test_progress_notebook_without_ipywidgets_falls_back_to_text(client, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    out = io.StringIO()
    assert progress(client.submit(inc, 5), notebook=True, out=out)["done"] == 1
    assert "1/1 tasks" in out.getvalue()


# ----------------------------------------------------------------------------------------------
# the scheduler's sessions, without sockets


def test_tracker_sessions_on_the_state_machine():
    s = SchedulerState()
    s.worker_added("tcp://w:1", 2)
    s.update_graph("c", ["a", "b", "c"], [b"x", b"y", b"z"], [[], ["a"], ["b"]], wanted=["c"])
    tracker = ProgressTracker()
    first = tracker.poll(s, "c", {"pid": 1, "keys": ["c"], "want_keys": True})
    assert (first["total"], first["done"], first["keys"]) == (3, 0, [])
    s.tasks_finished("tcp://w:1", ["a", "b"], [1, 1], 0.1)
    second = tracker.poll(s, "c", {"pid": 1, "want_keys": True})
    assert second["done"] == 2 and sorted(second["keys"]) == ["a", "b"]
    s.task_erred("tcp://w:1", "c", b"payload")
    third = tracker.poll(s, "c", {"pid": 1, "want_keys": True})
    assert (third["done"], third["erred"], third["keys"]) == (2, 1, [])
    assert not tracker._sessions  # complete: dropped
    # without dependencies: only the keys named
    only = tracker.poll(s, "c", {"pid": 2, "keys": ["c"], "dependencies": False, "end": True})
    assert only["total"] == 1 and not tracker._sessions
    # a client that goes away leaves no session behind
    s.update_graph("c", ["d"], [b"w"], [[]], wanted=["d"])
    tracker.poll(s, "c", {"pid": 3, "keys": ["d"]})
    tracker.poll(s, "other", {"pid": 3, "keys": ["d"]})
    tracker.client_removed("c")
    assert list(tracker._sessions) == [("other", 3)]


# ----------------------------------------------------------------------------------------------
# lazyarr.diagnostics callbacks with a Client


def test_progressbar_with_client_get(client):
    dsk = {("slow_inc-3a3a3a3a3a", i): (slow_inc, i) for i in range(60)}
    dsk["total"] = (sum, list(dsk))
    out = io.StringIO()
    with ProgressBar(out=out, dt=0.02):
        assert client.get(dsk, "total") == sum(range(1, 61))
    lines = out.getvalue()
    assert lines.endswith("\n") and "100%" in lines.splitlines()[-1]
    assert threading.active_count() >= 1  # the polling thread was joined (checked by no_leaks too)


def test_callbacks_see_every_task_with_compute(client):
    seen, started, states, finished = [], [], [], []
    cb = Callback(start=lambda dsk: started.append(len(dsk)),
                  start_state=lambda dsk, state: states.append(state["ntasks"]),
                  posttask=lambda key, result, dsk, state, worker: seen.append((key, result, worker)),
                  finish=lambda dsk, state, errored: finished.append(errored))
    parts = [delayed(inc)(i, lazyarr_key_name=f"part-{i}") for i in range(10)]
    total = delayed(sum)(parts, lazyarr_key_name="total-of-parts")
    assert total.compute(scheduler=client, callbacks=[cb]) == sum(range(1, 11))
    assert states == [11] and finished == [False] and len(started) == 1
    keys = sorted(k for k, _, _ in seen)
    assert keys == sorted([f"part-{i}" for i in range(10)] + ["total-of-parts"])
    assert all(result is None for _, result, _ in seen)
    # the holder's address while the result is held (the wanted key), None once released
    holder = dict((k, w) for k, _, w in seen)["total-of-parts"]
    assert holder.startswith("tcp://127.0.0.1:")
    assert all(w is None or w.startswith("tcp://127.0.0.1:") for _, _, w in seen)


def test_callbacks_finish_after_an_error(client):
    finished, done = [], []
    cb = Callback(posttask=lambda key, result, dsk, state, worker: done.append(key),
                  finish=lambda dsk, state, errored: finished.append(errored))
    with cb:
        with pytest.raises(ValueError, match="boom"):
            client.get({"ok": (inc, 1), "bad": (boom, "ok")}, "bad")
    assert finished == [True]


def test_no_callbacks_no_extra_requests(client, monkeypatch):
    calls = []
    original = client._request
    monkeypatch.setattr(client, "_request", lambda op, *a, **k: (calls.append(op["op"]), original(op, *a, **k))[1])
    assert client.get({"x": (inc, 1)}, "x") == 2
    assert "progress" not in calls


def test_malformed_diagnostics_ops_get_an_error_and_change_nothing(client):
    from runtime.errors import ProtocolError

    for op in ({"op": "progress"}, {"op": "progress", "pid": 1, "keys": 5},
               {"op": "task-stream", "since": "x"}, {"op": "task-stream", "t0": "never"}):
        with pytest.raises(ProtocolError, match="could not handle op"):
            client._request(dict(op))
    assert client.submit(inc, 41).result() == 42
