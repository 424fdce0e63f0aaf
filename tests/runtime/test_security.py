"""CURVE security: keys on disk, authorized clients and workers only, the loopback rule.

Everything listens on 127.0.0.1; the non-loopback refusal is checked without ever binding.
"""
from __future__ import annotations

import logging
import os
import stat
import time

import pytest
import zmq

from runtime import protocol
from runtime.errors import AuthenticationError, InsecureListenError, SecurityError
from runtime.security import Security, check_listen, generate_keys, is_loopback, keys_main, write_keypair

pytestmark = pytest.mark.timeout(90)


def inc(x):
    return x + 1


@pytest.fixture
def keys(tmp_path):
    """A key directory (server, worker, client), a rogue keypair in it that is not authorized,
    and another cluster's directory."""
    d = str(tmp_path / "keys")
    generate_keys(d, ["worker", "client"])
    write_keypair(d, "rogue")
    other = str(tmp_path / "other")
    generate_keys(other, ["client"])
    return d, other


@pytest.fixture
def secure_cluster(keys):
    """An in-process scheduler and one worker thread, both requiring CURVE."""
    from runtime import Scheduler, Worker

    d, _ = keys
    with Scheduler(security=Security.from_directory(d)) as s, \
            Worker(s.address_to_workers, nthreads=1, security=Security.from_directory(d, "worker")) as w:
        deadline = time.monotonic() + 20
        while not s.sync(lambda st: len(st.workers)):
            assert time.monotonic() < deadline, "the secure worker did not register"
            time.sleep(0.02)
        yield s, w


def test_keys_command_writes_private_files(tmp_path, capsys):
    d = str(tmp_path / "k")
    assert keys_main([d]) == 0
    out = capsys.readouterr().out
    assert "server.key_secret" in out and "client.key_secret" in out
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    for name in ("server", "worker", "client"):
        assert stat.S_IMODE(os.stat(os.path.join(d, name + ".key_secret")).st_mode) == 0o600
    assert sorted(os.listdir(os.path.join(d, "authorized_keys"))) == ["client.key", "worker.key"]
    sec = Security.from_directory(d, "worker")
    assert sec.server_secret and sec.client_secret and sec.authorized_keys
    # a second run adds a keypair without touching the cluster's
    server = open(os.path.join(d, "server.key_secret")).read()
    assert keys_main([d, "alice"]) == 0
    assert open(os.path.join(d, "server.key_secret")).read() == server
    assert keys_main([d, "alice"]) == 1  # exists already
    assert "exists already" in capsys.readouterr().err


def test_bad_key_files_are_named(tmp_path, keys):
    d, _ = keys
    with pytest.raises(SecurityError, match="nope.key"):
        Security(str(tmp_path / "nope.key"))
    with pytest.raises(SecurityError, match="no secret key"):
        Security(os.path.join(d, "server.key"), os.path.join(d, "client.key"))
    with pytest.raises(SecurityError, match="does not exist"):
        Security.from_directory(str(tmp_path / "missing"))
    from runtime import Scheduler, Worker

    public_only = Security(os.path.join(d, "server.key"), authorized_keys=os.path.join(d, "authorized_keys"))
    with pytest.raises(SecurityError, match="secret key"):
        Scheduler(security=public_only)
    with pytest.raises(SecurityError, match="its own keypair"):
        Worker("tcp://127.0.0.1:1", security=Security(os.path.join(d, "server.key_secret"),
                                                      authorized_keys=os.path.join(d, "authorized_keys")))


def test_authorized_client_works(secure_cluster, keys):
    from runtime import Client

    s, _ = secure_cluster
    with Client(s.address_to_clients, security=Security.from_directory(keys[0]), timeout=20) as c:
        assert c.submit(inc, 1).result(timeout=20) == 2
        assert c.gather(c.map(inc, range(20))) == list(range(1, 21))


@pytest.mark.parametrize("who", ["no keys", "unauthorized key", "other cluster"])
def test_refused_client_learns_nothing(secure_cluster, keys, who, caplog):
    from runtime import Client

    d, other = keys
    s, _ = secure_cluster
    security = {"no keys": None,
                "unauthorized key": Security(os.path.join(d, "server.key"), os.path.join(d, "rogue.key_secret")),
                "other cluster": Security.from_directory(other)}[who]
    caplog.set_level(logging.WARNING, logger="runtime.security")
    start = time.monotonic()
    with pytest.raises((AuthenticationError, TimeoutError)) as info:
        Client(s.address_to_clients, security=security, timeout=5)
    assert time.monotonic() - start < 6
    assert s.address_to_clients in str(info.value)
    assert "security" in str(info.value).lower() or "key" in str(info.value).lower()
    # the scheduler logs the refusal (unauthorized keys with the key, the others as handshake failures)
    assert any("refused a connection" in r.getMessage() for r in caplog.records)
    assert s.sync(lambda st: st.scheduler_info()["clients"]) == 0


def test_raw_peer_without_keys_gets_nothing(secure_cluster):
    """A plain DEALER sends well-formed requests to every port: no byte comes back, nothing changes."""
    s, w = secure_cluster
    s.sync(lambda st: None)
    ctx = zmq.Context()
    try:
        socks = []
        for address, ops in [(s.address_to_clients, [{"op": "hello"}, {"op": "list-collections", "rid": 1}]),
                             (s.address_to_workers, [{"op": "register", "address": "tcp://127.0.0.1:9"}]),
                             (w.address, [{"op": "get-data", "rid": 1, "keys": ["x"]}])]:
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(address)
            sock.send_multipart(protocol.encode(ops))
            socks.append(sock)
        time.sleep(1.0)
        for sock in socks:
            assert not sock.poll(100), "an unauthenticated peer got an answer"
        info = s.sync(lambda st: st.scheduler_info())
        assert info["clients"] == 0 and len(info["workers"]) == 1
    finally:
        for sock in socks:
            sock.close(0)
        ctx.term()


def test_worker_without_key_cannot_join(secure_cluster, keys):
    from runtime import Worker

    d, _ = keys
    s, _ = secure_cluster
    rogue = Security(os.path.join(d, "server.key_secret"), os.path.join(d, "rogue.key_secret"),
                     os.path.join(d, "authorized_keys"))
    with Worker(s.address_to_workers, nthreads=1) as plain, \
            Worker(s.address_to_workers, nthreads=1, security=rogue) as unauthorized:
        time.sleep(1.5)
        assert not plain.registered and not unauthorized.registered
        known = s.sync(lambda st: set(st.workers))
        assert len(known) == 1 and not known & {plain.address, unauthorized.address}


def test_local_cluster_with_worker_processes(keys):
    """The keys reach worker processes through their command line."""
    from runtime import Client, LocalCluster

    d, _ = keys
    with LocalCluster(n_workers=1, threads_per_worker=1, memory_limit=0,
                      security=Security.from_directory(d, "worker")) as cluster, \
            Client(cluster, security=Security.from_directory(d, "client"), timeout=20) as c:
        assert c.submit(inc, 41).result(timeout=20) == 42
        with Client(cluster, timeout=20) as own:  # the cluster's own keys by default
            assert own.submit(inc, 1).result(timeout=20) == 2


def test_non_loopback_needs_security_or_insecure(caplog):
    from runtime import Scheduler, Worker

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("*")
    with pytest.raises(InsecureListenError, match="refuses to listen on 0.0.0.0 without encryption.*--insecure"):
        Scheduler(hostname="0.0.0.0")
    with pytest.raises(InsecureListenError, match="lazyarr-keys"):
        Worker("tcp://127.0.0.1:1", hostname="0.0.0.0")
    # the dashboard has no authentication: off loopback it needs insecure=True even with CURVE keys
    with pytest.raises(InsecureListenError, match="dashboard has no authentication"):
        Scheduler(dashboard_address="0.0.0.0:0")
    # insecure=True lets it through with a loud warning (checked without binding anything)
    caplog.set_level(logging.WARNING, logger="runtime.security")
    check_listen("0.0.0.0", None, True, "the scheduler")
    assert any("INSECURE" in r.getMessage() for r in caplog.records)


def test_cli_refuses_non_loopback_without_security(cli):
    done = cli.run(["scheduler", "--host", "0.0.0.0"])
    assert done.returncode == 1
    assert "refuses to listen on 0.0.0.0 without encryption" in done.stderr
    assert "--insecure" in done.stderr and "--security-dir" in done.stderr
    done = cli.run(["worker", "tcp://127.0.0.1:1", "--host", "0.0.0.0"])
    assert done.returncode == 1
    assert "refuses to listen on 0.0.0.0" in done.stderr


def test_cli_cluster_with_security_dir(cli, keys):
    from runtime import Client

    d, _ = keys
    scheduler = cli.start(["scheduler", "--security-dir", d], ["workers", "clients"])
    try:
        worker = cli.start(["worker", scheduler.addresses["workers"], "--nthreads", "1", "--memory-limit", "0",
                            "--security-dir", d], ["address"])
        try:
            with Client(scheduler.addresses["clients"], security=Security.from_directory(d), timeout=20) as c:
                cli.wait_for_workers(c, 1)
                assert c.submit(inc, 1).result(timeout=20) == 2
            with pytest.raises(AuthenticationError):
                Client(scheduler.addresses["clients"], timeout=5)
        finally:
            cli.stop(worker)
    finally:
        cli.stop(scheduler)


def test_peer_transfers_between_secure_workers(secure_cluster, keys):
    """Workers fetch each other's data over their CURVE peer ports."""
    from operator import add

    from runtime import Client, Worker

    d, _ = keys
    s, w1 = secure_cluster
    with Worker(s.address_to_workers, nthreads=1, name="second", security=Security.from_directory(d, "worker")) as w2, \
            Client(s.address_to_clients, security=Security.from_directory(d), timeout=20) as c:
        deadline = time.monotonic() + 20
        while len(s.sync(lambda st: st.workers)) < 2:
            assert time.monotonic() < deadline, "the second secure worker did not register"
            time.sleep(0.02)
        x = c.submit(inc, 1, workers=[w1.address])
        y = c.submit(inc, 2, workers=[w2.address])
        assert c.submit(add, x, y, workers=[w2.address]).result(timeout=20) == 5
        assert c.submit(add, y, x, workers=[w1.address]).result(timeout=20) == 5


def test_with_curve_garbage_never_reaches_the_decoder(secure_cluster):
    """With security on, not one message of an unauthenticated peer is decoded: random frames from
    plain DEALERs and raw TCP bytes (including what would pass for ZMTP 1.0) all die in libzmq."""
    import random

    from test_fuzz import flood_tcp, flood_zmq

    s, w = secure_cluster
    rng = random.Random(7)
    ctx = zmq.Context()
    try:
        for address in (s.address_to_workers, s.address_to_clients, w.address):
            flood_zmq(ctx, address, rng, 1000, deliver=False)  # nothing can be delivered
            flood_tcp(address, rng, 50)
    finally:
        ctx.term()
    assert s.messages_dropped == 0
    info = s.sync(lambda st: st.scheduler_info())
    assert info["clients"] == 0 and len(info["workers"]) == 1 and info["tasks"] == 0
