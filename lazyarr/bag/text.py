"""Reading and writing text files: ``read_text`` and ``to_textfiles``.

Big uncompressed files are split into byte ranges (``blocksize``). A line belongs to the block
holding its first byte: each block task seeks to its start, skips to just past the first line
delimiter at or after ``start - len(delimiter)`` (unless it starts at 0), and reads through the
end of the line that crosses its end. So every line is read exactly once, whatever the block
size. Compressed files (gzip, bz2, xz) cannot be entered in the middle and are read whole.
"""
from __future__ import annotations

import bz2
import codecs
import glob
import gzip
import io
import lzma
import os
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from ..tokenize import tokenize
from ..utils import parse_bytes
from .chunk import reify
from .core import Bag

__all__ = ["read_text", "to_textfiles", "read_block_lines", "infer_compression"]

_OPENERS: dict[str, Callable] = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".lzma": "xz"}
_DECOMPRESS_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)
_SCAN = 1 << 16


def infer_compression(path: str) -> str | None:
    """The compression implied by a file name's suffix, or None.

    >>> infer_compression('logs/2024-01-01.json.gz'), infer_compression('a.txt')
    ('gzip', None)
    """
    return _SUFFIXES.get(os.path.splitext(str(path))[1].lower())


def _compression_for(path: str, compression: str | None) -> str | None:
    if compression == "infer":
        return infer_compression(path)
    if compression is not None and compression not in _OPENERS:
        raise ValueError(f"unknown compression {compression!r}; use 'infer', None, 'gzip', 'bz2' or 'xz'")
    return compression


def expand_paths(urlpath: Any) -> list[str]:
    """The files named by a path, a glob pattern, or a list of those, in sorted order per pattern."""
    if isinstance(urlpath, (str, os.PathLike)):
        patterns = [os.fspath(urlpath)]
    else:
        patterns = [os.fspath(p) for p in urlpath]
        if not patterns:
            raise ValueError("read_text: the list of paths is empty")
    paths: list[str] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
            if not matches:
                raise FileNotFoundError(f"read_text: no files match the pattern {pattern!r}")
            paths.extend(matches)
        elif os.path.isdir(pattern):
            matches = sorted(os.path.join(pattern, name) for name in os.listdir(pattern))
            matches = [p for p in matches if os.path.isfile(p)]
            if not matches:
                raise FileNotFoundError(f"read_text: the directory {pattern!r} holds no files")
            paths.extend(matches)
        elif os.path.isfile(pattern):
            paths.append(pattern)
        else:
            raise FileNotFoundError(f"read_text: no such file {pattern!r}")
    return paths


def read_text(urlpath: Any, blocksize: int | str | None = None, compression: str | None = "infer",
              encoding: str = "utf-8", errors: str = "strict", linedelimiter: str | None = None,
              include_path: bool = False) -> Bag:
    """A Bag of the lines of text files, one partition per file or per block of a file.

    ``urlpath`` is a path, a glob pattern (``'logs/*.json'``), a directory, or a list of those.
    Lines keep their line ending. With ``linedelimiter=None`` lines are split as Python's
    ``open()`` splits them (universal newlines: ``\\n``, ``\\r\\n`` and ``\\r`` all end a line and
    read as ``\\n``); otherwise exactly on ``linedelimiter``, which is kept.

    ``blocksize`` (bytes, or a string such as ``'64MiB'``) splits uncompressed files into blocks
    of about that size, each its own partition; by default each file is one partition.
    ``compression`` is ``'infer'`` (from the suffix: ``.gz``, ``.bz2``, ``.xz``), ``None``, or one
    of ``'gzip'``, ``'bz2'``, ``'xz'``; compressed files are always read whole. With
    ``include_path=True`` the elements are ``(line, path)`` tuples.

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with open(os.path.join(d, 'a.txt'), 'w') as f:
    ...         _ = f.write('one\\ntwo\\n')
    ...     read_text(os.path.join(d, '*.txt')).compute(scheduler='sync')
    ['one\\n', 'two\\n']
    """
    paths = expand_paths(urlpath)
    if blocksize is not None:
        blocksize = parse_bytes(blocksize)
        if blocksize < 1:
            raise ValueError(f"read_text: blocksize must be positive, not {blocksize!r}")
    if linedelimiter is not None and (not isinstance(linedelimiter, str) or not linedelimiter):
        raise ValueError(f"read_text: linedelimiter must be a non-empty string, not {linedelimiter!r}")
    codecs.lookup(encoding)  # an unknown encoding fails here, not in a worker
    blocks: list[tuple] = []
    for path in paths:
        comp = _compression_for(path, compression)
        size = os.path.getsize(path)
        if blocksize is None or comp is not None or not _splittable(encoding) or size <= blocksize:
            blocks.append((path, comp, 0, None))
        else:
            blocks.extend((path, None, start, min(blocksize, size - start)) for start in range(0, size, blocksize))
    stamps = [(p, os.path.getmtime(p), os.path.getsize(p)) for p in paths]
    name = f"read-text-{tokenize(stamps, blocksize, compression, encoding, errors, linedelimiter, include_path)}"
    layer = {
        (name, i): (reify, (read_block_lines, path, comp, start, length, encoding, errors, linedelimiter, include_path))
        for i, (path, comp, start, length) in enumerate(blocks)
    }
    return Bag(layer, name, len(blocks))


def _splittable(encoding: str) -> bool:
    """Can a file in ``encoding`` be cut at a delimiter's bytes? Not for UTF-16/32."""
    name = codecs.lookup(encoding).name
    return not name.startswith(("utf-16", "utf-32"))


def read_block_lines(path: str, compression: str | None, start: int, length: int | None, encoding: str,
                     errors: str, linedelimiter: str | None, include_path: bool) -> list:
    """The lines of one block of a file (the whole file when ``length`` is None)."""
    try:
        if compression is None and length is None and linedelimiter is None:
            with open(path, encoding=encoding, errors=errors, newline=None) as f:
                lines = f.readlines()
            return [(line, path) for line in lines] if include_path else lines
        data = _read_bytes(path, compression, start, length, linedelimiter)
        if linedelimiter is None:
            lines = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors=errors, newline=None).readlines()
        else:
            text = data.decode(encoding, errors)
            parts = text.split(linedelimiter)
            lines = [p + linedelimiter for p in parts[:-1]]
            if parts[-1]:
                lines.append(parts[-1])
    except UnicodeDecodeError as e:
        e.add_note(f"lazyarr.bag.read_text: while decoding {path!r} (bytes {start}..) as {encoding}")
        raise
    if include_path:
        return [(line, path) for line in lines]
    return lines


def _read_bytes(path: str, compression: str | None, start: int, length: int | None,
                linedelimiter: str | None) -> bytes:
    if compression is not None:
        try:
            with _OPENERS[compression](path, "rb") as f:
                return f.read()
        except _DECOMPRESS_ERRORS as e:
            raise type(e)(f"cannot read {path!r} as {compression}: {e}") from e
    with open(path, "rb") as f:
        if length is None:
            return f.read()
        delimiter = b"\n" if linedelimiter is None else linedelimiter.encode()
        return _block(f, start, start + length, delimiter)


def _block(f: Any, start: int, end: int, delimiter: bytes) -> bytes:
    """The bytes of the lines whose first byte lies in ``[start, end)``."""
    width = len(delimiter)
    if start == 0:
        begin = 0
    else:
        found = _find(f, max(start - width, 0), delimiter)
        if found is None:
            return b""
        begin = found + width
    if begin >= end:
        return b""
    found = _find(f, max(end - width, begin), delimiter)
    f.seek(begin)
    if found is None:
        return f.read()
    return f.read(found + width - begin)


def _find(f: Any, pos: int, delimiter: bytes) -> int | None:
    """Offset of the first ``delimiter`` at or after ``pos``, or None at end of file."""
    f.seek(pos)
    carry = b""
    offset = pos
    while True:
        chunk = f.read(_SCAN)
        if not chunk:
            return None
        buf = carry + chunk
        i = buf.find(delimiter)
        if i >= 0:
            return offset + i
        keep = len(delimiter) - 1
        carry = buf[len(buf) - keep:] if keep else b""
        offset += len(buf) - len(carry)


# -- writing --------------------------------------------------------------------------------------

def _output_paths(path: Any, npartitions: int, name_function: Callable[[int], str] | None) -> list[str]:
    if isinstance(path, (list, tuple)):
        paths = [os.fspath(p) for p in path]
        if len(paths) != npartitions:
            raise ValueError(f"to_textfiles: {len(paths)} paths given for {npartitions} partitions")
        return paths
    path = os.fspath(path)
    name_function = name_function or str
    if "*" in path:
        if path.count("*") > 1:
            raise ValueError(f"to_textfiles: the path {path!r} may hold one '*' only")
        paths = [path.replace("*", name_function(i)) for i in range(npartitions)]
    else:
        paths = [os.path.join(path, f"{name_function(i)}.part") for i in range(npartitions)]
    if len(set(paths)) != len(paths):
        raise ValueError("to_textfiles: name_function gives the same name to two partitions")
    return paths


def write_partition(seq: Iterable, path: str, compression: str | None, encoding: str, last_endline: bool) -> str:
    """Write one partition's elements to ``path``, one per line; returns the path."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    if compression is None:
        f = open(path, "w", encoding=encoding, newline="")
    else:
        f = _OPENERS[compression](path, "wt", encoding=encoding, newline="")
    with f:
        started = False
        for element in seq:
            if not isinstance(element, str):
                raise TypeError(
                    f"to_textfiles writes strings, found {type(element).__name__} {element!r:.80} for {path!r}; "
                    "map(str) or map(json.dumps) first"
                )
            if started:
                f.write("\n")
            f.write(element)
            started = True
        if last_endline and started:
            f.write("\n")
    return path


def to_textfiles(bag: Bag, path: Any, name_function: Callable[[int], str] | None = None,
                 compression: str | None = "infer", encoding: str = "utf-8", compute: bool = True,
                 last_endline: bool = False, **kwargs: Any) -> Any:
    """Write each partition of a bag of strings to its own text file, one element per line.

    ``path`` is a pattern with one ``*`` (replaced by ``name_function(i)``, default ``str(i)``),
    a directory (files ``0.part``, ``1.part``, ...), or a list of paths. ``compression='infer'``
    compresses by suffix (``.gz`` gzip, ``.bz2``, ``.xz``). Elements are joined with ``\\n``; the
    last line gets one too if ``last_endline``. (Lines read by :func:`read_text` already end in
    ``\\n``: strip them first, or the files get blank lines.) Write JSON lines with
    ``bag.map(json.dumps).to_textfiles('out/*.jsonl')``.

    With ``compute=True`` (default) the files are written now (``kwargs`` go to ``compute``)
    and the list of paths is returned; otherwise a Bag whose computation writes them.
    """
    paths = _output_paths(path, bag.npartitions, name_function)
    codecs.lookup(encoding)
    name = f"to-textfiles-{tokenize(bag, paths, compression, encoding, last_endline)}"
    layer = {
        (name, i): (
            _as_list,
            (write_partition, (bag.name, i), p, _compression_for(p, compression), encoding, last_endline),
        )
        for i, p in enumerate(paths)
    }
    dsk = dict(bag.__lazyarr_graph__())
    dsk.update(layer)
    out = Bag(dsk, name, bag.npartitions)
    if not compute:
        return out
    return out.compute(**kwargs)


def _as_list(value: Any) -> list:
    return [value]
