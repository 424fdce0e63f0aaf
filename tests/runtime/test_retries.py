"""``retries=``: tasks that raised are run again, through every way of submitting work."""
from __future__ import annotations

import os

import pytest

import lazyarr
from lazyarr import delayed
from runtime import Client, Scheduler, Worker

pytestmark = pytest.mark.timeout(60)


def flaky(path, fail_times, value=0):
    """Fails the first ``fail_times`` calls (counted in the file ``path``), then returns value + 1."""
    with open(path, "a") as f:
        f.write("x")
    if os.path.getsize(path) <= fail_times:
        raise ConnectionError(f"transient failure {os.path.getsize(path)}")
    return value + 1


def attempts(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def double(x):
    return 2 * x


@pytest.fixture
def c(cli):
    """A scheduler, two worker threads and a client, all closed (and leak-checked) per test."""
    scheduler = Scheduler(dashboard_address=None)
    workers = []
    try:
        workers = [Worker(scheduler.address_to_workers, nthreads=1, name=f"w{i}") for i in range(2)]
        with Client(scheduler.address_to_clients, timeout=10, set_as_default=False) as client:
            cli.wait_for_workers(client, 2)
            yield client
    finally:
        for w in workers:
            w.close()
        scheduler.close()


def test_submit_retries_until_success(c, tmp_path):
    path = str(tmp_path / "a")
    assert c.submit(flaky, path, 2, 41, retries=2).result() == 42
    assert attempts(path) == 3


def test_submit_retries_exhausted_raise_the_last_error(c, tmp_path):
    path = str(tmp_path / "a")
    with pytest.raises(ConnectionError, match="transient failure 2"):
        c.submit(flaky, path, 5, retries=1).result()
    assert attempts(path) == 2


def test_no_retries_by_default(c, tmp_path):
    path = str(tmp_path / "a")
    with pytest.raises(ConnectionError):
        c.submit(flaky, path, 1).result()
    assert attempts(path) == 1


def test_map_retries_each_task(c, tmp_path):
    paths = [str(tmp_path / f"m{i}") for i in range(4)]
    futures = c.map(flaky, paths, [1] * 4, range(4), retries=1)
    assert c.gather(futures) == [1, 2, 3, 4]
    assert [attempts(p) for p in paths] == [2] * 4


def test_dependents_of_a_retried_task_run_once(c, tmp_path):
    path = str(tmp_path / "a")
    x = c.submit(flaky, path, 2, 10, retries=3)
    y = c.submit(double, x)
    assert y.result() == 22 and attempts(path) == 3


def test_client_compute_retries(c, tmp_path):
    path = str(tmp_path / "a")
    value = delayed(double)(delayed(flaky)(path, 2, 20))
    assert c.compute(value, retries=2).result() == 42
    assert attempts(path) == 3
    path2 = str(tmp_path / "b")
    with pytest.raises(ConnectionError):
        c.compute(delayed(double)(delayed(flaky)(path2, 2, 20)), retries=1).result()


def test_collection_compute_and_get_retries(c, tmp_path):
    path = str(tmp_path / "a")
    value = delayed(double)(delayed(flaky)(path, 1, 5))
    assert value.compute(scheduler=c.get, retries=1) == 12                 # Client.get
    assert attempts(path) == 2
    path2 = str(tmp_path / "b")
    (result,) = lazyarr.compute(delayed(flaky)(path2, 1, 7), scheduler=c.get, retries=1)
    assert result == 8 and attempts(path2) == 2


def test_persist_retries(c, tmp_path):
    path = str(tmp_path / "a")
    persisted = c.persist(delayed(flaky)(path, 1, 1), retries=1)
    assert persisted.compute(scheduler=c.get) == 2 and attempts(path) == 2
