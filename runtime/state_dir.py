"""Named collections on disk, so that they survive a scheduler restart (``--state-dir DIR``).

What is saved, for each named collection: its pickled collection (opaque bytes, as the client
sent them), its keys, and the *lineage* of those keys: the opaque computation and dependency keys
of every task they were computed from. After a restart the scheduler loads them before any
worker registers; workers that survived re-register with the data they still hold, and whatever
is missing is recomputed from the lineage (see :meth:`SchedulerState.restore_collections`).

The file is msgpack, like the wire protocol: the scheduler still never unpickles anything.
It is replaced atomically (written to a temporary file in the same directory, flushed to disk,
then renamed over the old one), so a crash while saving leaves the previous version intact.
"""
from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

import msgpack
import zmq

from .protocol import Serialized

__all__ = ["StateDir"]

logger = logging.getLogger("runtime.state_dir")

FILENAME = "collections.msgpack"
FORMAT = 1


def _encode_payload(payload: Any) -> Any:
    if payload is None:
        return None
    if isinstance(payload, Serialized):
        return [1, [f.bytes if isinstance(f, zmq.Frame) else bytes(memoryview(f)) for f in payload.frames]]
    return [0, bytes(payload)]


def _decode_payload(item: Any) -> Any:
    if item is None:
        return None
    kind, body = item
    return Serialized(list(body)) if kind == 1 else body


def _lineage(state: Any, keys: Any) -> list:
    """``[key, payload, dependency keys]`` for ``keys`` and everything they depend on, inputs first."""
    out: list = []
    seen: set = set()
    stack = [(state.tasks[k], False) for k in keys if k in state.tasks]
    while stack:
        ts, expanded = stack.pop()
        if expanded:
            out.append([ts.key, _encode_payload(ts.payload), [d.key for d in ts.deps]])
            continue
        if ts.key in seen:
            continue
        seen.add(ts.key)
        stack.append((ts, True))
        stack.extend((d, False) for d in ts.deps if d.key not in seen)
    return out


class StateDir:
    """The scheduler's state directory (created if missing)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot use {self.path!r} as the scheduler's state directory: {e}") from None
        if not os.access(self.path, os.W_OK):
            raise PermissionError(f"the scheduler's state directory {self.path!r} is not writable")
        self.file = os.path.join(self.path, FILENAME)

    def __repr__(self) -> str:
        return f"<StateDir {self.path!r}>"

    def save(self, state: Any) -> None:
        """Write every named collection of ``state`` (a SchedulerState), atomically."""
        collections = [[name, _encode_payload(blob), list(keys), _lineage(state, keys)]
                       for name, (blob, keys) in sorted(state.collections.items())]
        data = msgpack.packb({"format": FORMAT, "collections": collections}, use_bin_type=True)
        fd, tmp = tempfile.mkstemp(prefix=".collections-", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.file)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def load(self) -> dict:
        """``{name: (blob, keys, lineage)}`` from the file; empty when there is none.

        An unreadable file is renamed aside (``.corrupt``) with an error logged, rather than
        stopping the scheduler from starting.
        """
        try:
            with open(self.file, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return {}
        try:
            doc = msgpack.unpackb(raw, raw=False, use_list=False, strict_map_key=False)
            if doc.get("format") != FORMAT:
                raise ValueError(f"unknown format {doc.get('format')!r}")
            return {name: (_decode_payload(blob), tuple(keys),
                           [(k, _decode_payload(p), tuple(d)) for k, p, d in lineage])
                    for name, blob, keys, lineage in doc["collections"]}
        except Exception as e:
            aside = self.file + ".corrupt"
            logger.error("cannot read the saved collections in %s (%s); moved it to %s and starting without them",
                         self.file, e, aside)
            os.replace(self.file, aside)
            return {}

    def load_into(self, state: Any) -> int:
        """Load the saved collections into a fresh ``state``; returns how many."""
        entries = self.load()
        if entries:
            state.restore_collections(entries)
            logger.info("loaded %d named collections from %s: %s", len(entries), self.file, sorted(entries))
        return len(entries)
