"""The nanny: restarts, exit reasons, memory kills, graceful restart, no orphans."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from runtime.memory import MemoryPolicy
from runtime.nanny import Nanny

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
MB = 2**20


def wait_for(condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class Recorder:
    """Collects events from the nanny's thread."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind: str) -> list[dict]:
        with self._lock:
            return [e for e in self.events if e["event"] == kind]


def test_sigkill_is_reported_and_worker_restarted():
    events = Recorder()
    with Nanny(SLEEPER, on_event=events, backoff=0.1, name="k9") as nanny:
        first = nanny.pid
        assert first is not None and psutil.Process(first).is_running()
        assert events.of("worker-started")[0]["pid"] == first
        wait_for(lambda: nanny.rss, what="a memory reading")
        os.kill(first, signal.SIGKILL)
        died = wait_for(lambda: events.of("worker-died"), what="the death event")[0]
        assert died["pid"] == first and died["signal"] == "SIGKILL" and died["exitcode"] is None
        assert "SIGKILL" in died["reason"] and "out-of-memory" not in died["reason"]
        assert died["restarting"] and died["name"] == "k9"
        assert died["rss"] is not None and died["rss"] > 0
        second = wait_for(lambda: nanny.pid not in (None, first) and nanny.pid, what="a restart")
        assert psutil.Process(second).is_running() and gone(first)
        assert nanny.restarts == 1 and nanny.status == "running"
        assert events.of("worker-started")[-1]["pid"] == second


def test_exit_code_is_named_and_restarts_are_bounded():
    events = Recorder()
    with Nanny([sys.executable, "-c", "import sys; sys.exit(3)"], on_event=events, max_restarts=2,
               backoff=0.1) as nanny:
        assert nanny.wait(20), "the nanny should give up after 2 restarts"
        died = events.of("worker-died")
        assert len(died) == 3 and nanny.restarts == 2
        assert all(e["exitcode"] == 3 and e["signal"] is None and e["reason"] == "exited with code 3" for e in died)
        assert [e["restarting"] for e in died] == [True, True, False]
        (gave_up,) = events.of("nanny-gave-up")
        assert "max_restarts=2" in gave_up["reason"] and "exited with code 3" in gave_up["reason"]
        assert nanny.status == "stopped" and nanny.pid is None
        # Backoff: each restart waits twice as long as the one before.
        starts = [e["time"] for e in events.of("worker-started")]
        deaths = [e["time"] for e in died]
        delays = [starts[i + 1] - deaths[i] for i in range(2)]
        assert delays[0] >= 0.09 and delays[1] >= 0.19


def test_no_restart_when_disabled():
    events = Recorder()
    with Nanny([sys.executable, "-c", "import os; os.abort()"], on_event=events, restart=False) as nanny:
        assert nanny.wait(15)
        (died,) = events.of("worker-died")
        assert died["signal"] == "SIGABRT" and died["reason"] == "killed by SIGABRT" and not died["restarting"]
        assert "restart=False" in events.of("nanny-gave-up")[0]["reason"]


def test_clean_exit_is_not_restarted():
    events = Recorder()
    with Nanny([sys.executable, "-c", "pass"], on_event=events, backoff=0.1) as nanny:
        assert nanny.wait(15)
        (exited,) = events.of("worker-exited")
        assert exited["exitcode"] == 0 and "exit code 0" in exited["reason"]
        assert events.of("worker-died") == [] and nanny.restarts == 0 and nanny.status == "stopped"


def test_memory_limit_terminates_worker():
    events = Recorder()
    hog = [sys.executable, "-c",
           "import numpy as np, time; a = np.ones(400 * 2**20 // 8); time.sleep(60)"]
    with Nanny(hog, memory_limit=200 * MB, restart=False, on_event=events) as nanny:
        assert nanny.wait(30), "the nanny should have killed the worker"
        (died,) = events.of("worker-died")
        assert died["reason"].startswith("out of memory (terminated by nanny at ")
        assert "of limit 200.00 MiB" in died["reason"]
        assert died["rss"] > 0.95 * 200 * MB and died["memory_limit"] == 200 * MB
        assert died["signal"] in ("SIGTERM", "SIGKILL")
        assert gone(died["pid"])


def test_sigkill_near_the_limit_is_blamed_on_the_oom_killer():
    events = Recorder()
    hog = [sys.executable, "-c",
           "import numpy as np, sys, time; a = np.ones(360 * 2**20 // 8); print('ready', flush=True); time.sleep(60)"]
    limit = 400 * MB
    # terminate=False: the nanny itself never kills, as if the kernel got there first.
    with Nanny(hog, memory_limit=limit, policy=MemoryPolicy(limit, terminate=False), restart=False,
               on_event=events, stdout=subprocess.DEVNULL) as nanny:
        pid = nanny.pid
        wait_for(lambda: (nanny.rss or 0) >= 0.87 * limit, what="the hog's memory")
        os.kill(pid, signal.SIGKILL)
        assert nanny.wait(15)
        (died,) = events.of("worker-died")
        assert died["signal"] == "SIGKILL" and "out-of-memory killer" in died["reason"]


def test_restart_gives_a_new_pid():
    events = Recorder()
    with Nanny(SLEEPER, on_event=events) as nanny:
        first = nanny.pid
        second = nanny.restart(timeout=5)
        assert second == nanny.pid and second != first
        assert gone(first) and psutil.Process(second).is_running()
        (stopped,) = events.of("worker-stopped")
        assert stopped["pid"] == first and "restart" in stopped["reason"] and stopped["signal"] == "SIGTERM"
        assert events.of("worker-died") == [] and nanny.restarts == 0


def test_restart_escalates_to_sigkill(tmp_path):
    ready = tmp_path / "ready"
    stubborn = [sys.executable, "-c",
                "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "open(sys.argv[1], 'w').close(); time.sleep(60)", str(ready)]
    events = Recorder()
    nanny = Nanny(stubborn, on_event=events)
    try:
        first = nanny.pid
        wait_for(ready.exists, what="the child to ignore SIGTERM")
        start = time.monotonic()
        second = nanny.restart(timeout=0.5)
        assert time.monotonic() - start < 10 and second != first and gone(first)
        (stopped,) = events.of("worker-stopped")
        assert stopped["pid"] == first and stopped["signal"] == "SIGKILL"
        ready.unlink()
        wait_for(ready.exists, what="the new child to start")
    finally:
        start = time.monotonic()
        nanny.close(timeout=0.5)
    assert time.monotonic() - start < 5 and gone(second)
    (_, stopped) = events.of("worker-stopped")
    assert stopped["pid"] == second and stopped["signal"] == "SIGKILL" and "close" in stopped["reason"]


def test_restart_revives_a_nanny_that_gave_up():
    events = Recorder()
    with Nanny([sys.executable, "-c", "import sys; sys.exit(5)"], restart=False, on_event=events) as nanny:
        assert nanny.wait(15) and nanny.pid is None and len(events.of("nanny-gave-up")) == 1
        first = events.of("worker-started")[0]["pid"]
        second = nanny.restart()
        assert second != first
        wait_for(lambda: len(events.of("nanny-gave-up")) == 2, what="the revived worker to exit again")
        assert [e["pid"] for e in events.of("worker-died")] == [first, second]
        assert nanny.wait(5) and nanny.status == "stopped"


def test_close_leaves_no_child_and_no_thread():
    threads_before = set(threading.enumerate())
    nanny = Nanny(SLEEPER)
    pid = nanny.pid
    assert psutil.Process(pid).ppid() == os.getpid()
    nanny.close(timeout=5)
    nanny.close()                               # idempotent
    assert gone(pid) and nanny.pid is None and nanny.status == "closed"
    assert not [c for c in psutil.Process().children(recursive=True) if c.pid == pid]
    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(RuntimeError, match="closed"):
        nanny.restart()


def test_callable_command_is_called_for_each_start():
    calls = []

    def command() -> list[str]:
        calls.append(len(calls))
        return [sys.executable, "-c", f"import time; time.sleep(60)  # start {len(calls)}"]

    with Nanny(command, backoff=0.1) as nanny:
        first = nanny.pid
        assert psutil.Process(first).cmdline()[-1].endswith("# start 1")
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: nanny.pid not in (None, first) and nanny.pid, what="a restart")
        assert psutil.Process(second).cmdline()[-1].endswith("# start 2")
    assert calls == [0, 1]


def test_a_failing_callback_does_not_stop_the_nanny(caplog):
    def broken(event: dict) -> None:
        raise RuntimeError("callback bug")

    with Nanny(SLEEPER, on_event=broken, backoff=0.1) as nanny:
        first = nanny.pid
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: nanny.pid not in (None, first), what="a restart")
    assert "on_event callback failed" in caplog.text


def test_close_from_callback_is_refused():
    errors = []
    holder: dict = {}

    def on_event(event: dict) -> None:
        if event["event"] == "worker-died":
            try:
                holder["nanny"].close()
            except RuntimeError as e:
                errors.append(str(e))

    with Nanny(SLEEPER, on_event=on_event, restart=False) as nanny:
        holder["nanny"] = nanny
        os.kill(nanny.pid, signal.SIGKILL)
        assert nanny.wait(15)
    assert errors and "own thread" in errors[0]


def test_bad_commands():
    with pytest.raises(OSError, match="cannot start the worker command"):
        Nanny(["/no/such/worker-binary"])
    for bad in ([], "python -m runtime.cli worker", [sys.executable, 3], None):
        with pytest.raises(TypeError, match="worker command"):
            Nanny(bad)
    with pytest.raises(ValueError, match="max_restarts"):
        Nanny(SLEEPER, max_restarts=-1)
    with pytest.raises(ValueError, match="memory limit"):
        Nanny(SLEEPER, memory_limit="lots")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_worker_dies_with_a_killed_nanny():
    """SIGKILL the nanny's process: its worker must not survive it."""
    script = (
        "import sys, time\n"
        "from runtime.nanny import Nanny\n"
        f"n = Nanny({SLEEPER!r})\n"
        "print(n.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    host = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert select.select([host.stdout], [], [], 20)[0], "the nanny process did not start its worker"
        worker = int(host.stdout.readline())
        assert psutil.Process(worker).ppid() == host.pid
        host.kill()
        host.wait(10)
        wait_for(lambda: gone(worker), timeout=10, what="the orphaned worker to die")
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        host.stdout.close()
