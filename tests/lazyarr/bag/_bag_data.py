"""Seeded random data for the bag tests (compared against plain Python in every test)."""
from __future__ import annotations

import random


def random_ints(seed: int, n: int, low: int = -50, high: int = 50) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(n)]


def random_words(seed: int, n: int, vocabulary: int = 30) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 5))) for _ in range(vocabulary)]
    return [rng.choice(words) for _ in range(n)]


def random_records(seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    names = ["ann", "bo", "cy", "dee", "eve", "fay", "gus"]
    return [{"name": rng.choice(names), "age": rng.randint(0, 90), "score": rng.random()} for _ in range(n)]
