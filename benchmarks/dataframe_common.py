"""Helpers shared by the dataframe benchmark scripts."""
from __future__ import annotations

import time
from collections.abc import Callable


def race(repeat: int, funcs: dict[str, Callable]) -> dict:
    """Best time and last result of each function, running them in turn so load drifts hit all alike."""
    best = {name: float("inf") for name in funcs}
    results: dict = {}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.perf_counter()
            results[name] = func()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: (best[name], results[name]) for name in funcs}
