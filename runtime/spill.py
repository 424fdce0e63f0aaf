"""SpillBuffer: a worker's ``data`` mapping that moves least-recently-used values to disk.

Values stay in memory until the total of their sizes (by ``sizeof``) passes ``target``; then the
least recently used ones are written to files in a private directory and read back, transparently,
when someone asks for them::

    >>> with SpillBuffer(target=100, sizeof=len) as buf:
    ...     buf['a'] = b'x' * 60
    ...     buf['b'] = b'y' * 60          # 120 > 100: 'a', the least recently used, goes to disk
    ...     (buf.fast_bytes, buf.spilled_count, 'a' in buf)
    ...     buf['a'] == b'x' * 60         # read back from disk; now 'b' is the one on disk
    ...     (buf.fast_bytes, buf.spilled_count)
    (60, 1, True)
    True
    (60, 1)

**On disk.** Each spilled value is one file: a small header (magic, number of frames, their
lengths), the pickle stream, then the value's large buffers written raw. Pickling is
:func:`runtime.protocol.serialize` (protocol 5; cloudpickle for what plain pickle cannot do), the
same as on the wire, so a NumPy array's memory goes from the array to the file and back from the
file into a fresh buffer that the unpickled array uses directly: the body is never copied through
the pickle stream. File names come from a counter plus a sanitised prefix of the key, so any
hashable key (tuples included) is safe and names never collide.

**What is never lost.** A value that cannot be pickled, or cannot be written (disk full), stays
in memory; it is logged (rate-limited) and counted in :attr:`SpillBuffer.unspillable_count`. A
value larger than ``target`` goes straight to disk and is read from there on every access
without moving back into memory (it could never fit).

**Threads.** Every operation holds one re-entrant lock, file I/O included: the worker's executor
threads read while its I/O thread writes, and spilling is the slow path anyway. This buys
simple, obviously correct bookkeeping at the price of readers waiting behind a spill.

**Why not zict.** ``zict.Buffer(dict, zict.Func(dump, load, zict.File(dir)), n, weight)`` gives
LRU spilling, but not what we need around it: out-of-band buffers written raw and read back
without a copy, non-string keys, unpicklable values kept in memory, byte counts of both sides,
an ``evict()`` for the memory manager, a private directory removed on close. Those wrappers are
most of this module; zict would add a dependency and save little.

**Directories of dead processes.** A process killed with SIGKILL cannot remove its directory. So
each buffer holds an exclusive ``flock`` on its directory while it lives, and every new buffer
first removes the ``lazyarr-spill-*`` directories beside it that nobody holds (older than a few
seconds, so one being created is never taken for stale). A lock is released by the kernel when
its process dies, whatever the process's namespace, so a directory in use is never removed.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import struct
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, MutableMapping
from typing import Any

from lazyarr import config
from lazyarr.utils import format_bytes, parse_bytes

from . import protocol

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: stale directories are then left alone
    fcntl = None

__all__ = ["SpillBuffer", "SpillError"]

logger = logging.getLogger("runtime.spill")

#: First bytes of every spill file; the trailing digit is the file layout's version.
_MAGIC = b"LZRSPIL1"
_COUNT = struct.Struct("<I")
_MISSING = object()


class SpillError(RuntimeError):
    """A spilled value could not be read back (its file is gone, truncated or not unpicklable)."""


class SpillBuffer(MutableMapping):
    """A ``MutableMapping`` keeping at most ``target`` bytes of values in memory, the rest on disk.

    Parameters
    ----------
    target:
        Bytes of values (as measured by ``sizeof``) to keep in memory; a ``'512 MiB'`` style string
        works too. ``None``: never spill by size, only when :meth:`evict` or :meth:`spill` is called
        (a memory manager decides).
    directory:
        Parent folder of the private spill directory this buffer creates (and removes on
        :meth:`close`). Default: the ``temporary-directory`` configuration value, else the
        system's temporary directory. The given folder itself is never removed.
    sizeof:
        Function estimating a value's size in bytes (default :func:`runtime.protocol.sizeof`).
    """

    def __init__(self, target: int | str | None, directory: str | os.PathLike | None = None,
                 sizeof: Callable[[Any], int] = protocol.sizeof):
        self.target = _parse_target(target)
        if not callable(sizeof):
            raise TypeError(f"sizeof must be a function returning a size in bytes, not {sizeof!r}")
        self._sizeof = sizeof
        parent = directory if directory is not None else config.get("temporary-directory", None)
        if parent is not None:
            parent = os.fspath(parent)
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as e:
                raise OSError(f"cannot create the spill directory's parent {parent!r}: {e}") from None
        purge_stale_directories(parent if parent is not None else tempfile.gettempdir())
        #: The private directory holding the spill files (removed by :meth:`close`).
        self.directory = tempfile.mkdtemp(prefix=_PREFIX, dir=parent)
        self._remove_directory = weakref.finalize(self, _remove, self.directory, _hold_lock(self.directory))

        self._lock = threading.RLock()
        self._fast: OrderedDict = OrderedDict()   # key -> value, least recently used first
        self._slow: dict = {}                     # key -> (file path, bytes on disk)
        self._weights: dict = {}                  # key -> sizeof(value), for both sides
        self._unspillable: set = set()            # keys whose values could not be written
        self._fast_bytes = 0
        self._spilled_bytes = 0
        self._names = itertools.count()
        self._closed = False
        # Separate limiters: a flood of one kind of warning must not hide the first of the other.
        self._spill_failure_log = protocol.RateLimitedLog(logger, interval=30.0)
        self._sizeof_failure_log = protocol.RateLimitedLog(logger, interval=30.0)
        #: Running totals: ``spills``, ``unspills``, ``bytes_written``, ``bytes_read``,
        #: ``spill_seconds``, ``unspill_seconds``, ``spill_failures``.
        self.metrics: dict[str, float] = dict.fromkeys(
            ("spills", "unspills", "bytes_written", "bytes_read", "spill_seconds", "unspill_seconds",
             "spill_failures"), 0)

    # ------------------------------------------------------------------ sizes

    @property
    def fast_bytes(self) -> int:
        """Total ``sizeof`` of the values held in memory."""
        return self._fast_bytes

    @property
    def spilled_bytes(self) -> int:
        """Total size of the spill files on disk."""
        return self._spilled_bytes

    @property
    def spilled_count(self) -> int:
        """How many values are on disk."""
        return len(self._slow)

    @property
    def unspillable_count(self) -> int:
        """How many values in memory could not be spilled (not picklable, or the write failed)."""
        return len(self._unspillable)

    def fast_keys(self) -> list:
        """Keys of the values in memory, least recently used first."""
        with self._lock:
            return list(self._fast)

    def spilled_keys(self) -> list:
        """Keys of the values on disk, in the order they were spilled."""
        with self._lock:
            return list(self._slow)

    def weight(self, key: Hashable) -> int:
        """The ``sizeof`` recorded for ``key`` when it was stored, without reading it from disk.

        >>> with SpillBuffer(target=0, sizeof=len) as buf:
        ...     buf['k'] = b'abc'
        ...     buf.weight('k'), buf.spilled_count
        (3, 1)
        """
        with self._lock:
            try:
                return self._weights[key]
            except KeyError:
                raise KeyError(key) from None

    # ------------------------------------------------------------------ mapping

    def __setitem__(self, key: Hashable, value: Any) -> None:
        weight = self._weigh(value)
        with self._lock:
            self._check_open()
            self._discard(key)
            self._weights[key] = weight
            if self.target is not None and weight > self.target and self._write(key, value):
                return
            self._fast[key] = value
            self._fast_bytes += weight
            self._shrink()

    def __getitem__(self, key: Hashable) -> Any:
        with self._lock:
            value = self._fast.get(key, _MISSING)
            if value is not _MISSING:
                self._fast.move_to_end(key)
                return value
            if key not in self._slow:
                raise KeyError(key)
            value = self._read(key)
            weight = self._weights[key]
            if self.target is not None and weight > self.target:
                return value  # it could never fit: it lives on disk
            self._remove_file(key)
            self._fast[key] = value
            self._fast_bytes += weight
            self._shrink(protect=key)
            return value

    def __delitem__(self, key: Hashable) -> None:
        with self._lock:
            if not self._discard(key):
                raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        # MutableMapping's default would call __getitem__ and so read spilled values back.
        with self._lock:
            return key in self._fast or key in self._slow

    def __iter__(self) -> Iterator:
        with self._lock:
            keys = [*self._fast, *self._slow]
        return iter(keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._fast) + len(self._slow)

    def pop(self, key: Hashable, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value (read from disk without moving it into memory)."""
        with self._lock:
            if key in self._fast:
                value = self._fast[key]
            elif key in self._slow:
                value = self._read(key)
            elif default is _MISSING:
                raise KeyError(key)
            else:
                return default
            self._discard(key)
            return value

    def clear(self) -> None:
        """Forget every value and delete every spill file (without reading any back)."""
        with self._lock:
            for key in list(self._slow):
                self._remove_file(key)
            self._fast.clear()
            self._weights.clear()
            self._unspillable.clear()
            self._fast_bytes = 0

    # ------------------------------------------------------------------ spilling on demand

    def evict(self) -> int:
        """Spill the least recently used value in memory; the bytes (``sizeof``) freed.

        0 when nothing could be spilled: memory is empty, or holds only unspillable values.
        The memory manager calls this when the process's memory is high.
        """
        with self._lock:
            freed = self._evict_one()
            return 0 if freed is None else freed

    def spill(self, nbytes: int) -> int:
        """Spill least recently used values until at least ``nbytes`` are freed or none are left.

        Returns the bytes actually freed.

        >>> with SpillBuffer(target=None, sizeof=len) as buf:
        ...     buf.update({'a': b'1' * 10, 'b': b'2' * 10, 'c': b'3' * 10})
        ...     buf.spill(15), buf.spilled_keys()
        (20, ['a', 'b'])
        """
        freed = 0
        with self._lock:
            while freed < nbytes:
                one = self._evict_one()
                if one is None:
                    break
                freed += one
        return freed

    # ------------------------------------------------------------------ life cycle

    def close(self) -> None:
        """Forget every value and remove the spill directory. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._fast.clear()
            self._slow.clear()
            self._weights.clear()
            self._unspillable.clear()
            self._fast_bytes = self._spilled_bytes = 0
            self._remove_directory()

    def __enter__(self) -> "SpillBuffer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<SpillBuffer target={_fmt(self.target)}: {len(self._fast)} in memory "
                f"({format_bytes(self._fast_bytes)}), {len(self._slow)} on disk "
                f"({format_bytes(self._spilled_bytes)}) in {self.directory}>")

    # ------------------------------------------------------------------ internals (lock held)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"SpillBuffer for {self.directory} is closed")

    def _weigh(self, value: Any) -> int:
        try:
            weight = int(self._sizeof(value))
        except Exception as e:  # a broken __sizeof__ must not lose the value
            self._sizeof_failure_log.warning("sizeof failed on a %s (%s); counting it as 0 bytes",
                                      type(value).__name__, e)
            return 0
        return max(weight, 0)

    def _discard(self, key: Hashable) -> bool:
        """Drop ``key`` from both sides; was it there?"""
        value = self._fast.pop(key, _MISSING)
        found = value is not _MISSING
        if found:
            self._fast_bytes -= self._weights[key]
        elif key in self._slow:
            self._remove_file(key)
            found = True
        if found:
            del self._weights[key]
            self._unspillable.discard(key)
        return found

    def _shrink(self, protect: Any = _MISSING) -> None:
        """Spill until memory holds at most ``target`` bytes, or nothing more can go."""
        if self.target is None:
            return
        while self._fast_bytes > self.target:
            if self._evict_one(protect) is None:
                return

    def _evict_one(self, protect: Any = _MISSING) -> int | None:
        """Write the least recently used spillable value to disk; its weight, or None if none."""
        chosen = _MISSING
        for key, value in self._fast.items():  # _write never changes _fast: safe to iterate
            if key in self._unspillable or (protect is not _MISSING and key == protect):
                continue
            if self._write(key, value):
                chosen = key
                break
        if chosen is _MISSING:
            return None
        del self._fast[chosen]
        weight = self._weights[chosen]
        self._fast_bytes -= weight
        return weight

    def _file_name(self, key: Hashable) -> str:
        try:
            text = str(key)
        except Exception:
            text = type(key).__name__
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:48].strip("._") or "key"
        return f"{next(self._names):06x}-{slug}.spill"

    def _write(self, key: Hashable, value: Any) -> bool:
        """Put ``value`` in a file; False (and ``key`` marked unspillable) if that fails."""
        start = time.perf_counter()
        try:
            payload = protocol.serialize(value)
        except Exception as e:
            return self._give_up(key, value, f"cannot be pickled: {e}")
        frames = payload.frames if type(payload) is protocol.Serialized else (payload,)
        path = os.path.join(self.directory, self._file_name(key))
        try:
            nbytes = _write_frames(path, frames)
        except OSError as e:
            _unlink(path)
            return self._give_up(key, value, f"cannot be written to {path}: {e}")
        finally:
            payload = frames = None
        self._slow[key] = (path, nbytes)
        self._spilled_bytes += nbytes
        self.metrics["spills"] += 1
        self.metrics["bytes_written"] += nbytes
        self.metrics["spill_seconds"] += time.perf_counter() - start
        return True

    def _give_up(self, key: Hashable, value: Any, why: str) -> bool:
        self._unspillable.add(key)
        self.metrics["spill_failures"] += 1
        self._spill_failure_log.warning("value of key %r (type %s, %s) stays in memory: it %s", key,
                                  type(value).__qualname__, format_bytes(self._weights.get(key, 0)), why)
        return False

    def _read(self, key: Hashable) -> Any:
        path, _ = self._slow[key]
        start = time.perf_counter()
        try:
            frames, nbytes = _read_frames(path)
        except (OSError, ValueError) as e:
            raise SpillError(f"the spilled value of key {key!r} cannot be read back from {path}: {e}") from e
        try:
            value = protocol.deserialize(frames[0] if len(frames) == 1 else protocol.Serialized(frames))
        except Exception as e:
            raise SpillError(f"the spilled value of key {key!r} in {path} cannot be unpickled: "
                             f"{type(e).__name__}: {e}") from e
        self.metrics["unspills"] += 1
        self.metrics["bytes_read"] += nbytes
        self.metrics["unspill_seconds"] += time.perf_counter() - start
        return value

    def _remove_file(self, key: Hashable) -> None:
        path, nbytes = self._slow.pop(key)
        self._spilled_bytes -= nbytes
        _unlink(path)


_PREFIX = "lazyarr-spill-"
#: Seconds a directory nobody locks must have existed before it counts as stale: between its
#: creation and the lock there is a moment when it is neither.
STALE_AFTER = 10.0


def purge_stale_directories(parent: str) -> list[str]:
    """Remove the spill directories in ``parent`` whose buffer's process died without removing
    them (a live buffer holds a lock on its directory); the paths removed.

    >>> with tempfile.TemporaryDirectory() as parent:
    ...     purge_stale_directories(parent)
    []
    """
    try:
        names = [n for n in os.listdir(parent) if n.startswith(_PREFIX)]
    except OSError:
        return []
    removed = []
    now = time.time()
    for name in names:
        path = os.path.join(parent, name)
        try:
            if now - os.stat(path).st_mtime < STALE_AFTER:
                continue
        except OSError:
            continue
        fd = _hold_lock(path)
        if fd is None:
            continue   # in use (or locks unsupported here: then never remove anything)
        try:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    if removed:
        logger.info("removed %d spill directories left by processes that died: %s", len(removed), removed[:3])
    return removed


def _hold_lock(path: str) -> int | None:
    """An open descriptor of directory ``path`` holding an exclusive flock, or None if it is
    locked already (or this system cannot lock it)."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove(path: str, lock_fd: int | None) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if lock_fd is not None:
        os.close(lock_fd)


def _parse_target(target: Any) -> int | None:
    if target is None:
        return None
    if isinstance(target, bool) or not isinstance(target, (int, float, str)):
        raise TypeError(f"target must be a number of bytes, a size like '512MiB' or None, not {target!r}")
    value = parse_bytes(target)
    if value < 0:
        raise ValueError(f"target must not be negative, got {target!r}")
    return value


def _fmt(n: int | None) -> str:
    return "none" if n is None else format_bytes(n)


def _write_frames(path: str, frames: Any) -> int:
    """Write the header and each frame's raw bytes to a new file; the file's size."""
    views = [memoryview(f).cast("B") for f in frames]
    header = _MAGIC + _COUNT.pack(len(views)) + struct.pack(f"<{len(views)}Q", *(v.nbytes for v in views))
    total = 0
    with open(path, "xb", buffering=0) as f:
        for view in (memoryview(header), *views):
            while view.nbytes:
                n = f.write(view)  # an unbuffered write may be partial (very large buffers)
                total += n
                view = view[n:]
    return total


def _read_frames(path: str) -> tuple[list, int]:
    """The frames of a spill file, each read into its own fresh ``bytearray``; and the file's size."""
    with open(path, "rb", buffering=0) as f:
        head = _read_exact(f, len(_MAGIC) + _COUNT.size)
        if head[:len(_MAGIC)] != _MAGIC:
            raise ValueError("not a spill file (bad magic)")
        (count,) = _COUNT.unpack_from(head, len(_MAGIC))
        lengths = struct.unpack(f"<{count}Q", _read_exact(f, 8 * count))
        frames = [_read_exact(f, n) for n in lengths]
    return frames, len(head) + 8 * count + sum(lengths)


def _read_exact(f: Any, n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    while view.nbytes:
        got = f.readinto(view)
        if not got:
            raise ValueError(f"truncated spill file ({n - view.nbytes} of {n} bytes)")
        view = view[got:]
    return buf


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
