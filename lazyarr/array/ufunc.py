"""Elementwise functions: NumPy ufuncs on Arrays, ``where``, ``clip``, and the NumPy protocols.

Every NumPy ufunc has a lazy counterpart here (``lazyarr.array.sin``...), and calling the NumPy
ufunc itself on an Array (``np.sin(x)``) goes through :func:`array_ufunc` and stays lazy. NumPy
functions (``np.sum(x)``, ``np.concatenate([x, y])``) reach the lazy version through
:func:`array_function`.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..tokenize import tokenize
from .core import Array, _is_operand, blockwise, elemwise

__all__ = [
    "UFunc",
    "array_ufunc",
    "array_function",
    "where",
    "clip",
    "isclose",
    "allclose",
    "around",
    "round",
    "nan_to_num",
    "angle",
    "real",
    "imag",
    "iscomplex",
    "isreal",
    "UFUNC_NAMES",
]


class UFunc:
    """A NumPy ufunc that builds lazy arrays when any argument is an Array (else calls NumPy).

    >>> import lazyarr.array as da
    >>> da.sin(da.zeros(3, chunks=2)).compute().tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(self, ufunc: np.ufunc):
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__
        self.__doc__ = f"Lazy ``numpy.{ufunc.__name__}``: elementwise with broadcasting.\n\n" + (ufunc.__doc__ or "")

    @property
    def nin(self) -> int:
        return self._ufunc.nin

    @property
    def nout(self) -> int:
        return self._ufunc.nout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(a, Array) for a in args):
            return array_ufunc(self._ufunc, "__call__", *args, **kwargs)
        return self._ufunc(*args, **kwargs)

    def outer(self, a: Any, b: Any, **kwargs: Any) -> Any:
        """``ufunc.outer``: every element of ``a`` against every element of ``b``."""
        if isinstance(a, Array) or isinstance(b, Array):
            return array_ufunc(self._ufunc, "outer", a, b, **kwargs)
        return self._ufunc.outer(a, b, **kwargs)

    def __repr__(self) -> str:
        return f"<lazyarr.array ufunc {self.__name__}>"

    def __reduce__(self):
        return (UFunc, (self._ufunc,))


#: Elementwise NumPy ufuncs (generalised ufuncs such as ``matmul`` have their own routines).
UFUNC_NAMES = sorted(  # vars(), not getattr(): touching NumPy's lazy submodules would import them
    name for name, value in vars(np).items()
    if isinstance(value, np.ufunc) and not name.startswith("_") and value.signature is None
)

_REDUCE_METHODS = {
    "add": "sum",
    "multiply": "prod",
    "minimum": "min",
    "maximum": "max",
    "fmin": "nanmin",
    "fmax": "nanmax",
    "logical_and": "all",
    "logical_or": "any",
}
_ACCUMULATE_METHODS = {"add": "cumsum", "multiply": "cumprod"}


def _take_output(block: tuple, i: int) -> Any:
    return block[i]


def array_ufunc(ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """The ``__array_ufunc__`` of Arrays: lazy ``ufunc(...)``, ``.reduce``, ``.accumulate``, ``.outer``."""
    out = kwargs.pop("out", None)
    if out is not None and any(o is not None for o in (out if isinstance(out, tuple) else (out,))):
        return NotImplemented
    if not all(_is_operand(x) for x in inputs):
        return NotImplemented
    if ufunc.signature is not None:
        if ufunc is np.matmul and method == "__call__" and not kwargs:
            from .routines import matmul

            return matmul(*inputs)
        return NotImplemented
    if method == "__call__":
        op: Callable = partial(ufunc, **kwargs) if kwargs else ufunc
        if ufunc.nout == 1:
            return elemwise(op, *inputs, name_prefix=ufunc.__name__)
        both = elemwise(op, *inputs, name_prefix=ufunc.__name__)
        outs = []
        metas = [x._meta if isinstance(x, Array) else x for x in inputs]
        with np.errstate(all="ignore"):
            meta_out = op(*metas)
        for i in range(ufunc.nout):
            outs.append(blockwise(_take_output, tuple(range(both.ndim)), both, tuple(range(both.ndim)), i, None,
                                  dtype=np.asarray(meta_out[i]).dtype,
                                  name=f"{ufunc.__name__}-{i}-{tokenize(both, i)}"))
        return tuple(outs)
    if method == "reduce":
        from . import reductions

        target = _REDUCE_METHODS.get(ufunc.__name__)
        if target is None or len(inputs) != 1:
            return NotImplemented
        axis = kwargs.pop("axis", 0)
        if kwargs.pop("initial", np._NoValue) is not np._NoValue or kwargs.pop("where", True) is not True:
            return NotImplemented
        func = getattr(reductions, target)
        if target in ("sum", "prod"):
            return func(inputs[0], axis=axis, dtype=kwargs.pop("dtype", None), keepdims=kwargs.pop("keepdims", False))
        kwargs.pop("dtype", None)
        return func(inputs[0], axis=axis, keepdims=kwargs.pop("keepdims", False))
    if method == "accumulate":
        from . import reductions

        target = _ACCUMULATE_METHODS.get(ufunc.__name__)
        if target is None:
            return NotImplemented
        return getattr(reductions, target)(inputs[0], axis=kwargs.get("axis", 0), dtype=kwargs.get("dtype"))
    if method == "outer":
        a, b = (x if isinstance(x, Array) else _as_lazy(x) for x in inputs)
        op = partial(ufunc.outer, **kwargs) if kwargs else ufunc.outer
        ia = tuple(f"a{i}" for i in range(a.ndim))
        ib = tuple(f"b{i}" for i in range(b.ndim))
        return blockwise(op, ia + ib, a, ia, b, ib, token=f"{ufunc.__name__}-outer")
    return NotImplemented


def _as_lazy(x: Any) -> Array:
    from .core import asarray

    return asarray(x)


# --------------------------------------------------------------------------------------------
# __array_function__
# --------------------------------------------------------------------------------------------

_HANDLED: dict | None = None


def _handled_functions() -> dict:
    global _HANDLED
    if _HANDLED is None:
        import lazyarr.array as da

        table = {}
        for name in getattr(da, "__all__", dir(da)):
            ours = getattr(da, name, None)
            theirs = getattr(np, name, None)
            if ours is None or theirs is None or not callable(theirs) or isinstance(theirs, (type, np.ufunc)):
                continue
            table[theirs] = ours
        # submodule functions whose lazy version means the same (not svd, qr, cholesky, lstsq:
        # Dask's defaults and results differ from NumPy's there)
        for name in ("norm", "solve", "inv"):
            table[getattr(np.linalg, name)] = getattr(da.linalg, name)
        for name in da.fft.__all__:
            if not name.endswith("freq"):
                table[getattr(np.fft, name)] = getattr(da.fft, name)
        table[np.shape] = lambda a: a.shape
        table[np.ndim] = lambda a: a.ndim
        table[np.size] = lambda a, axis=None: a.size if axis is None else a.shape[axis]
        table[np.result_type] = lambda *args: np.result_type(*[a.dtype if isinstance(a, Array) else a for a in args])
        table[np.round] = around
        _HANDLED = table
    return _HANDLED


def array_function(func: Callable, types: tuple, args: tuple, kwargs: dict) -> Any:
    """The ``__array_function__`` of Arrays: the lazy version of ``func`` if there is one.

    NumPy functions without a lazy version compute their Array arguments first (with a
    ``UserWarning`` saying so), as NumPy would for any array-like.
    """
    ours = _handled_functions().get(func)
    if ours is not None:
        return ours(*args, **kwargs)
    if not all(issubclass(t, (Array, np.ndarray)) for t in types):
        return NotImplemented
    impl = getattr(func, "_implementation", None)
    if impl is None:
        return NotImplemented
    warnings.warn(
        f"numpy.{getattr(func, '__name__', func)} has no lazy version in lazyarr.array: computing its array "
        "arguments now (use map_blocks to stay lazy)",
        UserWarning,
        stacklevel=3,
    )
    return impl(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# elementwise functions that are not ufuncs
# --------------------------------------------------------------------------------------------

def where(condition: Any, x: Any = None, y: Any = None) -> Array:
    """Elements of ``x`` where ``condition`` holds, of ``y`` elsewhere (all three broadcast).

    >>> import lazyarr.array as da
    >>> a = da.arange(5, chunks=2)
    >>> where(a > 2, a, -1).compute().tolist()
    [-1, -1, -1, 3, 4]
    """
    if x is None and y is None:
        raise NotImplementedError(
            "where(condition) with one argument gives positions of unknown count; use "
            "numpy.nonzero(x.compute()) or x[condition]"
        )
    if x is None or y is None:
        raise ValueError("where needs either only condition, or condition, x and y")
    return elemwise(np.where, condition, x, y)


def clip(a: Any, a_min: Any = None, a_max: Any = None, **kwargs: Any) -> Array:
    """Values limited to ``[a_min, a_max]`` (either bound may be ``None``).

    >>> import lazyarr.array as da
    >>> clip(da.arange(5, chunks=2), 1, 3).compute().tolist()
    [1, 1, 2, 3, 3]
    """
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    if kwargs:
        raise TypeError(f"clip got unexpected keyword arguments {sorted(kwargs)}")
    if a_min is None and a_max is None:
        return a if isinstance(a, Array) else _as_lazy(a)
    return elemwise(np.clip, a, a_min, a_max)


def isclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Array:
    """Elementwise ``|a - b| <= atol + rtol * |b|``."""
    return elemwise(partial(np.isclose, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b, name_prefix="isclose")


def allclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Array:
    """Whether all elements are close (a lazy 0-d boolean array)."""
    return isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan).all()


def around(a: Any, decimals: int = 0) -> Array:
    """Round to ``decimals`` decimal places."""
    return elemwise(partial(np.round, decimals=decimals), a, name_prefix="round")


round = around


def nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None, neginf: Any = None) -> Array:
    """Replace NaN and infinities by finite numbers."""
    return elemwise(partial(np.nan_to_num, nan=nan, posinf=posinf, neginf=neginf), x, name_prefix="nan_to_num")


def angle(z: Any, deg: bool = False) -> Array:
    """Angle of complex values."""
    return elemwise(partial(np.angle, deg=deg), z, name_prefix="angle")


def real(x: Any) -> Array:
    """Real part."""
    return elemwise(np.real, x)


def imag(x: Any) -> Array:
    """Imaginary part."""
    return elemwise(np.imag, x)


def iscomplex(x: Any) -> Array:
    """Elementwise: has a non-zero imaginary part."""
    return elemwise(np.iscomplex, x)


def isreal(x: Any) -> Array:
    """Elementwise: has a zero imaginary part."""
    return elemwise(np.isreal, x)


def _install_ufuncs() -> None:
    namespace = globals()
    for name in UFUNC_NAMES:
        if name not in namespace:
            namespace[name] = UFunc(getattr(np, name))
            __all__.append(name)


_install_ufuncs()
