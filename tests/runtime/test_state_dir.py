"""Scheduler restarts: named collections survive with ``state_dir``; workers and clients reconnect
by themselves; a client whose scheduler is gone raises instead of hanging."""
from __future__ import annotations

import os
import socket
import time
from operator import add

import pytest

from lazyarr import config, delayed
from runtime import Client
from runtime.errors import SchedulerGoneError, SchedulerRestartedError
from runtime.scheduler import Scheduler
from runtime.state_dir import FILENAME, StateDir
from runtime.worker import Worker

pytestmark = pytest.mark.timeout(60)


def slow_add(a: int, b: int, delay: float = 0.01) -> int:
    time.sleep(delay)
    return a + b


def sleepy(x: int, delay: float = 2.0) -> int:
    time.sleep(delay)
    return x


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.02)


def workers_of(scheduler: Scheduler) -> int:
    return scheduler.sync(lambda state: len(state.workers))


def test_scheduler_restart_keeps_collections_and_everyone_reconnects(tmp_path):
    first = Scheduler(state_dir=tmp_path, dashboard_address=None)
    ports = first.port_to_workers, first.port_to_clients
    second = None
    workers = [Worker(first.address_to_workers, nthreads=1, name=f"w{i}") for i in range(2)]
    try:
        with Client(first.address_to_clients, timeout=10) as c:
            wait_until(lambda: workers_of(first) == 2, what="workers registered")
            c.set_collection("lazy", delayed(add)(1, 2))
            total = delayed(sum)([delayed(slow_add)(i, 1) for i in range(10)])
            kept = c.persist(total)
            assert c.compute(kept, sync=True) == 55
            c.set_collection("kept", kept)
            key = kept.key
            assert os.path.exists(tmp_path / FILENAME)
            running = c.submit(sleepy, 1, pure=False)
            first.close()
            second = Scheduler(port_to_workers=ports[0], port_to_clients=ports[1], state_dir=tmp_path,
                               dashboard_address=None)
            # the workers register again with the data they hold; the client notices the restart
            wait_until(lambda: workers_of(second) == 2, what="workers re-registered")
            with pytest.raises(SchedulerRestartedError, match="restarted"):
                running.result(timeout=20)
            assert sorted(c.list_collections()) == ["kept", "lazy"]
            assert c.compute(c.get_collection("lazy"), sync=True) == 3
            assert c.compute(c.get_collection("kept"), sync=True) == 55
            # the persisted result came back from a worker's memory, not a recomputation
            assert second.sync(lambda state: state.tasks[key].state) == "memory"
            assert c.submit(add, 20, 22).result(timeout=20) == 42
    finally:
        for w in workers:
            w.close()
        first.close()
        if second is not None:
            second.close()


def test_collections_are_recomputed_from_lineage_when_their_workers_are_gone(tmp_path):
    first = Scheduler(state_dir=tmp_path, dashboard_address=None)
    ports = first.port_to_workers, first.port_to_clients
    try:
        with Worker(first.address_to_workers, nthreads=1), Client(first.address_to_clients, timeout=10) as c:
            kept = c.persist(delayed(sum)([delayed(slow_add)(i, i) for i in range(5)]))
            c.set_collection("kept", kept)
            c.set_collection("gone", kept)
            c.delete_collection("gone")
    finally:
        first.close()
    with Scheduler(port_to_workers=ports[0], port_to_clients=ports[1], state_dir=tmp_path,
                   dashboard_address=None) as second, Worker(second.address_to_workers, nthreads=1), \
            Client(second.address_to_clients, timeout=10) as c:
        assert c.list_collections() == ["kept"]
        assert c.compute(c.get_collection("kept"), sync=True) == 20


def test_cli_scheduler_state_dir_and_worker_reconnect(cli, tmp_path):
    pw, pc = free_port(), free_port()
    args = ["scheduler", "--port-to-workers", str(pw), "--port-to-clients", str(pc), "--state-dir", str(tmp_path)]
    sched = cli.start(args, ["workers", "clients"])
    worker = None
    try:
        worker = cli.start(["worker", sched.addresses["workers"], "--nthreads", "1", "--memory-limit", "0"],
                           ["address"])
        with Client(sched.addresses["clients"], timeout=10) as c:
            cli.wait_for_workers(c, 1)
            c.set_collection("numbers", c.persist(delayed(add)(40, 2)))
        assert cli.stop(sched) == 0
        sched = cli.start(args, ["workers", "clients"])
        with Client(sched.addresses["clients"], timeout=10) as c:
            cli.wait_for_workers(c, 1)  # the same worker process, registered again by itself
            assert c.list_collections() == ["numbers"]
            assert c.compute(c.get_collection("numbers"), sync=True) == 42
    finally:
        if worker is not None:
            cli.stop(worker)
        cli.stop(sched)


def test_client_raises_when_the_scheduler_is_gone_instead_of_hanging():
    with config.set({"runtime.scheduler-timeout": 1.5}):
        scheduler = Scheduler(dashboard_address=None)
        try:
            with Worker(scheduler.address_to_workers, nthreads=1), \
                    Client(scheduler.address_to_clients, timeout=10) as c:
                pending = c.submit(sleepy, 1, pure=False)
                scheduler.close()
                start = time.monotonic()
                with pytest.raises(SchedulerGoneError, match="has not answered"):
                    pending.result()
                with pytest.raises(SchedulerGoneError):
                    c.submit(add, 1, 2).result()
                assert time.monotonic() - start < 10
        finally:
            scheduler.close()


def test_corrupt_state_file_is_set_aside(tmp_path, caplog):
    (tmp_path / FILENAME).write_bytes(b"\x00garbage")
    with Scheduler(state_dir=tmp_path, dashboard_address=None) as scheduler:
        assert scheduler.sync(lambda state: dict(state.collections)) == {}
    assert (tmp_path / (FILENAME + ".corrupt")).exists()
    assert "cannot read the saved collections" in caplog.text


def test_unusable_state_dir_is_a_clear_error(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(OSError, match="state directory"):
        StateDir(target / "sub")
