"""The dashboard page in a real headless Chromium (Debian's ``chromium``, driven from its command
line): the page loads, shows the workers, and the task stream fills while a graph runs. A
screenshot is saved to ``test-artifacts/dashboard.png``; with ``LAZYARR_UPDATE_DOCS_SCREENSHOT=1``
(or when it is missing) it is also copied to ``docs/images/dashboard.png``.

Set-up: the ``chromium`` session fixture installs the browser with ``apt-get install -y chromium``
when it is missing, running as root, and ``CI=true`` or ``LAZYARR_INSTALL_BROWSER=1``; otherwise
the tests are skipped with the reason.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from runtime import Client, LocalCluster

pytestmark = pytest.mark.timeout(240)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
DOCS_IMAGE = os.path.join(ROOT, "docs", "images", "dashboard.png")


def _find_browser() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium, installing Debian's package if allowed."""
    path = _find_browser()
    if path is None:
        allowed = os.environ.get("CI", "").lower() == "true" or os.environ.get("LAZYARR_INSTALL_BROWSER") == "1"
        if not allowed:
            pytest.skip("chromium is not installed (set LAZYARR_INSTALL_BROWSER=1 or CI=true, as root, "
                        "to let the tests run 'apt-get install -y chromium')")
        if os.geteuid() != 0:
            pytest.skip("chromium is not installed and installing it needs root (apt-get install -y chromium)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True,
                              env=env, timeout=600)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=300)
            done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True,
                                  env=env, timeout=600)
        path = _find_browser()
        if path is None:
            pytest.skip(f"could not install chromium: {done.stderr[-500:]}")
    return path


def _run_browser(browser: str, url: str, *args: str, budget_ms: int = 6000) -> str:
    """Run headless Chromium on ``url`` with extra ``args``; its stdout (the DOM with --dump-dom)."""
    with tempfile.TemporaryDirectory(prefix="lazyarr-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
               f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def slow_task(i):
    time.sleep(0.01)
    return i


def _start_graph(client: Client, n: int, seed: int = 0) -> tuple:
    load, combine = f"load-6e5d4c3b2a{seed:02d}", f"combine-1a2b3c4d5e{seed:02d}"
    dsk = {(load, i): (slow_task, i) for i in range(n)}
    for j in range(n // 10):
        dsk[(combine, j)] = (sum, [(load, i) for i in range(j * 10, j * 10 + 10)])
    dsk[f"total-{seed}"] = (sum, [(combine, j) for j in range(n // 10)])
    result: list = []
    runner = threading.Thread(target=lambda: result.append(client.get(dsk, f"total-{seed}")), name="browser-graph")
    runner.start()
    return runner, result


def test_dashboard_page_in_chromium(chromium):
    with LocalCluster(n_workers=2, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0") as cl:
        with Client(cl, set_as_default=False) as c:
            runner, result = _start_graph(c, 1200)  # about 3 s of work on 4 threads
            try:
                deadline = time.monotonic() + 30
                while c.scheduler_info()["tasks"] == 0:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
                time.sleep(0.3)  # some tasks done already
                assert runner.is_alive(), "the graph finished before the browser looked"
                dom = _run_browser(chromium, c.dashboard_link, "--dump-dom")
            finally:
                runner.join(60)
            assert result, "the graph did not finish"
            dom = dom.split("<script>")[0]  # the page's own code quotes the patterns below

            rows = re.findall(r'<tr class="worker-row" data-address="([^"]+)"', dom)
            assert sorted(rows) == sorted(c.scheduler_info()["workers"]), dom[:2000]
            assert re.search(r'id="workers" data-count="2"', dom)
            canvas = re.search(r'<canvas id="task-stream" data-drawn="(\d+)" data-events="(\d+)" data-rows="(\d+)"', dom)
            assert canvas, dom[:3000]
            drawn, events, nrows = map(int, canvas.groups())
            assert events > 0 and drawn > 0, canvas.group(0)
            assert nrows >= 2  # several worker threads
            assert 'data-prefix="load"' in dom  # progress bars per prefix
            assert re.search(r'id="status">live<', dom)

            # the screenshot, while a second graph runs (bars part-way, a full stream)
            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, "dashboard.png")
            if os.path.exists(shot):
                os.remove(shot)
            runner, result = _start_graph(c, 2000, seed=1)
            try:
                time.sleep(1.5)
                _run_browser(chromium, c.dashboard_link, f"--screenshot={shot}", "--window-size=1280,700",
                             "--hide-scrollbars", budget_ms=3000)
            finally:
                runner.join(60)
            assert result, "the second graph did not finish"
            assert os.path.getsize(shot) > 10_000
            with open(shot, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
            if os.environ.get("LAZYARR_UPDATE_DOCS_SCREENSHOT") == "1" or not os.path.exists(DOCS_IMAGE):
                os.makedirs(os.path.dirname(DOCS_IMAGE), exist_ok=True)
                shutil.copyfile(shot, DOCS_IMAGE)
