"""Memory limits and the policy that keeps a worker under its limit.

A worker with a memory limit watches its process's memory (RSS) and acts at four fractions of
the limit (configuration keys ``distributed.worker.memory.<name>``; see docs/memory.md):

========== ======= =================================================================================
name       default what happens above it
========== ======= =================================================================================
target     0.6     the worker's data (managed memory) is spilled to disk, least recently used first
spill      0.7     process memory too high: spill until process memory is back under ``target``
pause      0.8     stop starting new tasks (running ones finish); resume below ``spill``
terminate  0.95    the nanny kills the worker process
========== ======= =================================================================================

:class:`MemoryPolicy` only decides: it takes readings and returns a :class:`MemoryDecision`;
whoever owns the process reads memory and spills, pauses or kills (sans-I/O, like the scheduler's
state machine). :func:`parse_memory_limit` turns what users write into bytes.

>>> policy = MemoryPolicy(1000, target=0.6, spill=0.7, pause=0.8, terminate=0.95)
>>> policy.observe(rss=500, managed=400)
MemoryDecision(spill_bytes=0, paused=False, pause_changed=False, terminate=False, reason='')
>>> d = policy.observe(rss=850, managed=400)
>>> d.spill_bytes, d.paused, d.pause_changed
(250, True, True)
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from lazyarr import config
from lazyarr.utils import format_bytes, parse_bytes

__all__ = ["MemoryPolicy", "MemoryDecision", "parse_memory_limit", "system_memory", "THRESHOLDS"]

logger = logging.getLogger("runtime.memory")

#: The four thresholds, lowest first, with their defaults (fractions of the memory limit).
THRESHOLDS = {"target": 0.6, "spill": 0.7, "pause": 0.8, "terminate": 0.95}

config.update_defaults({
    "distributed": {"worker": {"memory": {
        **THRESHOLDS,
        # Seconds between two readings of process memory, by the worker and by the nanny.
        "monitor-interval": 0.1,
    }}}
})

_FROM_CONFIG: Any = None


@dataclass(frozen=True)
class MemoryDecision:
    """What to do after one reading of memory.

    spill_bytes: bytes of managed data to move to disk now (0: none).
    paused: whether task execution should be paused from now on.
    pause_changed: ``paused`` differs from the previous decision (log it, tell the scheduler).
    terminate: the process is past the terminate threshold (a nanny kills it).
    reason: a sentence for the log when any of the above is set, else ``''``.
    """

    spill_bytes: int = 0
    paused: bool = False
    pause_changed: bool = False
    terminate: bool = False
    reason: str = ""


class MemoryPolicy:
    """Decides, from readings of process memory, when to spill, pause and terminate.

    Parameters
    ----------
    limit:
        The memory limit in bytes; ``None`` or 0: no limit, every decision is "do nothing".
    target, spill, pause, terminate:
        Fractions of ``limit`` in (0, 1]; ``None`` reads ``distributed.worker.memory.<name>`` from
        the configuration; ``False`` turns that threshold off.
    resume:
        Fraction below which a paused worker resumes; default the ``spill`` fraction (or 90 % of
        ``pause`` without one). The gap between it and ``pause`` is the hysteresis that keeps a
        worker hovering at the pause line from flapping.

    The policy holds one bit of state, whether execution is paused, so use one per process.
    """

    def __init__(self, limit: int | None, target: float | bool | None = _FROM_CONFIG,
                 spill: float | bool | None = _FROM_CONFIG, pause: float | bool | None = _FROM_CONFIG,
                 terminate: float | bool | None = _FROM_CONFIG, resume: float | None = None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative number of bytes or None, not {limit!r} "
                             f"(see parse_memory_limit for sizes like '4GB')")
        self.limit: int | None = limit or None
        given = {"target": target, "spill": spill, "pause": pause, "terminate": terminate}
        fractions = {name: _fraction(name, value) for name, value in given.items()}
        #: Threshold fractions; ``None`` where a threshold is off.
        self.target: float | None = fractions["target"]
        self.spill: float | None = fractions["spill"]
        self.pause: float | None = fractions["pause"]
        self.terminate: float | None = fractions["terminate"]
        if resume is None:
            resume = self.spill if self.spill is not None and self.pause is not None and self.spill < self.pause \
                else (self.pause or 1.0) * 0.9
        elif isinstance(resume, bool) or not isinstance(resume, (int, float)) or not 0 < resume <= 1:
            raise ValueError(f"resume must be a fraction in (0, 1], not {resume!r}")
        if self.pause is not None and resume > self.pause:
            raise ValueError(f"resume ({resume}) must not be above pause ({self.pause}): "
                             f"a paused worker would resume while still over the pause threshold")
        self.resume: float = float(resume)
        self.paused = False

    def __repr__(self) -> str:
        parts = ", ".join(f"{name}={getattr(self, name)}" for name in THRESHOLDS)
        return f"<MemoryPolicy limit={_fmt(self.limit)} {parts} resume={self.resume}>"

    def bytes_at(self, name: str) -> int | None:
        """The threshold ``name`` ('target', 'spill', 'pause', 'terminate', 'resume') in bytes.

        ``None`` without a limit or when that threshold is off. The ``target`` bytes are what a
        :class:`~runtime.spill.SpillBuffer` should be given as its own target.

        >>> MemoryPolicy(1000, target=0.6, spill=0.7, pause=0.8, terminate=False).bytes_at('target')
        600
        >>> MemoryPolicy(1000, target=0.6, spill=0.7, pause=0.8, terminate=False).bytes_at('terminate') is None
        True
        """
        if name not in (*THRESHOLDS, "resume"):
            raise ValueError(f"unknown threshold {name!r}; expected one of {[*THRESHOLDS, 'resume']}")
        fraction = getattr(self, name)
        if self.limit is None or fraction is None:
            return None
        return int(self.limit * fraction)

    def observe(self, rss: int, managed: int = 0) -> MemoryDecision:
        """Decide what to do given the process's memory ``rss`` and the bytes of data it holds in
        memory (``managed``, e.g. :attr:`SpillBuffer.fast_bytes`); both in bytes.

        Above ``spill``, the answer asks to spill enough managed data to bring the process back to
        ``target`` (never more than ``managed``). Above ``pause``, execution pauses until memory
        falls below ``resume``. Above ``terminate``, ``terminate`` is set.

        >>> p = MemoryPolicy(1000, target=0.6, spill=0.7, pause=0.8, terminate=0.95)
        >>> p.observe(rss=820, managed=100).spill_bytes   # capped by what there is to spill
        100
        >>> p.observe(rss=750).paused       # between resume (0.7) and pause: still paused
        True
        >>> p.observe(rss=690).pause_changed, p.paused
        (True, False)
        >>> p.observe(rss=960).terminate
        True
        """
        for name, value in (("rss", rss), ("managed", managed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative number of bytes, not {value!r}")
        if self.limit is None:
            return MemoryDecision(paused=self.paused)
        limit = self.limit
        reasons = []

        spill_bytes = 0
        if self.spill is not None and rss > self.spill * limit:
            goal = (self.target if self.target is not None else self.spill) * limit
            spill_bytes = max(0, min(managed, int(rss - goal)))
            reasons.append(self._over("spill", rss, managed))

        changed = False
        if self.pause is not None:
            if not self.paused and rss > self.pause * limit:
                self.paused = changed = True
                reasons.append(self._over("pause", rss, managed) + "; pausing task execution")
            elif self.paused and rss < self.resume * limit:
                self.paused, changed = False, True
                reasons.append(f"process memory {format_bytes(rss)} is back under {self.resume:.0%} of the limit "
                               f"{format_bytes(limit)}; resuming task execution")
        elif self.paused:  # pause was switched off on a live policy
            self.paused, changed = False, True

        terminate = self.terminate is not None and rss > self.terminate * limit
        if terminate:
            reasons.append(self._over("terminate", rss, managed))
        return MemoryDecision(spill_bytes, self.paused, changed, terminate, "; ".join(reasons))

    def _over(self, name: str, rss: int, managed: int) -> str:
        return (f"process memory {format_bytes(rss)} is above the {name} threshold "
                f"({getattr(self, name):.0%} of the limit {format_bytes(self.limit)}; "
                f"{format_bytes(managed)} of it is data the worker holds, "
                f"{format_bytes(max(0, rss - managed))} is unmanaged)")


def _fraction(name: str, value: Any) -> float | None:
    if value is _FROM_CONFIG:
        value = config.get(f"distributed.worker.memory.{name}", THRESHOLDS[name])
    if value is False or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"the {name} threshold must be a fraction of the memory limit in (0, 1], or False "
                         f"to turn it off; got {value!r}")
    return float(value)


def _fmt(n: int | None) -> str:
    return "none" if n is None else format_bytes(n)


# ----------------------------------------------------------------------------------------------
# memory limits


def parse_memory_limit(value: Any, nthreads: int = 1, total_nthreads: int | None = None, *,
                       total_memory: int | None = None) -> int | None:
    """Bytes of memory a worker may use, or ``None`` for no limit.

    * ``None``, ``0``, ``'0'``, ``'none'``: no limit;
    * ``'auto'``: this machine's memory (:func:`system_memory`) times this worker's share of the
      threads, ``nthreads / total_nthreads`` (``total_nthreads`` defaults to the core count);
    * a float in (0, 1] (or such a string): that fraction of the machine's memory;
    * an int, or a size string such as ``'4GB'`` or ``'512 MiB'``: that many bytes.

    A limit above the machine's memory is lowered to it, with a warning. ``total_memory`` stands
    in for the machine's memory (tests, or a planner sizing another machine).

    >>> parse_memory_limit('4GB', total_memory=16 * 2**30)
    4000000000
    >>> parse_memory_limit('auto', nthreads=2, total_nthreads=8, total_memory=16 * 2**30) == 4 * 2**30
    True
    >>> parse_memory_limit(0.5, total_memory=1000)
    500
    >>> parse_memory_limit(None) is None, parse_memory_limit('0') is None
    (True, True)
    >>> parse_memory_limit('lots')
    Traceback (most recent call last):
      ...
    ValueError: cannot parse memory limit 'lots': expected 'auto', a size such as '4GB', a fraction such as 0.5, or 0/None for no limit
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"a memory limit is 'auto', a size such as '4GB', a number of bytes, a fraction "
                        f"such as 0.5 or None, not {value!r} (type {type(value).__name__})")
    if not isinstance(nthreads, int) or nthreads < 1:
        raise ValueError(f"nthreads must be a positive integer, not {nthreads!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("none", "null", ""):
            return None
        if text == "auto":
            total_nthreads = total_nthreads or os.cpu_count() or 1
            machine = system_memory() if total_memory is None else total_memory
            return int(machine * min(1.0, nthreads / total_nthreads))
        try:
            value = float(text)
        except ValueError:
            try:
                value = parse_bytes(text)
            except ValueError:
                raise ValueError(f"cannot parse memory limit {value!r}: expected 'auto', a size such as '4GB', "
                                 f"a fraction such as 0.5, or 0/None for no limit") from None
    if value < 0:
        raise ValueError(f"a memory limit must not be negative, got {value!r}")
    if value == 0:
        return None
    machine = system_memory() if total_memory is None else total_memory
    if isinstance(value, float) and value <= 1:
        return int(machine * value)
    limit = int(value)
    if limit > machine:
        logger.warning("memory limit %s is more than this machine's memory %s; using %s",
                       format_bytes(limit), format_bytes(machine), format_bytes(machine))
        limit = machine
    return limit


def system_memory() -> int:
    """Memory this process may use: the machine's, or less under a cgroup or RLIMIT_RSS limit."""
    import psutil

    candidates = [int(psutil.virtual_memory().total)]
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():  # 'max' (cgroup v2) or a huge number (v1) mean unlimited
            candidates.append(int(text))
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_RSS)
        if soft > 0 and soft != resource.RLIM_INFINITY:
            candidates.append(int(soft))
    except (ImportError, AttributeError, ValueError, OSError):
        pass
    return min(candidates)
