"""Peer-to-peer transfer: a NumPy array made on worker A and consumed on worker B.

Figures in MB/s (1 MB = 10**6 bytes), medians of rounds in which the raw copies and the cluster
transfer are interleaved one by one (order rotating), so noise on a shared machine hits all alike:

* **raw, reused buffer**: a plain TCP socket over loopback between two processes, ``sendall``
  into one preallocated, already touched ``recv_into`` buffer every time: the machine's ceiling,
  but not what a receiver of new data can do (it needs new memory for each array);
* **raw, fresh buffer**: the same into a newly allocated buffer per copy (``np.empty``, so
  malloc, which the receiver then faults in), as ours and any real receiver must: the
  like-for-like reference. The raw receiver runs with our workers' environment (huge-page malloc);
* **bare zmq**: one ZeroMQ message of that size, sent zero-copy DEALER -> ROUTER between two
  processes (its own block, default malloc): the transport ours is built on, for reference;
* **ours**: ``a = submit(make, workers=[A])`` computed, then the time of
  ``submit(consume, a, workers=[B]).result()``, where ``consume`` returns one element, so nearly
  all the time is B fetching the array from A (plus one task's scheduling);
* **Dask**: the same with ``distributed``, interleaved with its own raw copies.

Usage::

    python benchmarks/runtime_transfer.py [--mb 200] [--repeat 9] [--no-dask]

Target: ours >= 0.85 x raw (both raw figures are printed; the fresh one is like-for-like).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Callable
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
# raw loopback TCP: a receiver process (started with our workers' environment) and a sender process


def _send(port: int, nbytes: int) -> None:
    payload = bytearray(nbytes)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        while sock.recv(1) == b"g":
            sock.sendall(payload)


def _receive(conn: Any, nbytes: int) -> None:
    """Serve ``"reuse"``/``"fresh"`` requests from ``conn``: time one copy, send back the seconds."""
    import numpy as np

    server = socket.create_server(("127.0.0.1", 0))
    conn.send(server.getsockname()[1])
    sock, _ = server.accept()
    server.close()
    touched = np.ones(nbytes, dtype="u1")  # the reused buffer, faulted in once
    with sock:
        while (mode := conn.recv()) != "stop":
            start = time.perf_counter()
            # "fresh": new memory per transfer, as any receiver of new data needs (malloc, like ZeroMQ)
            buf = touched if mode == "reuse" else np.empty(nbytes, dtype="u1")
            view = memoryview(buf)
            sock.sendall(b"g")
            got = 0
            while got < nbytes:
                n = sock.recv_into(view[got:], min(CHUNK, nbytes - got))
                if not n:
                    raise ConnectionError("sender closed early")
                got += n
            conn.send(time.perf_counter() - start)
            del view, buf
        sock.sendall(b"s")


class RawTCP:
    """Loopback TCP copies of ``nbytes`` between two processes, one at a time, on request.

    ``copy("reuse")`` receives into one preallocated, already touched buffer every time (the
    ceiling, but no real receiver of new data can do it); ``copy("fresh")`` into a newly allocated
    buffer each time, which it must then fault in, as ours does. The receiver runs with the same
    environment as our worker processes (``worker_process_environment``: huge-page malloc).
    """

    def __init__(self, nbytes: int) -> None:
        from runtime.worker import worker_process_environment

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        saved = dict(os.environ)
        os.environ.update(worker_process_environment(saved))  # inherited by the spawned receiver
        try:
            self._receiver = ctx.Process(target=_receive, args=(child, nbytes))
            self._receiver.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        port = self._conn.recv()
        self._sender = ctx.Process(target=_send, args=(port, nbytes))
        self._sender.start()

    def copy(self, mode: str) -> float:
        """Seconds for one copy into a ``"reuse"``d or ``"fresh"`` buffer."""
        self._conn.send(mode)
        return self._conn.recv()

    def close(self) -> None:
        self._conn.send("stop")
        for proc in (self._receiver, self._sender):
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join()


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


def cluster_transfer(client: Any, a: str, b: str, nbytes: int, seed: int) -> float:
    """Seconds for B to get a fresh array made on A (the array is made, untimed, first)."""
    x = client.submit(make, nbytes, seed, workers=[a], pure=False)
    _wait(client, x)
    start = time.perf_counter()
    y = client.submit(consume, x, workers=[b], pure=False)
    value = y.result()
    elapsed = time.perf_counter() - start
    if value != float(seed):
        raise AssertionError(f"consume returned {value}, expected {float(seed)}")
    del x, y
    time.sleep(0.2)  # let both sides free the arrays before the next one
    return elapsed


def interleaved(raw: RawTCP, cluster: Callable[[int], float], repeat: int) -> dict[str, list[float]]:
    """``repeat`` rounds of one raw "reuse" copy, one raw "fresh" copy and one cluster transfer,
    in an order that rotates each round, after one warm-up round; all the times by label.

    Interleaving transfer by transfer means a noisy spell on this shared machine hits every
    figure alike instead of one block of them.
    """
    runs = {"reuse": lambda i: raw.copy("reuse"), "fresh": lambda i: raw.copy("fresh"), "cluster": cluster}
    times: dict[str, list[float]] = {label: [] for label in runs}
    labels = list(runs)
    for i in range(repeat + 1):  # round 0 warms up every side
        for label in labels[i % 3:] + labels[:i % 3]:
            elapsed = runs[label](i)
            if i:
                times[label].append(elapsed)
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


def _show(label: str, mb: int, times: list[float]) -> None:
    print(f"{label}: {mb} MB in {_median(times):.3f} s median ({', '.join(f'{t:.3f}' for t in times)})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="array size in MB (default 200)")
    parser.add_argument("--repeat", type=int, default=9, help="timed rounds (medians printed)")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args(argv)
    nbytes = args.mb * 10**6

    zmq_time = _median(bare_zmq(nbytes, args.repeat))
    print(f"bare ZeroMQ message: {args.mb} MB in {zmq_time:.3f} s", flush=True)

    from runtime import Client

    raw = RawTCP(nbytes)
    try:
        with our_cli_cluster(2, 1) as (address, _, workers), Client(address) as client:
            ours = interleaved(raw, lambda i: cluster_transfer(client, workers[0], workers[1], nbytes, i),
                               args.repeat)
        ours["ours"] = ours.pop("cluster")
        for label, times in ours.items():
            _show(label, args.mb, times)
        dask = None
        if not args.no_dask and have_dask_distributed():
            with dask_cluster(2, 1) as client:
                a, b = sorted(client.scheduler_info()["workers"])
                dask = interleaved(raw, lambda i: cluster_transfer(client, a, b, nbytes, i), args.repeat)
            dask["dask"] = dask.pop("cluster")
            for label, times in dask.items():
                _show(f"{label} (dask run)", args.mb, times)
    finally:
        raw.close()

    mbs = lambda seconds: args.mb / seconds  # noqa: E731
    reuse, fresh, mine = (_median(ours[k]) for k in ("reuse", "fresh", "ours"))
    print()
    print("medians; raw TCP copies interleaved with the cluster transfers, round by round")
    print(f"{'':34s} {'MB/s':>8s} {'x raw reuse':>12s} {'x raw fresh':>12s}")
    print(f"{'raw TCP, reused touched buffer':34s} {mbs(reuse):8,.0f} {1.0:12.2f} {fresh / reuse:12.2f}"
          "   (ceiling; no receiver of new data can do this)")
    print(f"{'raw TCP, fresh buffer per copy':34s} {mbs(fresh):8,.0f} {reuse / fresh:12.2f} {1.0:12.2f}"
          "   (the like-for-like reference)")
    print(f"{'bare zmq (separate block)':34s} {mbs(zmq_time):8,.0f} {reuse / zmq_time:12.2f} {fresh / zmq_time:12.2f}"
          "   (the transport ours runs on, default malloc)")
    print(f"{'ours':34s} {mbs(mine):8,.0f} {reuse / mine:12.2f} {fresh / mine:12.2f}   target >= 0.85")
    if dask is not None:
        d_reuse, d_fresh, d = (_median(dask[k]) for k in ("reuse", "fresh", "dask"))
        print(f"{'dask (own run, own raw figures)':34s} {mbs(d):8,.0f} {d_reuse / d:12.2f} {d_fresh / d:12.2f}")
        print(f"ours / dask throughput: {d / mine:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
