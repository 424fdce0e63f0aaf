"""Generalized ufuncs on lazy arrays: apply_gufunc, gufunc, as_gufunc.

A signature such as ``"(i,j),(j)->(i)"`` names the *core* dimensions each argument's function
works on; the other (leading) dimensions are *loop* dimensions, broadcast between the arguments
with NumPy's rules. As in Dask, every core dimension must lie in one chunk (pass
``allow_rechunk=True`` to have them rechunked into one), and the function is then called once
per block of the loop dimensions, through :func:`~lazyarr.array.blockwise`. Functions with
several outputs run once per block; each output takes its part of the result.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial, update_wrapper
from operator import getitem
from typing import Any

import numpy as np

from ..utils import funcname
from .core import Array, asarray, blockwise
from .rechunk import rechunk
from .routines import transpose

__all__ = ["apply_gufunc", "gufunc", "as_gufunc", "parse_signature"]

_DIMENSION = r"\w+"
_CORE_DIMS = rf"(?:{_DIMENSION}(?:,{_DIMENSION})*)?"
_ARGUMENT = rf"\({_CORE_DIMS}\)"
_ARGUMENTS = rf"{_ARGUMENT}(?:,{_ARGUMENT})*"
_SIGNATURE = rf"^{_ARGUMENTS}->{_ARGUMENTS},?$"


def parse_signature(signature: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], bool]:
    """Input core dimensions, output core dimensions, and whether there is a single output.

    A trailing comma after one output (``"()->(),"``) asks for a tuple of one output, as in Dask.

    >>> parse_signature('(m,n),(n)->(m)')
    ([('m', 'n'), ('n',)], [('m',)], True)
    >>> parse_signature('()->(),()')
    ([()], [(), ()], False)
    """
    if not isinstance(signature, str):
        raise TypeError(f"a gufunc signature must be a string, not {type(signature).__name__}")
    signature = re.sub(r"\s+", "", signature)
    if not re.match(_SIGNATURE, signature):
        raise ValueError(f"not a valid gufunc signature: {signature!r}")
    inputs, outputs = signature.split("->")

    def dims(text: str) -> list[tuple[str, ...]]:
        return [tuple(re.findall(_DIMENSION, arg)) for arg in re.findall(_ARGUMENT, text)]

    outs = dims(outputs)
    return dims(inputs), outs, len(outs) == 1 and not outputs.endswith(",")


def _normalize_axes(axes: Any, axis: Any, keepdims: bool, in_core: list, out_core: list) -> tuple[list, list]:
    """Where the core dimensions of every input and output are, following NumPy's gufunc rules."""
    nin, nout = len(in_core), len(out_core)
    if axes is not None and axis is not None:
        raise ValueError("apply_gufunc: give only one of axis= and axes=")
    if axes is not None and not isinstance(axes, list):
        raise ValueError(f"apply_gufunc: axes= must be a list (one entry per argument), not {type(axes).__name__}")
    with_core = [c for c in in_core if c]
    if keepdims:
        if any(out_core):
            raise ValueError("apply_gufunc: keepdims=True needs outputs without core dimensions")
        if any(c != in_core[0] for c in in_core):
            raise ValueError("apply_gufunc: keepdims=True needs every input to have the same core dimensions")
        out_core = [in_core[0]] * nout
    if axis is not None:
        if not isinstance(axis, int):
            raise ValueError(f"apply_gufunc: axis= must be an integer, not {axis!r}")
        if with_core and (len(with_core[0]) != 1 or any(c != with_core[0] for c in with_core)):
            raise ValueError("apply_gufunc: axis= needs every core dimension to be the same single dimension")
        axes = [(axis,) if c else () for c in in_core + out_core]
    elif axes is None:
        axes = [tuple(range(-len(c), 0)) for c in in_core + out_core]
    axes = [(a,) if isinstance(a, int) else tuple(a) for a in axes]
    if len(axes) not in ((nin, nin + nout) if not any(out_core) or keepdims else (nin + nout,)):
        raise ValueError(f"apply_gufunc: axes= has {len(axes)} entries for {nin} input(s) and {nout} output(s)")
    in_axes, out_axes = axes[:nin], axes[nin:] or [tuple(range(-len(c), 0)) for c in out_core]
    for i, (ax, core) in enumerate(zip(in_axes, in_core)):
        if len(ax) != len(core):
            raise ValueError(f"apply_gufunc: axes entry {ax} of input {i} does not match its core dimensions {core}")
    if keepdims:
        out_axes = [in_axes[0]] * nout
    for i, (ax, core) in enumerate(zip(out_axes, out_core)):
        if len(ax) != len(core):
            raise ValueError(f"apply_gufunc: axes entry {ax} of output {i} does not match its core dimensions {core}")
    return in_axes, out_axes


def _infer_dtypes(func: Callable, args: list, kwargs: dict, nout: int | None) -> Any:
    samples = [np.ones((1,) * a.ndim, dtype=a.dtype) if isinstance(a, Array) else a for a in args]
    try:
        with np.errstate(all="ignore"):
            result = func(*samples, **kwargs)
    except Exception as e:
        raise ValueError(f"apply_gufunc could not infer the output dtype of {funcname(func)} ({e}); "
                         "pass output_dtypes=") from None
    if nout is None:
        return np.asarray(result).dtype
    if not isinstance(result, (tuple, list)) or len(result) != nout:
        raise ValueError(f"apply_gufunc: {funcname(func)} was expected to return {nout} outputs")
    return [np.asarray(r).dtype for r in result]


def _output_dtypes(func: Callable, signature: str, args: list, kwargs: dict, nout: int | None,
                   output_dtypes: Any, meta: Any, vectorize: bool) -> Any:
    if meta is not None and output_dtypes is not None:
        raise ValueError("apply_gufunc: give only one of meta= and output_dtypes=")
    if meta is not None:
        output_dtypes = [m.dtype for m in meta] if isinstance(meta, (tuple, list)) else meta.dtype
    if output_dtypes is None:
        probe = np.vectorize(func, signature=signature) if vectorize else func
        output_dtypes = _infer_dtypes(probe, args, kwargs, nout)
    if nout is None:
        if isinstance(output_dtypes, (tuple, list)):
            if len(output_dtypes) != 1:
                raise ValueError("apply_gufunc: a function with one output needs a single output dtype")
            output_dtypes = output_dtypes[0]
        return np.dtype(output_dtypes)
    if not isinstance(output_dtypes, (tuple, list)) or len(output_dtypes) != nout:
        raise ValueError(f"apply_gufunc: a function with {nout} outputs needs a list of {nout} output dtypes")
    return [np.dtype(d) for d in output_dtypes]


def _core_last(arg: Array, ax: tuple, core: tuple, position: int) -> Array:
    """``arg`` with its core dimensions moved to the end, in signature order."""
    if arg.ndim < len(core):
        raise ValueError(f"apply_gufunc: argument {position} has shape {arg.shape} but the signature gives it "
                         f"{len(core)} core dimension(s) {core}")
    ax = tuple(a - arg.ndim if a >= 0 else a for a in ax)
    if any(not -arg.ndim <= a < 0 for a in ax):
        raise ValueError(f"apply_gufunc: axes {ax} are out of range for argument {position} of shape {arg.shape}")
    order = [d for d in range(-arg.ndim, 0) if d not in ax] + list(ax)
    return transpose(arg, [d % arg.ndim for d in order])


def _place_output(x: Array, ax: tuple, keepdims: bool) -> Array:
    """Move an output's core dimensions (last) to the positions ``ax`` asks for."""
    if keepdims:
        x = x[(Ellipsis,) + (None,) * len(ax)]
    order: list = [None] * x.ndim
    for core, where in zip(range(-len(ax), 0), ax):
        order[where] = core % x.ndim
    rest = iter(range(x.ndim))
    return transpose(x, [o if o is not None else next(rest) for o in order])


def apply_gufunc(func: Callable, signature: str, *args: Any, axes: Any = None, axis: Any = None,
                 keepdims: bool = False, output_dtypes: Any = None, output_sizes: dict | None = None,
                 vectorize: bool | None = None, allow_rechunk: bool = False, meta: Any = None,
                 **kwargs: Any) -> Any:
    """Apply ``func``, a generalized ufunc described by ``signature``, to lazy arrays (as in Dask).

    ``func(*blocks, **kwargs)`` receives blocks with the core dimensions last; ``vectorize=True``
    wraps it with ``np.vectorize`` so it may handle one core slice at a time. ``output_dtypes``
    (one, or a list for several outputs) is inferred by calling ``func`` on tiny arrays when
    not given. ``output_sizes`` gives the lengths of output core dimensions no input has.
    ``axes``/``axis``/``keepdims`` place the core dimensions as NumPy's gufunc keywords do.

    >>> import numpy as np, lazyarr.array as la
    >>> x = la.from_array(np.arange(12.).reshape(4, 3), chunks=(2, 3))
    >>> apply_gufunc(lambda b: b.mean(axis=-1), '(i)->()', x, output_dtypes=float).compute().tolist()
    [1.0, 4.0, 7.0, 10.0]
    >>> lo, hi = apply_gufunc(lambda b: (b.min(-1), b.max(-1)), '(i)->(),()', x)
    >>> hi.compute().tolist()
    [2.0, 5.0, 8.0, 11.0]
    """
    in_core, out_core, single = parse_signature(signature)
    nout = None if single else len(out_core)
    if len(args) != len(in_core):
        raise ValueError(f"apply_gufunc: the signature {signature!r} takes {len(in_core)} argument(s), "
                         f"got {len(args)}")
    args = [asarray(a) for a in args]
    dtypes = _output_dtypes(func, signature, args, kwargs, nout, output_dtypes, meta, bool(vectorize))
    if vectorize:
        otypes = [dtypes] if nout is None else list(dtypes)
        func = np.vectorize(func, signature=signature, otypes=otypes)
    in_axes, out_axes = _normalize_axes(axes, axis, keepdims, in_core, out_core)
    args = [_core_last(a, ax, core, i) for i, (a, ax, core) in enumerate(zip(args, in_axes, in_core))]
    loops = [a.ndim - len(core) for a, core in zip(args, in_core)]
    depth = max(loops, default=0)
    inds = [tuple(f"__loop{d}__" for d in range(depth - n, depth)) + core for n, core in zip(loops, in_core)]
    sizes: dict = {}
    for a, ind in zip(args, inds):
        for label, n in zip(ind, a.shape):
            sizes.setdefault(label, set()).add(n)
    for label, found in sizes.items():
        if len(found - {1}) > 1:
            raise ValueError(f"apply_gufunc: dimension {label!r} has different lengths {sorted(found)} in the "
                             "arguments")
    core_dims = {d for core in in_core for d in core}
    for i, (a, ind) in enumerate(zip(args, inds)):
        split = {pos: -1 for pos, label in enumerate(ind) if label in core_dims and a.numblocks[pos] > 1}
        if split and not allow_rechunk:
            label = ind[next(iter(split))]
            raise ValueError(f"apply_gufunc: core dimension {label!r} of argument {i} is in several chunks "
                             f"{a.chunks[next(iter(split))]}; rechunk it into one chunk or pass allow_rechunk=True "
                             "(which may use much more memory per task)")
        if split:
            args[i] = rechunk(a, split)
    core_sizes = {label: max(found) for label, found in sizes.items() if label in core_dims}
    core_sizes.update(output_sizes or {})
    for core in out_core:
        for d in core:
            if d not in core_sizes:
                raise ValueError(f"apply_gufunc: the length of output core dimension {d!r} is unknown; give it "
                                 "in output_sizes=")
    call = partial(func, **kwargs) if kwargs else func
    loop_out = tuple(f"__loop{d}__" for d in range(depth))
    pairs = [v for a, ind in zip(args, inds) for v in (a, ind)]
    if nout is None:
        (core,) = out_core
        new = {d: core_sizes[d] for d in core if d not in core_dims}
        result = blockwise(call, loop_out + core, *pairs, new_axes=new, dtype=dtypes, concatenate=True,
                           token=funcname(func))
        return _place_output(result, out_axes[0], keepdims)
    together = blockwise(call, loop_out, *pairs, dtype=object, concatenate=True, token=funcname(func))
    outputs = []
    for i, (core, dtype, ax) in enumerate(zip(out_core, dtypes, out_axes)):
        part = blockwise(getitem, loop_out + core, together, loop_out, i, None, dtype=dtype,
                         new_axes={d: core_sizes[d] for d in core}, token=f"{funcname(func)}-{i}")
        outputs.append(_place_output(part, ax, keepdims))
    return tuple(outputs)


class gufunc:
    """Bind a Python function to a gufunc signature: calling it applies :func:`apply_gufunc`.

    >>> import numpy as np, lazyarr.array as la
    >>> def length(v):
    ...     return np.sqrt((v ** 2).sum(axis=-1))
    >>> norm = gufunc(length, signature='(i)->()', output_dtypes=float)
    >>> norm(la.from_array(np.array([[3., 4.], [6., 8.]]), chunks=(1, 2))).compute().tolist()
    [5.0, 10.0]
    """

    def __init__(self, pyfunc: Callable, *, signature: str | None = None, vectorize: bool = False,
                 axes: Any = None, axis: Any = None, keepdims: bool = False, output_sizes: dict | None = None,
                 output_dtypes: Any = None, allow_rechunk: bool = False, meta: Any = None):
        self.pyfunc = pyfunc
        self.signature = signature if signature is not None else getattr(pyfunc, "signature", None)
        if self.signature is None:
            raise ValueError(f"gufunc: {funcname(pyfunc)} needs a signature")
        self.vectorize, self.axes, self.axis, self.keepdims = vectorize, axes, axis, keepdims
        self.output_sizes, self.output_dtypes = output_sizes, output_dtypes
        self.allow_rechunk, self.meta = allow_rechunk, meta
        try:
            update_wrapper(self, pyfunc)
        except AttributeError:  # some callables have no __name__ or __doc__
            pass

    def __call__(self, *args: Any, allow_rechunk: bool = False, **kwargs: Any) -> Any:
        return apply_gufunc(self.pyfunc, self.signature, *args, vectorize=self.vectorize, axes=self.axes,
                            axis=self.axis, keepdims=self.keepdims, output_sizes=self.output_sizes,
                            output_dtypes=self.output_dtypes, allow_rechunk=self.allow_rechunk or allow_rechunk,
                            meta=self.meta, **kwargs)

    def __repr__(self) -> str:
        return f"<lazyarr.array.gufunc {funcname(self.pyfunc)} {self.signature}>"


_GUFUNC_OPTIONS = {"vectorize", "axes", "axis", "keepdims", "output_sizes", "output_dtypes", "allow_rechunk", "meta"}


def as_gufunc(signature: str | None = None, **kwargs: Any) -> Callable[[Callable], gufunc]:
    """A decorator making a function a :class:`gufunc` with ``signature``.

    >>> import numpy as np, lazyarr.array as la
    >>> @as_gufunc('(i)->(i)', vectorize=True, output_dtypes=float)
    ... def centred(v):
    ...     return v - v.mean()
    >>> centred(la.from_array(np.array([[1., 3.], [0., 4.]]), chunks=(1, 2))).compute().tolist()
    [[-1.0, 1.0], [-2.0, 2.0]]
    """
    unknown = set(kwargs) - _GUFUNC_OPTIONS
    if unknown:
        raise TypeError(f"as_gufunc got unsupported keyword arguments {sorted(unknown)}")

    def wrap(pyfunc: Callable) -> gufunc:
        return gufunc(pyfunc, signature=signature, **kwargs)

    return wrap
