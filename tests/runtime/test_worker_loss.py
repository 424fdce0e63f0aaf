"""Workers dying mid-graph: noticed fast, work recomputed, scattered data reported lost, and
tasks that keep killing their workers fail with KilledWorker naming the exit reasons."""
from __future__ import annotations

import os
import random
import signal
import time
from operator import add

import pytest

from runtime import Client, LocalCluster
from runtime.errors import KilledWorker, LostDataError
from runtime.scheduler_state import SchedulerState

pytestmark = pytest.mark.timeout(120)

#: The kill test's figures, printed at the end of the module (``pytest -s``) for the report.
KILL_RUNS = 20


def tick(x: int) -> int:
    time.sleep(0.0005)
    return x + 1


def combine(a: int, b: int) -> int:
    time.sleep(0.0005)
    return a + b


def fast_tick(x: int) -> int:
    return x + 1


def graph(run: int, width: int = 500, tick=tick, combine=combine) -> tuple[dict, object, int]:
    """About 2,000 tasks: ``width`` roots, two layers of intermediates, a tree reduction."""
    p = f"r{run}"
    dsk: dict = {}
    for i in range(width):
        dsk[(f"{p}-a", i)] = (tick, i)
        dsk[(f"{p}-b", i)] = (tick, (f"{p}-a", i))
        dsk[(f"{p}-c", i)] = (combine, (f"{p}-b", i), (f"{p}-a", (i + 1) % width))
    level = [(f"{p}-c", i) for i in range(width)]
    depth = 0
    while len(level) > 1:
        nxt = []
        for j in range(0, len(level), 2):
            key = (f"{p}-sum{depth}", j // 2)
            dsk[key] = (combine, level[j], level[j + 1]) if j + 1 < len(level) else (tick, level[j])
            nxt.append(key)
        level = nxt
        depth += 1
    expected = _local(graph(run, width, fast_tick, add)[0], level[0]) if tick is not fast_tick else None
    return dsk, level[0], expected


def _local(dsk: dict, key: object) -> int:
    from lazyarr.local import get_sync

    return get_sync(dsk, key)


def kill_self(x: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return x


def exit_three(x: int) -> int:
    os._exit(3)


def running_pids(cluster: LocalCluster) -> list[int]:
    return [h.pid for h in cluster.workers.values() if h.pid is not None]


@pytest.fixture
def cluster():
    # one per test: workers restarted by their nannies are new processes, which the leak check
    # would otherwise see as leaked by the test
    # killed workers come back quickly however often they die (the default backoff doubles)
    with LocalCluster(n_workers=3, threads_per_worker=1, dashboard_address=None,
                      nanny={"max_backoff": 0.5}) as cluster:
        yield cluster


@pytest.fixture
def client(cluster):
    with Client(cluster) as client:
        wait_for_workers(client, 3)
        yield client


def wait_for_workers(client: Client, n: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        workers = client.scheduler_info()["workers"]
        if len(workers) >= n:
            return workers
        assert time.monotonic() < deadline, f"only {len(workers)} of {n} workers after {timeout} s"
        time.sleep(0.02)


def test_graph_size():
    dsk, key, expected = graph(0)
    assert 1900 <= len(dsk) <= 2100
    assert expected == _local(graph(0, tick=fast_tick, combine=add)[0], key) > 0


def test_sigkill_is_noticed_within_a_second_and_the_worker_comes_back(cluster, client):
    workers = wait_for_workers(client, 3)
    handle = next(iter(cluster.workers.values()))
    old_pid, old_address = handle.pid, handle.address
    assert old_address in workers
    start = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    while old_address in client.scheduler_info()["workers"]:
        assert time.monotonic() - start < 5, "a killed worker was not noticed within 5 s"
        time.sleep(0.01)
    noticed = time.monotonic() - start
    assert noticed < 3, noticed
    wait_for_workers(client, 3)
    assert handle.pid not in (None, old_pid)
    assert client.submit(add, 1, 2, pure=False).result(timeout=30) == 3


def test_kill_a_random_worker_at_random_moments(cluster, client):
    """20 runs of a 2,000-task graph with intermediates; each run a random worker is SIGKILLed at a
    random moment (the nanny brings it back); every result must be correct."""
    rng = random.Random(7)
    passed = 0
    kills = 0
    durations = []
    for run in range(KILL_RUNS):
        dsk, key, expected = graph(100 + run)
        wait_for_workers(client, 2)
        start = time.monotonic()
        [future] = client._graph_futures(dsk, [key])
        time.sleep(rng.uniform(0.02, 0.5))
        pids = running_pids(cluster)
        if len(pids) >= 2 and not future.done():
            os.kill(rng.choice(pids), signal.SIGKILL)
            kills += 1
        if future.result(timeout=60) == expected:
            passed += 1
        durations.append(time.monotonic() - start)
        del future
    print(f"\nkill test: {passed}/{KILL_RUNS} runs correct, {kills} workers killed mid-graph, "
          f"run time {min(durations):.2f}-{max(durations):.2f} s")
    assert passed == KILL_RUNS
    assert kills >= KILL_RUNS // 2


def test_scattered_data_on_a_dead_worker_is_reported_lost(cluster, client):
    workers = wait_for_workers(client, 3)
    target = sorted(workers)[0]
    [data] = client.scatter([41], workers=[target], hash=False)
    assert client.submit(add, data, 1).result(timeout=30) == 42
    handle = next(h for h in cluster.workers.values() if h.address == target)
    os.kill(handle.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while target in client.scheduler_info()["workers"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    later = client.submit(add, data, 2, pure=False)
    with pytest.raises(LostDataError, match="scattered.*cannot be recomputed"):
        later.result(timeout=30)
    with pytest.raises(LostDataError):
        data.result(timeout=30)


@pytest.mark.parametrize("func, reason", [(kill_self, "killed by SIGKILL"), (exit_three, "exited with code 3")])
def test_task_that_kills_its_workers_fails_with_killed_worker(cluster, client, func, reason):
    wait_for_workers(client, 3)
    future = client.submit(func, 1, pure=False)
    with pytest.raises(KilledWorker) as info:
        future.result(timeout=60)
    error = info.value
    assert error.task == future.key
    assert len(error.deaths) == 3
    assert all(r.startswith(reason) for _, _, r in error.deaths), error.deaths
    message = str(error)
    assert repr(future.key) in message and reason in message and "allowed-failures is 3" in message
    for address, _, _ in error.deaths:
        assert address in message
    wait_for_workers(client, 3)  # the nannies brought them all back
    assert client.submit(add, 2, 3, pure=False).result(timeout=30) == 5


# ----------------------------------------------------------------------------------------------
# The state machine, without sockets


def _state_with_task(allowed: int = 2) -> SchedulerState:
    state = SchedulerState(allowed_failures=allowed)
    for w in ("w1", "w2", "w3"):
        state.worker_added(w, 1)
    state.update_graph("c", ["x"], [b"payload"], [[]], ["x"])
    return state


def test_state_counts_deaths_and_raises_killed_worker_with_reasons():
    state = _state_with_task(allowed=2)
    first = state.tasks["x"].worker.address
    out = state.worker_removed(first, died=True, reason="killed by SIGSEGV")
    assert state.tasks["x"].state == "processing"
    assert any(op["op"] == "compute" for _, op in out)
    second = state.tasks["x"].worker.address
    out = state.worker_removed(second, died=True, reason="exited with code 1")
    assert state.tasks["x"].state == "erred"
    [(dest, op)] = [(d, op) for d, op in out if op["op"] == "key-erred"]
    import pickle

    exc, _ = pickle.loads(op["exceptions"][0])
    assert isinstance(exc, KilledWorker)
    assert exc.deaths == [(first, first, "killed by SIGSEGV"), (second, second, "exited with code 1")]
    assert "killed by SIGSEGV" in str(exc) and "exited with code 1" in str(exc)
    state.validate()


def test_state_graceful_leaves_do_not_count_as_deaths():
    state = _state_with_task(allowed=1)
    for _ in range(2):
        state.worker_removed(state.tasks["x"].worker.address)
    assert state.tasks["x"].state == "processing"
    state.validate()
