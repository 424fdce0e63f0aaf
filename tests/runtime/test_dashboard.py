"""The scheduler's dashboard: address handling, JSON endpoints, /metrics, the task stream record,
and responsiveness with a 100,000-task graph. Everything on 127.0.0.1, port 0."""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from runtime import Client, LocalCluster, Scheduler
from runtime.dashboard import parse_dashboard_address
from runtime.task_stream import TaskStream, prefix_of

pytestmark = pytest.mark.timeout(120)


def inc(x):
    return x + 1


def slow_inc(x, delay=0.02):
    time.sleep(delay)
    return x + 1


def fetch(link: str, path: str) -> tuple:
    base = link.rsplit("/", 1)[0]
    start = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=10) as r:
        body = r.read()
        ctype = r.headers["Content-Type"]
    return body, ctype, time.perf_counter() - start


def get_json(link: str, path: str) -> dict:
    body, ctype, _ = fetch(link, path)
    assert ctype == "application/json"
    return json.loads(body)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0") as cl:
        with Client(cl, set_as_default=False) as c:
            yield cl, c


# ----------------------------------------------------------------------------------------------
# addresses


@pytest.mark.parametrize("given, expected", [
    ("127.0.0.1:0", ("127.0.0.1", 0)), (":8787", ("127.0.0.1", 8787)), (9000, ("127.0.0.1", 9000)),
    ("localhost:1234", ("localhost", 1234)), ("http://127.0.0.1:5/", ("127.0.0.1", 5)),
    (None, None), ("none", None),
])
def test_parse_dashboard_address(given, expected):
    assert parse_dashboard_address(given) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1:http", "127.0.0.1:70000", 3.5, True])
def test_bad_dashboard_address_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="dashboard_address"):
        Scheduler(dashboard_address=bad)


def test_dashboard_off():
    with Scheduler(dashboard_address=None) as s:
        assert s.dashboard is None and s.dashboard_link is None
        with Client(s.address_to_clients, set_as_default=False) as c:
            assert c.dashboard_link is None


def test_taken_port_falls_back_to_a_free_one(caplog):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    try:
        with caplog.at_level(logging.WARNING, logger="runtime.dashboard"):
            with Scheduler(dashboard_address=f"127.0.0.1:{taken}") as s:
                assert s.dashboard.port != taken
                assert fetch(s.dashboard_link, "/health")[0] == b"ok"
        assert f"port {taken} is taken" in caplog.text
    finally:
        blocker.close()


def test_client_and_cluster_know_the_link(cluster):
    cl, c = cluster
    assert c.dashboard_link == cl.dashboard_link == cl.scheduler.dashboard_link
    assert c.dashboard_link.startswith("http://127.0.0.1:") and c.dashboard_link.endswith("/status")
    page, ctype, _ = fetch(c.dashboard_link, "/status")
    assert ctype.startswith("text/html") and b'id="task-stream"' in page
    assert b"http://" not in page.split(b"<script>")[1]  # self-contained: fetches only its own /api


def test_unknown_path_and_bad_query(cluster):
    _, c = cluster
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(c.dashboard_link, "/nope")
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(c.dashboard_link, "/api/task-stream?since=abc")
    assert e.value.code == 400


# ----------------------------------------------------------------------------------------------
# endpoints while a graph runs


def test_endpoints_while_a_graph_runs(cluster):
    cl, c = cluster
    link = c.dashboard_link
    futures = c.map(slow_inc, range(120), pure=False)
    seen_running = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        prog = get_json(link, "/api/progress")["prefixes"].get("slow_inc")
        if prog and prog["processing"] > 0 and prog["memory"] > 0:
            seen_running = True
            info = get_json(link, "/api/info")
            assert info["tasks"] >= 120 and info["workers"] == 2 and info["threads"] == 4
            assert info["task_states"]["processing"] > 0
            break
        time.sleep(0.02)
    assert seen_running, "never saw slow_inc tasks both processing and in memory"
    c.gather(futures)

    workers = get_json(link, "/api/workers")["workers"]
    assert len(workers) == 2
    assert {w["nthreads"] for w in workers} == {2}
    assert sum(w["in_memory"] for w in workers) >= 120
    assert all(w["memory_limit"] for w in workers)

    prog = get_json(link, "/api/progress")["prefixes"]["slow_inc"]
    assert prog["done"] >= 120 and prog["seconds"] >= 120 * 0.02 * 0.9
    assert prog["memory"] == 120 and prog["waiting"] == 0 and prog["erred"] == 0

    stream = get_json(link, "/api/task-stream?since=0&limit=50")
    assert len(stream["events"]) == 50 and stream["next"] >= 120
    worker, thread, start, stop, prefix, key = stream["events"][-1]
    assert worker in {w["address"] for w in workers} and thread in (0, 1)
    assert prefix == "slow_inc" and key.startswith("slow_inc-") and 0.015 < stop - start < 5
    later = get_json(link, f"/api/task-stream?since={stream['next']}")
    assert later["events"] == [] and later["next"] == stream["next"]

    deadline = time.monotonic() + 5
    while not all(w["memory"] for w in get_json(link, "/api/workers")["workers"]):
        assert time.monotonic() < deadline, "no heartbeat with memory"
        time.sleep(0.1)
    metrics, ctype, _ = fetch(link, "/metrics")
    text = metrics.decode()
    assert ctype.startswith("text/plain; version=0.0.4")
    assert "lazyarr_scheduler_workers 2" in text
    assert "lazyarr_scheduler_threads 4" in text
    assert 'lazyarr_tasks_completed_total{prefix="slow_inc"}' in text
    assert "# TYPE lazyarr_task_seconds_total counter" in text
    assert text.count("lazyarr_worker_memory_bytes{worker=") == 2
    for line in text.splitlines():  # every sample line parses as "name{labels} number"
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
    del futures


def test_transfers_are_counted(cluster):
    cl, c = cluster
    a, b = sorted(c.scheduler_info()["workers"])
    before = get_json(c.dashboard_link, "/api/info")["transfer_bytes"]
    x = c.submit(lambda: b"x" * 100_000, workers=[a], pure=False)
    y = c.submit(len, x, workers=[b])
    assert y.result() == 100_000
    info = get_json(c.dashboard_link, "/api/info")
    assert info["transfer_bytes"] - before >= 100_000
    assert any(w["transfer_bytes"] >= 100_000 for w in get_json(c.dashboard_link, "/api/workers")["workers"])


def test_cli_scheduler_serves_the_dashboard(cli):
    sched = cli.start(["scheduler", "--dashboard-address", "127.0.0.1:0"], ["workers", "clients", "dashboard"])
    try:
        link = sched.addresses["dashboard"]
        assert fetch(link, "/health")[0] == b"ok"
        assert get_json(link, "/api/info")["scheduler"] == sched.addresses["clients"]
        with Client(sched.addresses["clients"], timeout=10, set_as_default=False) as c:
            assert c.dashboard_link == link
    finally:
        assert cli.stop(sched) == 0


def test_cli_scheduler_without_dashboard(cli):
    sched = cli.start(["scheduler", "--dashboard-address", "none"], ["workers", "clients"])
    try:
        with Client(sched.addresses["clients"], timeout=10, set_as_default=False) as c:
            assert c.dashboard_link is None
        assert not any("dashboard" in line for line in sched.output)
    finally:
        assert cli.stop(sched) == 0


# ----------------------------------------------------------------------------------------------
# large graphs


def test_100000_task_graph_keeps_endpoints_fast():
    n = 100_000
    dsk = {("inc-5a4b3c2d1e0f", i): (inc, i) for i in range(n)}
    for j in range(100):
        dsk[("sum-0f1e2d3c4b5a", j)] = (sum, [("inc-5a4b3c2d1e0f", i) for i in range(j * 1000, (j + 1) * 1000)])
    dsk["total"] = (sum, [("sum-0f1e2d3c4b5a", j) for j in range(100)])
    # worker processes: this process's GIL is shared only by the scheduler, the client and the server
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cl:
        with Client(cl, set_as_default=False) as c:
            link = c.dashboard_link
            result: list = []
            runner = threading.Thread(target=lambda: result.append(c.get(dsk, "total")), name="big-get")
            runner.start()
            try:
                deadline = time.monotonic() + 60
                while get_json(link, "/api/info")["tasks"] < n and runner.is_alive():
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                graph_size = get_json(link, "/api/info")["tasks"]
                assert graph_size >= n, "the graph finished before the endpoints were timed"
                slowest = {}
                for _ in range(3):
                    for path in ("/api/info", "/api/workers", "/api/progress", "/api/task-stream?since=0",
                                 "/metrics", "/status"):
                        body, _, seconds = fetch(link, path)
                        slowest[path] = max(slowest.get(path, 0), seconds)
                        if path == "/api/task-stream?since=0":
                            assert len(json.loads(body)["events"]) <= 2000  # limited per poll
                print("endpoint seconds (slowest of 3):", {p: round(s, 3) for p, s in slowest.items()}, graph_size)
                assert max(slowest.values()) < 0.5, slowest
            finally:
                runner.join(60)
            assert result == [sum(range(1, n + 1))]
            prog = get_json(link, "/api/progress")["prefixes"]
            assert prog["inc"]["done"] == n and prog["sum"]["done"] == 100
            body, _, seconds = fetch(link, "/api/task-stream?since=0")
            assert seconds < 0.5 and json.loads(body)["next"] == n + 101


# ----------------------------------------------------------------------------------------------
# the record itself


def test_task_stream_ring_buffer_and_prefixes():
    ts = TaskStream(maxlen=5)
    keys = tuple(("inc-deadbeef12", i) for i in range(8))
    starts = tuple(float(i) for i in range(8))
    stops = tuple(float(i) + 0.5 for i in range(8))
    ts.finished("tcp://a:1", keys, (8,) * 8, starts, stops, (11,) * 8)   # > maxlen: aggregated at once
    ts.finished("tcp://b:1", ("x",), (1,), (None,), (None,), (None,))  # held already: not drawn
    ts.finished("tcp://b:1", ("bad",), (1,), (1.0, 2.0), (1.0,), None)  # malformed: ignored
    ts.finished("tcp://b:1", ("y",), (1,), None, None, None)            # an old worker: ignored
    out = ts.since(0)
    assert out["next"] == 8 and len(out["events"]) == 5 and out["dropped"] == 3
    assert out["events"][0][2] == 3.0 and out["events"][-1][5] == "('inc-deadbeef12', 7)"
    assert ts.prefixes() == {"inc": {"done": 8, "seconds": 4.0, "nbytes": 64}}
    assert ts.since(6, limit=1)["events"][0][2] == 7.0
    ts.heartbeat("tcp://a:1", {"memory": 123})
    ts.heartbeat("tcp://a:1", {"memory": "garbage"})
    ts.transferred("tcp://a:1", (10, 20))
    assert [m[1:] for m in ts.memory_since(0)] == [("tcp://a:1", 123)]
    assert ts.transfer_bytes == 30 and ts.transfer_by_worker["tcp://a:1"] == 30


def test_prefix_of_is_key_split():
    from lazyarr.utils import key_split

    for key in ["sum-aggregate-3f2a9b1c0d4e5f60", ("random_normal-0123456789abcdef", 4), "x", 5, b"bytes-key"]:
        assert prefix_of(key) == key_split(key)


def test_worker_processes_feed_the_task_stream():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cl:
        with Client(cl, set_as_default=False) as c:
            assert sum(c.gather(c.map(slow_inc, range(20), pure=False))) == sum(range(1, 21))
            stream = get_json(c.dashboard_link, "/api/task-stream?since=0")
            assert len(stream["events"]) == 20
            assert {e[0] for e in stream["events"]} <= set(stream["threads"])
            now = time.time()
            assert all(now - 60 < e[2] <= e[3] <= now for e in stream["events"])  # wall clock
            deadline = time.monotonic() + 10
            while not all(w["memory"] for w in get_json(c.dashboard_link, "/api/workers")["workers"]):
                assert time.monotonic() < deadline, "no heartbeat with memory from the worker processes"
                time.sleep(0.1)
