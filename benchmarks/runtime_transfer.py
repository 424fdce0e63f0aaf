"""Peer-to-peer transfer: a NumPy array made on worker A and consumed on worker B.

Three figures in one run, in MB/s (1 MB = 10**6 bytes):

* **raw**: a plain TCP socket over loopback between two processes, ``sendall`` of the same number
  of bytes into a preallocated (already touched) ``recv_into`` buffer: the ceiling for this machine;
* **bare zmq**: one ZeroMQ message of that size, sent zero-copy DEALER -> ROUTER between two
  processes: the transport ours is built on, for reference;
* **ours**: ``a = submit(make, workers=[A])`` computed, then the time of
  ``submit(consume, a, workers=[B]).result()``, where ``consume`` returns one element, so nearly
  all the time is B fetching the array from A (plus one task's scheduling);
* **Dask**: the same with ``distributed``.

Usage::

    python benchmarks/runtime_transfer.py [--mb 200] [--repeat 5] [--no-dask]

Target: ours >= 0.85 x raw.
"""
from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import time
from typing import Any

from runtime_common import dask_cluster, have_dask_distributed, our_cli_cluster

CHUNK = 4 * 2**20


def make(nbytes: int, seed: int) -> Any:
    import numpy as np

    out = np.empty(nbytes // 8, dtype="f8")
    out.fill(seed)
    return out


def consume(x: Any) -> float:
    return float(x[-1])


# ----------------------------------------------------------------------------------------------
# raw loopback TCP


def _send(port: int, nbytes: int, repeat: int) -> None:
    payload = bytearray(nbytes)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(repeat):
            sock.recv(1)  # "go"
            sock.sendall(payload)


def raw_tcp(nbytes: int, repeat: int) -> list[float]:
    """Seconds per copy of ``nbytes`` from another process over a loopback TCP socket."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    sender = ctx.Process(target=_send, args=(port, nbytes, repeat + 1))
    sender.start()
    times = []
    try:
        conn, _ = server.accept()
        with conn:
            buf = bytearray(nbytes)
            view = memoryview(buf)
            for i in range(repeat + 1):  # the first copy warms up both sides
                start = time.perf_counter()
                conn.sendall(b"g")
                got = 0
                while got < nbytes:
                    n = conn.recv_into(view[got:], min(CHUNK, nbytes - got))
                    if not n:
                        raise ConnectionError("sender closed early")
                    got += n
                if i:
                    times.append(time.perf_counter() - start)
    finally:
        server.close()
        sender.join(30)
        if sender.is_alive():
            sender.kill()
            sender.join()
    return times


# ----------------------------------------------------------------------------------------------
# bare ZeroMQ, the transport under ours: how much of the gap to raw TCP is the transport's


def _zmq_send(port: int, nbytes: int, repeat: int) -> None:
    import numpy as np
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(f"tcp://127.0.0.1:{port}")
    payload = np.ones(nbytes // 8)
    sock.send(b"hello")
    for _ in range(repeat):
        sock.recv()
        sock.send(memoryview(payload), copy=False)
    sock.close(linger=5000)
    ctx.term()


def bare_zmq(nbytes: int, repeat: int) -> list[float]:
    """Seconds per ``nbytes`` message (sent zero-copy) from another process, DEALER to ROUTER."""
    import zmq

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    sender = multiprocessing.get_context("spawn").Process(target=_zmq_send, args=(port, nbytes, repeat + 1))
    sender.start()
    times = []
    try:
        ident, _ = router.recv_multipart()
        for i in range(repeat + 1):
            start = time.perf_counter()
            router.send_multipart([ident, b"go"])
            frames = router.recv_multipart(copy=False)
            if i:
                times.append(time.perf_counter() - start)
            del frames
    finally:
        sender.join(30)
        if sender.is_alive():
            sender.kill()
            sender.join()
        router.close(0)
        ctx.term()
    return times


# ----------------------------------------------------------------------------------------------
# through a cluster (the same code for both libraries)


def cluster_transfer(client: Any, a: str, b: str, nbytes: int, repeat: int) -> list[float]:
    """Seconds for B to get a fresh array made on A, ``repeat`` times after one warm-up."""
    times = []
    for i in range(repeat + 1):
        x = client.submit(make, nbytes, i, workers=[a], pure=False)
        _wait(client, x)
        start = time.perf_counter()
        y = client.submit(consume, x, workers=[b], pure=False)
        value = y.result()
        elapsed = time.perf_counter() - start
        if value != float(i):
            raise AssertionError(f"consume returned {value}, expected {float(i)}")
        if i:
            times.append(elapsed)
        del x, y
        time.sleep(0.2)  # let both sides free the arrays before the next one
    return times


def _wait(client: Any, future: Any) -> None:
    """Wait until the array exists on A, without bringing it here."""
    from runtime.futures import wait as our_wait

    if type(future).__module__.startswith("runtime"):
        our_wait([future])
    else:
        import distributed

        distributed.wait([future])


def _median(xs: list[float]) -> float:
    import statistics

    return statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="array size in MB (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="timed transfers (median printed)")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args(argv)
    nbytes = args.mb * 10**6

    raw = _median(raw_tcp(nbytes, args.repeat))
    print(f"raw loopback TCP: {args.mb} MB in {raw:.3f} s", flush=True)
    zmq_time = _median(bare_zmq(nbytes, args.repeat))
    print(f"bare ZeroMQ message: {args.mb} MB in {zmq_time:.3f} s", flush=True)

    from runtime import Client

    with our_cli_cluster(2, 1) as (address, _, workers), Client(address) as client:
        ours_times = cluster_transfer(client, workers[0], workers[1], nbytes, args.repeat)
    ours = _median(ours_times)
    print(f"ours: {args.mb} MB A -> B in {ours:.3f} s ({', '.join(f'{t:.3f}' for t in ours_times)})", flush=True)

    dask = None
    if not args.no_dask and have_dask_distributed():
        with dask_cluster(2, 1) as client:
            a, b = sorted(client.scheduler_info()["workers"])
            dask_times = cluster_transfer(client, a, b, nbytes, args.repeat)
        dask = _median(dask_times)
        print(f"dask: {args.mb} MB A -> B in {dask:.3f} s ({', '.join(f'{t:.3f}' for t in dask_times)})", flush=True)

    mbs = lambda seconds: args.mb / seconds  # noqa: E731
    print()
    print(f"{'':10s} {'MB/s':>10s} {'x raw':>8s}")
    print(f"{'raw TCP':10s} {mbs(raw):10,.0f} {1.0:8.2f}")
    print(f"{'bare zmq':10s} {mbs(zmq_time):10,.0f} {raw / zmq_time:8.2f}   (the transport ours runs on, default malloc)")
    print(f"{'ours':10s} {mbs(ours):10,.0f} {raw / ours:8.2f}   target >= 0.85")
    if dask is not None:
        print(f"{'dask':10s} {mbs(dask):10,.0f} {raw / dask:8.2f}")
        print(f"ours / dask throughput: {dask / ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
