"""The wire format shared by scheduler, workers and clients: framing, versioning, serialization.

Every message is one ZeroMQ multipart message (after the ROUTER's routing-id frame, if any)::

    frame 0      b"LZR" + bytes([VERSION]) + msgpack([op, op, ...])      the control header
    frame 1...   out-of-band payload frames referenced from the header

* The 4-byte prefix (magic + protocol version) is checked before anything is decoded, so a peer
  speaking another version gets a :class:`~runtime.errors.VersionMismatchError` naming both
  versions, and garbage is recognised at once. The prefix layout never changes between versions.
* The header is a msgpack array of **ops**, each a dict with an ``'op'`` name: several ops to the
  same peer travel in one message (batching). msgpack never executes code, so decoding a header
  from an untrusted peer is safe. It is decoded with ``use_list=False``: msgpack arrays come back
  as tuples, which makes task keys (str/bytes/int/float or tuples of them) round-trip exactly, since
  a key never contains a list.
* **User payloads** (a task's computation, an argument, a result, an exception) are pickled
  (protocol 5, cloudpickle for what plain pickle cannot do) by the side that owns them. A small
  payload travels inside the header as a msgpack ``bin``; a payload with large buffers
  (NumPy/pandas memory, >= :data:`OOB_THRESHOLD` bytes) becomes a :class:`Serialized` whose pickle
  stream and raw buffers are separate frames, referenced from the header by a msgpack ext
  (:data:`EXT_FRAMES`). Buffers are sent with ``copy=False`` and received as ``zmq.Frame`` objects
  whose memory the unpickled arrays use directly: no pickling of array bodies, no extra copies.
* The scheduler decodes headers but never unpickles payloads: it keeps them as opaque ``bytes`` or
  :class:`Serialized` and re-sends them (the same ``zmq.Frame`` objects, zero-copy).

>>> ops = decode(encode([{'op': 'ping', 'key': ('x', 1), 'payload': serialize([1, 2])}]))
>>> ops[0]['key'], deserialize(ops[0]['payload'])
(('x', 1), [1, 2])
"""
from __future__ import annotations

import copyreg
import importlib
import io
import logging
import pickle
import struct
import sys
import threading
import time
import types
from collections import OrderedDict
from typing import Any, Iterable, Sequence

import cloudpickle
import msgpack
import zmq

from lazyarr import config
from lazyarr.utils import parse_bytes

from .errors import ProtocolError, SerializationError, VersionMismatchError

__all__ = [
    "VERSION",
    "MAGIC",
    "OOB_THRESHOLD",
    "Serialized",
    "SharedPayload",
    "PayloadSharer",
    "serialize",
    "deserialize",
    "dumps_task",
    "loads_task",
    "exception_payload",
    "encode",
    "decode",
    "error_frames",
    "sizeof",
    "max_message_size",
    "configure_socket",
    "RateLimitedLog",
]

#: Wire protocol version: bump on any incompatible change of the header layout or of an op.
VERSION = 2
MAGIC = b"LZR"
_PREFIX = MAGIC + bytes([VERSION])
#: msgpack ext code of a reference to out-of-band frames: payload ``struct('<II', first, count)``.
EXT_FRAMES = 1
#: msgpack ext code of a :class:`SharedPayload`: ``struct('<I', frame)`` + its own bytes, the
#: shared run being out-of-band frame ``frame`` (sent once per message, however many tasks use it).
EXT_SHARED = 2
#: Buffers at least this large are sent as their own frames instead of inside the pickle stream.
OOB_THRESHOLD = 64 * 1024

config.update_defaults({
    "runtime": {
        # Largest single frame any runtime socket accepts (zmq.MAXMSGSIZE); a peer sending more is
        # disconnected. Bounds what one hostile peer can make us allocate per frame; one array
        # larger than this cannot travel (raise it, or use smaller chunks). See docs/security.md.
        "max-message-size": "2GiB",
        "connect-timeout": 10,
        "heartbeat-interval": 0.5,
        "worker-timeout": 10,
        "client-timeout": 60,
        "scheduler-timeout": 30,
        "fetch-timeout": 30,
        # A task processing on this many workers that died fails with KilledWorker.
        "allowed-failures": 3,
        # Seconds the scheduler waits, after a worker's connection drops, for a sign of life (or
        # its nanny's report of why it died) before it treats the worker as dead.
        "disconnect-grace": 0.5,
        # Placement: a worker holds its thread count of ready tasks plus enough to cover this many
        # seconds of work (from measured task durations), clamped to the two bounds below.
        "queue-seconds": 0.01,
        "min-buffer": 1,
        "max-buffer": 256,
        # Work stealing: an idle worker takes queued tasks from a busy one when moving their
        # inputs costs less than waiting (docs/stealing.md); passes at most this often (seconds).
        "work-stealing": True,
        "steal-interval": 0.02,
    }
})

_LOG_PROTOCOL = logging.getLogger("runtime.protocol")


class Serialized:
    """A pickled payload split into frames: the pickle stream, then its out-of-band buffers.

    Opaque to the scheduler, which forwards it as is.
    """

    __slots__ = ("frames",)

    def __init__(self, frames: Sequence):
        self.frames = tuple(frames)

    @property
    def nbytes(self) -> int:
        """Total size of the frames in bytes."""
        return sum(_nbytes(f) for f in self.frames)

    def __repr__(self) -> str:
        return f"<Serialized: {len(self.frames)} frames, {self.nbytes} bytes>"


#: A protocol-5 pickle starts with PROTO 5 and a FRAME opcode with its 8-byte length: 11 bytes
#: that differ from task to task, followed by the bytes that tasks of one graph mostly share.
_PICKLE5_FRAME = b"\x80\x05\x95"
_FRAME_HEADER = 11
_SHARE_MIN = 64   # shorter common runs are not worth a shared object


class SharedPayload:
    """A task's pickled computation stored as a run of bytes shared with its sibling tasks
    plus its own few bytes: ``rest[:11] + shared + rest[11:]``.

    Functions pickled by value are embedded in every task that calls them (hundreds of bytes
    each), so without this the computations of a million-task graph dominate the scheduler's
    memory. ``bytes(payload)`` gives back the exact bytes the client sent.
    """

    __slots__ = ("shared", "rest")

    def __init__(self, shared: bytes, rest: bytes):
        self.shared = shared
        self.rest = rest

    def __bytes__(self) -> bytes:
        rest = self.rest
        return rest[:_FRAME_HEADER] + self.shared + rest[_FRAME_HEADER:]

    def __len__(self) -> int:
        return len(self.shared) + len(self.rest)


def _common_run(a: bytes, b: bytes) -> int:
    """Length of the common prefix of ``a`` and ``b`` after their frame headers (C-speed compares)."""
    start = _FRAME_HEADER
    lo, hi = start, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if a[start:mid] == b[start:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo - start


class PayloadSharer:
    """Called on the payloads of one graph, one by one: turns each into a :class:`SharedPayload`
    where neighbours share a long run of bytes (the client before sending, the scheduler for
    payloads that arrive whole); anything else is returned unchanged.

    >>> share = PayloadSharer()
    >>> a, b = (dumps_task((_load_function, (bytes(100), i))) for i in (1, 2))
    >>> pa, pb = share(a), share(b)
    >>> type(pb).__name__, bytes(pb) == b, pa is a
    ('SharedPayload', True, True)
    """

    __slots__ = ("shared", "prev")

    def __init__(self) -> None:
        self.shared: bytes | None = None
        self.prev: bytes | None = None

    def __call__(self, payload: Any) -> Any:
        if type(payload) is not bytes or len(payload) < _FRAME_HEADER + _SHARE_MIN \
                or payload[:3] != _PICKLE5_FRAME:
            return payload
        shared = self.shared
        if shared is not None:
            end = _FRAME_HEADER + len(shared)
            if payload[_FRAME_HEADER:end] == shared:
                return SharedPayload(shared, payload[:_FRAME_HEADER] + payload[end:])
        prev = self.prev
        self.prev = payload
        if prev is not None:
            n = _common_run(prev, payload)
            if n >= _SHARE_MIN:
                end = _FRAME_HEADER + n
                shared = self.shared = payload[_FRAME_HEADER:end]
                return SharedPayload(shared, payload[:_FRAME_HEADER] + payload[end:])
        return payload


def _nbytes(frame: Any) -> int:
    if isinstance(frame, zmq.Frame):
        return len(frame)
    return memoryview(frame).nbytes


def _buffer(frame: Any) -> Any:
    return frame.buffer if isinstance(frame, zmq.Frame) else frame


# ---------------------------------------------------------------------------------------------
# payloads: pickle protocol 5 with out-of-band buffers, cloudpickle when plain pickle cannot


def _import_attribute(module: str, name: str) -> Any:
    """``module.name``, imported (how methods of module-level singletons are unpickled)."""
    return getattr(importlib.import_module(module), name)


def _method_by_reference(method: Any) -> tuple | None:
    """``(module, name)`` if ``method`` is bound to a module-level singleton and published as
    ``module.name`` (``np.random.random``, ``random.random``), else None.

    Plain pickle would copy the singleton by value: every task would then start from the
    client's copy of, say, the global random state and return the same "random" numbers.
    """
    owner = getattr(method, "__self__", None)
    if owner is None or isinstance(owner, (types.ModuleType, type)):
        return None
    name = getattr(method, "__name__", None)
    if not isinstance(name, str):
        return None
    candidates = [getattr(method, "__module__", None), type(owner).__module__]
    for modname in list(candidates):
        while modname and "." in modname:
            modname = modname.rsplit(".", 1)[0]
            candidates.append(modname)
    for modname in candidates:
        module = sys.modules.get(modname) if modname else None
        if module is not None and getattr(module, name, None) == method:
            return modname, name
    return None


def _reduce_method(method: Any) -> Any:
    found = _method_by_reference(method)
    if found is not None:
        return _import_attribute, found
    return method.__reduce_ex__(5)


class _Pickler(pickle.Pickler):
    """Plain (C) pickle, except that methods of module-level singletons go by reference."""

    dispatch_table = {**copyreg.dispatch_table, types.MethodType: _reduce_method,
                      types.BuiltinMethodType: _reduce_method}


def _pickle_dumps(obj: Any, protocol: int = 5, buffer_callback: Any = None) -> bytes:
    f = io.BytesIO()
    _Pickler(f, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
    return f.getvalue()


def _dumps_with_buffers(obj: Any, dumper: Any) -> bytes | Serialized:
    buffers: list = []

    def keep_large(pb: pickle.PickleBuffer) -> bool:
        raw = pb.raw()
        if raw.nbytes < OOB_THRESHOLD:
            return True  # small: stays inside the pickle stream
        buffers.append(raw)
        return False

    data = dumper(obj, protocol=5, buffer_callback=keep_large)
    if buffers:
        return Serialized([data, *buffers])
    return data


def _dumps_fast_or_cloud(obj: Any) -> bytes | Serialized:
    """Plain pickle (fast) unless it fails or the stream refers to ``__main__``, which other
    processes cannot import; then cloudpickle, whose exception propagates."""
    try:
        out = _dumps_with_buffers(obj, _pickle_dumps)
        if b"__main__" not in (out if type(out) is bytes else out.frames[0]):
            return out
    except Exception:
        pass
    return _dumps_with_buffers(obj, _cloudpickle_dumps)


def serialize(obj: Any) -> bytes | Serialized:
    """Pickle ``obj`` for the wire: ``bytes`` if small, else a :class:`Serialized` with its buffers.

    Plain pickle first (fast); cloudpickle if that fails or if the stream refers to ``__main__``
    (which other processes cannot import). Raises :class:`SerializationError` if neither works.

    >>> serialize(3) == pickle.dumps(3, protocol=5)
    True
    """
    try:
        return _dumps_fast_or_cloud(obj)
    except Exception as e:
        raise SerializationError(f"cannot serialize {_describe(obj)}: {type(e).__name__}: {e}") from e


def deserialize(payload: bytes | Serialized | Any) -> Any:
    """Unpickle what :func:`serialize` made (from bytes, frames or ``zmq.Frame`` objects)."""
    if type(payload) is Serialized:
        frames = payload.frames
        return pickle.loads(_buffer(frames[0]), buffers=[_buffer(f) for f in frames[1:]])
    if type(payload) is SharedPayload:
        payload = bytes(payload)
    return pickle.loads(_buffer(payload))


def _describe(obj: Any) -> str:
    text = repr(obj) if not isinstance(obj, (list, dict, tuple)) else type(obj).__name__
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (type {type(obj).__module__}.{type(obj).__qualname__})"


# Functions that plain pickle cannot pass by reference (lambdas, closures, __main__) are pickled
# by value once and the bytes reused for every task that calls them; workers unpickle each
# distinct function once.
_FUNC_CACHE_SIZE = 512
_dumped_functions: OrderedDict = OrderedDict()
_loaded_functions: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


def _lru_put(cache: OrderedDict, key: Any, value: Any) -> None:
    with _cache_lock:
        cache[key] = value
        if len(cache) > _FUNC_CACHE_SIZE:
            cache.popitem(last=False)


def _function_bytes(func: types.FunctionType) -> bytes:
    try:
        cached = _dumped_functions.get(func)
    except TypeError:
        cached = None
    if cached is None:
        cached = cloudpickle.dumps(func, protocol=5)
        try:
            _lru_put(_dumped_functions, func, cached)
        except TypeError:
            pass
    return cached


def _load_function(data: bytes) -> Any:
    """Unpickle a function pickled by value, once per distinct byte string (worker side)."""
    func = _loaded_functions.get(data)
    if func is None:
        func = cloudpickle.loads(data)
        _lru_put(_loaded_functions, data, func)
    return func


def _by_reference(func: types.FunctionType) -> bool:
    """Can ``func`` be found again by module and qualified name in another process?"""
    module = getattr(func, "__module__", None)
    if not module or module == "__main__":
        return False
    obj: Any = sys.modules.get(module)
    for part in getattr(func, "__qualname__", "<").split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return obj is func


class _TaskPickler(cloudpickle.Pickler):
    """cloudpickle, with by-value functions replaced by their cached bytes."""

    def reducer_override(self, obj: Any) -> Any:
        typ = type(obj)
        if typ is types.FunctionType and not _by_reference(obj):
            return _load_function, (_function_bytes(obj),)
        if typ is types.MethodType or typ is types.BuiltinMethodType:
            found = _method_by_reference(obj)
            if found is not None:
                return _import_attribute, found
        return super().reducer_override(obj)


def _cloudpickle_dumps(obj: Any, protocol: int, buffer_callback: Any) -> bytes:
    f = io.BytesIO()
    _TaskPickler(f, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
    return f.getvalue()


def dumps_task(comp: Any, key: Any = None) -> bytes | Serialized:
    """Pickle one task's computation for the wire (the client calls this for every task).

    Raises :class:`SerializationError` naming the key and the cause if it cannot be pickled.

    >>> from operator import add
    >>> loads_task(dumps_task((add, 'x', 1)))
    (<built-in function add>, 'x', 1)
    """
    try:
        return _dumps_fast_or_cloud(comp)
    except Exception as e:
        where = f" of key {key!r}" if key is not None else ""
        raise SerializationError(
            f"cannot serialize the task{where}: {type(e).__name__}: {e}; its function and arguments "
            f"must be picklable (cloudpickle) to run on workers"
        ) from e


def loads_task(payload: bytes | Serialized) -> Any:
    """Unpickle a computation made by :func:`dumps_task` (worker side)."""
    return deserialize(payload)


def exception_payload(exc: BaseException, tb: str) -> bytes | Serialized:
    """``(exception, traceback text)`` pickled, as a failed task or call reports it; a
    ``RuntimeError`` stand-in of the same name if the exception itself cannot be pickled.

    >>> exc, tb = deserialize(exception_payload(ValueError('bad'), 'Traceback ...'))
    >>> type(exc).__name__, tb
    ('ValueError', 'Traceback ...')
    """
    try:
        return serialize((exc, tb))
    except SerializationError:
        stand_in = RuntimeError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} "
                                f"(the original exception could not be pickled)")
        return serialize((stand_in, tb))


_SIZEOF_SAMPLE = 16


def sizeof(obj: Any, _depth: int = 0) -> int:
    """A cheap estimate of the bytes ``obj`` holds, used to place tasks near their inputs.

    Arrays and pandas objects count their buffers; containers count their items (a sample of
    at most 16, scaled up); anything else its ``sys.getsizeof``.

    >>> import numpy as np
    >>> sizeof((1, np.zeros(1000))) > 8000
    True
    """
    typ = type(obj)
    if typ in (int, float, bool, type(None)):
        return 32
    if typ in (bytes, bytearray, str, memoryview):
        return sys.getsizeof(obj)
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int) and not isinstance(nbytes, bool):
        return nbytes + 100
    if typ.__module__.startswith("pandas") and hasattr(obj, "memory_usage"):
        try:
            usage = obj.memory_usage(index=True, deep=False)
            return int(getattr(usage, "sum", lambda: usage)()) + 100
        except Exception:
            pass
    try:
        base = sys.getsizeof(obj)
    except Exception:
        return 64
    if _depth < 3 and typ in (list, tuple, set, frozenset, dict):
        n = len(obj)
        if n:
            items = list(obj.items()) if typ is dict else obj
            if n > _SIZEOF_SAMPLE:
                items = list(items)[:: max(1, n // _SIZEOF_SAMPLE)][:_SIZEOF_SAMPLE]
            sample = sum(sizeof(x, _depth + 1) for x in items)
            return base + sample * n // len(items)
    return base


# ---------------------------------------------------------------------------------------------
# control headers


def encode(ops: Iterable[dict]) -> list:
    """Frames for a batch of ops: the header, then any out-of-band payload frames.

    >>> frames = encode([{'op': 'x'}])
    >>> frames[0][:4] == MAGIC + bytes([VERSION])
    True
    """
    frames: list = [b""]
    shared_frames: dict = {}   # id of a shared run -> its frame

    def default(obj: Any) -> Any:
        if type(obj) is Serialized:
            first = len(frames) - 1
            frames.extend(obj.frames)
            return msgpack.ExtType(EXT_FRAMES, struct.pack("<II", first, len(obj.frames)))
        if type(obj) is SharedPayload:
            index = shared_frames.get(id(obj.shared))
            if index is None:
                index = shared_frames[id(obj.shared)] = len(frames) - 1
                frames.append(obj.shared)
            return msgpack.ExtType(EXT_SHARED, struct.pack("<I", index) + obj.rest)
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        raise TypeError(f"cannot put a {type(obj).__name__} in a control message")

    frames[0] = _PREFIX + msgpack.packb(list(ops), default=default, use_bin_type=True)
    return frames


def decode(frames: Sequence) -> tuple:
    """The ops of a message; raises :class:`ProtocolError` (or a version mismatch) if malformed.

    >>> decode([b'garbage'])
    Traceback (most recent call last):
      ...
    runtime.errors.ProtocolError: not a lazyarr runtime message (bad magic prefix b'garb')
    """
    if not frames:
        raise ProtocolError("empty message")
    head = _buffer(frames[0])
    head = head if isinstance(head, memoryview) else memoryview(head)
    if head.nbytes < 4 or head[:3] != MAGIC:
        raise ProtocolError(f"not a lazyarr runtime message (bad magic prefix {bytes(head[:4])!r})")
    version = head[3]
    if version != VERSION:
        raise VersionMismatchError(VERSION, version, _peer_error_text(head[4:]))
    payload_frames = frames[1:]
    shared: dict = {}   # frame index -> its bytes, one object for all the tasks sharing it

    def ext_hook(code: int, data: bytes) -> Any:
        if code == EXT_SHARED and len(data) >= 4:
            (index,) = struct.unpack_from("<I", data)
            run = shared.get(index)
            if run is None:
                if index >= len(payload_frames):
                    raise ProtocolError(f"message refers to frame {index} but has {len(payload_frames)}")
                run = shared[index] = bytes(_buffer(payload_frames[index]))
            return SharedPayload(run, data[4:])
        if code != EXT_FRAMES or len(data) != 8:
            raise ProtocolError(f"unknown msgpack extension {code}")
        first, count = struct.unpack("<II", data)
        if count < 1 or first + count > len(payload_frames):
            raise ProtocolError(f"message refers to frames {first}..{first + count - 1} but has {len(payload_frames)}")
        return Serialized(payload_frames[first:first + count])

    try:
        ops = msgpack.unpackb(head[4:], use_list=False, raw=False, strict_map_key=False, ext_hook=ext_hook)
    except ProtocolError:
        raise
    except Exception as e:
        raise ProtocolError(f"undecodable message header: {type(e).__name__}: {e}") from None
    if type(ops) is not tuple or not all(type(op) is dict and type(op.get("op")) is str for op in ops):
        raise ProtocolError("message header is not a list of ops")
    return ops


def _peer_error_text(body: memoryview) -> str:
    """Best effort: the text of an ``error`` op from a peer of another version."""
    try:
        ops = msgpack.unpackb(body, raw=False, strict_map_key=False)
        for op in ops:
            if op.get("op") == "error":
                return str(op.get("message", ""))[:500]
    except Exception:
        pass
    return ""


def error_frames(message: str) -> list:
    """An ``error`` op telling a peer what was wrong with what it sent."""
    return encode([{"op": "error", "message": message, "version": VERSION}])


# ---------------------------------------------------------------------------------------------
# sockets


def max_message_size() -> int:
    """The configured bound on a single frame, in bytes (``runtime.max-message-size``)."""
    return parse_bytes(config.get("runtime.max-message-size"))


def configure_socket(sock: zmq.Socket, max_size: int | None = None, linger_ms: int = 0) -> zmq.Socket:
    """Apply the runtime's options (message size bound, linger) to a socket before bind/connect."""
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_size() if max_size is None else int(max_size))
    sock.setsockopt(zmq.LINGER, linger_ms)
    return sock


class RateLimitedLog:
    """Log a recurring warning at most once per ``interval`` seconds, counting what was skipped.

    Garbage on a port must not flood the log (nor cost much time).
    """

    def __init__(self, logger: logging.Logger, interval: float = 5.0):
        self.logger = logger
        self.interval = interval
        self._last = 0.0
        self._skipped = 0

    def warning(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._skipped += 1
            return
        if self._skipped:
            msg += f" ({self._skipped} similar messages suppressed)"
        self._skipped = 0
        self._last = now
        self.logger.warning(msg, *args)
