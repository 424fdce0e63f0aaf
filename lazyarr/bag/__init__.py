"""lazyarr.bag: parallel collections of arbitrary Python objects (log lines, JSON records, text).

>>> import lazyarr.bag as db
>>> b = db.from_sequence(['a b', 'b c', 'c'], npartitions=2)
>>> sorted(b.str.split().flatten().frequencies().compute(scheduler='sync'))
[('a', 1), ('b', 2), ('c', 2)]

Work on bags is pure Python, so the default scheduler is ``'processes'`` (it sidesteps the GIL).
See ``docs/bag.md`` for the guide.
"""
from __future__ import annotations

from .. import config as _config

_config.update_defaults({"bag": {"split-every": 8, "shuffle": None, "max-branch": 32}})

from .chunk import no_default  # noqa: E402
from .core import (  # noqa: E402
    Bag,
    Item,
    StringAccessor,
    bag_map as map,
    bag_range as range,
    bag_zip as zip,
    concat,
    from_delayed,
    from_sequence,
    map_partitions,
)
from . import random  # noqa: E402  (db.random.sample / db.random.choices, as in Dask)
from .shuffle import stable_hash  # noqa: E402
from .text import read_text, to_textfiles  # noqa: E402

__all__ = [
    "Bag",
    "Item",
    "StringAccessor",
    "concat",
    "from_delayed",
    "from_sequence",
    "map",
    "map_partitions",
    "no_default",
    "random",
    "range",
    "read_text",
    "stable_hash",
    "to_textfiles",
    "zip",
]
