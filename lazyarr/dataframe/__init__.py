"""lazyarr.dataframe: pandas DataFrames split into partitions, computed lazily and in parallel.

>>> import pandas as pd
>>> import lazyarr.dataframe as dd
>>> pdf = pd.DataFrame({'key': [1, 2, 1, 2], 'x': [1.0, 2.0, 3.0, 4.0]})
>>> ddf = dd.from_pandas(pdf, npartitions=2)
>>> ddf.groupby('key').x.sum().compute()
key
1    4.0
2    6.0
Name: x, dtype: float64

See docs/dataframe.md for the user guide.
"""
from .convert import to_datetime, to_numeric  # noqa: F401
from .core import DataFrame, Index, Scalar, Series, map_partitions  # noqa: F401
from .io import (  # noqa: F401
    from_array,
    from_delayed,
    from_dict,
    from_pandas,
    read_csv,
    read_parquet,
    to_bag,
    to_csv,
    to_delayed,
    to_parquet,
)
from .io.json import read_json, to_json  # noqa: F401
from .io.table import read_table  # noqa: F401
from .multi import concat, merge  # noqa: F401
from .overlap import map_overlap  # noqa: F401
from .repartition import repartition  # noqa: F401
from .reshape import get_dummies, melt, pivot_table  # noqa: F401
from .utils import assert_eq, make_meta  # noqa: F401

__all__ = [
    "DataFrame", "Series", "Index", "Scalar", "map_partitions", "from_pandas", "from_dict", "from_array",
    "from_delayed", "to_delayed", "to_bag", "read_csv", "to_csv", "read_parquet", "to_parquet", "concat", "merge",
    "repartition", "assert_eq", "make_meta", "map_overlap",
    "read_json", "to_json", "read_table", "to_datetime", "to_numeric", "get_dummies", "melt", "pivot_table",
]
