"""Diagnostics for the local schedulers: the callback mechanism and tools built on it.

* :class:`Callback` -- hooks called at start, around each task, and at the end.
* :class:`ProgressBar` -- percent done and elapsed time for long computations.
* :class:`Profiler` -- per-task start/end times and worker of every task.
* :class:`ResourceProfiler` -- CPU and memory of this process over time (needs psutil).

See docs/diagnostics.md.
"""
from __future__ import annotations

from .callbacks import Callback

__all__ = ["Callback", "ProgressBar", "Profiler", "ResourceProfiler"]


def __getattr__(name: str):
    if name == "ProgressBar":
        from .progress import ProgressBar

        return ProgressBar
    if name in ("Profiler", "ResourceProfiler", "TaskData", "ResourceData"):
        from . import profile

        return getattr(profile, name)
    raise AttributeError(f"module 'lazyarr.diagnostics' has no attribute {name!r}")
