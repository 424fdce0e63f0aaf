"""The 'processes' scheduler: pickling, worker errors, pool lifetime."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from operator import add

import cloudpickle
import psutil
import pytest

from lazyarr import multiprocessing as lmp
from lazyarr.diagnostics import Callback
from lazyarr.multiprocessing import RemoteError, WorkerDiedError, close_pools, get

cloudpickle.register_pickle_by_value(sys.modules[__name__])

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module", autouse=True)
def _close_pools():
    yield
    close_pools()


def inc(x):
    return x + 1


def pid_after(seconds, _=None):
    time.sleep(seconds)
    return os.getpid()


def all_dead(pids, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.02)
    return False


def test_lambdas_and_closures_travel():
    offset = 10
    dsk = {"a": 1, "b": (lambda x: x + offset, "a"), "c": (add, "b", 5)}
    assert get(dsk, ["b", "c"], num_workers=2) == (11, 16)


def test_work_is_spread_over_workers_and_the_pool_reused():
    dsk = {("p", i): (pid_after, 0.02, i) for i in range(30)}
    first = set(get(dsk, list(dsk), num_workers=2))
    second = set(get(dsk, list(dsk), num_workers=2))
    assert len(first) == 2 and os.getpid() not in first
    assert second == first  # the same worker processes serve the next call


def test_unpicklable_function_names_task_and_object():
    lock = threading.Lock()

    def uses_lock(x):
        with lock:
            return x

    with pytest.raises(TypeError, match=r"task 'bad' cannot be sent to a worker process: <function .*uses_lock.*lock"):
        get({"x": 1, "bad": (uses_lock, "x")}, "bad", num_workers=2)


def test_unpicklable_argument_names_it():
    gen = (i for i in range(3))
    with pytest.raises(TypeError, match=r"task \('t', 0\) cannot be sent .*generator object"):
        get({("t", 0): (list, gen)}, ("t", 0), num_workers=2)


def test_unpicklable_result_names_the_task():
    with pytest.raises(TypeError, match=r"result of task 'lk', a lock, cannot be pickled"):
        get({"lk": (threading.Lock,)}, "lk", num_workers=2)


def parse(text):
    return int(text)


def test_worker_exception_keeps_type_and_shows_remote_traceback():
    with pytest.raises(ValueError, match="invalid literal") as info:
        get({"s": "x1", "n": (parse, "s")}, "n", num_workers=2)
    text = "".join(traceback.format_exception(info.value))
    assert "Traceback in the worker process (task 'n')" in text
    assert "in parse" in text and "return int(text)" in text


class Unpicklable(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.lock = threading.Lock()


def raise_unpicklable():
    raise Unpicklable("cannot travel")


def test_unpicklable_exception_becomes_remote_error():
    with pytest.raises(RemoteError, match="Unpicklable: cannot travel") as info:
        get({"e": (raise_unpicklable,)}, "e", num_workers=2)
    assert "raise_unpicklable" in "".join(traceback.format_exception(info.value))


def die(_):
    os._exit(3)


def test_worker_crash_is_reported_and_the_pool_replaced():
    with pytest.raises(WorkerDiedError, match="'crash'"):
        get({"crash": (die, 1)}, "crash", num_workers=2)
    assert get({"x": 1, "y": (inc, "x")}, "y", num_workers=2) == 2


def interrupt(_):
    raise KeyboardInterrupt


def test_keyboard_interrupt_in_a_task_kills_the_pool():
    pids = set(get({("p", i): (pid_after, 0.01, i) for i in range(10)}, [("p", i) for i in range(10)],
                   num_workers=2))
    dsk = {"ki": (interrupt, 1)}
    dsk.update({("slow", i): (time.sleep, 0.2) for i in range(20)})
    dsk["all"] = (len, list(dsk))
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        get(dsk, "all", num_workers=2)
    assert time.perf_counter() - start < 2
    assert len(lmp.pools) == 0
    assert all_dead(pids)
    assert get({"x": 1, "y": (inc, "x")}, "y", num_workers=2) == 2


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_while_waiting_kills_workers():
    main = threading.get_ident()
    dsk = {("p", i): (pid_after, 0.3, i) for i in range(40)}  # 6 s on 2 workers
    dsk["all"] = (len, list(dsk))
    get({"warm": (inc, 1)}, "warm", num_workers=2)
    pool = lmp.pools.get(2)
    pids = [p.pid for p in pool._processes.values()]
    timer = threading.Timer(0.5, lambda: signal.pthread_kill(main, signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            get(dsk, "all", num_workers=2)
    finally:
        timer.join()
    assert time.perf_counter() - start < 2
    assert all_dead(pids)


def test_task_error_with_batches_in_flight_terminates_them():
    def boom(_):
        time.sleep(0.05)
        raise RuntimeError("failed")

    dsk = {"bad": (boom, 1)}
    dsk.update({("p", i): (pid_after, 0.2, i) for i in range(20)})
    dsk["all"] = (len, list(dsk))
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="failed"):
        get(dsk, "all", num_workers=2)
    assert time.perf_counter() - start < 1.5


def test_deeply_nested_task_is_shipped_flat():
    task = 0
    for _ in range(20_000):
        task = (inc, [task])
        task = (sum, task[1])  # alternate tasks and lists, 40,000 levels deep
    assert get({"deep": task, "out": (inc, "deep")}, "out", num_workers=2) == 1


def test_flat_encoding_round_trip():
    task = (add, [1, {"k": (inc, "x")}], ("lit", 2))
    assert lmp._Flat.encode(task).rebuild() == task


def test_user_pool_is_left_open():
    with ProcessPoolExecutor(2) as pool:
        dsk = {("x", i): (inc, i) for i in range(100)}
        dsk["s"] = (sum, list(dsk))
        assert get(dsk, "s", pool=pool) == sum(range(1, 101))
        assert pool.submit(abs, -1).result() == 1


def test_callbacks_run_in_the_calling_process():
    pre, post = [], []
    cb = Callback(pretask=lambda key, dsk, state: pre.append(key),
                  posttask=lambda key, result, dsk, state, worker: post.append((key, result)))
    dsk = {"a": 1, "b": (inc, "a"), "c": (inc, "b")}
    assert get(dsk, "c", callbacks=[cb], num_workers=2) == 3
    assert sorted(pre) == ["a", "b", "c"]
    assert dict(post)["c"] == 3 and sorted(k for k, _ in post) == ["a", "b", "c"]


def test_bad_start_method_is_named():
    from lazyarr import config

    with config.set({"multiprocessing.context": "teleport"}):
        with pytest.raises(ValueError, match="'teleport' is not a start method"):
            get({"x": 1}, "x", num_workers=3)  # a size with no pool yet, so one is made


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_workers"):
        get({"x": 1}, "x", num_workers=0)
    with pytest.raises(TypeError, match="pool="):
        get({"x": 1}, "x", pool=object())


@pytest.mark.timeout(60)
def test_script_without_main_guard_runs_once(tmp_path):
    """Workers get tasks by cloudpickle, so they must not re-run the user's unguarded script."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import lazyarr\n"
        "from lazyarr import delayed\n"
        "print('body', flush=True)\n"
        "def double(x):\n"
        "    return 2 * x\n"
        "print(delayed(sum)([delayed(double)(i) for i in range(10)]).compute(scheduler='processes'))\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["body", "90"]
