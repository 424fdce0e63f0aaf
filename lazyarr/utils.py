"""Small pure helpers shared across lazyarr: names of functions and keys, byte and time formats.

Nothing here imports numpy or pandas, so every module may use it without slowing ``import lazyarr``.
"""
from __future__ import annotations

import functools
import re
from typing import Any

__all__ = [
    "funcname",
    "key_split",
    "parse_bytes",
    "format_bytes",
    "format_time",
    "ensure_list",
]


def funcname(func: Any) -> str:
    """A short readable name for a callable.

    >>> funcname(len)
    'len'
    >>> import functools
    >>> funcname(functools.partial(max, 1))
    'max'
    """
    while isinstance(func, functools.partial):
        func = func.func
    name = getattr(func, "__name__", None)
    if name is None or name == "<lambda>":
        name = "lambda" if name else type(func).__name__
    return str(name)


_HEX_TOKEN = re.compile(r"^[0-9a-f]{8,}$")


def key_split(key: Any) -> str:
    """The human part of a key: the name without its token or block index.

    Used to group tasks by kind in progress bars and dashboards.

    >>> key_split('sum-aggregate-3f2a9b1c0d4e5f60')
    'sum-aggregate'
    >>> key_split(('random_normal-0123456789abcdef', 4))
    'random_normal'
    >>> key_split('x')
    'x'
    """
    if isinstance(key, tuple):
        key = key[0] if key else ""
    if isinstance(key, bytes):
        key = key.decode(errors="replace")
    if not isinstance(key, str):
        return str(key)
    words = key.split("-")
    kept = [words[0]]
    for word in words[1:]:
        if _HEX_TOKEN.match(word) or (len(word) >= 8 and word.isalnum() and any(c.isdigit() for c in word)):
            break
        kept.append(word)
    return "-".join(kept)


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "pb": 10**15,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "pib": 2**50,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
    "t": 10**12,
}


def parse_bytes(text: str | int | float) -> int:
    """Parse a size such as ``'128 MiB'`` or ``'4GB'`` into a number of bytes.

    >>> parse_bytes('128 MiB')
    134217728
    >>> parse_bytes('1.5kB')
    1500
    >>> parse_bytes(100)
    100
    """
    if isinstance(text, (int, float)):
        return int(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match:
        raise ValueError(f"cannot parse {text!r} as a size; expected e.g. '128MiB' or '2 GB'")
    number, unit = match.groups()
    unit = unit.lower()
    if unit not in _BYTE_UNITS:
        raise ValueError(
            f"unknown size unit {unit!r} in {text!r}; use one of B, kB, MB, GB, TB, KiB, MiB, GiB, TiB"
        )
    return int(float(number) * _BYTE_UNITS[unit])


def format_bytes(n: float) -> str:
    """Format a number of bytes for people.

    >>> format_bytes(1)
    '1 B'
    >>> format_bytes(1234567)
    '1.18 MiB'
    """
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size * 0.9:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def format_time(seconds: float) -> str:
    """Format a duration for people.

    >>> format_time(0.0012)
    '1.20 ms'
    >>> format_time(75)
    '1min 15.0s'
    """
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}min {seconds:.1f}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}hr {int(minutes)}min"


def ensure_list(x: Any) -> list:
    """Wrap a single value in a list; pass lists and tuples through as lists.

    >>> ensure_list(1)
    [1]
    >>> ensure_list((1, 2))
    [1, 2]
    """
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]
