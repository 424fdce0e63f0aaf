"""client_from_ipclient against a real local ipcluster of two engines (skipped without ipyparallel).

The ipcluster (a controller and two engines, each under ipyparallel's nanny) is started once for
the module and stopped at its end; every test checks that what it started on the engines is
stopped again, and the module fixture checks that no ipyparallel process outlives it.
"""
from __future__ import annotations

import operator
import os

import psutil
import pytest

ipp = pytest.importorskip("ipyparallel", reason="ipyparallel is not installed (pip install 'lazyarr[ipyparallel]')")

from runtime.ipyparallel import IPClusterClient, client_from_ipclient, stop_ipclient_runtime  # noqa: E402


def _services_on_engines(rc) -> list[dict]:
    """What each engine runs for lazyarr: ``{token: [roles]}`` per engine."""
    def report():
        from runtime.ipyparallel import _SERVICES
        return {token: sorted(services) for token, services in _SERVICES.items()}

    return rc[:].apply_sync(report)


def _ipyparallel_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if any("ipyparallel" in part for part in proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            pass
    return found


@pytest.fixture(scope="module")
def ipclient(tmp_path_factory):
    """An ipyparallel Client of a fresh two-engine ipcluster on loopback, stopped afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        cluster = ipp.Cluster(n=2, log_level=40)
        rc = None
        try:
            rc = cluster.start_and_connect_sync()
            rc.wait_for_engines(2, timeout=90)
            yield rc
        finally:
            if rc is not None:
                rc.close()
            cluster.stop_cluster_sync()
            left = _ipyparallel_processes()
            for proc in left:
                proc.kill()
            assert not left, f"ipcluster processes left running: {left}"


@pytest.fixture
def engine_pids(ipclient) -> set[int]:
    return set(ipclient[:].apply_sync(os.getpid))


def _listening_ports() -> set[int]:
    return {c.laddr.port for c in psutil.Process().net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


@pytest.mark.timeout(180)
def test_scheduler_on_an_engine(ipclient, engine_pids):
    with client_from_ipclient(ipclient) as client:
        assert isinstance(client, IPClusterClient) and client.engines == [0, 1]
        workers = client.scheduler_info()["workers"]
        assert sorted(w["name"] for w in workers.values()) == ["ipengine-0", "ipengine-1"]
        assert {w["nthreads"] for w in workers.values()} == {1}
        # the scheduler lives in engine 0, not here
        assert int(client.address.rsplit(":", 1)[1]) not in _listening_ports()
        running = _services_on_engines(ipclient)
        assert [sorted(r.values()) for r in running] == [[["scheduler", "worker"]], [["worker"]]]

        assert client.get({"a": (sum, [1, 2, 3]), "b": (operator.mul, "a", "a")}, "b") == 36
        from lazyarr import delayed
        total = delayed(sum)([delayed(operator.pow)(i, 3) for i in range(6)])
        assert total.compute(scheduler=client) == 225
        ran_in = {client.submit(os.getpid, pure=False, workers=[name]).result(timeout=30)
                  for name in ("ipengine-0", "ipengine-1")}
        assert ran_in == engine_pids
    assert client.closed
    assert _services_on_engines(ipclient) == [{}, {}]
    assert ipclient[:].apply_sync(operator.add, 1, 1) == [2, 2]  # the engines themselves keep running


@pytest.mark.timeout(180)
def test_local_scheduler_and_some_engines(ipclient, engine_pids):
    before = _listening_ports()
    with client_from_ipclient(ipclient, targets=[1], scheduler="local", nthreads=2, memory_limit="300MB") as client:
        assert int(client.address.rsplit(":", 1)[1]) in _listening_ports() - before
        (worker,) = client.scheduler_info()["workers"].values()
        assert (worker["name"], worker["nthreads"], worker["memory_limit"]) == ("ipengine-1", 2, 300 * 10**6)
        futures = client.map(operator.add, range(10), range(10))
        assert client.gather(futures) == list(range(0, 20, 2))
        assert client.submit(os.getpid, pure=False).result(timeout=30) in engine_pids
        assert [list(r.values()) for r in _services_on_engines(ipclient)] == [[], [["worker"]]]
    assert _listening_ports() <= before
    assert _services_on_engines(ipclient) == [{}, {}]


def test_bad_arguments(ipclient):
    with pytest.raises(ValueError, match=r"engines \[7\] are not in the ipyparallel cluster"):
        client_from_ipclient(ipclient, targets=[0, 7])
    with pytest.raises(ValueError, match="scheduler must be 'engine' or 'local'"):
        client_from_ipclient(ipclient, scheduler="hub")
    with pytest.raises(ValueError, match="nthreads must be a positive integer"):
        client_from_ipclient(ipclient, nthreads=0)
    with pytest.raises(ValueError, match="cannot parse"):
        client_from_ipclient(ipclient, memory_limit="plenty")
    assert _services_on_engines(ipclient) == [{}, {}]


@pytest.mark.timeout(180)
def test_failure_on_an_engine_stops_what_started(ipclient):
    # The scheduler starts on engine 0, then every worker fails on its engine: all is undone.
    with pytest.raises(Exception, match="unexpected keyword argument 'no_such_option'"):
        client_from_ipclient(ipclient, worker_options={"no_such_option": 1}, timeout=60)
    assert _services_on_engines(ipclient) == [{}, {}]


@pytest.mark.timeout(180)
def test_two_runtimes_and_stop_ipclient_runtime(ipclient):
    first = client_from_ipclient(ipclient)
    try:
        with client_from_ipclient(ipclient, scheduler="local") as second:
            assert second.get({"x": (operator.add, 2, 3)}, "x") == 5
        # closing the second left the first alone
        assert first.get({"x": (operator.sub, 9, 3)}, "x") == 6
        assert [len(r) for r in _services_on_engines(ipclient)] == [1, 1]
        # as after losing the client: stop everything from the ipyparallel side
        stop_ipclient_runtime(ipclient)
        assert _services_on_engines(ipclient) == [{}, {}]
    finally:
        first.close()
    assert _services_on_engines(ipclient) == [{}, {}]
