"""Random arrays: reproducibility, independence of blocks, distributions, the headline mean."""
from __future__ import annotations

import numpy as np
import pytest

import lazyarr
import lazyarr.array as da
from lazyarr.array import random as dr

from _array_helpers import SCHEDULERS, assert_eq

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_seed_makes_results_reproducible_on_any_scheduler(scheduler):
    a = da.random.default_rng(7).normal(size=(50, 40), chunks=(7, 9)).compute(scheduler="sync")
    b = da.random.default_rng(7).normal(size=(50, 40), chunks=(7, 9)).compute(scheduler=scheduler)
    np.testing.assert_array_equal(a, b)
    c = da.random.RandomState(7).randint(0, 100, size=1000, chunks=100)
    np.testing.assert_array_equal(c.compute(scheduler=scheduler), c.compute(scheduler="sync"))
    assert c.name == da.random.RandomState(7).randint(0, 100, size=1000, chunks=100).name


def test_successive_calls_and_seeds_differ():
    rng = da.random.default_rng(1)
    first = rng.random(100, chunks=10).compute()
    second = rng.random(100, chunks=10).compute()
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, da.random.default_rng(2).random(100, chunks=10).compute())
    unseeded = [da.random.random(20, chunks=5).compute() for _ in range(2)]
    assert not np.array_equal(*unseeded)
    da.random.seed(3)
    again = da.random.random(20, chunks=5).compute()
    da.random.seed(3)
    np.testing.assert_array_equal(again, da.random.random(20, chunks=5).compute())


def test_blocks_never_share_a_stream():
    x = da.random.default_rng(0).random((8, 1000), chunks=(1, 1000)).compute()
    rows = {tuple(row[:5]) for row in x}
    assert len(rows) == 8
    # the block's stream is SeedSequence(entropy, spawn_key=(call, block)): the spawn tree
    rng = da.random.default_rng(123)
    y = rng.random(30, chunks=10).compute()
    children = np.random.SeedSequence(123).spawn(1)[0].spawn(3)
    expected = np.concatenate([np.random.Generator(np.random.SFC64(c)).random(10) for c in children])
    np.testing.assert_array_equal(y, expected)


def test_distributions_have_the_right_moments_shapes_and_dtypes():
    rng = da.random.default_rng(42)
    n = 200_000
    checks = [
        (rng.normal(3, 2, size=n, chunks=50_000), 3, 2),
        (rng.uniform(-1, 1, size=n, chunks=50_000), 0, np.sqrt(4 / 12)),
        (rng.standard_normal(size=n, chunks=50_000), 0, 1),
        (rng.exponential(2.0, size=n, chunks=50_000), 2, 2),
        (rng.poisson(4.0, size=n, chunks=50_000), 4, 2),
        (rng.random(size=n, chunks=50_000), 0.5, np.sqrt(1 / 12)),
    ]
    for x, mean, std in checks:
        m, s = (float(v) for v in lazyarr.compute(x.mean(), x.std()))
        assert abs(m - mean) < 0.02 * max(1, std), (x.name, m)
        assert abs(s - std) < 0.02 * max(1, std), (x.name, s)
    ints = rng.integers(5, 10, size=(30, 30), chunks=7)
    values = ints.compute()
    assert ints.dtype == np.int64 and values.min() >= 5 and values.max() <= 9
    assert rng.integers(3, size=10, dtype="i2").dtype == np.int16
    assert rng.random(5, dtype="f4").dtype == np.float32 == rng.random(5, dtype="f4").compute().dtype
    assert set(np.unique(rng.integers(0, 3, size=100, endpoint=True).compute())) <= {0, 1, 2, 3}
    assert rng.binomial(10, 0.5, size=5).dtype == np.int64
    assert rng.beta(2, 3, size=(2, 3), chunks=1).shape == (2, 3)


def test_legacy_names():
    rs = da.random.RandomState(0)
    assert rs.rand(3, 4, chunks=2).shape == (3, 4)
    assert rs.randn(5).dtype == np.float64
    assert rs.random_sample(7, chunks=3).chunks == ((3, 3, 1),)
    values = rs.randint(10, size=50).compute()
    assert values.min() >= 0 and values.max() < 10
    rs.seed(5)
    a = rs.random_sample(10).compute()
    rs.seed(5)
    np.testing.assert_array_equal(a, rs.random_sample(10).compute())
    for name in dr.__all__:
        assert callable(getattr(dr, name)), name


def test_choice():
    rng = da.random.default_rng(3)
    x = rng.choice(5, size=1000, chunks=100).compute()
    assert set(np.unique(x)) <= set(range(5))
    pop = np.array([1.5, 2.5, 10.0])
    y = rng.choice(pop, size=(20, 20), p=[0.1, 0.0, 0.9], chunks=7)
    assert y.dtype == np.float64
    values = y.compute()
    assert set(np.unique(values)) <= {1.5, 10.0}
    assert rng.choice(da.arange(4, chunks=2), size=10).compute().max() <= 3
    with pytest.raises(NotImplementedError, match="replace=False"):
        rng.choice(5, size=3, replace=False)
    with pytest.raises(ValueError, match="sum to 1"):
        rng.choice(3, size=3, p=[0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="1-dimensional"):
        rng.choice(np.ones((2, 2)), size=3)


def test_array_parameters_broadcast_with_the_output():
    rng = da.random.default_rng(9)
    loc = np.array([0.0, 100.0, 200.0, 300.0])
    x = rng.normal(loc, 0.001, size=(6, 4), chunks=(4, 3))
    values = x.compute()
    np.testing.assert_allclose(values, np.broadcast_to(loc, (6, 4)), atol=0.1)
    lazy_loc = da.from_array(np.arange(6.0)[:, None] * 10, chunks=(2, 1))
    y = rng.normal(lazy_loc, 0.001, size=(6, 5), chunks=(3, 5)).compute()
    np.testing.assert_allclose(y, np.broadcast_to(np.arange(6.0)[:, None] * 10, (6, 5)), atol=0.1)
    assert rng.normal(loc, 1).shape == (4,)


def test_bad_parameters_fail_at_build_time():
    rng = da.random.default_rng(0)
    with pytest.raises(ValueError, match="scale"):
        rng.normal(0, -1, size=10)
    with pytest.raises(ValueError, match=r"cannot be broadcast to size \(3,\)"):
        rng.normal(np.zeros(4), 1, size=3)
    with pytest.raises(ValueError, match="non-negative"):
        rng.random(size=(-1,))
    with pytest.raises(ValueError, match="high"):
        rng.integers(5, 2, size=3)


def test_other_bit_generators():
    a = da.random.default_rng(1, bit_generator=np.random.PCG64).random(10, chunks=5).compute()
    b = da.random.default_rng(1).random(10, chunks=5).compute()
    assert not np.array_equal(a, b)
    child = np.random.SeedSequence(1).spawn(1)[0].spawn(1)[0]
    np.testing.assert_array_equal(a[:5], np.random.Generator(np.random.PCG64(child)).random(5))


def test_zero_d_and_empty():
    rng = da.random.default_rng(0)
    s = rng.normal(5, 1)
    assert s.shape == () and np.ndim(s.compute()) == 0
    assert_eq(rng.random((0, 3), chunks=2) * 0, np.zeros((0, 3)))


@pytest.mark.slow
def test_headline_mean_of_a_hundred_million_normals():
    x = da.random.normal(10, 0.1, size=(10**8,), chunks=(10**6,))
    result = x.mean().compute()
    assert abs(result - 10) < 1e-3
