"""The 'threads' scheduler: pools, parallelism, interrupts."""
from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.pool import ThreadPool
from operator import add

import pytest

from lazyarr import config, threaded
from lazyarr.threaded import close_pools, default_num_workers, get

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _fresh_pools():
    close_pools()
    yield
    close_pools()


def inc(x):
    return x + 1


def pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lazyarr-threads")]


def wait_until(condition, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_default_workers_follow_config():
    with config.set({"num-workers": 3}):
        assert default_num_workers() == 3
    assert default_num_workers() >= 1


def test_runs_in_parallel_when_tasks_release_the_gil():
    dsk = {("s", i): (time.sleep, 0.2) for i in range(4)}
    dsk["all"] = (len, list(dsk))
    start = time.perf_counter()
    assert get(dsk, "all", num_workers=4) == 4
    assert time.perf_counter() - start < 0.6  # 0.8 s one after the other


def test_num_workers_one_never_overlaps():
    running = [0]
    most = [0]
    lock = threading.Lock()

    def work(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002)
        with lock:
            running[0] -= 1
        return i

    dsk = {("w", i): (work, i) for i in range(40)}
    dsk["s"] = (sum, list(dsk))
    assert get(dsk, "s", num_workers=1) == sum(range(40))
    assert most[0] == 1


def test_pool_is_reused_across_calls():
    idents = set()

    def who(_):
        idents.add(threading.get_ident())
        time.sleep(0.001)

    dsk = {("w", i): (who, i) for i in range(20)}
    for _ in range(5):
        get(dsk, list(dsk), num_workers=2)
    assert 1 <= len(idents) <= 2
    assert threading.get_ident() not in idents  # the calling thread only schedules
    assert len(pool_threads()) <= 2


def test_each_calling_thread_gets_its_own_pool_and_dead_threads_pools_close():
    results = []
    all_computed = threading.Barrier(3)

    def compute():
        results.append(get({"x": 1, "y": (inc, "x")}, "y", num_workers=2))
        all_computed.wait(10)  # stay alive until every thread has made its pool

    threads = [threading.Thread(target=compute) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2, 2, 2]
    assert len(threaded.pools) == 3
    get({"x": 1}, "x", num_workers=2)  # the next call closes the pools of the ended threads
    assert len(threaded.pools) == 1
    assert wait_until(lambda: len(pool_threads()) <= 2)


def test_nested_compute_from_a_task_does_not_deadlock():
    def inner(i):
        return get({"a": i, "b": (inc, "a")}, "b", num_workers=2)

    dsk = {("o", i): (inner, i) for i in range(6)}
    assert get(dsk, list(dsk), num_workers=2) == tuple(range(1, 7))


@pytest.mark.parametrize("kind", ["executor", "threadpool"])
def test_user_pool_is_used_and_left_open(kind):
    pool = ThreadPoolExecutor(3) if kind == "executor" else ThreadPool(3)
    try:
        dsk = {("x", i): (inc, i) for i in range(100)}
        dsk["s"] = (sum, list(dsk))
        assert get(dsk, "s", pool=pool) == sum(range(1, 101))
        assert get(dsk, "s", pool=pool) == sum(range(1, 101))  # still usable
        assert len(threaded.pools) == 0
    finally:
        if kind == "executor":
            pool.shutdown()
        else:
            pool.close()
            pool.join()


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_workers"):
        get({"x": 1}, "x", num_workers=0)
    with pytest.raises(TypeError, match="pool="):
        get({"x": 1}, "x", pool=object())


def test_error_stops_other_batches_promptly():
    ran = []

    def slow(i):
        time.sleep(0.01)
        ran.append(i)
        return i

    def boom(_):
        time.sleep(0.05)
        raise RuntimeError("task failed")

    dsk = {"bad": (boom, 1)}
    dsk.update({("slow", i): (slow, i) for i in range(300)})
    dsk["all"] = (len, list(dsk))  # 'bad' first: it has the highest priority
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="task failed"):
        get(dsk, "all", num_workers=2)
    assert time.perf_counter() - start < 1.0  # the slow tasks alone take 3 s on one thread
    settled = len(ran)
    assert settled < 100
    time.sleep(0.1)
    assert len(ran) <= settled + 1  # only a task already running may still finish


def test_keyboard_interrupt_in_a_task_discards_the_pool():
    def interrupt(_):
        raise KeyboardInterrupt

    dsk = {"ki": (interrupt, 1)}
    dsk.update({("slow", i): (time.sleep, 0.05) for i in range(50)})
    dsk["all"] = (len, list(dsk))
    with pytest.raises(KeyboardInterrupt):
        get(dsk, "all", num_workers=2)
    assert len(threaded.pools) == 0
    assert wait_until(lambda: not pool_threads(), timeout=2)
    assert get({"x": 1, "y": (inc, "x")}, "y") == 2  # a new pool is made


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_while_waiting_stops_promptly():
    main = threading.get_ident()
    timer = threading.Timer(0.3, lambda: signal.pthread_kill(main, signal.SIGINT))
    dsk = {("slow", i): (time.sleep, 0.1) for i in range(200)}  # 10 s on 2 threads
    dsk["all"] = (len, list(dsk))
    start = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            get(dsk, "all", num_workers=2)
    finally:
        timer.join()
    assert time.perf_counter() - start < 1.5
    assert wait_until(lambda: not pool_threads(), timeout=2)


def test_result_nesting_and_alias():
    assert get({"a": 1, "b": "a", "c": (add, "a", "b")}, [["c"], "b"]) == ((2,), 1)
