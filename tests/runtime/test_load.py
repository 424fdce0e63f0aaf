"""Load: 8 clients at once, each with a 2,001-task graph and 100 futures, against one scheduler.

The scheduler and two workers are separate processes (started through the CLI), so the
scheduler's RSS is its own. Checks: every result right; once the clients are gone the scheduler
holds no task and no client, and its memory is back near the baseline taken after a warm-up run.
"""
from __future__ import annotations

import threading
import time

import psutil
import pytest

pytestmark = pytest.mark.timeout(120)

N_CLIENTS = 8
N_LEAVES = 1600            # + 400 partial sums + 1 total = 2,001 tasks per graph
N_FUTURES = 100
N_GRAPHS = 3               # graphs per client, one after the other
RSS_BOUND = 16 * 2**20
TASK_STREAM_EVENTS = 100_000   # runtime.task_stream.TaskStream's default maxlen


def inc(x):
    return x + 1


def graph(tag: str) -> tuple[dict, tuple]:
    """A two-level reduction: 1,600 leaves, 400 partial sums, one total."""
    dsk: dict = {(f"{tag}-x", i): (inc, i) for i in range(N_LEAVES)}
    for j in range(N_LEAVES // 4):
        dsk[(f"{tag}-s", j)] = (sum, [(f"{tag}-x", i) for i in range(4 * j, 4 * j + 4)])
    dsk[(f"{tag}-total",)] = (sum, [(f"{tag}-s", j) for j in range(N_LEAVES // 4)])
    return dsk, (f"{tag}-total",)


EXPECTED_TOTAL = N_LEAVES * (N_LEAVES + 1) // 2


def run_client(address: str, n: int, barrier: threading.Barrier | None, errors: list) -> None:
    from runtime import Client

    try:
        with Client(address, timeout=30, set_as_default=False) as c:
            if barrier is not None:
                barrier.wait(60)
            futures = c.map(inc, [n * 10_000 + i for i in range(N_FUTURES)])
            for g in range(N_GRAPHS):
                dsk, key = graph(f"load-{n}-{g}")
                assert c.get(dsk, key) == EXPECTED_TOTAL
            assert c.gather(futures) == [n * 10_000 + i + 1 for i in range(N_FUTURES)]
    except BaseException as e:  # reported by the test thread
        errors.append((n, e))


def scheduler_state(address: str) -> dict:
    from runtime import Client

    with Client(address, timeout=30, set_as_default=False) as c:
        return c.scheduler_info()


def wait_until_idle(address: str, timeout: float = 20.0) -> dict:
    """Poll until the scheduler holds no task and no client but the one asking."""
    deadline = time.monotonic() + timeout
    while True:
        info = scheduler_state(address)
        if info["tasks"] == 0 and info["clients"] <= 1:
            return info
        if time.monotonic() > deadline:
            raise AssertionError(f"the scheduler still holds {info['tasks']} tasks ({info['task_states']}) "
                                 f"and {info['clients']} clients after the clients left")
        time.sleep(0.1)


def test_eight_clients_at_once(cli):
    scheduler = cli.start(["scheduler", "--host", "127.0.0.1", "--log-level", "warning"], ["workers", "clients"])
    workers = []
    try:
        for i in range(2):
            workers.append(cli.start(["worker", scheduler.addresses["workers"], "--nthreads", "1",
                                      "--memory-limit", "0", "--no-nanny", "--name", f"load-{i}",
                                      "--log-level", "warning"], ["address"]))
        address = scheduler.addresses["clients"]
        from runtime import Client

        with Client(address, timeout=30, set_as_default=False) as c:
            cli.wait_for_workers(c, 2)
        proc = psutil.Process(scheduler.proc.pid)

        def load_round(first: int) -> tuple[float, int]:
            """8 clients at once; returns the wall time and the scheduler's peak RSS."""
            errors: list = []
            barrier = threading.Barrier(N_CLIENTS + 1)
            threads = [threading.Thread(target=run_client, args=(address, first + n, barrier, errors),
                                        name=f"load-client-{n}") for n in range(N_CLIENTS)]
            for t in threads:
                t.start()
            barrier.wait(60)
            start = time.perf_counter()
            peak = 0
            while any(t.is_alive() for t in threads):
                peak = max(peak, proc.memory_info().rss)
                for t in threads:
                    t.join(0.02)
            elapsed = time.perf_counter() - start
            assert not errors, errors
            return elapsed, peak

        # Warm-up rounds: imports, allocator pools, and the dashboard's task stream, which keeps up
        # to 100,000 task events plus as many raw ones not yet aggregated (a bounded history of a
        # few tens of MiB) and must be full before the baseline. Memory after the measured round
        # must come back to the baseline: a leak adds up round after round, a bounded history or a
        # high-water mark does not.
        warm_rounds = -(-2 * TASK_STREAM_EVENTS // (N_CLIENTS * N_GRAPHS * N_LEAVES))
        for r in range(warm_rounds):
            load_round(100 * r)
        wait_until_idle(address)
        time.sleep(0.5)
        baseline = proc.memory_info().rss
        elapsed, peak = load_round(100 * warm_rounds)
        info = wait_until_idle(address)
        assert info["tasks"] == 0
        time.sleep(0.5)
        after = proc.memory_info().rss
        ntasks = N_CLIENTS * (N_GRAPHS * (N_LEAVES + N_LEAVES // 4 + 1) + N_FUTURES)
        print(f"\nload: {N_CLIENTS} clients, {ntasks} tasks in {elapsed:.2f} s = {ntasks / elapsed:.0f} tasks/s; "
              f"scheduler RSS before {baseline / 2**20:.1f} MiB, peak {peak / 2**20:.1f} MiB, "
              f"after {after / 2**20:.1f} MiB")
        assert after - baseline < RSS_BOUND, (f"scheduler RSS {baseline / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB "
                                              f"after the clients left")
    finally:
        for w in workers:
            cli.stop(w)
        cli.stop(scheduler)
