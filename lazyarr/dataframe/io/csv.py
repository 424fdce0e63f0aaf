"""CSV: ``read_csv`` in byte blocks split on line boundaries, ``to_csv`` one file per partition or one file.

Every block after the first of a file is parsed with the file's header line prepended, so
columns agree. The meta (column names and dtypes) comes from parsing the start of the first
file; every block is checked against it as it is read, and dtypes that pandas would infer
differently in a block (an int column with a missing value, say) raise an error naming the
file, byte range and column, with the ``dtype=`` to pass. Float and string columns are pinned to
the meta's dtype for every block, so an all-missing stretch cannot change them.

Blocks are cut at newlines, so quoted fields containing newlines are not supported when a file
is split; use ``blocksize=None`` (one partition per file) for such files.
"""
from __future__ import annotations

import glob as globmod
import io
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
from pandas.api.types import is_float_dtype, is_string_dtype

from ...tokenize import tokenize
from ...utils import parse_bytes
from ..core import new_collection
from ..utils import MetaMismatchError, check_meta

__all__ = ["CSVParseError", "read_csv", "to_csv"]

_SAMPLE_BYTES = 256_000
_PYARROW_UNSUPPORTED = {"converters", "chunksize", "iterator", "skipfooter", "nrows", "low_memory", "comment",
                        "thousands", "dialect", "on_bad_lines", "float_precision", "memory_map", "sep_regex",
                        "skipinitialspace", "lineterminator", "delim_whitespace", "date_format", "index_col",
                        "verbose", "warn_bad_lines", "error_bad_lines"}


class CSVParseError(ValueError):
    """A block of a CSV file could not be parsed (names the file, byte range and the parser's complaint)."""


def _expand_paths(urlpath: Any) -> list[str]:
    paths = [urlpath] if isinstance(urlpath, (str, os.PathLike)) else list(urlpath)
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        matches = sorted(globmod.glob(p)) if any(ch in p for ch in "*?[") else [p]
        if not matches:
            raise FileNotFoundError(f"no files match {p!r}")
        for m in matches:
            if not os.path.exists(m):
                raise FileNotFoundError(f"no such file: {m!r}")
        out.extend(matches)
    return out


def _read_header(path: str, skiprows: int = 0) -> bytes:
    with open(path, "rb") as f:
        lines = []
        for _ in range(skiprows + 1):
            line = f.readline()
            lines.append(line)
    header = lines[-1]
    if header and not header.endswith(b"\n"):
        header += b"\n"
    return header


def _block_ranges(size: int, blocksize: int | None) -> list[tuple[int, int]]:
    if blocksize is None or size <= blocksize:
        return [(0, size)]
    return [(start, min(start + blocksize, size)) for start in range(0, size, blocksize)]


def _read_block_bytes(path: str, start: int, end: int, header_len: int) -> bytes:
    """Whole lines whose first byte lies in ``[start, end)`` (the header line excluded)."""
    with open(path, "rb") as f:
        if start == 0:
            f.seek(header_len)
            pos = header_len
        else:
            f.seek(start - 1)
            pos = start - 1
            # skip the line in progress at start (it belongs to the previous block)
            line = f.readline()
            pos += len(line)
        if pos >= end:
            return b""
        data = f.read(end - pos)
        if data and not data.endswith(b"\n"):
            data += f.readline()
    return data


_COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}


def _compression_of(path: str, compression: Any) -> str | None:
    """The compression of ``path``: the one given, or with ``'infer'`` the one its suffix names.

    >>> _compression_of("data/2024.csv.gz", "infer"), _compression_of("a.csv", "infer")
    ('gzip', None)
    """
    if isinstance(compression, dict):
        compression = compression.get("method")
    if compression == "infer":
        return _COMPRESSION_BY_SUFFIX.get(os.path.splitext(path)[1].lower())
    if compression is not None and compression not in _COMPRESSION_BY_SUFFIX.values():
        raise ValueError(f"unknown compression {compression!r}; expected one of "
                         f"{sorted(_COMPRESSION_BY_SUFFIX.values())}, 'infer' or None")
    return compression


def _decompressed_head(path: str, compression: str | None, nbytes: int) -> bytes:
    """The first ``nbytes`` of the file's (decompressed) content."""
    if compression is None:
        with open(path, "rb") as f:
            return f.read(nbytes)
    if compression == "zip":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if len(names) != 1:
                raise ValueError(f"{path!r}: a zip file for read_csv must hold exactly one file, found {len(names)}")
            with archive.open(names[0]) as f:
                return f.read(nbytes)
    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise ImportError(f"reading {path!r} needs the zstandard package: pip install zstandard") from None
        with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as f:
            return f.read(nbytes)
    import bz2
    import gzip
    import lzma

    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression]
    with opener(path, "rb") as f:
        return f.read(nbytes)


def _pyarrow_ok(kwargs: dict) -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return not (set(kwargs) & _PYARROW_UNSUPPORTED) and kwargs.get("sep", ",") not in (None, r"\s+") and \
        len(str(kwargs.get("sep", ","))) == 1


def _parse(data: Any, kwargs: dict, engine: str) -> pd.DataFrame:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return pd.read_csv(source, engine=engine, **kwargs)


def _read_csv_block(path: str, start: int, end: int, header: bytes, header_len: int, kwargs: dict, engine: str,
                    meta: pd.DataFrame, pinned: dict, where: str, first: bool) -> pd.DataFrame:
    kw = dict(kwargs)
    if start == 0 and end >= os.path.getsize(path):
        # Read the file ourselves (one GIL-free read) and let the parser work on memory: measured
        # ~25% faster on the thread pool than handing pandas the path, which reads through callbacks.
        with open(path, "rb") as f:
            f.seek(0)
            data: Any = f.read()
        kw.pop("memory_map", None)  # pandas refuses it for in-memory buffers
    else:
        body = _read_block_bytes(path, start, end, header_len)
        if not body or body.isspace():  # isspace, unlike strip, does not copy the block
            return meta
        data = header + body
        kw.pop("skiprows", None)
        kw.pop("memory_map", None)
    if pinned:
        dtype = dict(kw.get("dtype") or {}) if isinstance(kw.get("dtype"), dict) or kw.get("dtype") is None else None
        if dtype is not None:
            for c, d in pinned.items():
                dtype.setdefault(c, d)
            kw["dtype"] = dtype
    try:
        part = _parse(data, kw, engine)
    except (pd.errors.ParserError, ValueError, TypeError) as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if engine == "pyarrow":
            detail = detail.replace("CSV parse error: ", "")
        raise CSVParseError(
            f"could not parse {where}: {detail} (line numbers count from the start of this block, "
            f"header line = 1). Check for rows with a different number of fields, or pass dtype= for columns "
            f"whose type changes"
        ) from e
    if list(part.columns) == list(meta.columns) and len(part):
        part = _coerce_like(part, meta)
    try:
        return check_meta(part, meta, where)
    except MetaMismatchError as e:
        raise MetaMismatchError(str(e)) from None


def _coerce_like(part: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """Harmless differences between parsers (e.g. a str column the fast parser typed as object)."""
    changes = {}
    for i, c in enumerate(meta.columns):
        want, got = meta.dtypes.iloc[i], part.dtypes.iloc[i]
        if want != got and is_string_dtype(want) and is_string_dtype(got) and got == object:
            changes[c] = want
    return part.astype(changes) if changes else part


def read_csv(urlpath: Any, blocksize: int | str | None = "64MiB", sample: int = _SAMPLE_BYTES,
             engine: str | None = None, include_path_column: bool = False, meta: Any = None,
             **kwargs: Any) -> Any:
    """A lazy DataFrame from one or more CSV files (a path, a glob such as ``'data/*.csv'``, or a list).

    Each file is split into ``blocksize`` byte blocks (``None``: one block per file) cut at line
    boundaries; every block is one partition. Other keyword arguments go to
    :func:`pandas.read_csv`. ``engine`` is pandas' ``'c'`` parser unless given (``'pyarrow'`` is
    accepted when pyarrow is installed and the options allow it). Each block is read into memory
    with one read and parsed there: the C parser then holds the GIL less than when it reads the
    file itself, so blocks parse in parallel on the thread pool.

    Compressed files (``compression=``, by default inferred from the suffix: ``.gz``, ``.bz2``,
    ``.xz``, ``.zst``, ``.zip``) are read whole, one partition per file, since a compressed stream
    cannot be split at byte offsets.

    Errors name the file and byte range: a row with too many fields raises :class:`CSVParseError`,
    a block whose dtypes differ from the meta raises ``MetaMismatchError`` with the ``dtype=`` fix.
    """
    for bad in ("chunksize", "iterator", "nrows", "skipfooter", "index_col"):
        if kwargs.get(bad) not in (None, False):
            raise ValueError(f"read_csv does not support {bad}= (set the index afterwards with set_index)")
    paths = _expand_paths(urlpath)
    compression = kwargs.pop("compression", "infer")
    compressions = [_compression_of(p, compression) for p in paths]
    block = parse_bytes(blocksize) if blocksize is not None else None
    if block is not None and block <= 0:
        raise ValueError(f"blocksize must be positive, got {blocksize!r}")
    header_opt = kwargs.get("header", "infer")
    if header_opt not in ("infer", 0):
        raise ValueError("read_csv supports files with one header line (header=0) only")
    skiprows = kwargs.get("skiprows") or 0
    if not isinstance(skiprows, int):
        raise ValueError("skiprows must be an integer number of leading lines")
    if engine is None:
        # The C parser releases the GIL, so blocks parse in parallel on the thread pool; pyarrow's
        # parser is multi-threaded itself and over-subscribes the cores when blocks run in parallel.
        engine = "c"
    elif engine == "pyarrow" and not _pyarrow_ok(kwargs):
        raise ValueError(f"engine='pyarrow' does not support the options {sorted(set(kwargs) & _PYARROW_UNSUPPORTED)}")
    # meta from the start of the first file
    head = _decompressed_head(paths[0], compressions[0], sample)
    if len(head) == sample:
        cut = head.rfind(b"\n")
        head = head[: cut + 1] if cut > 0 else head
    sample_kw = {k: v for k, v in kwargs.items() if (k != "dtype" or v is not None) and k != "memory_map"}
    try:
        sample_df = pd.read_csv(io.BytesIO(head), **sample_kw)
    except Exception as e:
        raise CSVParseError(f"could not parse the start of {paths[0]}: {e}") from e
    if meta is None:
        meta_df = sample_df.iloc[:0]
    else:
        from ..utils import make_meta

        meta_df = make_meta(meta)
    pinned = {c: meta_df.dtypes.iloc[i] for i, c in enumerate(meta_df.columns)
              if is_float_dtype(meta_df.dtypes.iloc[i]) or is_string_dtype(meta_df.dtypes.iloc[i])
              and meta_df.dtypes.iloc[i] != object}
    if isinstance(kwargs.get("dtype"), dict) or kwargs.get("dtype") is None:
        pinned = {c: d for c, d in pinned.items() if c not in (kwargs.get("dtype") or {})}
    else:
        pinned = {}
    if kwargs.get("parse_dates"):
        pinned = {c: d for c, d in pinned.items() if c not in _as_cols(kwargs["parse_dates"])}
    token = tokenize(paths, [os.path.getmtime(p) for p in paths], block, kwargs, compressions, engine,
                     str(meta_df.dtypes))
    name = f"read_csv-{token}"
    layer = {}
    i = 0
    for path, comp in zip(paths, compressions):
        size = os.path.getsize(path)
        if comp is None:
            header = _read_header(path, skiprows)
            header_len = sum(len(x) for x in _leading_lines(path, skiprows + 1))
            ranges, file_kwargs = _block_ranges(size, block), kwargs
        else:  # a compressed stream cannot be entered in the middle: one partition per file
            header, header_len = b"", 0
            ranges, file_kwargs = [(0, size)], {**kwargs, "compression": comp}
        for start, end in ranges:
            where = f"partition {i} (bytes {start}-{end} of {path})"
            task = (_read_csv_block, path, start, end, header, header_len, file_kwargs, engine, meta_df, pinned,
                    where, start == 0)
            if include_path_column:
                task = (_add_path, task, path, include_path_column)
            layer[(name, i)] = task
            i += 1
    out_meta = meta_df
    if include_path_column:
        col = include_path_column if isinstance(include_path_column, str) else "path"
        out_meta = meta_df.assign(**{col: pd.Categorical([], categories=paths)})
    return new_collection({name: layer}, name, out_meta, (None,) * (i + 1))


def _as_cols(spec: Any) -> list:
    return list(spec) if isinstance(spec, (list, tuple)) else []


def _leading_lines(path: str, n: int) -> list[bytes]:
    with open(path, "rb") as f:
        return [f.readline() for _ in range(n)]


def _add_path(part: pd.DataFrame, path: str, column: Any) -> pd.DataFrame:
    col = column if isinstance(column, str) else "path"
    return part.assign(**{col: pd.Categorical([path] * len(part), categories=[path])})


# ---------------------------------------------------------------- writing

def _write_csv(part: pd.DataFrame, path: str, kwargs: dict) -> str:
    part.to_csv(path, **kwargs)
    return path


def _append_csv(part: pd.DataFrame, path: str, kwargs: dict, previous: Any, first: bool) -> str:
    mode = "w" if first else "a"
    part.to_csv(path, mode=mode, header=kwargs.get("header", True) if first else False,
                **{k: v for k, v in kwargs.items() if k not in ("header", "mode")})
    return path


def _paths_for(path: Any, n: int, name_function: Any) -> list[str]:
    path = os.fspath(path)
    name_function = name_function or str
    if "*" in path:
        return [path.replace("*", name_function(i)) for i in range(n)]
    os.makedirs(path, exist_ok=True)
    return [os.path.join(path, f"{name_function(i)}.part") for i in range(n)]


def to_csv(frame: Any, path: Any, single_file: bool = False, compute: bool = True, name_function: Any = None,
           scheduler: Any = None, **kwargs: Any) -> Any:
    """Write CSV: one file per partition (``path`` containing ``*``, or a directory), or a single file.

    Returns the list of file names written (or, with ``compute=False``, a lazy Series of them).
    ``single_file=True`` writes the partitions in order, one after the other, into ``path``.
    """
    n = frame.npartitions
    name = f"to_csv-{tokenize(frame, os.fspath(path), single_file, kwargs)}"
    if single_file:
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        layer = {}
        prev = None
        for i in range(n):
            layer[(f"{name}-write", i)] = (_append_csv, (frame._name, i), path, kwargs, prev, i == 0)
            prev = (f"{name}-write", i)
        layer[(name, 0)] = (_as_series, [prev])
        out = new_collection({**frame._layers, name: layer}, name, pd.Series([], dtype=object), (None, None))
    else:
        paths = _paths_for(path, n, name_function)
        layer = {(name, i): (_as_series, [(_write_csv, (frame._name, i), p, kwargs)]) for i, p in enumerate(paths)}
        out = new_collection({**frame._layers, name: layer}, name, pd.Series([], dtype=object), (None,) * (n + 1))
    if not compute:
        return out
    return out.compute(scheduler=scheduler).tolist()


def _as_series(values: Sequence) -> pd.Series:
    return pd.Series(list(values), dtype=object)
