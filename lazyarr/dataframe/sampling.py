"""Random samples of rows, drawn partition by partition (as Dask's ``sample``)."""
from __future__ import annotations

import functools
from numbers import Number
from typing import Any

import numpy as np
import pandas as pd

from ..tokenize import tokenize
from .core import _Frame, merge_layers, new_collection

__all__ = ["sample", "partition_seeds"]


def partition_seeds(n: int, random_state: Any = None) -> list[np.ndarray]:
    """One Mersenne-Twister state (624 words) per partition, drawn from ``random_state``.

    ``random_state`` is an int seed, a ``numpy.random.RandomState`` (advanced by the draw, so
    two calls differ), or ``None`` for fresh entropy. The same int gives the same states.

    >>> [s.shape for s in partition_seeds(2, 42)]
    [(624,), (624,)]
    >>> bool((partition_seeds(1, 42)[0] == partition_seeds(1, 42)[0]).all())
    True
    """
    if not isinstance(random_state, np.random.RandomState):
        random_state = np.random.RandomState(random_state)
    words = np.frombuffer(random_state.bytes(624 * 4 * n), dtype=np.uint32)
    return list(words.reshape(n, 624))


def _sample_partition(part: Any, seed: np.ndarray, frac: float, replace: bool) -> Any:
    if len(part) == 0:
        return part
    rs = np.random.RandomState(seed)
    # Draw positions rather than rows, then keep them in their original order: the rows are the
    # ones pandas would pick with this state, and a sorted index keeps known divisions valid.
    positions = pd.Series(np.arange(len(part))).sample(frac=frac, replace=replace, random_state=rs)
    return part.iloc[np.sort(positions.to_numpy())]


def sample(x: _Frame, n: Any = None, frac: float | None = None, replace: bool = False,
           random_state: Any = None) -> Any:
    """About ``frac`` of the rows of each partition, chosen at random (``replace=True``: with repeats).

    Each partition gets its own random state drawn from ``random_state``, so the sample is the
    same for the same seed and partitioning. Sampled rows keep their order within a partition.
    A fixed number of rows (``n=``) is not supported: the partition lengths are not known.

    >>> import lazyarr.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({'x': range(100)}), npartitions=4)
    >>> len(sample(ddf, frac=0.2, random_state=1))  # 5 of the 25 rows of each partition
    20
    """
    if n is not None:
        raise ValueError("sample does not support the number of sampled items parameter, 'n': the lengths of "
                         "the partitions are not known. Please use the 'frac' parameter instead")
    if frac is None:
        raise ValueError("sample needs frac=, the fraction of rows to keep")
    if not isinstance(frac, Number) or frac < 0:
        raise ValueError(f"frac must be a non-negative number, got {frac!r}")
    if frac > 1 and not replace:
        raise ValueError(f"frac={frac} > 1 draws more rows than there are: pass replace=True to sample with repeats")
    seeds = partition_seeds(x.npartitions, random_state)
    name = f"sample-{tokenize(x, frac, replace, seeds)}"
    # each state rides inside its partial, out of sight of graph traversal (it is an array, not a key)
    layer = {(name, i): (functools.partial(_sample_partition, seed=seed, frac=frac, replace=replace), (x._name, i))
             for i, seed in enumerate(seeds)}
    return new_collection(merge_layers(x, {name: layer}), name, x._meta, x.divisions)
