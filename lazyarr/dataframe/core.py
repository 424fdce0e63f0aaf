"""Lazy partitioned pandas collections: DataFrame, Series, Index and Scalar.

A lazy frame is a task graph whose output keys ``(name, 0) ... (name, npartitions - 1)`` each
compute to one pandas partition, plus

* ``_meta``: an empty pandas object with the result's columns, dtypes and index type;
* ``divisions``: ``npartitions + 1`` sorted index boundaries (partition ``i`` holds index values
  in ``[divisions[i], divisions[i+1])``, the last one also ``divisions[-1]``), or all ``None``
  when unknown;
* ``_origin``: a token shared by frames whose partitions are known to line up row for row (the
  same source, transformed partition-wise); with unknown divisions only such frames combine.

The graph is kept as named layers (``layer name -> {key: task}``) so that combining collections
merges a handful of dicts rather than every task.
"""
from __future__ import annotations

import functools
import operator
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from numbers import Number
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_list_like, is_scalar

from .. import config
from ..base import LazyarrMethodsMixin
from ..tokenize import tokenize
from ..utils import funcname
from .utils import (
    apply_and_enforce,
    check_meta,
    concat_parts,
    make_meta,
    meta_nonempty,
    raise_unknown_columns,
)

__all__ = ["DataFrame", "Series", "Index", "Scalar", "map_partitions", "new_collection", "no_default"]

config.update_defaults({"dataframe": {"split-every": 8, "shuffle": {"method": None}}})


class _NoDefault:
    def __repr__(self) -> str:
        return "<no_default>"


no_default: Any = _NoDefault()


# ---------------------------------------------------------------- graph layers

def merge_layers(*sources: Any) -> dict:
    """Combine the layer dicts of collections (or plain ``{name: layer}`` dicts)."""
    out: dict = {}
    for src in sources:
        if src is None:
            continue
        layers = src._layers if hasattr(src, "_layers") else src
        out.update(layers)
    return out


def _flatten_layers(layers: Mapping) -> dict:
    graph: dict = {}
    for layer in layers.values():
        graph.update(layer)
    return graph


def optimize(dsk: Mapping, keys: Any, **kwargs: Any) -> dict:
    """Cull to ``keys`` and fuse linear chains (the shared :func:`lazyarr.optimization.cull_and_fuse`)."""
    from ..optimization import cull_and_fuse

    return cull_and_fuse(dsk, keys, **kwargs)


# ---------------------------------------------------------------- calling helpers

class _Slot:
    """Marks where a computed value goes among a task's static arguments."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __repr__(self) -> str:
        return f"_Slot({self.i})"

    def __lazyarr_tokenize__(self) -> Any:
        return ("slot", self.i)


def _call(func: Callable, template: tuple, kwargs: dict, *values: Any) -> Any:
    args = [values[a.i] if isinstance(a, _Slot) else a for a in template]
    kw = {k: values[v.i] if isinstance(v, _Slot) else v for k, v in kwargs.items()}
    return func(*args, **kw)


def _partition_key(arg: Any, i: int) -> Any:
    if isinstance(arg, _Frame):
        return (arg._name, i)
    return (arg._name, 0)


def is_lazy(x: Any) -> bool:
    """Is ``x`` a lazy frame or scalar of this module?"""
    return isinstance(x, (_Frame, Scalar))


def _meta_of(x: Any, nonempty: bool = True) -> Any:
    if isinstance(x, _Frame):
        return meta_nonempty(x._meta) if nonempty else x._meta
    if isinstance(x, Scalar):
        return x._meta
    return x


def emulate(func: Callable, *args: Any, udf: bool = False, **kwargs: Any) -> Any:
    """Run ``func`` on fake nonempty partitions of the lazy ``args`` and return the result's meta."""
    fake_args = [_meta_of(a) for a in args]
    fake_kwargs = {k: _meta_of(v) for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = func(*fake_args, **fake_kwargs)
        except (KeyError, TypeError, AttributeError) as e:
            if not udf:
                raise
            raise ValueError(
                f"could not infer the output of {funcname(func)} by running it on a sample "
                f"partition ({type(e).__name__}: {e}); pass meta= describing the output"
            ) from e
        except Exception as e:
            raise ValueError(
                f"could not infer the output of {funcname(func)} by running it on a sample "
                f"partition ({type(e).__name__}: {e}); pass meta= describing the output"
            ) from e
    return make_meta(out)


def _to_series_if_scalar(func: Callable, *args: Any, **kwargs: Any) -> Any:
    out = func(*args, **kwargs)
    if isinstance(out, (pd.DataFrame, pd.Series, pd.Index)):
        return out
    return pd.Series([out])


def map_partitions(func: Callable, *args: Any, meta: Any = no_default, token: str | None = None,
                   align: bool = True, keep_divisions: bool = True, new_origin: bool = False,
                   enforce_metadata: bool = False, **kwargs: Any) -> Any:
    """Apply ``func`` to each partition of the lazy frames in ``args`` (others passed as they are).

    Lazy frames among ``args`` are aligned first (see :func:`align_partitions`); lazy scalars are
    passed as their values. The result's meta comes from ``meta=`` if given (a pandas object,
    a dict of column -> dtype, a ``(name, dtype)`` tuple or a dtype), else from running ``func`` on
    fake nonempty partitions. A ``func`` returning scalars gives a Series with one row per partition.

    >>> import pandas as pd, lazyarr.dataframe as dd
    >>> ddf = dd.from_pandas(pd.DataFrame({'x': range(6)}), npartitions=2)
    >>> map_partitions(len, ddf).compute().tolist()
    [3, 3]
    """
    frames = [a for a in list(args) + list(kwargs.values()) if isinstance(a, _Frame)]
    if not frames:
        raise TypeError(f"map_partitions needs at least one lazy DataFrame, Series or Index among the arguments")
    if align and len(frames) > 1:
        args, kwargs = _align_args(args, kwargs)
        frames = [a for a in list(args) + list(kwargs.values()) if isinstance(a, _Frame)]
    first = frames[0]
    if meta is no_default:
        meta = emulate(func, *args, udf=True, **kwargs)
    else:
        meta = make_meta(meta)
        if isinstance(meta, (pd.Series, pd.DataFrame)):
            func = functools.partial(apply_and_enforce, func, _meta=meta)
    if not isinstance(meta, (pd.DataFrame, pd.Series, pd.Index)):
        func = functools.partial(_to_series_if_scalar, func)
        meta = pd.Series([], dtype=np.asarray(meta).dtype if meta is not None else object)
        keep_divisions = False
    name = f"{token or funcname(func)}-{tokenize(func, meta, args, kwargs)}"
    lazy, call = lazy_call(func, args, kwargs)
    if enforce_metadata:
        call = functools.partial(_checked, call, meta, name)
    n = first.npartitions
    layer = {(name, i): (call, *[_partition_key(a, i) for a in lazy]) for i in range(n)}
    divisions = first.divisions if keep_divisions else (None,) * (n + 1)
    origin = name if new_origin else first._origin
    return new_collection(merge_layers(*lazy, {name: layer}), name, meta, divisions, origin=origin)


def lazy_call(func: Callable, args: Sequence, kwargs: Mapping) -> tuple[list, Callable]:
    """The lazy objects among ``args``/``kwargs``, and ``func`` bound to the rest.

    The returned callable takes the values of the lazy objects (in the order listed) and calls
    ``func`` with them in their places.
    """
    lazy: list = []
    template: list = []
    for a in args:
        if is_lazy(a):
            template.append(_Slot(len(lazy)))
            lazy.append(a)
        else:
            template.append(a)
    kw_template: dict = {}
    for k, v in kwargs.items():
        if is_lazy(v):
            kw_template[k] = _Slot(len(lazy))
            lazy.append(v)
        else:
            kw_template[k] = v
    return lazy, functools.partial(_call, func, tuple(template), kw_template)


def _checked(call: Callable, meta: Any, name: str, *values: Any) -> Any:
    return check_meta(call(*values), meta, f"the output of {name}")


def partitionwise(func: Callable, *args: Any, meta: Any = no_default, token: str | None = None, **kwargs: Any) -> Any:
    """:func:`map_partitions` for lazyarr's own pandas-level operations (meta errors are the user's)."""
    if meta is no_default:
        meta = emulate(func, *args, **kwargs)
    return map_partitions(func, *args, meta=meta, token=token, **kwargs)


# ---------------------------------------------------------------- alignment

def _divisions_known(divisions: tuple) -> bool:
    return len(divisions) > 0 and all(d is not None for d in divisions)


def _align_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    frames = [a for a in list(args) + list(kwargs.values()) if isinstance(a, _Frame)]
    aligned = align_partitions(*frames)
    lookup = {id(f): a for f, a in zip(frames, aligned)}
    new_args = tuple(lookup.get(id(a), a) if isinstance(a, _Frame) else a for a in args)
    new_kwargs = {k: lookup.get(id(v), v) if isinstance(v, _Frame) else v for k, v in kwargs.items()}
    return new_args, new_kwargs


class AlignmentError(ValueError):
    """Lazy frames whose partitions cannot be matched up by index."""


def align_partitions(*frames: Any) -> list:
    """Frames with matching partitions, so that partition ``i`` of each covers the same index values.

    Frames with equal divisions (or the same origin, if divisions are unknown) are returned as
    they are; frames with different known divisions are repartitioned to the union of their
    divisions. Otherwise an :class:`AlignmentError` explains what to do.
    """
    frames = list(frames)
    ref = frames[0]
    if all(f.divisions == ref.divisions and f.npartitions == ref.npartitions for f in frames):
        if _divisions_known(ref.divisions) or all(f._origin == ref._origin for f in frames):
            return frames
    if all(_divisions_known(f.divisions) for f in frames):
        from .repartition import repartition_divisions

        union = sorted(set().union(*[set(f.divisions) for f in frames]))
        return [f if tuple(f.divisions) == tuple(union) else repartition_divisions(f, tuple(union)) for f in frames]
    names = ", ".join(f"{type(f).__name__} with {f.npartitions} partitions and "
                      f"{'known' if _divisions_known(f.divisions) else 'unknown'} divisions" for f in frames)
    raise AlignmentError(
        f"cannot align the partitions of {names}: their index values are not known to fall in the same "
        f"partitions. Use set_index() or repartition(divisions=...) so both have known divisions, or "
        f"derive both from the same frame partition-wise"
    )


# ---------------------------------------------------------------- construction

def new_collection(layers: Mapping, name: str, meta: Any, divisions: Sequence, origin: str | None = None) -> Any:
    """The lazy collection type matching ``meta`` (DataFrame, Series, Index or Scalar)."""
    if isinstance(meta, pd.DataFrame):
        return DataFrame(layers, name, meta, divisions, origin)
    if isinstance(meta, pd.Series):
        return Series(layers, name, meta, divisions, origin)
    if isinstance(meta, pd.Index):
        return Index(layers, name, meta, divisions, origin)
    return Scalar(layers, name, meta)


def _rebuild(dsk: Mapping, name: str, meta: Any, divisions: tuple, origin: str) -> Any:
    return new_collection({name: dict(dsk)}, name, meta, divisions, origin)


def _finalize(results: Sequence) -> Any:
    return concat_parts(list(results))


def _finalize_scalar(results: Any) -> Any:
    return results


class _Frame(LazyarrMethodsMixin):
    """What DataFrame, Series and Index share: graph, meta, divisions and partition-wise methods."""

    __lazyarr_scheduler__ = "threads"
    __lazyarr_optimize__ = staticmethod(optimize)

    def __init__(self, layers: Mapping, name: str, meta: Any, divisions: Sequence, origin: str | None = None):
        if not isinstance(meta, self._pandas_type):
            raise TypeError(f"meta of a {type(self).__name__} must be a pandas {self._pandas_type.__name__}, "
                            f"not {type(meta).__name__}")
        self._layers = dict(layers)
        self._name = name
        self._meta = meta
        self.divisions = tuple(divisions)
        if len(self.divisions) < 2:
            raise ValueError("divisions must have npartitions + 1 entries")
        self._origin = origin or name

    # -- protocol
    def __lazyarr_graph__(self) -> dict:
        return _flatten_layers(self._layers)

    def __lazyarr_keys__(self) -> list:
        return [(self._name, i) for i in range(self.npartitions)]

    def __lazyarr_postcompute__(self) -> tuple:
        return _finalize, ()

    def __lazyarr_postpersist__(self) -> tuple:
        return _rebuild, (self._name, self._meta, self.divisions, self._origin)

    def __lazyarr_tokenize__(self) -> str:
        return self._name

    # -- structure
    @property
    def npartitions(self) -> int:
        """The number of partitions."""
        return len(self.divisions) - 1

    @property
    def known_divisions(self) -> bool:
        """Are the index boundaries of the partitions known?"""
        return _divisions_known(self.divisions)

    @property
    def name(self) -> Any:
        """The name (Series, Index)."""
        return self._meta.name

    @property
    def dask(self) -> dict:
        """The flat task graph (for tools expecting Dask's attribute)."""
        return self.__lazyarr_graph__()

    def __len__(self) -> int:
        from .reductions import partition_lengths

        return int(sum(partition_lengths(self)))

    def __bool__(self) -> bool:
        raise ValueError(f"the truth value of a lazy {type(self).__name__} is ambiguous; "
                         "compute it first or use .any()/.all()")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.compute(), dtype=dtype)

    def __iter__(self):
        raise TypeError(f"a lazy {type(self).__name__} cannot be iterated; compute() it or use "
                        "map_partitions")

    def clear_divisions(self) -> Any:
        """The same collection with divisions forgotten."""
        return new_collection(self._layers, self._name, self._meta, (None,) * (self.npartitions + 1), self._origin)

    def get_partition(self, n: int) -> Any:
        """Partition ``n`` as a one-partition collection."""
        if not 0 <= n < self.npartitions:
            raise IndexError(f"partition {n} out of range: there are {self.npartitions}")
        return self.partitions[n]

    @property
    def partitions(self) -> "_PartitionSelector":
        """Select partitions by position: ``ddf.partitions[2]``, ``ddf.partitions[::2]``."""
        return _PartitionSelector(self)

    def _select_partitions(self, positions: list) -> Any:
        name = f"partitions-{tokenize(self, positions)}"
        layer = {(name, j): (self._name, i) for j, i in enumerate(positions)}
        if self.known_divisions and positions == list(range(positions[0], positions[-1] + 1)):
            divisions = self.divisions[positions[0]: positions[-1] + 2]
        else:
            divisions = (None,) * (len(positions) + 1)
        return new_collection(merge_layers(self, {name: layer}), name, self._meta, divisions)

    def map_partitions(self, func: Callable, *args: Any, meta: Any = no_default, **kwargs: Any) -> Any:
        """Apply ``func(partition, *args, **kwargs)`` to every partition (see :func:`map_partitions`)."""
        return map_partitions(func, self, *args, meta=meta, **kwargs)

    def _partitionwise(self, func: Callable, *args: Any, token: str | None = None, meta: Any = no_default,
                       **kwargs: Any) -> Any:
        return partitionwise(func, self, *args, token=token, meta=meta, **kwargs)

    def _method(self, method: str, *args: Any, meta: Any = no_default, **kwargs: Any) -> Any:
        return partitionwise(_call_method, self, method, *args, token=method, meta=meta, **kwargs)

    def to_delayed(self, optimize_graph: bool = True) -> list:
        """One Delayed per partition (see :mod:`lazyarr.delayed`)."""
        from .io.io import to_delayed

        return to_delayed(self, optimize_graph=optimize_graph)

    def to_bag(self, index: bool = False, format: str = "tuple") -> Any:
        """A lazyarr Bag of the rows (tuples, or dicts with ``format='dict'``)."""
        from .io.io import to_bag

        return to_bag(self, index=index, format=format)

    def repartition(self, divisions: Sequence | None = None, npartitions: int | None = None,
                    partition_size: int | str | None = None) -> Any:
        """Change the partitioning: to given ``divisions``, a number of partitions, or a size per partition."""
        from .repartition import repartition

        return repartition(self, divisions=divisions, npartitions=npartitions, partition_size=partition_size)

    # -- looking at data
    def head(self, n: int = 5, npartitions: int = 1, compute: bool = True) -> Any:
        """The first ``n`` rows, computing only the first ``npartitions`` partitions (-1: all as needed)."""
        if npartitions == -1:
            npartitions = self.npartitions
        if not 1 <= npartitions <= self.npartitions:
            raise ValueError(f"npartitions={npartitions} but there are {self.npartitions} partitions")
        name = f"head-{n}-{npartitions}-{tokenize(self)}"
        parts = [(self._name, i) for i in range(npartitions)]
        layer = {(name, 0): (_head_of_concat, parts, n)}
        result = new_collection(merge_layers(self, {name: layer}), name, self._meta,
                                (self.divisions[0], self.divisions[npartitions]))
        if not compute:
            return result
        out = result.compute()
        if len(out) < n and npartitions < self.npartitions:
            warnings.warn(f"asked for {n} rows but only {len(out)} were in the first {npartitions} partition(s); "
                          f"try head(n, npartitions=-1)", UserWarning, stacklevel=2)
        return out

    def tail(self, n: int = 5, compute: bool = True) -> Any:
        """The last ``n`` rows of the last partition."""
        name = f"tail-{n}-{tokenize(self)}"
        layer = {(name, 0): (_tail, (self._name, self.npartitions - 1), n)}
        result = new_collection(merge_layers(self, {name: layer}), name, self._meta,
                                self.divisions[-2:])
        return result.compute() if compute else result

    def _repr_data(self) -> pd.DataFrame:
        meta = self._meta
        if isinstance(meta, pd.DataFrame):
            cols = list(meta.columns)
            dtypes = [str(meta.dtypes.iloc[i]) for i in range(len(cols))]
        else:
            cols = [meta.name if meta.name is not None else ""]
            dtypes = [str(meta.dtype)]
        n = self.npartitions
        if self.known_divisions:
            labels = [str(d) for d in self.divisions]
        else:
            labels = [""] * (n + 1)
        if n + 1 > 7:
            labels = labels[:3] + ["..."] + labels[-3:]
        rows = [dtypes] + [["..."] * len(cols) for _ in labels[1:]]
        frame = pd.DataFrame(rows, columns=[str(c) for c in cols], index=labels, dtype=object)
        frame.index.name = self._meta.index.name if not isinstance(meta, pd.Index) else meta.name
        return frame

    def _repr_header(self) -> str:
        return f"lazyarr {type(self).__name__} npartitions={self.npartitions}"

    def __repr__(self) -> str:
        tasks = sum(len(layer) for layer in self._layers.values())
        body = self._repr_data().to_string()
        return f"{self._repr_header()}\n{body}\nlazyarr: {self._name.rsplit('-', 1)[0]}, {tasks} tasks"

    def _repr_html_(self) -> str:
        tasks = sum(len(layer) for layer in self._layers.values())
        return (f"<div><strong>{self._repr_header()}</strong>{self._repr_data().to_html()}"
                f"<div>lazyarr: {self._name.rsplit('-', 1)[0]}, {tasks} tasks</div></div>")


def _call_method(obj: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(obj, method)(*args, **kwargs)


def _head_of_concat(parts: list, n: int) -> Any:
    out = parts[0] if len(parts) == 1 else concat_parts(parts)
    return out.head(n) if not isinstance(out, pd.Index) else out[:n]


def _tail(part: Any, n: int) -> Any:
    return part.tail(n) if not isinstance(part, pd.Index) else part[-n:]


class _PartitionSelector:
    def __init__(self, frame: _Frame):
        self._frame = frame

    def __getitem__(self, item: Any) -> Any:
        positions = list(np.arange(self._frame.npartitions)[item].reshape(-1))
        if not positions:
            raise IndexError("select at least one partition")
        return self._frame._select_partitions([int(p) for p in positions])


# ---------------------------------------------------------------- operators

def _binary(op: Callable, name: str, reverse: bool = False) -> Callable:
    def method(self: Any, other: Any) -> Any:
        return _elemwise_op(op, other, self, name) if reverse else _elemwise_op(op, self, other, name)

    method.__name__ = name
    method.__doc__ = f"Element-wise ``{name}`` aligned by index (see pandas)."
    return method


def _elemwise_op(op: Callable, a: Any, b: Any, name: str) -> Any:
    for x, other in ((a, b), (b, a)):
        if isinstance(x, pd.DataFrame) or (isinstance(x, pd.Series) and not isinstance(other, DataFrame)):
            raise TypeError(
                f"cannot combine a lazy {type(other).__name__} with a pandas {type(x).__name__} row by row; "
                f"convert it with lazyarr.dataframe.from_pandas(...) first"
            )
    if not isinstance(a, _Frame) and not isinstance(b, _Frame):
        return scalar_op(op, a, b)
    return partitionwise(op, a, b, token=name)


def _unary(op: Callable, name: str) -> Callable:
    def method(self: Any) -> Any:
        return partitionwise(op, self, token=name)

    method.__name__ = name
    return method


_BINARY_OPS = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
    "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "and": operator.and_,
    "or": operator.or_, "xor": operator.xor, "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
    "le": operator.le, "gt": operator.gt, "ge": operator.ge, "matmul": None,
}


def _index_op(op: Callable, a: Any, b: Any) -> Any:
    out = op(a, b)
    return out if isinstance(out, pd.Index) else pd.Index(out)


def _install_operators(cls: type) -> None:
    for short, op in _BINARY_OPS.items():
        if op is None:
            continue
        if cls is Index:
            op = functools.partial(_index_op, op)
        setattr(cls, f"__{short}__", _binary(op, short))
        if short not in ("eq", "ne", "lt", "le", "gt", "ge"):
            setattr(cls, f"__r{short}__", _binary(op, f"r{short}", reverse=True))
    cls.__neg__ = _unary(operator.neg, "neg")
    cls.__pos__ = _unary(operator.pos, "pos")
    cls.__invert__ = _unary(operator.invert, "invert")
    cls.__abs__ = _unary(operator.abs, "abs")


def _named_binary_method(name: str) -> Callable:
    def method(self: Any, other: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(other, Scalar):
            return partitionwise(_call_method_swap, self, other, name, *args, token=name, **kwargs)
        return partitionwise(_call_method, self, name, other, *args, token=name, **kwargs)

    method.__name__ = name
    method.__doc__ = f"Element-wise ``{name}`` with optional ``fill_value``/``axis``, as in pandas."
    return method


def _call_method_swap(obj: Any, other: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    return getattr(obj, method)(other, *args, **kwargs)


def _install_named_binary(cls: type) -> None:
    for short in ("add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow", "radd", "rsub", "rmul",
                  "rdiv", "rtruediv", "rfloordiv", "rmod", "rpow", "eq", "ne", "lt", "le", "gt", "ge"):
        setattr(cls, short, _named_binary_method(short))


# ---------------------------------------------------------------- methods shared by Series and DataFrame

class _NDFrame(_Frame):
    """Methods common to lazy Series and DataFrames."""

    @property
    def index(self) -> "Index":
        """The index, as a lazy Index."""
        return self._partitionwise(_get_index, token="index")

    @property
    def dtypes(self) -> Any:
        return self._meta.dtypes

    # -- row-wise methods (each partition independently)
    def astype(self, dtype: Any) -> Any:
        """Cast to ``dtype`` (a dtype or a dict column -> dtype)."""
        if isinstance(dtype, Mapping) and isinstance(self._meta, pd.DataFrame):
            missing = [c for c in dtype if c not in self._meta.columns]
            if missing:
                raise_unknown_columns(missing, self._meta.columns)
        from .categories import astype_meta

        return self._method("astype", dtype, meta=astype_meta(self._meta, dtype))

    def fillna(self, value: Any = None, axis: Any = None) -> Any:
        """Fill missing values with ``value`` (a scalar, a dict per column or an aligned lazy Series)."""
        if value is None:
            raise ValueError("fillna needs a value (method= filling across partitions is not supported; "
                             "use ffill()/bfill() within partitions via map_partitions)")
        return self._method("fillna", value=value, axis=axis)

    def isna(self) -> Any:
        """Element-wise missing-value mask."""
        return self._method("isna")

    isnull = isna

    def notna(self) -> Any:
        """Element-wise not-missing mask."""
        return self._method("notna")

    notnull = notna

    def where(self, cond: Any, other: Any = np.nan) -> Any:
        """Keep values where ``cond`` is true, else ``other`` (pandas semantics)."""
        return partitionwise(_where, self, cond, other, False, token="where")

    def mask(self, cond: Any, other: Any = np.nan) -> Any:
        """Replace values where ``cond`` is true by ``other`` (pandas semantics)."""
        return partitionwise(_where, self, cond, other, True, token="mask")

    def clip(self, lower: Any = None, upper: Any = None, **kwargs: Any) -> Any:
        """Limit values to ``[lower, upper]``."""
        return self._method("clip", lower=lower, upper=upper, **kwargs)

    def abs(self) -> Any:
        """Absolute values."""
        return self._method("abs")

    def round(self, decimals: int = 0) -> Any:
        """Round to ``decimals`` places."""
        return self._method("round", decimals)

    def isin(self, values: Any) -> Any:
        """Element-wise membership in ``values`` (a list-like, or a dict per column for DataFrames)."""
        if is_lazy(values):
            raise TypeError("isin takes concrete values; compute the lazy collection first")
        if not is_list_like(values) or isinstance(values, str):
            raise TypeError(f"isin needs a list-like of values, not {type(values).__name__}")
        return self._method("isin", values)

    def copy(self, deep: bool = False) -> Any:
        """A new lazy object with the same graph (pandas objects are never mutated in place here)."""
        return new_collection(self._layers, self._name, self._meta, self.divisions, self._origin)

    def reset_index(self, drop: bool = False) -> Any:
        """Reset the index of each partition (positions restart in every partition, as in Dask)."""
        out = self._method("reset_index", drop=drop)
        return out.clear_divisions()

    def dropna(self, **kwargs: Any) -> Any:
        """Drop rows with missing values (``how``, ``subset``, ``thresh`` as in pandas)."""
        subset = kwargs.get("subset")
        if subset is not None and isinstance(self._meta, pd.DataFrame):
            missing = [c for c in ([subset] if is_scalar(subset) else subset) if c not in self._meta.columns]
            if missing:
                raise_unknown_columns(missing, self._meta.columns)
        return self._method("dropna", **kwargs)

    def memory_usage(self, index: bool = True, deep: bool = False, split_every: int | None = None) -> Any:
        """Bytes used, summed over partitions (see :func:`lazyarr.dataframe.stats.memory_usage`)."""
        from .stats import memory_usage

        return memory_usage(self, index=index, deep=deep, split_every=split_every)

    def sample(self, n: Any = None, frac: float | None = None, replace: bool = False,
               random_state: Any = None) -> Any:
        """A random fraction ``frac`` of each partition (see :func:`lazyarr.dataframe.sampling.sample`)."""
        from .sampling import sample

        return sample(self, n=n, frac=frac, replace=replace, random_state=random_state)

    def explode(self, column: Any = None, ignore_index: bool = False) -> Any:
        """One row per element of list-likes (see :func:`lazyarr.dataframe.reshape.explode`)."""
        from .reshape import explode

        return explode(self, column, ignore_index=ignore_index)

    def to_json(self, url_path: Any, orient: str = "records", lines: bool | None = None, compute: bool = True,
                **kwargs: Any) -> Any:
        """Write one JSON file per partition (see :func:`lazyarr.dataframe.io.json.to_json`)."""
        from .io.json import to_json

        return to_json(self, url_path, orient=orient, lines=lines, compute=compute, **kwargs)

    def memory_usage_per_partition(self, index: bool = True, deep: bool = False) -> "Series":
        """Bytes used by each partition, as a lazy Series."""
        return map_partitions(_partition_memory, self, index, deep, meta=pd.Series([], dtype="int64"),
                              keep_divisions=False)

    def pipe(self, func: Callable, *args: Any, **kwargs: Any) -> Any:
        """``func(self, *args, **kwargs)``."""
        return func(self, *args, **kwargs)

    # -- reductions (tree reductions in reductions.py)
    def _reduce(self, how: str, **kwargs: Any) -> Any:
        from . import reductions

        return reductions.reduce_frame(self, how, **kwargs)

    def sum(self, axis: Any = None, skipna: bool = True, numeric_only: bool = False, min_count: int = 0,
            split_every: int | None = None) -> Any:
        """Sum of the values (per column for DataFrames)."""
        if axis in (1, "columns"):
            return self._method("sum", axis=1, skipna=skipna, numeric_only=numeric_only, min_count=min_count)
        return self._reduce("sum", skipna=skipna, numeric_only=numeric_only, min_count=min_count,
                            split_every=split_every)

    def prod(self, axis: Any = None, skipna: bool = True, numeric_only: bool = False, min_count: int = 0,
             split_every: int | None = None) -> Any:
        """Product of the values."""
        if axis in (1, "columns"):
            return self._method("prod", axis=1, skipna=skipna, numeric_only=numeric_only, min_count=min_count)
        return self._reduce("prod", skipna=skipna, numeric_only=numeric_only, min_count=min_count,
                            split_every=split_every)

    product = prod

    def min(self, axis: Any = None, skipna: bool = True, numeric_only: bool = False,
            split_every: int | None = None) -> Any:
        """Minimum of the values."""
        if axis in (1, "columns"):
            return self._method("min", axis=1, skipna=skipna, numeric_only=numeric_only)
        return self._reduce("min", skipna=skipna, numeric_only=numeric_only, split_every=split_every)

    def max(self, axis: Any = None, skipna: bool = True, numeric_only: bool = False,
            split_every: int | None = None) -> Any:
        """Maximum of the values."""
        if axis in (1, "columns"):
            return self._method("max", axis=1, skipna=skipna, numeric_only=numeric_only)
        return self._reduce("max", skipna=skipna, numeric_only=numeric_only, split_every=split_every)

    def any(self, skipna: bool = True, split_every: int | None = None) -> Any:
        """Is any value true?"""
        return self._reduce("any", skipna=skipna, split_every=split_every)

    def all(self, skipna: bool = True, split_every: int | None = None) -> Any:
        """Are all values true?"""
        return self._reduce("all", skipna=skipna, split_every=split_every)

    def count(self, numeric_only: bool = False, split_every: int | None = None) -> Any:
        """Number of non-missing values."""
        return self._reduce("count", numeric_only=numeric_only, split_every=split_every)

    def mean(self, axis: Any = None, skipna: bool = True, numeric_only: bool = False,
             split_every: int | None = None) -> Any:
        """Mean of the values (sum / count, combined exactly)."""
        if axis in (1, "columns"):
            return self._method("mean", axis=1, skipna=skipna, numeric_only=numeric_only)
        return self._reduce("mean", skipna=skipna, numeric_only=numeric_only, split_every=split_every)

    def var(self, axis: Any = None, skipna: bool = True, ddof: int = 1, numeric_only: bool = False,
            split_every: int | None = None) -> Any:
        """Variance, combined from per-partition (count, mean, M2) with Chan's stable formula."""
        if axis in (1, "columns"):
            return self._method("var", axis=1, skipna=skipna, ddof=ddof, numeric_only=numeric_only)
        return self._reduce("var", skipna=skipna, ddof=ddof, numeric_only=numeric_only, split_every=split_every)

    def std(self, axis: Any = None, skipna: bool = True, ddof: int = 1, numeric_only: bool = False,
            split_every: int | None = None) -> Any:
        """Standard deviation (square root of :meth:`var`)."""
        if axis in (1, "columns"):
            return self._method("std", axis=1, skipna=skipna, ddof=ddof, numeric_only=numeric_only)
        return self._reduce("std", skipna=skipna, ddof=ddof, numeric_only=numeric_only, split_every=split_every)

    def sem(self, skipna: bool = True, ddof: int = 1, numeric_only: bool = False,
            split_every: int | None = None) -> Any:
        """Standard error of the mean."""
        return self._reduce("sem", skipna=skipna, ddof=ddof, numeric_only=numeric_only, split_every=split_every)

    @property
    def size(self) -> "Scalar":
        """Number of elements (rows x columns for DataFrames), lazily."""
        return self._reduce("size")

    def nunique(self, dropna: bool = True, split_every: int | None = None) -> Any:
        """Number of distinct values (per column for DataFrames)."""
        return self._reduce("nunique", dropna=dropna, split_every=split_every)

    def idxmin(self, skipna: bool = True, split_every: int | None = None) -> Any:
        """Index label of the first minimum."""
        return self._reduce("idxmin", skipna=skipna, split_every=split_every)

    def idxmax(self, skipna: bool = True, split_every: int | None = None) -> Any:
        """Index label of the first maximum."""
        return self._reduce("idxmax", skipna=skipna, split_every=split_every)

    def quantile(self, q: Any = 0.5, numeric_only: bool = False) -> Any:
        """Approximate quantiles (see :func:`lazyarr.dataframe.reductions.quantile`)."""
        from .reductions import quantile

        return quantile(self, q, numeric_only=numeric_only)

    def describe(self, percentiles: Sequence[float] | None = None, include: Any = None, exclude: Any = None,
                 split_every: int | None = None) -> Any:
        """Summary statistics as in pandas (``include=``/``exclude=`` too); percentiles are approximate."""
        from .reductions import describe

        return describe(self, percentiles=percentiles, include=include, exclude=exclude, split_every=split_every)

    # -- along the rows, across partition boundaries (cumulative.py, overlap.py, rolling.py)
    def _cumulative(self, how: str, axis: Any, skipna: bool, numeric_only: bool) -> Any:
        if axis in (1, "columns"):
            return self._method(how, axis=1, skipna=skipna)
        if axis not in (0, "index", None):
            raise ValueError(f"no axis {axis!r}: use 0 (down the rows) or 1 (along each row)")
        from .cumulative import cumulative

        return cumulative(self, how, skipna=skipna, numeric_only=numeric_only)

    def cumsum(self, axis: Any = 0, skipna: bool = True, numeric_only: bool = False) -> Any:
        """Cumulative sum down the rows, carried across partitions (see :mod:`lazyarr.dataframe.cumulative`)."""
        return self._cumulative("cumsum", axis, skipna, numeric_only)

    def cumprod(self, axis: Any = 0, skipna: bool = True, numeric_only: bool = False) -> Any:
        """Cumulative product down the rows, carried across partitions."""
        return self._cumulative("cumprod", axis, skipna, numeric_only)

    def cummax(self, axis: Any = 0, skipna: bool = True, numeric_only: bool = False) -> Any:
        """Cumulative maximum down the rows, carried across partitions."""
        return self._cumulative("cummax", axis, skipna, numeric_only)

    def cummin(self, axis: Any = 0, skipna: bool = True, numeric_only: bool = False) -> Any:
        """Cumulative minimum down the rows, carried across partitions."""
        return self._cumulative("cummin", axis, skipna, numeric_only)

    def shift(self, periods: int = 1, freq: Any = None, axis: Any = 0, fill_value: Any = no_default) -> Any:
        """Values moved ``periods`` rows down (up if negative) across partitions; with ``freq`` the index moves."""
        from .overlap import shift

        return shift(self, periods, freq=freq, axis=axis, fill_value=fill_value)

    def diff(self, periods: int = 1, axis: Any = 0) -> Any:
        """Difference with the row ``periods`` before (after if negative), across partitions."""
        from .overlap import diff

        return diff(self, periods, axis=axis)

    def pct_change(self, periods: int = 1, fill_method: Any = None, freq: Any = None) -> Any:
        """Relative change from the row ``periods`` before, across partitions."""
        from .overlap import pct_change

        return pct_change(self, periods, fill_method=fill_method, freq=freq)

    def map_overlap(self, func: Callable, before: Any, after: Any, *args: Any, meta: Any = no_default,
                    **kwargs: Any) -> Any:
        """``func`` on each partition extended by ``before``/``after`` rows (or a time span like ``'2h'``)
        of its neighbours, the borrowed rows cut off the result (see :func:`lazyarr.dataframe.overlap.map_overlap`)."""
        from .overlap import map_overlap

        return map_overlap(func, self, before, after, *args, meta=meta, **kwargs)

    def rolling(self, window: Any, min_periods: int | None = None, center: bool = False, win_type: str | None = None,
                closed: str | None = None) -> Any:
        """Moving windows of ``window`` rows or a time span (``'2h'``); see :class:`lazyarr.dataframe.rolling.Rolling`."""
        from .rolling import Rolling

        return Rolling(self, window, min_periods=min_periods, center=center, win_type=win_type, closed=closed)

    def resample(self, rule: Any, closed: str | None = None, label: str | None = None, origin: Any = "start_day",
                 offset: Any = None) -> Any:
        """Aggregate over time bins (``'h'``, ``'ME'``, ...) of a DatetimeIndex with known divisions;
        see :class:`lazyarr.dataframe.resample.Resampler`."""
        from .resample import Resampler

        return Resampler(self, rule, closed=closed, label=label, origin=origin, offset=offset)

    # -- shuffles and friends
    def drop_duplicates(self, subset: Any = None, keep: str = "first", split_out: int = 1,
                        split_every: int | None = None, ignore_index: bool = False) -> Any:
        """Drop duplicated rows: a tree reduction (``split_out=1``) or a hash shuffle (``split_out>1``)."""
        from .shuffle import drop_duplicates

        return drop_duplicates(self, subset=subset, keep=keep, split_out=split_out, split_every=split_every,
                               ignore_index=ignore_index)

    def shuffle(self, on: Any, npartitions: int | None = None, method: str | None = None) -> Any:
        """Hash-partition the rows on column(s) ``on`` so equal keys share a partition."""
        from .shuffle import shuffle

        return shuffle(self, on, npartitions=npartitions, method=method)

    @property
    def loc(self) -> Any:
        """Label-based selection; uses divisions to read only the partitions needed."""
        from .indexing import LocIndexer

        return LocIndexer(self)

    def to_csv(self, path: Any, single_file: bool = False, compute: bool = True, **kwargs: Any) -> Any:
        """Write CSV: one file per partition (``path`` with ``*``, or a directory) or one file."""
        from .io.csv import to_csv

        return to_csv(self, path, single_file=single_file, compute=compute, **kwargs)

    @property
    def values(self) -> Any:
        """The values as a lazyarr Array (unknown chunk sizes)."""
        from .io.io import to_array

        return to_array(self)

    def to_dask_array(self, lengths: Any = None) -> Any:
        """The values as a lazyarr Array; ``lengths=True`` computes the row chunk sizes."""
        from .io.io import to_array

        return to_array(self, lengths=lengths)


def _get_index(x: Any) -> pd.Index:
    return x.index


def _partition_memory(x: Any, index: bool, deep: bool) -> pd.Series:
    usage = x.memory_usage(index=index, deep=deep)
    return pd.Series([int(usage.sum()) if isinstance(usage, pd.Series) else int(usage)], dtype="int64")


def _where(x: Any, cond: Any, other: Any, invert: bool) -> Any:
    if invert:
        return x.mask(cond, other)
    return x.where(cond, other)


# ---------------------------------------------------------------- DataFrame

class DataFrame(_NDFrame):
    """A lazy pandas DataFrame made of partitions (see the module docstring)."""

    _pandas_type = pd.DataFrame

    @property
    def columns(self) -> pd.Index:
        """The column labels (from meta)."""
        return self._meta.columns

    @columns.setter
    def columns(self, columns: Any) -> None:
        renamed = self.rename(columns=dict(zip(self._meta.columns, columns)))
        if len(columns) != len(self._meta.columns):
            raise ValueError(f"got {len(columns)} column names for {len(self._meta.columns)} columns")
        self._assign_from(renamed)

    @property
    def shape(self) -> tuple:
        """(rows, columns); the row count is computed when used as a number."""
        return (_LazyLength(self), len(self.columns))

    @property
    def ndim(self) -> int:
        """2."""
        return 2

    def _assign_from(self, other: "DataFrame") -> None:
        self._layers, self._name, self._meta = other._layers, other._name, other._meta
        self.divisions, self._origin = other.divisions, other._origin

    def __dir__(self) -> list:
        cols = [c for c in self._meta.columns if isinstance(c, str) and c.isidentifier()]
        return sorted(set(super().__dir__()) | set(cols))

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        meta = self.__dict__.get("_meta")
        if meta is not None and key in meta.columns:
            return self[key]
        raise AttributeError(f"'DataFrame' object has no attribute {key!r}")

    def _check_columns(self, keys: Iterable) -> None:
        cols = self._meta.columns
        missing = [k for k in keys if k not in cols]
        if missing:
            raise_unknown_columns(missing, cols)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return self.loc[key]
        if isinstance(key, Series):
            if not is_bool_dtype(key._meta.dtype):
                raise TypeError(f"a lazy Series used as a row filter must be boolean, not {key._meta.dtype}")
            return partitionwise(_getitem, self, key, token="filter")
        if isinstance(key, Index) and is_bool_dtype(key._meta.dtype):
            return partitionwise(_getitem_positional_mask, self, key, token="filter")
        if isinstance(key, (list, pd.Index, np.ndarray)):
            self._check_columns(key)
            key = list(key)
            return partitionwise(_getitem, self, key, token="getitem", meta=self._meta[key])
        if isinstance(key, DataFrame):
            return self.where(key)
        if is_scalar(key) or isinstance(key, tuple):
            self._check_columns([key])
            return partitionwise(_getitem, self, key, token="getitem", meta=self._meta[key])
        raise TypeError(f"cannot index a lazy DataFrame with {type(key).__name__}")

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, (list, tuple)) and isinstance(value, DataFrame):
            new = self.assign(**{k: value[c] for k, c in zip(key, value.columns)})
        elif isinstance(key, (list, tuple)):
            new = self.assign(**{k: value for k in key})
        else:
            new = self.assign(**{key: value})
        self._assign_from(new)

    def __delitem__(self, key: Any) -> None:
        self._assign_from(self.drop(columns=[key]))

    def assign(self, **columns: Any) -> "DataFrame":
        """New columns from lazy Series (aligned by index), scalars, or callables of the frame."""
        out = self
        for name_, value in columns.items():
            if callable(value) and not is_lazy(value):
                value = value(out)
            if isinstance(value, (pd.Series, pd.DataFrame)):
                raise TypeError(f"cannot assign a pandas {type(value).__name__} to column {name_!r} of a lazy "
                                f"DataFrame; convert it with from_pandas with matching divisions")
            if isinstance(value, DataFrame):
                raise TypeError(f"column {name_!r}: assign takes a Series or a scalar, not a DataFrame")
            if is_list_like(value) and not is_lazy(value) and not isinstance(value, str):
                raise TypeError(f"cannot assign a {type(value).__name__} to column {name_!r}: its rows would "
                                f"not line up with the partitions; use a lazy Series or a scalar")
            out = partitionwise(_assign, out, name_, value, token="assign")
        return out

    def drop(self, labels: Any = None, axis: Any = 0, columns: Any = None, errors: str = "raise") -> "DataFrame":
        """Drop columns (``columns=`` or ``labels`` with ``axis=1``)."""
        if columns is None:
            if axis not in (1, "columns"):
                raise NotImplementedError("dropping rows by label is not supported; filter with a boolean mask")
            columns = labels
        columns = [columns] if is_scalar(columns) else list(columns)
        if errors == "raise":
            self._check_columns(columns)
        return self._method("drop", columns=columns, errors=errors)

    def rename(self, index: Any = None, columns: Any = None) -> "DataFrame":
        """Rename columns (a dict or function); renaming index labels is partition-wise."""
        if isinstance(columns, Mapping):
            self._check_columns(columns)
        return self._method("rename", index=index, columns=columns)

    def select_dtypes(self, include: Any = None, exclude: Any = None) -> "DataFrame":
        """The columns of the given dtypes (decided from meta)."""
        cols = list(self._meta.select_dtypes(include=include, exclude=exclude).columns)
        return self[cols]

    def apply(self, func: Callable, axis: Any = 0, meta: Any = no_default, args: tuple = (),
              **kwargs: Any) -> Any:
        """``func`` applied to each row (``axis=1`` only: columns span all partitions).

        Give ``meta=`` to skip running ``func`` on a sample to infer the output.
        """
        if axis not in (1, "columns"):
            raise NotImplementedError("DataFrame.apply works row-wise only: pass axis=1")
        return map_partitions(_call_method, self, "apply", func, axis=1, args=args, meta=meta, token="apply",
                              **kwargs)

    def query(self, expr: str, **kwargs: Any) -> "DataFrame":
        """Rows matching ``expr`` (pandas ``query`` on each partition)."""
        return self._method("query", expr, **kwargs)

    def eval(self, expr: str, **kwargs: Any) -> Any:
        """pandas ``eval`` on each partition."""
        return self._method("eval", expr, **kwargs)

    def set_index(self, other: Any, drop: bool = True, sorted: bool = False, npartitions: int | None = None,
                  divisions: Sequence | None = None, shuffle_method: str | None = None, **kwargs: Any) -> "DataFrame":
        """Make column ``other`` the index, sorting rows across partitions (known divisions).

        With ``sorted=True`` the column must already be sorted (only min/max per partition is read);
        otherwise divisions come from approximate quantiles (or ``divisions=``) and rows are shuffled.
        """
        from .shuffle import set_index

        return set_index(self, other, drop=drop, sorted=sorted, npartitions=npartitions, divisions=divisions,
                         method=shuffle_method, **kwargs)

    def sort_values(self, by: Any, ascending: bool = True, npartitions: int | None = None,
                    na_position: str = "last", shuffle_method: str | None = None) -> "DataFrame":
        """Sort rows by column(s) ``by`` (range partitioning on the first column, then sort within)."""
        from .shuffle import sort_values

        return sort_values(self, by, ascending=ascending, npartitions=npartitions, na_position=na_position,
                           method=shuffle_method)

    def groupby(self, by: Any = None, sort: bool = True, dropna: bool = True, observed: bool = True,
                **kwargs: Any) -> Any:
        """Group rows by column(s), the index (``level=``, its name) or lazy Series
        (see :mod:`lazyarr.dataframe.groupby`)."""
        from .groupby import DataFrameGroupBy

        return DataFrameGroupBy(self, by, sort=sort, dropna=dropna, observed=observed, **kwargs)

    def merge(self, right: Any, how: str = "inner", on: Any = None, left_on: Any = None, right_on: Any = None,
              left_index: bool = False, right_index: bool = False, suffixes: tuple = ("_x", "_y"),
              npartitions: int | None = None, shuffle_method: str | None = None, broadcast: bool | None = None,
              indicator: bool = False) -> "DataFrame":
        """Database-style join (see :func:`lazyarr.dataframe.multi.merge`)."""
        from .multi import merge

        return merge(self, right, how=how, on=on, left_on=left_on, right_on=right_on, left_index=left_index,
                     right_index=right_index, suffixes=suffixes, npartitions=npartitions,
                     shuffle_method=shuffle_method, broadcast=broadcast, indicator=indicator)

    def join(self, other: Any, on: Any = None, how: str = "left", lsuffix: str = "", rsuffix: str = "",
             npartitions: int | None = None, shuffle_method: str | None = None) -> "DataFrame":
        """Join on the index (or column ``on`` of self against other's index)."""
        from .multi import merge

        if on is not None:
            return merge(self, other, how=how, left_on=on, right_index=True, suffixes=(lsuffix, rsuffix),
                         npartitions=npartitions, shuffle_method=shuffle_method)
        return merge(self, other, how=how, left_index=True, right_index=True, suffixes=(lsuffix, rsuffix),
                     npartitions=npartitions, shuffle_method=shuffle_method)

    @property
    def iloc(self) -> Any:
        """Column selection by position: ``ddf.iloc[:, [0, 2]]``."""
        from .indexing import ILocIndexer

        return ILocIndexer(self)

    def categorize(self, columns: Any = None, index: bool | None = None, split_every: int | None = None) -> "DataFrame":
        """Turn string/object columns (or ``columns``) into categoricals with known categories (one pass)."""
        from .accessors import categorize

        return categorize(self, columns=columns, index=index, split_every=split_every)

    def to_parquet(self, path: str, compute: bool = True, **kwargs: Any) -> Any:
        """Write one parquet file per partition in directory ``path`` (needs pyarrow)."""
        from .io.parquet import to_parquet

        return to_parquet(self, path, compute=compute, **kwargs)

    def items(self):
        """(column label, lazy Series) pairs."""
        for c in self.columns:
            yield c, self[c]

    def __iter__(self):
        return iter(self._meta.columns)

    def __contains__(self, key: Any) -> bool:
        return key in self._meta.columns

    def info(self) -> str:
        """A short text description: partitions, columns and dtypes."""
        lines = [f"<class 'lazyarr.dataframe.DataFrame'> npartitions={self.npartitions}",
                 f"Columns: {len(self.columns)} entries"]
        lines += [f"  {c}: {self._meta.dtypes.iloc[i]}" for i, c in enumerate(self.columns)]
        return "\n".join(lines)

    def to_frame(self) -> "DataFrame":
        """This DataFrame (for code that handles Series and DataFrames alike)."""
        return self

    def nlargest(self, n: int = 5, columns: Any = None, split_every: int | None = None) -> "DataFrame":
        """The ``n`` rows with the largest values of ``columns`` (a tree reduction)."""
        from .stats import frame_nlargest

        return frame_nlargest(self, n, columns, largest=True, split_every=split_every)

    def nsmallest(self, n: int = 5, columns: Any = None, split_every: int | None = None) -> "DataFrame":
        """The ``n`` rows with the smallest values of ``columns`` (a tree reduction)."""
        from .stats import frame_nlargest

        return frame_nlargest(self, n, columns, largest=False, split_every=split_every)

    def corr(self, method: str = "pearson", min_periods: int | None = None, numeric_only: bool = False,
             split_every: int | None = None) -> "DataFrame":
        """Pairwise correlation of columns (see :func:`lazyarr.dataframe.stats.corr`)."""
        from .stats import corr

        return corr(self, method=method, min_periods=min_periods, numeric_only=numeric_only, split_every=split_every)

    def cov(self, min_periods: int | None = None, numeric_only: bool = False, split_every: int | None = None,
            ddof: int = 1) -> "DataFrame":
        """Pairwise covariance of columns (see :func:`lazyarr.dataframe.stats.cov`)."""
        from .stats import cov

        return cov(self, min_periods=min_periods, ddof=ddof, numeric_only=numeric_only, split_every=split_every)

    def melt(self, id_vars: Any = None, value_vars: Any = None, var_name: Any = None, value_name: Any = "value",
             col_level: Any = None, ignore_index: bool = True) -> "DataFrame":
        """Unpivot to (variable, value) rows (see :func:`lazyarr.dataframe.reshape.melt`)."""
        from .reshape import melt

        return melt(self, id_vars=id_vars, value_vars=value_vars, var_name=var_name, value_name=value_name,
                    col_level=col_level, ignore_index=ignore_index)

    def pivot_table(self, index: Any = None, columns: Any = None, values: Any = None, aggfunc: str = "mean",
                    split_every: int | None = None) -> "DataFrame":
        """One column per category of ``columns`` (see :func:`lazyarr.dataframe.reshape.pivot_table`)."""
        from .reshape import pivot_table

        return pivot_table(self, index=index, columns=columns, values=values, aggfunc=aggfunc,
                           split_every=split_every)


def _getitem(x: Any, key: Any) -> Any:
    return x[key]


def _getitem_positional_mask(x: Any, mask: pd.Index) -> Any:
    return x[np.asarray(mask, dtype=bool)]


def _assign(x: pd.DataFrame, name: Any, value: Any) -> pd.DataFrame:
    return x.assign(**{name: value}) if isinstance(name, str) else _assign_any(x, name, value)


def _assign_any(x: pd.DataFrame, name: Any, value: Any) -> pd.DataFrame:
    out = x.copy(deep=False)
    out[name] = value
    return out


class _LazyLength:
    """The row count of a lazy frame, computed when used as a number."""

    def __init__(self, frame: _Frame):
        self._frame = frame

    def compute(self) -> int:
        return len(self._frame)

    def __int__(self) -> int:
        return self.compute()

    __index__ = __int__

    def __eq__(self, other: Any) -> bool:
        return self.compute() == other

    def __repr__(self) -> str:
        return "<lazy length>"


# ---------------------------------------------------------------- Series

class Series(_NDFrame):
    """A lazy pandas Series made of partitions."""

    _pandas_type = pd.Series

    @property
    def dtype(self) -> Any:
        """The dtype (from meta)."""
        return self._meta.dtype

    @property
    def ndim(self) -> int:
        """1."""
        return 1

    @property
    def shape(self) -> tuple:
        """(rows,), computed when used as a number."""
        return (_LazyLength(self),)

    def __getitem__(self, key: Any) -> "Series":
        if isinstance(key, Series):
            return partitionwise(_getitem, self, key, token="filter")
        if isinstance(key, Index) and is_bool_dtype(key._meta.dtype):
            return partitionwise(_getitem_positional_mask, self, key, token="filter")
        if isinstance(key, slice):
            return self.loc[key]
        raise NotImplementedError("Series[label] is not supported; use .loc[label]")

    def rename(self, index: Any = None) -> "Series":
        """Rename the Series (a scalar), or its index labels (a dict or function)."""
        if is_scalar(index) or isinstance(index, tuple):
            return self._method("rename", index, meta=self._meta.rename(index))
        return self._method("rename", index)

    def map(self, arg: Any, na_action: Any = None, meta: Any = no_default) -> "Series":
        """Map values through a dict, Series or function."""
        if is_lazy(arg):
            raise TypeError("Series.map takes a concrete mapping or function, not a lazy collection")
        return map_partitions(_call_method, self, "map", arg, na_action=na_action, meta=meta, token="map")

    def apply(self, func: Callable, meta: Any = no_default, args: tuple = (), **kwargs: Any) -> "Series":
        """Apply ``func`` to each value (give ``meta=`` to skip inference)."""
        return map_partitions(_call_method, self, "apply", func, args=args, meta=meta, token="apply", **kwargs)

    def between(self, left: Any, right: Any, inclusive: str = "both") -> "Series":
        """Is each value within ``[left, right]`` (``inclusive`` as in pandas)?"""
        return self._method("between", left, right, inclusive=inclusive)

    def to_frame(self, name: Any = no_default) -> DataFrame:
        """The Series as a one-column DataFrame."""
        if name is no_default:
            return self._method("to_frame")
        return self._method("to_frame", name=name)

    def value_counts(self, sort: bool = True, ascending: bool = False, dropna: bool = True,
                     normalize: bool = False, split_every: int | None = None, split_out: int = 1) -> "Series":
        """Counts of distinct values, largest first (ties in order of first appearance, as in pandas)."""
        from .reductions import value_counts

        return value_counts(self, sort=sort, ascending=ascending, dropna=dropna, normalize=normalize,
                            split_every=split_every, split_out=split_out)

    def unique(self, split_every: int | None = None) -> "Series":
        """The distinct values, in order of first appearance, as a one-partition lazy Series."""
        from .reductions import unique

        return unique(self, split_every=split_every)

    def groupby(self, by: Any = None, sort: bool = True, dropna: bool = True, observed: bool = True,
                **kwargs: Any) -> Any:
        """Group by another lazy Series aligned with this one, or an index level."""
        from .groupby import SeriesGroupBy

        return SeriesGroupBy(self, by, sort=sort, dropna=dropna, observed=observed, **kwargs)

    @property
    def str(self) -> Any:
        """Vectorised string methods (pandas ``.str``, partition-wise)."""
        from .accessors import StringAccessor

        return StringAccessor(self)

    @property
    def dt(self) -> Any:
        """Datetime properties and methods (pandas ``.dt``, partition-wise)."""
        from .accessors import DatetimeAccessor

        return DatetimeAccessor(self)

    @property
    def cat(self) -> Any:
        """Categorical methods (pandas ``.cat``)."""
        from .accessors import CategoricalAccessor

        return CategoricalAccessor(self)

    def nlargest(self, n: int = 5, split_every: int | None = None) -> "Series":
        """The ``n`` largest values (a tree reduction)."""
        from .reductions import nlargest

        return nlargest(self, n, largest=True, split_every=split_every)

    def nsmallest(self, n: int = 5, split_every: int | None = None) -> "Series":
        """The ``n`` smallest values (a tree reduction)."""
        from .reductions import nlargest

        return nlargest(self, n, largest=False, split_every=split_every)

    def sort_values(self, ascending: bool = True, npartitions: int | None = None, na_position: str = "last",
                    shuffle_method: str | None = None) -> "Series":
        """Values sorted across partitions (range partitioning, then a stable sort within each)."""
        from .shuffle import sort_values

        return sort_values(self, None, ascending=ascending, npartitions=npartitions, na_position=na_position,
                           method=shuffle_method)

    def astype(self, dtype: Any) -> "Series":
        """Cast to ``dtype`` (``'category'`` finds the categories per partition: they are unknown)."""
        from .categories import astype_meta

        return self._method("astype", dtype, meta=astype_meta(self._meta, dtype))

    def mode(self, dropna: bool = True, split_every: int | None = None) -> "Series":
        """The most frequent value(s), sorted (see :func:`lazyarr.dataframe.stats.mode`)."""
        from .stats import mode

        return mode(self, dropna=dropna, split_every=split_every)

    def corr(self, other: "Series", method: str = "pearson", min_periods: int | None = None,
             split_every: int | None = None) -> "Scalar":
        """Correlation with another aligned lazy Series (see :func:`lazyarr.dataframe.stats.series_corr`)."""
        from .stats import series_corr

        return series_corr(self, other, method=method, min_periods=min_periods, split_every=split_every)

    def cov(self, other: "Series", min_periods: int | None = None, ddof: int = 1,
            split_every: int | None = None) -> "Scalar":
        """Covariance with another aligned lazy Series (see :func:`lazyarr.dataframe.stats.series_cov`)."""
        from .stats import series_cov

        return series_cov(self, other, min_periods=min_periods, ddof=ddof, split_every=split_every)


# ---------------------------------------------------------------- Index

class Index(_Frame):
    """A lazy pandas Index made of partitions (``ddf.index``)."""

    _pandas_type = pd.Index

    @property
    def dtype(self) -> Any:
        """The dtype (from meta)."""
        return self._meta.dtype

    @property
    def index(self) -> "Index":
        """Itself (an Index is its own index)."""
        return self

    def _reduce(self, how: str, **kwargs: Any) -> Any:
        from . import reductions

        return reductions.reduce_frame(self, how, **kwargs)

    def min(self, split_every: int | None = None) -> "Scalar":
        """Smallest index value."""
        return self._reduce("min", split_every=split_every)

    def max(self, split_every: int | None = None) -> "Scalar":
        """Largest index value."""
        return self._reduce("max", split_every=split_every)

    def count(self, split_every: int | None = None) -> "Scalar":
        """Number of non-missing index values."""
        return self._reduce("count", split_every=split_every)

    def to_series(self) -> Series:
        """The index values as a Series indexed by themselves."""
        return self._partitionwise(_call_method, "to_series", token="to_series")

    def to_frame(self) -> DataFrame:
        """The index values as a one-column DataFrame."""
        return self._partitionwise(_call_method, "to_frame", token="to_frame")

    def map(self, func: Any, meta: Any = no_default) -> "Index":
        """Map values through a function or mapping."""
        return map_partitions(_call_method, self, "map", func, meta=meta, token="map")

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        raise AttributeError(f"'Index' object has no attribute {key!r}")


# ---------------------------------------------------------------- Scalar

class Scalar(LazyarrMethodsMixin):
    """A lazy single value (the result of a reduction), usable in arithmetic with frames and scalars."""

    __lazyarr_scheduler__ = "threads"
    __lazyarr_optimize__ = staticmethod(optimize)

    def __init__(self, layers: Mapping, name: str, meta: Any):
        self._layers = dict(layers)
        self._name = name
        self._meta = meta

    def __lazyarr_graph__(self) -> dict:
        return _flatten_layers(self._layers)

    def __lazyarr_keys__(self) -> list:
        return [(self._name, 0)]

    def __lazyarr_postcompute__(self) -> tuple:
        return _first, ()

    def __lazyarr_postpersist__(self) -> tuple:
        return _rebuild_scalar, (self._name, self._meta)

    def __lazyarr_tokenize__(self) -> str:
        return self._name

    @property
    def dtype(self) -> Any:
        """The dtype of the value (from meta)."""
        return getattr(self._meta, "dtype", np.dtype(type(self._meta)) if isinstance(self._meta, Number) else object)

    def __repr__(self) -> str:
        return f"lazyarr.dataframe.Scalar<{self._name.rsplit('-', 1)[0]}, dtype={self.dtype}>"

    def __bool__(self) -> bool:
        raise TypeError("the truth value of a lazy Scalar is unknown until computed; call compute()")

    def to_delayed(self, optimize_graph: bool = True) -> Any:
        """The value as a :class:`lazyarr.delayed.Delayed`."""
        from .io.io import to_delayed

        return to_delayed(self, optimize_graph=optimize_graph)


def _first(results: Any) -> Any:
    return results[0]


def _rebuild_scalar(dsk: Mapping, name: str, meta: Any) -> Scalar:
    return Scalar({name: dict(dsk)}, name, meta)


def scalar_op(op: Callable, a: Any, b: Any) -> Scalar:
    """``op(a, b)`` where at least one of ``a``, ``b`` is a lazy Scalar."""
    name = f"{funcname(op)}-{tokenize(op, a, b)}"
    lazy = [x for x in (a, b) if isinstance(x, Scalar)]
    template = tuple(_Slot(next(i for i, y in enumerate(lazy) if y is x)) if isinstance(x, Scalar) else x
                     for x in (a, b))
    call = functools.partial(_call, op, template, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            meta = op(_meta_of(a), _meta_of(b))
        except Exception:
            meta = np.float64(1.0)
    layer = {(name, 0): (call, *[(x._name, 0) for x in lazy])}
    return Scalar(merge_layers(*lazy, {name: layer}), name, meta)


def _scalar_binary(op: Callable, name: str, reverse: bool = False) -> Callable:
    def method(self: Scalar, other: Any) -> Any:
        if isinstance(other, _Frame):
            return _elemwise_op(op, other, self, name) if reverse else _elemwise_op(op, self, other, name)
        return scalar_op(op, other, self) if reverse else scalar_op(op, self, other)

    method.__name__ = name
    return method


for _short, _op in _BINARY_OPS.items():
    if _op is None:
        continue
    setattr(Scalar, f"__{_short}__", _scalar_binary(_op, _short))
    setattr(Scalar, f"__r{_short}__", _scalar_binary(_op, f"r{_short}", reverse=True))
Scalar.__neg__ = lambda self: scalar_op(lambda a, _: -a, self, None)  # type: ignore[assignment]
Scalar.__abs__ = lambda self: scalar_op(lambda a, _: abs(a), self, None)  # type: ignore[assignment]

for _cls in (DataFrame, Series, Index):
    _install_operators(_cls)
for _cls in (DataFrame, Series):
    _install_named_binary(_cls)
