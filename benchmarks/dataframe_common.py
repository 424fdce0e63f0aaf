"""Helpers shared by the dataframe benchmark scripts."""
from __future__ import annotations

import time
from collections.abc import Callable


def race(repeat: int, funcs: dict[str, Callable], stat: Callable = min) -> dict:
    """``stat`` (best by default) of the times and last result of each function, running them in turn
    so load drifts hit all alike."""
    times: dict = {name: [] for name in funcs}
    results: dict = {}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.perf_counter()
            results[name] = func()
            times[name].append(time.perf_counter() - start)
    return {name: (stat(times[name]), results[name]) for name in funcs}
