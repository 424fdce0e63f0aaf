"""JSON: ``read_json`` (one partition per file, or line-delimited files cut into blocks) and ``to_json``.

Line-delimited files (``orient='records', lines=True``) with a ``blocksize`` are cut into byte
blocks at newlines exactly as :mod:`lazyarr.dataframe.io.csv` cuts CSV files (its helpers do the
work), one partition per block. Other layouts are read one file per partition. The meta comes
from parsing the start of the first file (the whole first file when it is not line-delimited);
float and string columns are pinned to the meta's dtype in every block, and every block is
checked against the meta as it is read, so a dtype change names the file, byte range and fix.
"""
from __future__ import annotations

import io
import os
from typing import Any

import pandas as pd
from pandas.api.types import is_float_dtype, is_object_dtype, is_string_dtype

from ...tokenize import tokenize
from ...utils import parse_bytes
from ..core import new_collection
from ..utils import check_meta, make_meta
from .csv import (
    _add_path,
    _as_series,
    _block_ranges,
    _coerce_like,
    _compression_of,
    _decompressed_head,
    _expand_paths,
    _paths_for,
    _read_block_bytes,
)

__all__ = ["read_json", "to_json"]

_SAMPLE_BYTES = 2 ** 20


def _pinned(meta: pd.DataFrame, dtype: Any) -> Any:
    """``dtype=`` for pandas: the user's, plus the meta's float and string columns pinned.

    A block where such a column is all missing would otherwise come out as another dtype.
    """
    if dtype is not None and not isinstance(dtype, dict):
        return dtype  # True/False/one dtype: the user decides
    pinned = {c: meta.dtypes.iloc[i] for i, c in enumerate(meta.columns)
              if is_float_dtype(meta.dtypes.iloc[i]) or is_string_dtype(meta.dtypes.iloc[i])
              and not is_object_dtype(meta.dtypes.iloc[i])}
    return {**pinned, **(dtype or {})}


def _parse(source: Any, orient: str, lines: bool, kwargs: dict) -> pd.DataFrame:
    return pd.read_json(source, orient=orient, lines=lines, **kwargs)


def _read_json_part(path: str, start: int, end: int | None, orient: str, lines: bool, compression: str | None,
                    kwargs: dict, meta: pd.DataFrame, where: str) -> pd.DataFrame:
    if end is None:  # the whole file, through pandas (it decompresses)
        part = _parse(path, orient, lines, {**kwargs, "compression": compression})
    else:
        data = _read_block_bytes(path, start, end, 0)
        if not data or data.isspace():
            return meta
        part = _parse(io.BytesIO(data), orient, lines, kwargs)
    if list(part.columns) == list(meta.columns) and len(part):
        part = _coerce_like(part, meta)
    return check_meta(part, meta, where)


def _sample_meta(path: str, orient: str, lines: bool, compression: str | None, sample: int,
                 kwargs: dict) -> pd.DataFrame:
    if not lines:
        return make_meta(_parse(path, orient, lines, {**kwargs, "compression": compression}))
    head = _decompressed_head(path, compression, sample)
    if len(head) == sample:  # whole lines only
        head = head[: head.rfind(b"\n") + 1] or head
    return make_meta(_parse(io.BytesIO(head), orient, lines, kwargs))


def read_json(url_path: Any, orient: str = "records", lines: bool | None = None, blocksize: int | str | None = None,
              sample: int = _SAMPLE_BYTES, compression: Any = "infer", meta: Any = None,
              include_path_column: bool | str = False, **kwargs: Any) -> Any:
    """A lazy DataFrame from JSON files (a path, a glob such as ``'data/*.json'``, or a list).

    ``lines`` defaults to ``orient == 'records'`` (line-delimited JSON, as Dask). Each file is one
    partition, or, for line-delimited files with ``blocksize`` (bytes or ``'64MiB'``), one
    partition per block of whole lines. Other keyword arguments go to :func:`pandas.read_json`.
    Compressed files are read whole. The index restarts in each partition.
    """
    if lines is None:
        lines = orient == "records"
    if lines and orient != "records":
        raise ValueError(f"lines=True needs orient='records', not {orient!r}")
    if blocksize is not None and not lines:
        raise ValueError("JSON files can be split into blocks only when they are line-delimited "
                         "(orient='records', lines=True); use blocksize=None")
    for bad in ("chunksize", "nrows"):
        if kwargs.get(bad) is not None:
            raise ValueError(f"read_json does not support {bad}= (use blocksize= to split line-delimited files)")
    paths = _expand_paths(url_path)
    compressions = [_compression_of(p, compression) for p in paths]
    block = parse_bytes(blocksize) if blocksize is not None else None
    if block is not None and block <= 0:
        raise ValueError(f"blocksize must be positive, got {blocksize!r}")
    meta_df = make_meta(meta) if meta is not None else _sample_meta(paths[0], orient, lines, compressions[0],
                                                                   sample, kwargs)
    part_kwargs = {**kwargs, "dtype": _pinned(meta_df, kwargs.get("dtype"))}
    token = tokenize(paths, [os.path.getmtime(p) for p in paths], orient, lines, block, part_kwargs, compressions,
                     str(meta_df.dtypes))
    name = f"read_json-{token}"
    layer = {}
    for path, comp in zip(paths, compressions, strict=True):
        ranges = _block_ranges(os.path.getsize(path), block) if comp is None and block is not None else [(0, None)]
        for start, end in ranges:
            i = len(layer)
            span = f"bytes {start}-{end} of {path}" if end is not None else path
            task: tuple = (_read_json_part, path, start, end, orient, lines, comp, part_kwargs, meta_df,
                           f"partition {i} ({span})")
            if include_path_column:
                task = (_add_path, task, path, include_path_column)
            layer[(name, i)] = task
    out_meta = meta_df
    if include_path_column:
        column = include_path_column if isinstance(include_path_column, str) else "path"
        out_meta = meta_df.assign(**{column: pd.Categorical([], categories=paths)})
    return new_collection({name: layer}, name, out_meta, (None,) * (len(layer) + 1))


def _write_json(part: pd.DataFrame, path: str, kwargs: dict) -> str:
    part.to_json(path, **kwargs)
    return path


def to_json(frame: Any, url_path: Any, orient: str = "records", lines: bool | None = None, compute: bool = True,
            name_function: Any = None, scheduler: Any = None, **kwargs: Any) -> Any:
    """Write one JSON file per partition: ``url_path`` with a ``*`` (replaced by the partition number), or a directory.

    ``lines`` defaults to ``orient == 'records'`` (line-delimited, readable block by block by
    :func:`read_json`). Other keyword arguments go to :meth:`pandas.DataFrame.to_json`. Returns the
    file names (with ``compute=False``, a lazy Series of them).
    """
    if lines is None:
        lines = orient == "records"
    if lines and orient != "records":
        raise ValueError(f"lines=True needs orient='records', not {orient!r}")
    n = frame.npartitions
    options = {"orient": orient, "lines": lines, **kwargs}
    paths = _paths_for(url_path, n, name_function)
    name = f"to_json-{tokenize(frame, paths, options)}"
    layer = {(name, i): (_as_series, [(_write_json, (frame._name, i), p, options)]) for i, p in enumerate(paths)}
    out = new_collection({**frame._layers, name: layer}, name, pd.Series([], dtype=object), (None,) * (n + 1))
    if not compute:
        return out
    return out.compute(scheduler=scheduler).tolist()
