"""A cluster spread over separate network namespaces: one "host" each for the scheduler, two
workers and the client, on a private bridge (10.77.0.0/24) that exists only inside the test's own
namespaces, with 5 ms of netem delay on every host's link where the kernel has netem.

A graph runs correctly across the hosts; then one worker's link is cut (``ip link set down``)
in the middle of a second graph, which still completes on the other worker. Needs root and
``ip netns`` (iproute2); skipped with the reason elsewhere. The namespaces, and with them every
interface and address, are deleted in a ``finally``; nothing is configured in the namespace the
test runs in.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
import warnings

import pytest

pytestmark = pytest.mark.timeout(120)

SUBNET = "10.77.0"
HOSTS = {"sch": 1, "w0": 2, "w1": 3, "cli": 10}
#: Faster failure detection than the defaults (10 s, 30 s): a cut link is noticed in seconds.
ENV = {"LAZYARR_RUNTIME__WORKER_TIMEOUT": "3", "LAZYARR_RUNTIME__FETCH_TIMEOUT": "3"}

DRIVER = r'''
import sys, time
from operator import add
from runtime import Client, as_completed

def slow_inc(x):
    time.sleep(0.03)
    return x + 1

def tree(c, futures):
    while len(futures) > 1:
        futures = [c.submit(add, *futures[i:i + 2]) if i + 1 < len(futures) else futures[i]
                   for i in range(0, len(futures), 2)]
    return futures[0]

c = Client(sys.argv[1], timeout=30)
deadline = time.monotonic() + 30
while len(c.scheduler_info()["workers"]) < 2:
    assert time.monotonic() < deadline, "workers did not register"
    time.sleep(0.05)
# 1: intermediates on both hosts, summed across them (peer transfers over the delayed links)
xs = c.map(slow_inc, range(60))
c.gather(xs)
held = sorted(w["in_memory"] for w in c.scheduler_info()["workers"].values())
print("PHASE1", tree(c, xs).result(timeout=60), *held, flush=True)
# 2: a worker's link is cut in the middle
xs = c.map(slow_inc, range(100, 220))
total = tree(c, xs)
for i, _ in enumerate(as_completed(xs)):
    if i == 30:
        break
print("CUT", flush=True)
sys.stdin.readline()
print("PHASE2", total.result(timeout=90), flush=True)
c.close()
'''


def _run(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=20)


def _unavailable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"lzr{os.getpid()}-probe"
    result = _run("ip", "netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"'ip netns add' does not work here: {result.stderr.strip()}"
    try:
        bridge = _run("ip", "-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"cannot create a bridge in a namespace: {bridge.stderr.strip()}"
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return None


class Hosts:
    """Namespaces ``<tag>-br`` (the bridge) and one per host, joined by veth pairs."""

    def __init__(self, tag: str):
        self.ns = {name: f"{tag}-{name}" for name in ("br", *HOSTS)}
        self.netem = None

    def address(self, host: str) -> str:
        return f"{SUBNET}.{HOSTS[host]}"

    def exec_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns[host]]

    def create(self) -> None:
        for ns in self.ns.values():
            _run("ip", "netns", "add", ns)
        br = self.ns["br"]
        _run("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", br, "link", "set", "br0", "up")
        for host in HOSTS:
            ns = self.ns[host]
            # Created inside the bridge's namespace, the other end moved straight into the host's:
            # no interface ever appears in the namespace the test runs in.
            _run("ip", "-n", br, "link", "add", f"v-{host}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", br, "link", "set", f"v-{host}", "master", "br0")
            _run("ip", "-n", br, "link", "set", f"v-{host}", "up")
            _run("ip", "-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            delay = _run("tc", "-n", ns, "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "5ms", check=False)
            if delay.returncode != 0:
                self.netem = delay.stderr.strip() or f"tc exited with {delay.returncode}"
        if self.netem:
            warnings.warn(f"netem is not available in this kernel ({self.netem}): the hosts' links run "
                          f"without the 5 ms delay")

    def cut(self, host: str) -> None:
        _run("ip", "-n", self.ns[host], "link", "set", "eth0", "down")

    def delete(self) -> None:
        for ns in self.ns.values():
            _run("ip", "netns", "del", ns, check=False)


class Output:
    """Lines a process prints, read without buffering (select on the raw pipe)."""

    def __init__(self, proc):
        self.proc = proc
        self.seen: list = []
        self._lines: list = []
        self._pending = b""

    def wait_for(self, prefix: str, timeout: float) -> str:
        """The next line starting with ``prefix``; fails with everything printed so far."""
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while self._lines:
                line = self._lines.pop(0)
                self.seen.append(line)
                if line.startswith(prefix):
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {prefix!r} line within {timeout} s:\n" + "\n".join(self.seen))
            if select.select([fd], [], [], min(remaining, 1.0))[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"exited ({self.proc.wait()}) before {prefix!r}:\n" + "\n".join(self.seen))
                *done, self._pending = (self._pending + chunk).split(b"\n")
                self._lines.extend(d.decode(errors="replace") for d in done)


def test_cluster_across_namespaces_survives_a_cut_link(cli, tmp_path):
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    hosts = Hosts(f"lzr{os.getpid() % 100000}")
    commands = []
    driver = None
    try:
        hosts.create()
        scheduler = cli.start(["scheduler", "--host", hosts.address("sch"), "--insecure",
                               "--dashboard-address", "none"], ["workers", "clients"],
                              env=ENV, prefix=hosts.exec_prefix("sch"), with_logs=True)
        commands.append(scheduler)
        for host in ("w0", "w1"):
            commands.append(cli.start(["worker", scheduler.addresses["workers"], "--host", hosts.address(host),
                                       "--insecure", "--no-nanny", "--nthreads", "1", "--name", host,
                                       "--memory-limit", "1GB"], ["address"],
                                      env=ENV, prefix=hosts.exec_prefix(host), with_logs=True))
        script = tmp_path / "driver.py"
        script.write_text(DRIVER)
        driver = subprocess.Popen([*hosts.exec_prefix("cli"), sys.executable, str(script),
                                   scheduler.addresses["clients"]],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  env={**cli.env(), **ENV}, cwd=cli.root, bufsize=0)
        out = Output(driver)
        phase1 = out.wait_for("PHASE1", 60).split()
        assert phase1[1] == str(sum(range(1, 61))), phase1
        assert all(int(n) > 0 for n in phase1[2:]) and len(phase1) == 4, f"one host did all the work: {phase1}"
        out.wait_for("CUT", 60)
        hosts.cut("w1")
        driver.stdin.write(b"go\n")
        driver.stdin.flush()
        phase2 = out.wait_for("PHASE2", 90).split()
        assert phase2[1] == str(sum(range(101, 221))), phase2
        w1 = commands[2].addresses["address"]
        assert any(w1 in line and "left" in line for line in scheduler.output), \
            "the scheduler never dropped the cut-off worker:\n" + "\n".join(scheduler.output)
        assert driver.wait(30) == 0, "\n".join(out.seen)
    finally:
        if driver is not None:
            if driver.poll() is None:
                driver.kill()
            driver.wait()
            for pipe in (driver.stdin, driver.stdout):
                pipe.close()
        for command in reversed(commands):
            cli.stop(command)
        hosts.delete()
