"""Hostile input on every listening port: random and truncated frames, raw TCP garbage, oversize claims.

A scheduler and a worker run as separate processes (started through the CLI, as a user would);
10,000 malformed messages go to each of the scheduler's two ROUTER ports and to the worker's peer
ROUTER through raw zmq DEALER sockets, plus raw TCP connections that send bytes without the ZMTP
handshake, and hand-made ZMTP sessions whose frame headers claim absurd sizes. Afterwards a normal
computation must succeed and the scheduler's RSS must not have grown beyond a bound.
"""
from __future__ import annotations

import random
import socket
import struct
import time

import msgpack
import psutil
import pytest
import zmq

from runtime import protocol

pytestmark = pytest.mark.timeout(120)

FRAMES_PER_PORT = 10_000
RAW_TCP_PER_PORT = 150
ZMTP_CLAIMS_PER_PORT = 20
RSS_BOUND = 64 * 2**20

PREFIX = protocol.MAGIC + bytes([protocol.VERSION])
OPS = ["update-graph", "release-keys", "gather", "heartbeat", "want-keys", "scatter", "hello", "close",
       "set-collection", "get-collection", "delete-collection", "list-collections", "scheduler-info",
       "finished", "erred", "missing", "client-data", "register", "unregister", "get-data", "data",
       "compute", "free-keys", "store-data"]
FIELDS = ["keys", "tasks", "deps", "wanted", "priorities", "restrictions", "retries", "partial", "rid", "name",
          "blob", "values", "workers", "broadcast", "address", "nthreads", "nbytes", "duration", "exceptions",
          "items", "client", "metrics", "missing", "errors", "memory_limit", "who_has", "prios"]


def inc(x):
    return x + 1


def junk(rng: random.Random, depth: int = 0):
    """A random msgpack-able value (what a confused or hostile peer might put in a field)."""
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.randint(-2**63, 2**64 - 1)
    if kind == 1:
        return rng.random() * 10 ** rng.randint(-5, 300)
    if kind == 2:
        return rng.randbytes(rng.randrange(40))
    if kind == 3:
        return "".join(rng.choice("abcxyz-()'0123") for _ in range(rng.randrange(20)))
    if kind == 4:
        return None
    if kind == 5:
        return rng.choice([True, False, 0, -1, 2**31])
    if kind == 6:
        return [junk(rng, depth + 1) for _ in range(rng.randrange(6))]
    if kind == 7:
        return {junk(rng, 3) if rng.random() < 0.3 else rng.choice(FIELDS): junk(rng, depth + 1)
                for _ in range(rng.randrange(5))}
    return ("x", rng.randrange(100))


def junk_op(rng: random.Random) -> dict:
    op = {rng.choice(FIELDS): junk(rng) for _ in range(rng.randrange(6))}
    op["op"] = rng.choice(OPS) if rng.random() < 0.9 else junk(rng)
    return op


def oversize_claim(rng: random.Random) -> list:
    """A header whose msgpack lengths, or frame references, promise far more than is there."""
    choices = [
        PREFIX + b"\xdd\xff\xff\xff\xff" + rng.randbytes(8),          # array of 4 G items
        PREFIX + b"\x91\xdf\xff\xff\xff\xff",                          # [map of 4 G pairs]
        PREFIX + b"\x91\x82\xa2op\xa1x\xa1p\xc6\xff\xff\xff\xf0xyz",   # bin of 4 GB
        PREFIX + b"\x91\x82\xa2op\xa1x\xa1p\xdb\x7f\xff\xff\xffabc",   # str of 2 GB
        PREFIX + msgpack.packb([{"op": "scatter", "values": [msgpack.ExtType(1, struct.pack("<II", 0, 2**32 - 1))]}]),
        PREFIX + msgpack.packb([{"op": "data", "values": [msgpack.ExtType(1, struct.pack("<II", 2**32 - 2, 5))]}]),
        PREFIX + msgpack.packb([{"op": "x", "v": msgpack.ExtType(rng.randrange(128), rng.randbytes(8))}]),
        PREFIX + b"\x91\x82\xa2op\xa1x\xa1v\xd7\xff" + rng.randbytes(8),     # a timestamp ext, maybe invalid
    ]
    return [rng.choice(choices)]


def fuzz_message(rng: random.Random) -> list:
    """One malformed multipart message (its frames)."""
    kind = rng.randrange(8)
    if kind == 0:
        return [rng.randbytes(rng.randrange(300))]
    if kind == 1:
        return [PREFIX + rng.randbytes(rng.randrange(300))]
    if kind == 2:  # a valid message, truncated
        frames = protocol.encode([junk_op(rng) for _ in range(rng.randint(1, 3))])
        head = frames[0]
        return [head[:rng.randrange(len(head))]] + list(frames[1:])
    if kind == 3:
        return oversize_claim(rng)
    if kind == 4:  # multipart junk
        return [rng.randbytes(rng.randrange(200)) for _ in range(rng.randint(2, 6))]
    if kind == 5:  # another protocol version
        return [protocol.MAGIC + bytes([rng.choice([0, 2, 3, 255])]) + rng.randbytes(rng.randrange(50))]
    if kind == 6:  # well-formed, known op names, nonsense fields, stray payload frames
        frames = protocol.encode([junk_op(rng) for _ in range(rng.randint(1, 4))])
        return list(frames) + [rng.randbytes(rng.randrange(64)) for _ in range(rng.randrange(3))]
    return [PREFIX + msgpack.packb([junk(rng) for _ in range(rng.randint(1, 4))])]  # not a list of ops


def _host_port(address: str) -> tuple[str, int]:
    host, port = address[len("tcp://"):].rsplit(":", 1)
    return host, int(port)


def flood_zmq(ctx: zmq.Context, address: str, rng: random.Random, count: int,
              deliver: bool = True) -> tuple[int, int]:
    """Send ``count`` malformed messages from a few DEALERs (new ones now and then).

    Returns the messages and frames actually queued: a peer that refuses the handshake (CURVE)
    leaves a DEALER with no connection to queue on, and those sends are skipped, not blocked on.
    With ``deliver`` it waits (up to 20 s) until the queued messages have left before closing.
    """
    frames_sent = messages_sent = 0
    socks: list = []
    try:
        for i in range(count):
            if i % 2500 == 0:
                sock = ctx.socket(zmq.DEALER)
                sock.linger = 0
                sock.sndhwm = 0
                sock.connect(address)
                socks.append(sock)
            frames = fuzz_message(rng)
            try:
                socks[-1].send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                continue
            frames_sent += len(frames)
            messages_sent += 1
        # let the sockets deliver what they queued before they are closed
        deadline = time.monotonic() + (20 if deliver else 0)
        for sock in socks:
            while sock.getsockopt(zmq.EVENTS) & zmq.POLLOUT == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(0.5)
    finally:
        for sock in socks:
            sock.close(0)
    return messages_sent, frames_sent


def flood_tcp(address: str, rng: random.Random, count: int) -> None:
    """Raw TCP connections sending random bytes, no ZMTP handshake."""
    host, port = _host_port(address)
    for _ in range(count):
        with socket.create_connection((host, port), timeout=5) as s:
            try:
                s.sendall(rng.randbytes(rng.randrange(1, 4096)))
            except OSError:  # the peer may already have hung up on us
                pass


def _zmtp_greeting() -> bytes:
    return b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def zmtp_oversize(address: str, claim: int) -> bool:
    """A real ZMTP 3.0 NULL handshake, then a frame header claiming ``claim`` bytes; True if the
    peer hung up (it must, past runtime.max-message-size) instead of waiting for them."""
    host, port = _host_port(address)
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(_zmtp_greeting())
        body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
        s.sendall(b"\x04" + bytes([len(body)]) + body)
        s.sendall(b"\x02" + struct.pack(">Q", claim) + b"x" * 100)
        s.settimeout(5)
        try:
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            return False
        return True


def test_fuzz_every_port_then_compute(cli):
    from runtime import Client

    rng = random.Random(20261122)
    scheduler = cli.start(["scheduler", "--host", "127.0.0.1", "--log-level", "error"], ["workers", "clients"])
    worker = None
    try:
        worker = cli.start(["worker", scheduler.addresses["workers"], "--nthreads", "1", "--memory-limit", "0",
                            "--no-nanny", "--log-level", "error"], ["address"])
        ports = {"scheduler workers port": scheduler.addresses["workers"],
                 "scheduler clients port": scheduler.addresses["clients"],
                 "worker peer port": worker.addresses["address"]}
        sched_proc = psutil.Process(scheduler.proc.pid)
        with Client(scheduler.addresses["clients"], timeout=20) as c:
            cli.wait_for_workers(c, 1)
            assert c.gather(c.map(inc, range(50))) == list(range(1, 51))
        ctx = zmq.Context()
        try:
            for address in ports.values():  # warm up allocators, then take the baseline
                flood_zmq(ctx, address, rng, 500)
            time.sleep(0.5)
            baseline = sched_proc.memory_info().rss
            frames = messages = 0
            started = time.monotonic()
            for name, address in ports.items():
                sent, nframes = flood_zmq(ctx, address, rng, FRAMES_PER_PORT)
                assert sent == FRAMES_PER_PORT, f"{name}: only {sent} of {FRAMES_PER_PORT} messages could be sent"
                messages += sent
                frames += nframes
                flood_tcp(address, rng, RAW_TCP_PER_PORT)
                hung_up = [zmtp_oversize(address, rng.choice([2**40, 2**63 - 1, 2**31 + 1]))
                           for _ in range(ZMTP_CLAIMS_PER_PORT)]
                assert all(hung_up), f"{name}: a frame header claiming more than max-message-size was not refused"
            elapsed = time.monotonic() - started
        finally:
            ctx.term()
        assert scheduler.proc.poll() is None and worker.proc.poll() is None
        with Client(scheduler.addresses["clients"], timeout=20) as c:
            assert c.submit(sum, [1, 2, 3]).result(timeout=30) == 6
            assert c.gather(c.map(inc, range(200))) == list(range(1, 201))
            assert c.get({"a": 1, "b": (inc, "a"), "c": (sum, ["a", "b"])}, "c") == 3
        time.sleep(0.5)
        grown = sched_proc.memory_info().rss - baseline
        print(f"\nfuzz: {messages} malformed messages ({frames} frames) + {3 * RAW_TCP_PER_PORT} raw TCP connections "
              f"+ {3 * ZMTP_CLAIMS_PER_PORT} oversize ZMTP frame claims to 3 ports in {elapsed:.1f} s; "
              f"scheduler RSS {baseline / 2**20:.1f} MiB -> {(baseline + grown) / 2**20:.1f} MiB")
        assert grown < RSS_BOUND, f"the scheduler grew by {grown / 2**20:.1f} MiB under fuzzing"
    finally:
        if worker is not None:
            cli.stop(worker)
        cli.stop(scheduler)


def test_oversize_frame_is_refused_and_scheduler_carries_on():
    """A frame above max-message-size disconnects its sender before it is buffered."""
    from runtime import Client, Scheduler, Worker

    with Scheduler(max_message_size="1MiB") as s, Worker(s.address_to_workers, nthreads=1) as w:
        ctx = zmq.Context()
        try:
            sock = ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.connect(s.address_to_clients)
            sock.send_multipart(protocol.encode([{"op": "hello"}]) + [b"x" * (2 * 2**20)])
            time.sleep(0.5)
            assert not sock.poll(200)
            sock.close(0)
        finally:
            ctx.term()
        with Client(s.address_to_clients, timeout=20) as c:
            assert c.submit(inc, 1).result(timeout=20) == 2
            # the bound is on every socket: the scheduler's given one, the others the configured default
            assert s._to_workers.getsockopt(zmq.MAXMSGSIZE) == s._to_clients.getsockopt(zmq.MAXMSGSIZE) == 2**20
            default = protocol.max_message_size()
            assert default == 2 * 2**30
            assert w._peers_in.getsockopt(zmq.MAXMSGSIZE) == w._to_scheduler.getsockopt(zmq.MAXMSGSIZE) == default
            assert c._sock.getsockopt(zmq.MAXMSGSIZE) == default
        deadline = time.monotonic() + 10
        while s.sync(lambda st: st.scheduler_info()["clients"]):  # the client's goodbye is asynchronous
            assert time.monotonic() < deadline, "the closed client is still known to the scheduler"
            time.sleep(0.02)
        assert w.registered
