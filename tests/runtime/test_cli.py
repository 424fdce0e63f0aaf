"""The command line: ``lazyarr-scheduler`` and ``lazyarr-worker`` as real processes on 127.0.0.1."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from operator import add

import psutil
import pytest

from lazyarr import delayed
from runtime import Client
from runtime.cli import normalize_address, parse_memory_limit

pytestmark = pytest.mark.timeout(60)


def slow_inc(x: int, delay: float = 0.05) -> int:
    time.sleep(delay)
    return x + 1


def worker_pid(_: object = None) -> int:
    return os.getpid()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------
# A cluster started by the CLI (the module's shared fixture)


def test_cli_cluster_computes_a_graph(cli_cluster):
    with Client(cli_cluster.address_to_clients, timeout=10) as c:
        assert c.get({"x": 1, "y": (add, "x", 2)}, "y") == 3
        assert c.get({"a": 10, "b": (add, "a", "a"), "c": (sum, ["a", "b"])}, ["c", ["b"]]) == (30, (20,))


def test_cli_workers_show_their_options_in_scheduler_info(cli_cluster):
    with Client(cli_cluster.address_to_clients, timeout=10) as c:
        workers = c.scheduler_info()["workers"]
    assert sorted(info["name"] for info in workers.values()) == ["cli-0", "cli-1"]
    assert all(info["nthreads"] == 1 for info in workers.values())
    assert all(info["memory_limit"] == 10**9 for info in workers.values())
    printed = {w.addresses["address"] for w in cli_cluster.workers}
    assert set(workers) == printed


def process_tree(pid: int) -> set[int]:
    """``pid`` and its descendants (a worker command runs its worker itself or under a nanny)."""
    return {pid} | {p.pid for p in psutil.Process(pid).children(recursive=True)}


def test_tasks_run_in_the_worker_processes(cli_cluster):
    with Client(cli_cluster.address_to_clients, timeout=10) as c:
        seen = [c.submit(worker_pid, name, workers=[name], pure=False).result() for name in ("cli-0", "cli-1")]
    assert seen[0] != seen[1]
    for command, pid in zip(cli_cluster.workers, seen):
        assert pid in process_tree(command.proc.pid)


# ----------------------------------------------------------------------------------------------
# Each command on its own


def test_scheduler_prints_both_addresses_and_fixed_ports(cli):
    pw, pc = free_port(), free_port()
    sched = cli.start(["scheduler", "--port-to-workers", str(pw), "--port-to-clients", str(pc)],
                          ["workers", "clients"])
    try:
        assert sched.addresses == {"workers": f"tcp://127.0.0.1:{pw}", "clients": f"tcp://127.0.0.1:{pc}"}
        with Client(sched.addresses["clients"], timeout=10) as c:
            assert c.scheduler_info()["workers"] == {}
    finally:
        assert cli.stop(sched) == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly_and_log_joins_and_leaves(cli, sig):
    sched = cli.start(["scheduler"], ["workers", "clients"], with_logs=True)
    worker = None
    try:
        worker = cli.start(["worker", sched.addresses["workers"], "--nthreads", "1", "--name", "solo"],
                               ["address"], with_logs=True)
        with Client(sched.addresses["clients"], timeout=10) as c:
            cli.wait_for_workers(c, 1)
            assert c.submit(add, 1, 2).result() == 3
            start = time.monotonic()
            assert cli.stop(worker, sig) == 0
            assert time.monotonic() - start < 5
            deadline = time.monotonic() + 10
            while c.scheduler_info()["workers"]:
                assert time.monotonic() < deadline, "the scheduler still lists a worker that left"
                time.sleep(0.02)
    finally:
        if worker is not None:
            cli.stop(worker)
        assert cli.stop(sched, sig) == 0
    log = "\n".join(sched.output)
    address = worker.addresses["address"]
    assert f"worker {address} joined" in log
    assert f"worker {address} left" in log
    assert any("shutting down" in line for line in worker.output)


def test_nworkers_starts_owned_children_and_stops_them(cli):
    sched = cli.start(["scheduler"], ["workers", "clients"])
    group = None
    try:
        group = cli.start(["worker", sched.addresses["workers"], "--nworkers", "2", "--nthreads", "1",
                               "--name", "grp", "--memory-limit", "256MiB"], ["address"])
        with Client(sched.addresses["clients"], timeout=10) as c:
            workers = cli.wait_for_workers(c, 2)
            assert sorted(info["name"] for info in workers.values()) == ["grp-0", "grp-1"]
            assert {info["memory_limit"] for info in workers.values()} == {256 * 2**20}
            children = psutil.Process(group.proc.pid).children()
            assert len(children) == 2
            seen = {c.submit(worker_pid, i, workers=[f"grp-{i}"], pure=False).result() for i in range(2)}
            assert seen == {p.pid for p in children}
            assert cli.stop(group) == 0
            for child in children:
                assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
            deadline = time.monotonic() + 10
            while c.scheduler_info()["workers"]:
                assert time.monotonic() < deadline
                time.sleep(0.02)
    finally:
        if group is not None:
            cli.stop(group)
        cli.stop(sched)


def test_workers_run_with_the_worker_process_environment(cli, cli_cluster, local_cluster):
    """Every worker process gets :func:`worker_process_environment` (set before it starts): from its
    nanny, from LocalCluster, or, started by hand without a nanny, by re-executing itself once."""
    from runtime.worker import worker_process_environment

    wanted = worker_process_environment({})

    def has_it(pid: int) -> bool:
        env = psutil.Process(pid).environ()
        return all(env.get(k) == v for k, v in wanted.items())

    with Client(cli_cluster.address_to_clients, timeout=10) as c:
        for name in ("cli-0", "cli-1"):
            assert has_it(c.submit(worker_pid, name, workers=[name], pure=False).result())
    for handle in local_cluster.workers.values():
        assert has_it(handle.pid)
        assert "LAZYARR_WORKER_REEXEC" not in psutil.Process(handle.pid).environ()  # started right
    bare = cli.start(["worker", cli_cluster.address_to_workers, "--no-nanny", "--nthreads", "1", "--name", "bare"],
                     ["address"])
    try:
        assert has_it(bare.proc.pid)  # the same process id: exec replaces the program, not the process
        if not all(os.environ.get(k) == v for k, v in wanted.items()):
            assert psutil.Process(bare.proc.pid).environ().get("LAZYARR_WORKER_REEXEC") == "1"
        with Client(cli_cluster.address_to_clients, timeout=10) as c:
            assert c.submit(worker_pid, workers=["bare"], pure=False).result() == bare.proc.pid
    finally:
        assert cli.stop(bare) == 0


def test_worker_started_before_the_scheduler_joins_when_it_appears(cli):
    pw = free_port()
    worker = cli.start(["worker", f"tcp://127.0.0.1:{pw}", "--nthreads", "1"], ["address"])
    sched = None
    try:
        time.sleep(0.3)
        sched = cli.start(["scheduler", "--port-to-workers", str(pw)], ["workers", "clients"])
        with Client(sched.addresses["clients"], timeout=10) as c:
            cli.wait_for_workers(c, 1)
            assert c.submit(add, 20, 22).result() == 42
    finally:
        cli.stop(worker)
        if sched is not None:
            cli.stop(sched)


def test_worker_closing_mid_graph_still_gives_the_right_answer(cli):
    sched = cli.start(["scheduler"], ["workers", "clients"])
    workers = []
    try:
        for i in range(2):
            workers.append(cli.start(["worker", sched.addresses["workers"], "--nthreads", "1",
                                          "--name", f"w{i}"], ["address"]))
        with Client(sched.addresses["clients"], timeout=10) as c:
            cli.wait_for_workers(c, 2)
            future = c.compute(delayed(sum)([delayed(slow_inc)(i) for i in range(40)]))
            deadline = time.monotonic() + 10
            while not all(i["processing"] for i in c.scheduler_info()["workers"].values()):
                assert time.monotonic() < deadline, "the graph never reached both workers"
                time.sleep(0.01)
            cli.stop(workers[1])  # mid-graph: it holds queued tasks and finished results
            assert not future.done()
            assert future.result(timeout=30) == sum(range(1, 41))
    finally:
        for w in workers:
            cli.stop(w)
        cli.stop(sched)


def test_killed_worker_is_logged_as_leaving(cli):
    """A worker that dies without saying goodbye is dropped after the worker timeout, and logged."""
    sched = cli.start(["scheduler"], ["workers", "clients"], with_logs=True,
                          env={"LAZYARR_RUNTIME__WORKER_TIMEOUT": "1"})
    worker = None
    try:
        worker = cli.start(["worker", sched.addresses["workers"], "--nthreads", "1"], ["address"])
        with Client(sched.addresses["clients"], timeout=10) as c:
            cli.wait_for_workers(c, 1)
            worker.proc.kill()
            deadline = time.monotonic() + 10
            while c.scheduler_info()["workers"]:
                assert time.monotonic() < deadline, "a killed worker was never dropped"
                time.sleep(0.05)
    finally:
        if worker is not None:
            cli.stop(worker)
        cli.stop(sched)
    address = worker.addresses["address"]
    assert any(address in line and "left" in line for line in sched.output), sched.output


# ----------------------------------------------------------------------------------------------
# Bad input: clear errors, nothing hangs


@pytest.mark.parametrize("args, message", [
    (["worker", "not-an-address"], "bad address"),
    (["worker", "udp://127.0.0.1:4444"], "only tcp://"),
    (["worker", "tcp://127.0.0.1:4444", "--nthreads", "0"], "positive integer"),
    (["worker", "tcp://127.0.0.1:4444", "--memory-limit", "lots"], "cannot parse"),
    (["worker", "tcp://127.0.0.1:4444", "--nworkers", "2", "--port-to-workers", "4000"], "--nworkers"),
    (["scheduler", "--port-to-clients", "70000"], "out of range"),
    (["scheduler", "--port-to-workers", "x"], "integer"),
])
def test_bad_arguments_are_refused_with_a_message(cli, args, message):
    result = cli.run(args)
    assert result.returncode == 2
    assert message in result.stderr


def test_taken_port_is_a_clear_error(cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = cli.run(["scheduler", "--port-to-clients", str(port)])
    assert result.returncode == 1
    assert "cannot start" in result.stderr and str(port) in result.stderr


def test_python_dash_m_runtime_without_a_command_prints_usage(cli):
    result = cli.run([])
    assert result.returncode == 2
    assert "usage: python -m runtime {scheduler,worker}" in result.stderr


def test_console_scripts_are_installed(cli):
    bindir = os.path.dirname(sys.executable)
    for name in ("lazyarr-scheduler", "lazyarr-worker"):
        path = os.path.join(bindir, name)
        if not os.path.exists(path):
            pytest.skip(f"{name} is not installed next to {sys.executable} (pip install -e . first)")
        result = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20, env=cli.env())
        assert result.returncode == 0
        assert f"usage: {name}" in result.stdout


# ----------------------------------------------------------------------------------------------
# Helpers


def test_normalize_address():
    assert normalize_address("localhost:1234") == "tcp://localhost:1234"
    assert normalize_address(" tcp://10.0.0.1:5555 ") == "tcp://10.0.0.1:5555"
    for bad in ("tcp://host", "host:0", "host:99999", ":80", "ipc://x:1"):
        with pytest.raises(ValueError):
            normalize_address(bad)
    with pytest.raises(TypeError):
        normalize_address(5555)


def test_parse_memory_limit():
    total = psutil.virtual_memory().total
    assert parse_memory_limit("auto", nthreads=1, total_nthreads=4) == total // 4
    assert parse_memory_limit("2GiB") == 2 * 2**30
    assert parse_memory_limit("1e9") == 10**9
    assert parse_memory_limit(0.5) == int(total * 0.5)
    assert parse_memory_limit(123456) == 123456
    assert parse_memory_limit(1) == 1
    assert parse_memory_limit("1") == total   # a string number up to 1 is a fraction, as '0.5'
    assert parse_memory_limit(None) is None
    assert parse_memory_limit("0") is None
    for bad in ("lots", "-5", -1):
        with pytest.raises(ValueError):
            parse_memory_limit(bad)
    with pytest.raises(TypeError):
        parse_memory_limit([1])
