"""``read_table``: tab-separated text, read like CSV (same blocks, meta and checks)."""
from __future__ import annotations

from typing import Any

from .csv import read_csv

__all__ = ["read_table"]


def read_table(urlpath: Any, blocksize: int | str | None = "64MiB", **kwargs: Any) -> Any:
    """:func:`read_csv` with ``sep='\\t'`` unless another ``sep`` is given (as :func:`pandas.read_table`)."""
    kwargs.setdefault("sep", "\t")
    return read_csv(urlpath, blocksize=blocksize, **kwargs)
