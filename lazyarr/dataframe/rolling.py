"""Moving-window statistics: ``ddf.rolling(window).mean()`` and friends, through map_overlap.

Each partition is extended with the rows of its neighbours that its windows reach (see
:mod:`lazyarr.dataframe.overlap`): ``window`` rows before (and after, for ``center=True``) for an
integer window, or the rows within the time span for a window such as ``'2h'`` on a datetime
index. pandas' rolling operation runs on the extended partition and the borrowed rows are cut
off, so every row sees exactly the window pandas would give it, whatever the partitioning.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pandas.api.indexers import BaseIndexer

from .core import _Frame
from .overlap import _index, overlap, overlap_span
from .utils import make_meta, meta_nonempty

__all__ = ["Rolling"]


def _rolling_call(part: Any, rolling_kwargs: dict, method: str, args: tuple, kwargs: dict) -> Any:
    return getattr(part.rolling(**rolling_kwargs), method)(*args, **kwargs)


def _zero(window: Any) -> float:
    return 0.0


class Rolling:
    """``frame.rolling(window, min_periods=, center=, win_type=, closed=)``, as in pandas.

    ``window`` is a number of rows or, on a datetime index, a time span (``'2h'``). Statistics:
    ``count sum mean median min max std var sem skew kurt quantile``, and ``apply``/``agg``
    (``win_type`` windows have ``sum mean std var``, as in pandas).

    >>> import pandas as pd, lazyarr.dataframe as dd
    >>> s = dd.from_pandas(pd.Series([1.0, 2.0, 3.0, 4.0, 5.0]), npartitions=3)
    >>> s.rolling(2).sum().compute().tolist()
    [nan, 3.0, 5.0, 7.0, 9.0]
    """

    def __init__(self, obj: _Frame, window: Any, min_periods: int | None = None, center: bool = False,
                 win_type: str | None = None, closed: str | None = None):
        if isinstance(window, BaseIndexer):
            raise NotImplementedError("rolling with a custom BaseIndexer is not supported: its reach across "
                                      "partitions is unknown; use a number of rows or a time span")
        self.obj = obj
        self._kwargs = {"window": window, "min_periods": min_periods, "center": center, "win_type": win_type,
                        "closed": closed}
        # pandas checks the arguments (a time span needs a monotonic datetime index, ...) on a sample
        self._sample = meta_nonempty(obj._meta).rolling(**self._kwargs)
        reach = overlap_span(window, _index(obj._meta), "window")
        self._before = reach
        self._after = reach if center else 0

    def __repr__(self) -> str:
        shown = ",".join(f"{k}={v}" for k, v in self._kwargs.items() if v is not None)
        return f"Rolling [{shown}] on {type(self.obj).__name__} with {self.obj.npartitions} partitions"

    def _call(self, method: str, *args: Any, meta: Any = None, **kwargs: Any) -> Any:
        if meta is None:
            # pandas raises here, at once, for what it cannot do (strings, win_type methods, ...)
            meta = make_meta(getattr(self._sample, method)(*args, **kwargs))
        func = functools.partial(_rolling_call, rolling_kwargs=self._kwargs, method=method, args=args,
                                 kwargs=kwargs)
        return overlap(func, self.obj, self._before, self._after, meta=meta, token=f"rolling-{method}")

    def count(self) -> Any:
        """Non-missing values in each window."""
        return self._call("count")

    def sum(self) -> Any:
        """Sum of each window."""
        return self._call("sum")

    def mean(self) -> Any:
        """Mean of each window."""
        return self._call("mean")

    def median(self) -> Any:
        """Median of each window."""
        return self._call("median")

    def min(self) -> Any:
        """Minimum of each window."""
        return self._call("min")

    def max(self) -> Any:
        """Maximum of each window."""
        return self._call("max")

    def std(self, ddof: int = 1) -> Any:
        """Standard deviation of each window."""
        return self._call("std", ddof=ddof)

    def var(self, ddof: int = 1) -> Any:
        """Variance of each window."""
        return self._call("var", ddof=ddof)

    def sem(self, ddof: int = 1) -> Any:
        """Standard error of the mean of each window."""
        return self._call("sem", ddof=ddof)

    def skew(self) -> Any:
        """Skewness of each window."""
        return self._call("skew")

    def kurt(self) -> Any:
        """Kurtosis of each window."""
        return self._call("kurt")

    def quantile(self, q: float, interpolation: str = "linear") -> Any:
        """Quantile ``q`` of each window."""
        return self._call("quantile", q, interpolation=interpolation)

    def apply(self, func: Callable, raw: bool = False, engine: str | None = None, engine_kwargs: dict | None = None,
              args: tuple | None = None, kwargs: dict | None = None) -> Any:
        """``func(window)`` -> a number, for each window (``raw=True`` passes numpy arrays)."""
        # pandas makes the result float whatever func returns: learn the meta without running func
        meta = make_meta(self._sample.apply(_zero, raw=raw))
        return self._call("apply", func, raw=raw, engine=engine, engine_kwargs=engine_kwargs, args=args,
                          kwargs=kwargs, meta=meta)

    def aggregate(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Several statistics at once: a name, a list of names/functions, or a dict per column."""
        return self._call("aggregate", func, *args, **kwargs)

    agg = aggregate
