"""Random arrays, reproducible from a seed whatever the scheduler, with one stream per block.

Every block draws from its own NumPy ``Generator`` seeded by
``SeedSequence(entropy, spawn_key=(call, block))``: ``entropy`` comes from the seed (or the OS
if none), ``call`` counts the arrays a generator made, and ``block`` is the block's position. This
is exactly what ``SeedSequence.spawn`` produces, so blocks never share a stream, and the values
depend only on the seed, the call order and the chunking, never on which worker or thread
computes a block or in which order.

The bit generator is ``SFC64`` by default, the fastest NumPy offers (for ``normal`` too);
pass ``bit_generator=np.random.PCG64`` (or ``Philox``, ...) to choose another.

>>> import lazyarr.array as da
>>> rng = da.random.default_rng(42)
>>> x = rng.normal(10, 0.1, size=(1000,), chunks=100)
>>> bool(abs(float(x.mean().compute()) - 10) < 0.05)
True
>>> bool((da.random.default_rng(42).normal(10, 0.1, size=(1000,), chunks=100).compute() == x.compute()).all())
True
"""
from __future__ import annotations

import numbers
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..tokenize import tokenize
from .chunks import normalize_chunks
from .core import Array, _rechunk_refinement, broadcast_shapes, from_array
from .creation import ShapeTable
from .layers import Blockwise, LayeredGraph

__all__ = [
    "Generator",
    "RandomState",
    "default_rng",
    "seed",
    "random",
    "random_sample",
    "rand",
    "randn",
    "standard_normal",
    "normal",
    "uniform",
    "randint",
    "integers",
    "choice",
    "exponential",
    "poisson",
    "binomial",
    "beta",
    "gamma",
    "lognormal",
    "chisquare",
    "geometric",
    "laplace",
    "logistic",
    "standard_exponential",
    "standard_gamma",
    "standard_t",
    "standard_cauchy",
    "pareto",
    "rayleigh",
    "triangular",
    "weibull",
    "power",
    "gumbel",
    "vonmises",
    "wald",
    "negative_binomial",
]

DEFAULT_BIT_GENERATOR = np.random.SFC64


class _SpawnKeys:
    """``table[idx]`` is the spawn key of block ``idx``: ``prefix + (flat block number,)``."""

    __slots__ = ("prefix", "strides", "_first")

    def __init__(self, prefix: tuple, numblocks: tuple):
        self.prefix = prefix
        self._first = numblocks[0] if numblocks else 1
        strides = []
        step = 1
        for n in reversed(numblocks):
            strides.append(step)
            step *= n
        self.strides = tuple(reversed(strides))

    def __getitem__(self, idx: tuple) -> tuple:
        flat = 0
        for i, s in zip(idx, self.strides):
            flat += i * s
        return self.prefix + (flat,)

    def in_order(self):
        """Every block's spawn key, blocks in C order."""
        prefix = self.prefix
        total = self.strides[0] * self._first if self.strides else 1
        return (prefix + (i,) for i in range(total))


class _Draw:
    """Task function: a fresh generator for the block's spawn key, then ``method(*params, size=shape)``."""

    __slots__ = ("entropy", "bit_generator", "method", "kwargs")

    def __init__(self, entropy: Any, bit_generator: type, method: str, kwargs: dict):
        self.entropy = entropy
        self.bit_generator = bit_generator
        self.method = method
        self.kwargs = kwargs

    def __call__(self, spawn_key: tuple, shape: tuple, *params: Any) -> np.ndarray:
        seq = np.random.SeedSequence(self.entropy, spawn_key=spawn_key)
        gen = np.random.Generator(self.bit_generator(seq))
        return getattr(gen, self.method)(*params, size=shape, **self.kwargs)

    def __reduce__(self):
        return (_Draw, (self.entropy, self.bit_generator, self.method, self.kwargs))

    def __repr__(self) -> str:
        return f"random_{self.method}"


def _normalize_size(size: Any) -> tuple | None:
    if size is None:
        return None
    if isinstance(size, numbers.Integral):
        size = (int(size),)
    size = tuple(size)
    for n in size:
        if not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"size {size} must hold non-negative integers")
    return tuple(int(n) for n in size)


class Generator:
    """A lazy counterpart of ``numpy.random.Generator``: methods return Arrays of random blocks.

    ``seed`` is anything ``numpy.random.SeedSequence`` accepts (None draws fresh OS entropy).
    Each call gives new values; the same seed and the same calls give the same arrays again.
    """

    def __init__(self, seed: Any = None, bit_generator: type | None = None):
        if isinstance(seed, np.random.SeedSequence):
            self._seq = seed
        elif isinstance(seed, Generator):
            self._seq = seed._seq
        else:
            self._seq = np.random.SeedSequence(seed)
        self._bit_generator = bit_generator or DEFAULT_BIT_GENERATOR
        self._calls = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"lazyarr.array.random.Generator({self._bit_generator.__name__}, entropy={self._seq.entropy})"

    def _next_prefix(self) -> tuple:
        with self._lock:
            call = self._calls
            self._calls += 1
        return tuple(self._seq.spawn_key) + (call,)

    def _wrap(self, method: str, *params: Any, size: Any = None, chunks: Any = "auto", dtype: Any = None,
              **kwargs: Any) -> Array:
        size = _normalize_size(size)
        lazy_params = [p for p in params if isinstance(p, Array)]
        shapes = [np.shape(p) for p in params if not isinstance(p, Array)] + [p.shape for p in lazy_params]
        try:
            bshape = broadcast_shapes(*shapes)
        except ValueError as e:
            raise ValueError(f"random.{method}: parameters do not broadcast: {e}") from None
        if size is None:
            size = bshape
        else:
            try:
                if broadcast_shapes(size, bshape) != size:
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"random.{method}: parameters of shape {bshape} cannot be broadcast to size {size}"
                ) from None
        if dtype is not None:
            kwargs["dtype"] = dtype
        out_dtype = self._check(method, params, kwargs)
        chunks = normalize_chunks(chunks, size, dtype=out_dtype)
        ndim = len(size)
        labels = tuple(range(ndim))
        numblocks = tuple(len(c) for c in chunks)
        prefix = self._next_prefix()
        args: list = [("index", _SpawnKeys(prefix, numblocks), labels), ("index", ShapeTable(chunks), labels)]
        deps: list = []
        for p in params:
            if isinstance(p, Array) or (isinstance(p, np.ndarray) and p.ndim):
                lazy = p if isinstance(p, Array) else None
                pchunks = tuple(
                    (1,) if n == 1 else chunks[ndim - len(np.shape(p)) + axis]
                    for axis, n in enumerate(np.shape(p))
                )
                if lazy is None:
                    lazy = from_array(p, chunks=pchunks)
                elif lazy.chunks != pchunks:
                    lazy = _rechunk_refinement(lazy, pchunks)
                plabels = tuple(range(ndim - lazy.ndim, ndim))
                args.append(("key", lazy.name, plabels, lazy.numblocks))
                deps.append(lazy)
            else:
                args.append(("lit", p))
        entropy = self._seq.entropy
        name = f"random_{method}-{tokenize(entropy, prefix, method, [a[1] if a[0] != 'index' else None for a in args[2:]], size, repr(chunks), self._bit_generator.__name__, kwargs)}"
        func = _Draw(entropy, self._bit_generator, method, kwargs)
        layer = Blockwise(name, labels, numblocks, func, args)
        graph = LayeredGraph.from_collections(name, layer, deps)
        return Array(graph, name, chunks, out_dtype)

    def _check(self, method: str, params: tuple, kwargs: dict) -> np.dtype:
        """Validate the parameters now (NumPy's own checks) and find the result dtype."""
        gen = np.random.Generator(np.random.SFC64(0))
        sample = []
        for p in params:
            if isinstance(p, Array):
                sample.append(np.ones((1,), dtype=p.dtype))
            else:
                sample.append(p)
        try:
            result = getattr(gen, method)(*sample, size=(1,) if not any(np.ndim(p) for p in sample) else None,
                                          **kwargs)
        except (ValueError, TypeError) as e:
            raise type(e)(f"random.{method}: {e}") from None
        return np.asarray(result).dtype

    # -- distributions -----------------------------------------------------------------------
    def random(self, size: Any = None, dtype: Any = np.float64, chunks: Any = "auto") -> Array:
        """Uniform floats in [0, 1)."""
        return self._wrap("random", size=size, chunks=chunks, dtype=dtype)

    def standard_normal(self, size: Any = None, dtype: Any = np.float64, chunks: Any = "auto") -> Array:
        """Normal values with mean 0 and standard deviation 1."""
        return self._wrap("standard_normal", size=size, chunks=chunks, dtype=dtype)

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Normal values with mean ``loc`` and standard deviation ``scale``."""
        return self._wrap("normal", loc, scale, size=size, chunks=chunks)

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Uniform values in [low, high)."""
        return self._wrap("uniform", low, high, size=size, chunks=chunks)

    def integers(self, low: Any, high: Any = None, size: Any = None, dtype: Any = np.int64, endpoint: bool = False,
                 chunks: Any = "auto") -> Array:
        """Random integers in [low, high) (or [0, low) if ``high`` is None; inclusive with ``endpoint``)."""
        if high is None:
            low, high = 0, low
        return self._wrap("integers", low, high, size=size, chunks=chunks, dtype=dtype, endpoint=endpoint)

    def choice(self, a: Any, size: Any = None, replace: bool = True, p: Any = None, chunks: Any = "auto") -> Array:
        """Random samples of ``a`` (an int n meaning ``arange(n)``, or a 1-d array), with replacement."""
        if not replace:
            raise NotImplementedError(
                "choice(replace=False) cannot be drawn block by block independently; use "
                "permutation on the computed array instead"
            )
        a = _choice_population(a, "a")
        if p is not None:
            p = _choice_population(p, "p")
            n = a if isinstance(a, int) else len(a)
            if len(p) != n:
                raise ValueError(f"choice: a has {n} elements but p has {len(p)}")
            if not np.isclose(np.sum(p), 1.0):
                raise ValueError("choice: probabilities p do not sum to 1")
        size = _normalize_size(size) or ()
        kwargs = {"a": a} if p is None else {"a": a, "p": p}
        return self._wrap("choice", size=size, chunks=chunks, **kwargs)

    def exponential(self, scale: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Exponential values with the given ``scale``."""
        return self._wrap("exponential", scale, size=size, chunks=chunks)

    def standard_exponential(self, size: Any = None, chunks: Any = "auto") -> Array:
        """Exponential values with scale 1."""
        return self._wrap("standard_exponential", size=size, chunks=chunks)

    def poisson(self, lam: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Poisson counts with rate ``lam``."""
        return self._wrap("poisson", lam, size=size, chunks=chunks)

    def binomial(self, n: Any, p: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Binomial counts."""
        return self._wrap("binomial", n, p, size=size, chunks=chunks)

    def negative_binomial(self, n: Any, p: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Negative binomial counts."""
        return self._wrap("negative_binomial", n, p, size=size, chunks=chunks)

    def beta(self, a: Any, b: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Beta distributed values."""
        return self._wrap("beta", a, b, size=size, chunks=chunks)

    def gamma(self, shape: Any, scale: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Gamma distributed values."""
        return self._wrap("gamma", shape, scale, size=size, chunks=chunks)

    def standard_gamma(self, shape: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Gamma distributed values with scale 1."""
        return self._wrap("standard_gamma", shape, size=size, chunks=chunks)

    def lognormal(self, mean: Any = 0.0, sigma: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Log-normal values."""
        return self._wrap("lognormal", mean, sigma, size=size, chunks=chunks)

    def chisquare(self, df: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Chi-square values."""
        return self._wrap("chisquare", df, size=size, chunks=chunks)

    def geometric(self, p: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Geometric counts."""
        return self._wrap("geometric", p, size=size, chunks=chunks)

    def laplace(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Laplace values."""
        return self._wrap("laplace", loc, scale, size=size, chunks=chunks)

    def logistic(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Logistic values."""
        return self._wrap("logistic", loc, scale, size=size, chunks=chunks)

    def standard_t(self, df: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Student's t values."""
        return self._wrap("standard_t", df, size=size, chunks=chunks)

    def standard_cauchy(self, size: Any = None, chunks: Any = "auto") -> Array:
        """Cauchy values."""
        return self._wrap("standard_cauchy", size=size, chunks=chunks)

    def pareto(self, a: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Pareto II values."""
        return self._wrap("pareto", a, size=size, chunks=chunks)

    def rayleigh(self, scale: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Rayleigh values."""
        return self._wrap("rayleigh", scale, size=size, chunks=chunks)

    def triangular(self, left: Any, mode: Any, right: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Triangular values."""
        return self._wrap("triangular", left, mode, right, size=size, chunks=chunks)

    def weibull(self, a: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Weibull values."""
        return self._wrap("weibull", a, size=size, chunks=chunks)

    def power(self, a: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Power-law values in [0, 1]."""
        return self._wrap("power", a, size=size, chunks=chunks)

    def gumbel(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None, chunks: Any = "auto") -> Array:
        """Gumbel values."""
        return self._wrap("gumbel", loc, scale, size=size, chunks=chunks)

    def vonmises(self, mu: Any, kappa: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Von Mises values."""
        return self._wrap("vonmises", mu, kappa, size=size, chunks=chunks)

    def wald(self, mean: Any, scale: Any, size: Any = None, chunks: Any = "auto") -> Array:
        """Wald (inverse Gaussian) values."""
        return self._wrap("wald", mean, scale, size=size, chunks=chunks)


def _choice_population(a: Any, what: str) -> Any:
    if isinstance(a, Array):
        a = a.compute()
    if isinstance(a, numbers.Integral):
        if a <= 0:
            raise ValueError(f"choice: {what} must be positive, got {a}")
        return int(a)
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"choice: {what} must be 1-dimensional, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"choice: {what} cannot be empty")
    return a


def default_rng(seed: Any = None, bit_generator: type | None = None) -> Generator:
    """A lazy ``Generator`` (like ``numpy.random.default_rng``).

    >>> rng = default_rng(0)
    >>> rng.integers(10, size=5, chunks=2).compute().tolist() == default_rng(0).integers(10, size=5, chunks=2).compute().tolist()
    True
    """
    return Generator(seed, bit_generator)


class RandomState(Generator):
    """The legacy NumPy ``RandomState`` method names (``random_sample``, ``rand``, ``randn``,
    ``randint``...) on the same per-block streams as :class:`Generator`.

    Values differ from ``numpy.random.RandomState``'s (a different bit generator), but a seed makes
    them reproducible just as well.
    """

    def seed(self, seed: Any = None) -> None:
        """Restart the streams from ``seed``."""
        self._seq = np.random.SeedSequence(seed)
        self._calls = 0

    def random_sample(self, size: Any = None, chunks: Any = "auto") -> Array:
        """Uniform floats in [0, 1)."""
        return self.random(size=size, chunks=chunks)

    def rand(self, *shape: int, chunks: Any = "auto") -> Array:
        """Uniform floats in [0, 1) of the given shape."""
        return self.random(size=shape, chunks=chunks)

    def randn(self, *shape: int, chunks: Any = "auto") -> Array:
        """Standard normal values of the given shape."""
        return self.standard_normal(size=shape, chunks=chunks)

    def randint(self, low: Any, high: Any = None, size: Any = None, dtype: Any = np.int64,
                chunks: Any = "auto") -> Array:
        """Random integers in [low, high) (or [0, low))."""
        return self.integers(low, high, size=size, dtype=dtype, chunks=chunks)


_GLOBAL_LOCK = threading.Lock()
_global: RandomState | None = None


def _state() -> RandomState:
    global _global
    with _GLOBAL_LOCK:
        if _global is None:
            _global = RandomState()
        return _global


def seed(seed: Any = None) -> None:
    """Reseed the module-level generator used by ``lazyarr.array.random.normal`` etc."""
    _state().seed(seed)


def _module_function(name: str) -> Callable:
    method = getattr(RandomState, name)

    def function(*args: Any, **kwargs: Any) -> Array:
        return getattr(_state(), name)(*args, **kwargs)

    function.__name__ = name
    function.__qualname__ = name
    function.__doc__ = (method.__doc__ or "") + "\n\nDrawn from the module-level generator (see :func:`seed`)."
    return function


for _name in __all__:
    if _name not in ("Generator", "RandomState", "default_rng", "seed"):
        globals()[_name] = _module_function(_name)
del _name
