"""Clear errors for the usual pains: wrong port, scheduler gone, a result that cannot be pickled.
Each must name the problem and never hang. (Nothing listening, a peer of another protocol version
and oversized frames are covered in test_inprocess.py and test_protocol.py.)"""
from __future__ import annotations

import logging
import threading
import time

import pytest

from lazyarr import config
from runtime.errors import SchedulerGoneError, SerializationError

pytestmark = pytest.mark.timeout(60)


def inc(x):
    return x + 1


def make_lock():
    return threading.Lock()


def test_client_at_the_workers_port_is_told_where_to_go():
    from runtime import Client, Scheduler

    with Scheduler() as s:
        start = time.monotonic()
        with pytest.raises(ConnectionError, match="port for workers; clients connect to " + s.address_to_clients):
            Client(s.address_to_workers, timeout=10)
        assert time.monotonic() - start < 5


def test_client_at_a_workers_peer_port_is_told_where_to_go():
    from runtime import Client, Scheduler, Worker

    with Scheduler() as s, Worker(s.address_to_workers, nthreads=1, memory_limit=0) as w:
        start = time.monotonic()
        with pytest.raises(ConnectionError, match="is a lazyarr worker's port for its peers"):
            Client(w.address, timeout=10)
        assert time.monotonic() - start < 5


def test_worker_at_the_clients_port_is_told_where_to_go(caplog):
    from runtime import Scheduler, Worker

    caplog.set_level(logging.ERROR, logger="runtime.worker")
    with Scheduler() as s, Worker(s.address_to_clients, nthreads=1, memory_limit=0) as w:
        deadline = time.monotonic() + 10
        while not any("workers connect to " + s.address_to_workers in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the worker was not told it is at the wrong port"
            time.sleep(0.05)
        assert not w.registered


def test_scheduler_gone_raises_instead_of_hanging():
    from runtime import Client, Scheduler

    with config.set({"runtime.scheduler-timeout": 1.5}):
        s = Scheduler()
        try:
            c = Client(s.address_to_clients, timeout=10)
        except BaseException:
            s.close()
            raise
    try:
        # no worker has this name: the task waits forever, until the scheduler goes away
        future = c.submit(inc, 1, workers=["nobody"])
        s.close()
        start = time.monotonic()
        with pytest.raises(SchedulerGoneError, match=f"the scheduler at {s.address_to_clients} has not answered"):
            future.result(timeout=30)
        assert time.monotonic() - start < 10
    finally:
        start = time.monotonic()
        c.close()
        assert time.monotonic() - start < 5


def test_unpicklable_result_names_the_task_and_the_type():
    from runtime import Client, Scheduler, Worker

    with Scheduler() as s, Worker(s.address_to_workers, nthreads=1, memory_limit=0), \
            Client(s.address_to_clients, timeout=20) as c:
        future = c.submit(make_lock, key="the-lock")
        with pytest.raises(SerializationError) as info:
            future.result(timeout=20)
        text = str(info.value)
        assert "'the-lock'" in text and "cannot be pickled" in text and "_thread.lock" in text
        # the cluster carries on
        assert c.submit(inc, 1).result(timeout=20) == 2


def test_worker_with_nothing_at_its_scheduler_address_says_so(caplog):
    from runtime import Worker

    caplog.set_level(logging.WARNING, logger="runtime.worker")
    with config.set({"runtime.connect-timeout": 0.5}):
        w = Worker("tcp://127.0.0.1:9", nthreads=1, memory_limit=0)
    with w:
        deadline = time.monotonic() + 10
        while not any("no lazyarr scheduler has answered at tcp://127.0.0.1:9" in r.getMessage()
                      for r in caplog.records):
            assert time.monotonic() < deadline, "the worker did not say that nobody answers"
            time.sleep(0.05)
