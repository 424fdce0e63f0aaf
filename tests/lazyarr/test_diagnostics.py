"""Callbacks, ProgressBar and profilers."""
from __future__ import annotations

import io
import sys
import threading
import time

import cloudpickle
import pytest

from lazyarr import multiprocessing as lmp
from lazyarr import threaded
from lazyarr.diagnostics import Callback, ProgressBar, Profiler, ResourceProfiler
from lazyarr.local import get_sync

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module", autouse=True)
def _close_pools():
    yield
    lmp.close_pools()
    threaded.close_pools()


def slow_inc(x, seconds=0.02):
    time.sleep(seconds)
    return x + 1


def fail(_):
    raise ValueError("broken")


def slow_graph(n=10, seconds=0.02):
    dsk = {("s", i): (slow_inc, i, seconds) for i in range(n)}
    dsk["total"] = (sum, list(dsk))
    return dsk


def helper_threads():
    return [t for t in threading.enumerate() if t.name.startswith(("lazyarr-progressbar", "lazyarr-resources"))]


# --- Callback -----------------------------------------------------------------------------------

def test_callback_register_unregister():
    cb = Callback(start=lambda dsk: None)
    cb.register()
    try:
        assert cb._callback in Callback.active
    finally:
        cb.unregister()
    assert cb._callback not in Callback.active
    cb.unregister()  # harmless twice


def test_with_block_unregisters_after_an_error():
    cb = Callback(finish=lambda dsk, state, errored: None)
    with pytest.raises(ValueError):
        with cb:
            get_sync({"x": (fail, 1)}, "x")
    assert cb._callback not in Callback.active


def test_callback_arguments_must_be_callable():
    with pytest.raises(TypeError, match="pretask= must be callable"):
        Callback(pretask=3)


def test_callbacks_see_every_task_from_worker_threads():
    seen = []
    workers = set()
    cb = Callback(posttask=lambda key, result, dsk, state, worker: (seen.append(key), workers.add(worker)))
    dsk = slow_graph(8, 0.005)
    with cb:
        threaded.get(dsk, "total", num_workers=2)
    assert sorted(map(str, seen)) == sorted(map(str, dsk))
    assert threading.get_ident() not in workers


# --- ProgressBar --------------------------------------------------------------------------------

def test_progressbar_quiet_on_fast_computations():
    out = io.StringIO()
    with ProgressBar(minimum=5, out=out):
        assert get_sync(slow_graph(3, 0.001), "total") == 6
    assert out.getvalue() == ""
    assert not helper_threads()


@pytest.mark.parametrize("get", [get_sync, threaded.get, lmp.get], ids=["sync", "threads", "processes"])
def test_progressbar_shows_percent_and_elapsed(get):
    out = io.StringIO()
    with ProgressBar(dt=0.01, out=out):
        assert get(slow_graph(10, 0.03), "total") == 55
    text = out.getvalue()
    frames = [f for f in text.split("\r") if f]
    assert frames[-1].startswith("[" + "#" * 40 + "] 100% |") and frames[-1].endswith("elapsed\n")
    assert len(frames) >= 3  # redrawn while running
    percents = [int(f.split("]")[1].split("%")[0]) for f in frames]
    assert percents == sorted(percents) and percents[0] < 100
    assert not helper_threads()


def test_progressbar_after_an_error_does_not_claim_completion():
    out = io.StringIO()
    dsk = slow_graph(5, 0.02)
    dsk["bad"] = (fail, ("s", 4))
    with pytest.raises(ValueError):
        with ProgressBar(out=out, dt=0.01):
            get_sync(dsk, ["bad", "total"])
    assert "100%" not in out.getvalue()
    assert out.getvalue().endswith("\n")
    assert not helper_threads()


def test_progressbar_default_output_is_stdout(capsys):
    with ProgressBar():
        get_sync({"x": 1}, "x")
    assert "100%" in capsys.readouterr().out


def test_progressbar_validates_arguments():
    with pytest.raises(ValueError):
        ProgressBar(dt=0)


def test_progressbar_for_a_client_style_caller():
    """A distributed client calls the same hooks without the local scheduler's state."""
    out = io.StringIO()
    bar = ProgressBar(out=out, dt=0.01)
    dsk = {"a": 1, "b": 2}
    bar._start(dsk)
    bar._start_state(dsk, {"ntasks": 2})
    bar._posttask("a", None, dsk, {}, "tcp://worker")
    time.sleep(0.05)
    assert " 50% |" in out.getvalue()
    bar._posttask("b", None, dsk, {}, "tcp://worker")
    bar._finish(dsk, {}, False)
    assert out.getvalue().rstrip().split("\r")[-1].startswith("[" + "#" * 40 + "] 100%")
    assert not helper_threads()


# --- profilers ----------------------------------------------------------------------------------

def test_profiler_records_every_task():
    dsk = slow_graph(6, 0.01)
    with Profiler() as prof:
        threaded.get(dsk, "total", num_workers=2)
    assert sorted(map(str, (t.key for t in prof.results))) == sorted(map(str, dsk))
    for t in prof.results:
        assert t.end >= t.start and t.worker_id is not None
        if t.key != "total":
            assert t.end - t.start >= 0.009
    assert prof.summary()["s"][0] == 6


def test_resource_profiler_samples_and_stops():
    with ResourceProfiler(dt=0.01) as rprof:
        get_sync(slow_graph(5, 0.02), "total")
    assert len(rprof.results) >= 3
    assert all(r.memory_mib > 0 for r in rprof.results)
    assert not helper_threads()
