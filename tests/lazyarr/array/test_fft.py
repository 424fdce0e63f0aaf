"""lazyarr.array.fft against numpy.fft: every transform, lengths, norms, dtypes, chunk errors."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr.array as la
from lazyarr.array import fft

from _array_helpers import SCHEDULERS, assert_eq

RNG = np.random.default_rng(30)
REAL = RNG.random((6, 8, 5))
VALUES = [REAL, REAL + 1j * RNG.random((6, 8, 5)), REAL.astype(np.float32)]


def _cases(names: list) -> list:
    """(values, name) pairs; NumPy's forward real transforms take real input only."""
    return [pytest.param(v, name, id=f"{name}-{v.dtype}") for v in VALUES for name in names
            if not (name in ("rfft", "ihfft", "rfft2", "rfftn") and v.dtype.kind == "c")]


@pytest.mark.parametrize("values, name", _cases(["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]))
def test_one_axis(values, name):
    x = la.from_array(values, chunks=(4, 8, 2))  # axis 1 whole, the others in uneven chunks
    for kwargs in (dict(axis=1), dict(axis=1, n=5), dict(axis=1, n=12, norm="ortho"), dict(axis=-2, norm="forward")):
        expected = getattr(np.fft, name)(values, **kwargs)
        assert_eq(getattr(fft, name)(x, **kwargs), expected, rtol=1e-4 if values.dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("values, name", _cases(["fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn",
                                                  "irfftn"]))
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_several_axes(values, name, scheduler):
    x = la.from_array(values, chunks=(6, 8, 2))
    for kwargs in (dict(axes=(0, 1)), dict(s=(4, 6), axes=(1, 0)), dict(axes=(1, 0), norm="ortho")):
        assert_eq(getattr(fft, name)(x, **kwargs), getattr(np.fft, name)(values, **kwargs), scheduler=scheduler,
                  rtol=1e-4 if values.dtype == np.float32 else None)
    default = la.from_array(values, chunks=(2, 8, 5) if name.endswith("2") else -1)
    assert_eq(getattr(fft, name)(default), getattr(np.fft, name)(values),
              rtol=1e-4 if values.dtype == np.float32 else None)


def test_axes_in_several_chunks_are_refused():
    x = la.from_array(REAL, chunks=(4, 8, 5))
    with pytest.raises(ValueError, match=r"fft needs axis 0 in one chunk, but its chunks are \(4, 2\); "
                                         r"rechunk\(\{0: -1\}\) first"):
        fft.fft(x, axis=0)
    with pytest.raises(ValueError, match="fft2 needs axis 0"):
        fft.fft2(x, axes=(0, 1))
    with pytest.raises(ValueError, match="repeated axes"):
        fft.fftn(x, axes=(1, 1))
    assert_eq(fft.fft(x.rechunk({0: -1}), axis=0), np.fft.fft(REAL, axis=0))
    assert_eq(np.fft.rfft(x), np.fft.rfft(REAL))  # NumPy's functions dispatch here


@pytest.mark.parametrize("n, d", [(5, 1.0), (8, 0.1), (1, 2.0), (13, 3)])
def test_frequencies(n, d):
    assert_eq(fft.fftfreq(n, d, chunks=3), np.fft.fftfreq(n, d))
    assert_eq(fft.rfftfreq(n, d, chunks=2), np.fft.rfftfreq(n, d))


@pytest.mark.parametrize("axes", [None, 0, (1, 2), (-1,)])
@pytest.mark.parametrize("chunks", [3, (6, 8, 5), ((1, 5), (3, 3, 2), (4, 1))])
def test_shifts(axes, chunks):
    x = la.from_array(REAL, chunks=chunks)
    assert_eq(fft.fftshift(x, axes), np.fft.fftshift(REAL, axes))
    assert_eq(fft.ifftshift(x, axes), np.fft.ifftshift(REAL, axes))
