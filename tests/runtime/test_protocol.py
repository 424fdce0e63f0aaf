"""The wire format: framing, versions, keys, payload serialization, malformed input."""
from __future__ import annotations

import logging
import pickle
import threading

import numpy as np
import pytest
import zmq

from runtime import protocol
from runtime.errors import ProtocolError, SerializationError, VersionMismatchError
from runtime.protocol import (MAGIC, VERSION, Serialized, decode, deserialize, dumps_task, encode, loads_task,
                              serialize)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="session", autouse=True)
def _zmq_gc_thread():
    from zmq.utils.garbage import gc as zmq_gc

    if not zmq_gc.is_alive():
        zmq_gc.start()
    yield


def roundtrip(ops):
    return decode(encode(ops))


@pytest.mark.parametrize("key", ["x", b"raw", 7, 2.5, ("x", 0), ("x", 1, 2), ("nested", ("a", 1), 3), ()])
def test_keys_roundtrip_exactly(key):
    (op,) = roundtrip([{"op": "t", "key": key, "keys": [key, key]}])
    assert op["key"] == key and type(op["key"]) is type(key)
    assert op["keys"] == (key, key)                         # msgpack arrays come back as tuples


def test_bytes_and_str_stay_distinct():
    (op,) = roundtrip([{"op": "t", "a": "x", "b": b"x"}])
    assert type(op["a"]) is str and type(op["b"]) is bytes


def test_every_message_carries_the_version():
    frames = encode([{"op": "a"}, {"op": "b"}])
    assert frames[0][:4] == MAGIC + bytes([VERSION])
    assert [op["op"] for op in decode(frames)] == ["a", "b"]


def test_small_payloads_travel_inside_the_header():
    payload = serialize({"a": [1, 2, 3]})
    assert type(payload) is bytes
    frames = encode([{"op": "t", "p": payload}])
    assert len(frames) == 1
    (op,) = decode(frames)
    assert deserialize(op["p"]) == {"a": [1, 2, 3]}


def test_large_buffers_are_separate_frames_without_copies():
    x = np.arange(1_000_000, dtype="f8")
    payload = serialize(x)
    assert type(payload) is Serialized and len(payload.frames) == 2
    assert payload.frames[1].nbytes == x.nbytes
    assert len(payload.frames[0]) < 1000                   # the pickle stream holds no array body
    assert np.shares_memory(np.frombuffer(payload.frames[1], dtype="f8"), x)
    frames = encode([{"op": "t", "a": payload, "b": serialize(x[:10]), "c": serialize(x * 2)}])
    assert len(frames) == 5
    (op,) = decode(frames)
    np.testing.assert_array_equal(deserialize(op["a"]), x)
    np.testing.assert_array_equal(deserialize(op["c"]), x * 2)
    np.testing.assert_array_equal(deserialize(op["b"]), x[:10])


def test_arrays_received_from_zmq_use_the_frame_memory_and_are_writable():
    import pandas as pd

    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        x = np.random.default_rng(0).random(500_000)
        df = pd.DataFrame({"a": np.arange(100_000), "b": np.ones(100_000)})
        a.send_multipart(encode([{"op": "t", "x": serialize(x), "df": serialize(df)}]), copy=False)
        frames = b.recv_multipart(copy=False)
        (op,) = decode(frames)
        y = deserialize(op["x"])
        np.testing.assert_array_equal(x, y)
        frame_memory = np.frombuffer(op["x"].frames[1].buffer, dtype=np.uint8)
        assert np.shares_memory(y, frame_memory)             # no copy on receive
        assert y.flags.writeable
        pd.testing.assert_frame_equal(deserialize(op["df"]), df)
    finally:
        a.close(0)
        b.close(0)
        ctx.term()


def test_payloads_pass_through_a_middle_man_unopened():
    x = np.arange(200_000)
    (op,) = decode(encode([{"op": "t", "v": serialize(x)}]))
    forwarded = encode([{"op": "fwd", "values": [op["v"]]}])    # what the scheduler does
    (op2,) = decode(forwarded)
    np.testing.assert_array_equal(deserialize(op2["values"][0]), x)


@pytest.mark.parametrize("frames, match", [
    ([], "empty"),
    ([b""], "magic"),
    ([b"GARBAGE!"], "magic"),
    ([MAGIC], "magic"),
    ([MAGIC + bytes([VERSION]) + b"\xc1"], "undecodable"),
    ([MAGIC + bytes([VERSION]) + b"\x92\x01"], "undecodable"),              # truncated array
    ([MAGIC + bytes([VERSION]) + b"\x81\xa1a\x01"], "list of ops"),         # a map, not a list
    ([MAGIC + bytes([VERSION]) + b"\x91\x01"], "list of ops"),              # [1]
    ([MAGIC + bytes([VERSION]) + b"\x91\x81\xa2op\x01"], "list of ops"),    # op name not a str
    ([MAGIC + bytes([VERSION]) + b"\x91\x81\xa2op\xc7\x08\x01" + b"\x00" * 8], "refers to frames"),
    ([MAGIC + bytes([VERSION]) + b"\x91\xd4\x05\x00"], "extension"),
])
def test_malformed_messages_raise_protocol_error(frames, match):
    with pytest.raises(ProtocolError, match=match):
        decode(frames)


def test_random_bytes_never_crash_the_decoder():
    rng = np.random.default_rng(3)
    good = encode([{"op": "x", "keys": [("a", 1)], "v": serialize(np.arange(100_000))}])
    for i in range(2000):
        if i % 2:
            head = bytearray(good[0])
            for pos in rng.integers(0, len(head), size=3):
                head[pos] = rng.integers(0, 256)
            frames = [bytes(head[: rng.integers(0, len(head) + 1)])] + good[1:]
        else:
            frames = [rng.bytes(int(rng.integers(0, 64)))]
        try:
            decode(frames)
        except ProtocolError:
            pass


def test_version_mismatch_names_both_versions_and_carries_the_peer_message():
    other = MAGIC + bytes([VERSION + 3]) + encode([{"op": "error", "message": "hello from the future"}])[0][4:]
    with pytest.raises(VersionMismatchError) as info:
        decode([other])
    text = str(info.value)
    assert f"version {VERSION}" in text and f"version {VERSION + 3}" in text and "hello from the future" in text
    assert pickle.loads(pickle.dumps(info.value)).theirs == VERSION + 3


def test_error_frames_are_decodable():
    (op,) = decode(protocol.error_frames("bad thing"))
    assert op == {"op": "error", "message": "bad thing", "version": VERSION}


def test_encode_refuses_objects_it_cannot_represent():
    with pytest.raises(TypeError, match="object"):
        encode([{"op": "t", "x": object()}])
    (op,) = roundtrip([{"op": "t", "s": {1, 2}}])
    assert sorted(op["s"]) == [1, 2]


def inc(x):
    return x + 1


def test_tasks_pickle_module_functions_by_reference():
    payload = dumps_task((inc, "x"))
    assert b"inc" in payload and len(payload) < 100
    assert loads_task(payload) == (inc, "x")


def test_lambdas_and_closures_are_pickled_once_per_function():
    offset = 10
    f = lambda x: x + offset  # noqa: E731
    p1, p2 = dumps_task((f, 1)), dumps_task((f, 2))
    func_bytes = protocol._function_bytes(f)
    assert func_bytes in p1 and func_bytes in p2            # the same cached bytes
    g1, g2 = loads_task(p1)[0], loads_task(p2)[0]
    assert g1 is g2 and g1(1) == 11                           # unpickled once on the worker side


def test_unpicklable_task_raises_naming_the_key():
    with pytest.raises(SerializationError, match=r"'k'.*lock"):
        dumps_task((inc, threading.Lock()), key="k")
    with pytest.raises(SerializationError, match="lock"):
        serialize(threading.Lock())


def test_sizeof_counts_buffers_inside_containers():
    import pandas as pd

    assert 8000 <= protocol.sizeof(np.zeros(1000)) < 9000
    assert protocol.sizeof(b"x" * 100) >= 100
    assert protocol.sizeof(1) > 0
    assert protocol.sizeof((7, np.zeros(200_000))) > 1_600_000           # a task returning (meta, array)
    assert 1_000_000 < protocol.sizeof([np.zeros(1000)] * 1000) < 12_000_000   # sampled, scaled up
    assert protocol.sizeof({"a": np.zeros(10_000)}) > 80_000
    assert protocol.sizeof(pd.DataFrame({"a": np.arange(10_000)})) > 80_000


def test_rate_limited_log_suppresses_floods(caplog):
    log = protocol.RateLimitedLog(logging.getLogger("test.ratelimit"), interval=60)
    with caplog.at_level(logging.WARNING, logger="test.ratelimit"):
        for i in range(100):
            log.warning("garbage %d", i)
    assert len(caplog.records) == 1


def test_max_message_size_is_configurable():
    from lazyarr import config

    with config.set({"runtime.max-message-size": "1 MiB"}):
        assert protocol.max_message_size() == 2**20
        ctx = zmq.Context()
        sock = protocol.configure_socket(ctx.socket(zmq.ROUTER))
        try:
            assert sock.getsockopt(zmq.MAXMSGSIZE) == 2**20
        finally:
            sock.close(0)
            ctx.term()


def test_oversized_frames_are_refused_by_the_socket():
    ctx = zmq.Context()
    server = protocol.configure_socket(ctx.socket(zmq.ROUTER), max_size=10_000)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    sender = protocol.configure_socket(ctx.socket(zmq.DEALER))
    try:
        sender.connect(f"tcp://127.0.0.1:{port}")
        sender.send_multipart(encode([{"op": "big", "blob": b"x" * 50_000}]))
        assert not server.poll(500)                          # dropped, peer disconnected
        honest = protocol.configure_socket(ctx.socket(zmq.DEALER))
        honest.connect(f"tcp://127.0.0.1:{port}")
        honest.send_multipart(encode([{"op": "small"}]))
        assert server.poll(5000)
        assert decode(server.recv_multipart()[1:])[0]["op"] == "small"
        honest.close(0)
    finally:
        sender.close(0)
        server.close(0)
        ctx.term()


def test_methods_of_module_singletons_pickle_by_reference():
    import random

    for method in (np.random.random, random.random):
        payload = dumps_task((method, 3))
        assert len(payload) < 200                            # not the generator state by value
        assert loads_task(payload)[0] is method or loads_task(payload)[0] == method
    f = lambda n: np.random.random(n)  # noqa: E731  (the cloudpickle path does the same)
    assert len(dumps_task((f, 3), key="k")) < 2000
    bound = [1, 2].append                                     # an ordinary bound method: by value
    restored = pickle.loads(serialize(bound))
    assert restored.__self__ == [1, 2]
