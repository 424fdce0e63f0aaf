"""Einstein summation over lazy arrays: einsum.

Every block of the result is a sum over the blocks of the contracted indices. As in Dask, one
blockwise step runs ``np.einsum`` on each combination of blocks and keeps the contracted
indices as extra axes of length one per block; a tree reduction
(:func:`~lazyarr.array.sum`) then adds those axes up. So no task holds more than one block of
each operand, whatever the lengths of the contracted indices.
"""
from __future__ import annotations

import string
from collections import Counter
from typing import Any

import numpy as np

from .core import Array, asarray, blockwise

__all__ = ["einsum"]


def _from_sublists(operands: tuple) -> tuple[str, list]:
    """``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as ``('ab,bc->ac', [a, b])``."""
    def letters(sub: Any) -> str:
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, (int, np.integer)) and 0 <= s < len(string.ascii_letters):
                out.append(string.ascii_letters[int(s)])
            else:
                raise ValueError(f"einsum: subscripts in the sublist form must be integers 0-51 or ..., not {s!r}")
        return "".join(out)

    count = len(operands) // 2
    ops = list(operands[0:2 * count:2])
    spec = ",".join(letters(s) for s in operands[1:2 * count:2])
    if len(operands) % 2:  # a trailing sublist names the output
        spec += "->" + letters(operands[-1])
    return spec, ops


def parse_subscripts(subscripts: str, shapes: list[tuple]) -> tuple[list[str], str]:
    """Input and output index letters, with ``...`` replaced by letters of its own.

    The output of the implicit form is the broadcast dimensions, then every letter that
    appears once, in alphabetical order (as NumPy).

    >>> parse_subscripts('ij,jk', [(2, 3), (3, 4)])
    (['ij', 'jk'], 'ik')
    >>> parse_subscripts('...i,i->...', [(5, 2, 3), (3,)])
    (['ABi', 'i'], 'AB')
    """
    subscripts = subscripts.replace(" ", "")
    if subscripts.count("->") > 1:
        raise ValueError(f"einsum: subscripts {subscripts!r} contain '->' more than once")
    inputs, arrow, output = subscripts.partition("->")
    specs = inputs.split(",")
    if len(specs) != len(shapes):
        raise ValueError(f"einsum: {len(specs)} operand subscripts in {subscripts!r} for {len(shapes)} operand(s)")
    for char in subscripts.replace("...", "").replace("->", "").replace(",", ""):
        if char not in string.ascii_letters:
            raise ValueError(f"einsum: invalid subscript {char!r} in {subscripts!r}; use letters and ...")
    used = set(subscripts)
    spare = [c for c in string.ascii_uppercase + string.ascii_lowercase if c not in used]
    broadcast = 0
    for spec, shape in zip(specs, shapes):
        named = len(spec.replace("...", ""))
        if "..." in spec:
            broadcast = max(broadcast, len(shape) - named)
            if len(shape) < named or spec.count("...") > 1:
                raise ValueError(f"einsum: subscripts {spec!r} do not fit an operand of shape {shape}")
        elif named != len(shape):
            raise ValueError(f"einsum: subscripts {spec!r} name {named} axes but the operand has shape {shape}")
    ellipsis = "".join(spare[:broadcast])
    specs = [s.replace("...", ellipsis[broadcast - (len(shape) - len(s) + 3):] if "..." in s else "")
             for s, shape in zip(specs, shapes)]
    if arrow:
        output = output.replace("...", ellipsis)
        missing = [c for c in output if not any(c in s for s in specs)]
        if missing or len(set(output)) != len(output):
            raise ValueError(f"einsum: output subscripts {output!r} must be distinct letters of the inputs")
    else:
        counts = Counter("".join(specs))
        output = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    return specs, output


def _check_lengths(specs: list[str], arrays: list[Array]) -> None:
    lengths: dict = {}
    for spec, x in zip(specs, arrays):
        for letter, n in zip(spec, x.shape):
            lengths.setdefault(letter, set()).add(n)
    for letter, sizes in lengths.items():
        if len(sizes - {1}) > 1:
            raise ValueError(f"einsum: index {letter!r} has different lengths {sorted(sizes)} in the operands")


class _BlockEinsum:
    """``np.einsum`` on one combination of blocks, with a length-one axis per contracted index."""

    def __init__(self, spec: str, ncontract: int, kwargs: dict):
        self.spec, self.ncontract, self.kwargs = spec, ncontract, kwargs

    def __call__(self, *blocks: np.ndarray) -> np.ndarray:
        out = np.einsum(self.spec, *blocks, **self.kwargs)
        return np.asarray(out).reshape(np.shape(out) + (1,) * self.ncontract)

    def __reduce__(self):
        return (_BlockEinsum, (self.spec, self.ncontract, self.kwargs))


def einsum(*operands: Any, dtype: Any = None, optimize: Any = False, split_every: Any = None,
           **kwargs: Any) -> Array:
    """Einstein summation, like ``np.einsum`` (string or sublist subscripts, ``...`` broadcasting).

    ``dtype`` defaults to the operands' result type; ``optimize`` and the other keywords
    (``casting``, ``order``) are passed to ``np.einsum`` for every block; ``split_every`` is
    the fan-in of the sums over contracted indices.

    >>> import numpy as np, lazyarr.array as la
    >>> a = la.from_array(np.arange(6.).reshape(2, 3), chunks=2)
    >>> einsum('ij,ij->i', a, a).compute().tolist()
    [5.0, 50.0]
    >>> einsum('ij->ji', a).shape
    (3, 2)
    """
    if not operands:
        raise ValueError("einsum needs subscripts and at least one operand")
    if isinstance(operands[0], str):
        subscripts, ops = operands[0], list(operands[1:])
    else:
        subscripts, ops = _from_sublists(operands)
    arrays = [asarray(op) for op in ops]
    specs, output = parse_subscripts(subscripts, [tuple(x.shape) for x in arrays])
    _check_lengths(specs, arrays)
    if dtype is None:
        dtype = np.result_type(*[x.dtype for x in arrays])
    dtype = np.dtype(dtype)
    contracted = sorted({c for s in specs for c in s} - set(output))
    block_spec = ",".join(specs) + "->" + output
    fn = _BlockEinsum(block_spec, len(contracted), {"dtype": dtype, "optimize": optimize, **kwargs})
    pairs: list = []
    for spec, x in zip(specs, arrays):
        pairs += [x, tuple(spec)]
    out_ind = tuple(output) + tuple(contracted)
    per_block = blockwise(fn, out_ind, *pairs, adjust_chunks=dict.fromkeys(contracted, 1), dtype=dtype,
                          token="einsum")
    if not contracted:
        return per_block
    axes = tuple(range(len(output), len(out_ind)))
    return per_block.sum(axis=axes, dtype=dtype, split_every=split_every)
