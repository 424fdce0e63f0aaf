"""``performance_report``: one self-contained HTML file with the task stream, time per task
prefix, transfer volume and worker memory of what ran during the block."""
from __future__ import annotations

import re
import time

import pytest

from runtime import Client, LocalCluster, performance_report
from runtime.performance_report import render_report

pytestmark = pytest.mark.timeout(120)


def work(i, delay=0.005):
    time.sleep(delay)
    return bytes(20_000)


def combine(*parts):
    return sum(len(p) for p in parts)


def test_report_with_real_numbers(tmp_path):
    path = tmp_path / "report.html"
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=False, dashboard_address=None) as cl:
        with Client(cl, set_as_default=False) as c:
            c.submit(combine, c.submit(work, -1)).result()  # before the block: not in the report
            a, b = sorted(c.scheduler_info()["workers"])
            with performance_report(filename=str(path), client=c) as report:
                left = c.map(work, range(30), workers=[a], pure=False)
                right = c.map(work, range(30, 60), workers=[b], pure=False)
                total = c.submit(combine, *left, *right, workers=[a])  # fetches 30 results from b
                assert total.result() == 60 * 20_000
                time.sleep(1.2)  # a couple of heartbeats with memory
    html = path.read_text()
    data = report.data

    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script src" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for section in ('id="summary"', 'id="task-stream"', 'id="prefixes"', 'id="transfers"', 'id="memory"'):
        assert section in html, section

    # task stream: one rectangle per task run during the block, and only those
    assert len(data["events"]) == 61
    assert int(re.search(r'data-rects="(\d+)"', html).group(1)) == 61
    assert html.count("<rect x=") == 61
    assert re.search(r'<dd id="ntasks">61</dd>', html)

    # time per prefix
    assert data["prefixes"]["work"]["done"] == 60 and data["prefixes"]["combine"]["done"] == 1
    assert data["prefixes"]["work"]["seconds"] >= 60 * 0.005 * 0.9
    assert 'data-prefix="work"' in html and 'data-prefix="combine"' in html
    seconds = float(re.search(r'<dd id="task-seconds">([\d.]+) s</dd>', html).group(1))
    assert seconds >= 0.27

    # transfer volume: the 30 results moved from b to a
    assert data["transfer_bytes"] >= 30 * 20_000
    assert f"({data['transfer_bytes']} bytes)" in html
    assert 'id="transfer-chart"' in html

    # worker memory over time, for both workers
    assert {m[1] for m in data["memory"]} == {a, b}
    assert all(m[2] > 1_000_000 for m in data["memory"])
    assert 'id="memory-chart"' in html and html.count("<polyline") >= 3  # 1 transfer line + 2 memory


def test_report_needs_a_client(monkeypatch, tmp_path):
    import runtime.client

    monkeypatch.setattr(runtime.client, "default_client", lambda: None)
    with pytest.raises(RuntimeError, match="needs a client"):
        with performance_report(filename=str(tmp_path / "x.html")):
            pass
    with pytest.raises(TypeError, match="filename"):
        performance_report(filename=3)


def test_render_report_of_nothing_and_of_many():
    empty = {"title": "t <&>", "t0": 100.0, "t1": 101.0, "elapsed": 1.0, "events": [], "dropped": 0,
             "prefixes": {}, "transfer_bytes": 0, "transfers": [], "memory": [], "workers": {},
             "scheduler": "tcp://127.0.0.1:1", "failed": True}
    html = render_report(empty)
    assert "No task finished" in html and "t &lt;&amp;&gt;" in html and "the block raised" in html
    many = dict(empty, events=[["tcp://w:1", i % 4, 100 + i * 1e-5, 100 + i * 1e-5 + 1e-6, "inc", f"k{i}"]
                               for i in range(50_000)],
                prefixes={"inc": {"done": 50_000, "seconds": 0.05, "nbytes": 0}})
    html = render_report(many)
    assert html.count("<rect x=") <= 10_000 and "1 in 5 tasks drawn" in html
    assert len(html) < 3_000_000
