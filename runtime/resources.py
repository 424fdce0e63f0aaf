"""Abstract worker resources (``GPU=2``, ``MEM=10e9``): parsing and checking, shared by the
worker command, :class:`~runtime.worker.Worker`, ``LocalCluster`` and the client.

Resources are names with amounts, as in Dask: a worker declares what it has
(``lazyarr-worker --resources "GPU=2,MEM=10e9"``), a task what it needs
(``client.submit(f, resources={'GPU': 1})``). The scheduler runs a task only on a worker that has
enough, and never more such tasks at once on a worker than its amounts allow
(:class:`runtime.scheduler_state.SchedulerState`). What a resource *is* is up to the user.

Like the worker command, this module imports nothing heavy.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["check_resources", "format_resources", "parse_resources"]


def check_resources(resources: Any, what: str = "resources") -> dict[str, float]:
    """``resources`` as ``{name: amount}`` with float amounts; ``TypeError``/``ValueError`` naming
    ``what`` for anything else (names are non-empty strings without ``=``, ``,`` or white space;
    amounts are finite numbers, not negative). ``None`` is no resources.

    >>> check_resources({'GPU': 1, 'MEM': 10e9})
    {'GPU': 1.0, 'MEM': 10000000000.0}
    >>> check_resources(None)
    {}
    >>> check_resources({'GPU': -1})
    Traceback (most recent call last):
    ...
    ValueError: resources: the amount of 'GPU' must be a finite number >= 0, not -1
    """
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise TypeError(f"{what} must be a dict of resource names to amounts, such as {{'GPU': 1}}, "
                        f"not {resources!r}")
    out = {}
    for name, amount in resources.items():
        if not isinstance(name, str) or not name or any(c in name for c in "=,") or any(c.isspace() for c in name):
            raise ValueError(f"{what}: a resource name is a word such as 'GPU', not {name!r}")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) or amount < 0:
            raise ValueError(f"{what}: the amount of {name!r} must be a finite number >= 0, not {amount!r}")
        out[name] = float(amount)
    return out


def parse_resources(text: str | None) -> dict[str, float]:
    """The ``--resources`` option of ``lazyarr-worker``: ``NAME=AMOUNT`` pairs separated by commas
    or spaces (Dask writes ``"GPU=2 MEM=10e9"``).

    >>> parse_resources("GPU=2,MEM=10e9")
    {'GPU': 2.0, 'MEM': 10000000000.0}
    >>> parse_resources("GPU=2 MEM=10e9") == parse_resources("GPU=2, MEM=10e9")
    True
    >>> parse_resources("")
    {}
    """
    pairs: dict[str, Any] = {}
    for item in (text or "").replace(",", " ").split():
        name, sep, amount = item.partition("=")
        if not sep or not name:
            raise ValueError(f"--resources takes NAME=AMOUNT pairs such as 'GPU=2,MEM=10e9', not {item!r}")
        if name in pairs:
            raise ValueError(f"--resources names {name!r} twice")
        try:
            pairs[name] = float(amount)
        except ValueError:
            raise ValueError(f"--resources: the amount of {name!r} must be a number, not {amount!r}") from None
    return check_resources(pairs, "--resources")


def format_resources(resources: Mapping[str, float]) -> str:
    """The ``--resources`` text for ``resources`` (exact: amounts as Python writes floats).

    >>> format_resources({'GPU': 2.0, 'MEM': 1e10})
    'GPU=2.0,MEM=10000000000.0'
    >>> parse_resources(format_resources({'X': 0.1})) == {'X': 0.1}
    True
    """
    return ",".join(f"{name}={float(amount)!r}" for name, amount in resources.items())
