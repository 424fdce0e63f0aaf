"""Reading and writing lazy frames: pandas/dicts/arrays/delayed (io), CSV (csv), parquet (parquet)."""
from .io import from_array, from_delayed, from_dict, from_pandas, to_bag, to_delayed  # noqa: F401
from .csv import read_csv, to_csv  # noqa: F401
from .parquet import read_parquet, to_parquet  # noqa: F401
