"""Pool, RemoteData and delete: the prototype's interface over a real LocalCluster."""
from __future__ import annotations

import os
import pickle
import re
import time
from operator import add

import numpy as np
import pytest

import runtime
from runtime import Client, Pool, RemoteData, SerializationError, delete, wait
from runtime.errors import ClientClosedError
from runtime.pool import DeletedError

pytestmark = pytest.mark.timeout(60)


def make_array(seed: int, n: int = 50_000) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def tagged(seed: int) -> tuple[int, np.ndarray]:
    """Where it ran, and 1.6 MB of data (enough that moving it costs more than waiting)."""
    return os.getpid(), make_array(seed, 200_000)


def where(t: tuple[int, object]) -> tuple[int, int]:
    return t[0], os.getpid()


def fail(x: int) -> int:
    raise ZeroDivisionError(f"no {x}")


def in_memory(client: Client) -> int:
    return client.scheduler_info()["task_states"].get("memory", 0)


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


@pytest.fixture
def pool(local_cluster):
    with Pool(local_cluster.scheduler_address, timeout=10) as p:
        yield p


def test_the_prototype_example(pool):
    arrays = pool.map(make_array, range(20))
    assert all(isinstance(a, RemoteData) for a in arrays)
    sums = pool.map(np.sum, arrays)
    total = pool.apply(np.sum, args=(sums,))
    values = [a.get() for a in arrays]
    assert all(np.array_equal(v, make_array(i)) for i, v in enumerate(values))
    assert total.get() == pytest.approx(sum(v.sum() for v in values))
    assert total.status == "finished" and total.done()


def test_equal_calls_run_separately(pool):
    handles = [pool.apply(time.perf_counter_ns) for _ in range(5)]
    assert len({h.key for h in handles}) == 5
    assert len({h.get() for h in handles}) == 5


def test_the_prototype_random_arrays_differ(pool):
    """``pool.map(np.random.random, [n] * k)`` (the prototype's example) makes k different arrays.

    Pickled as is, ``np.random.random`` carries numpy's global RandomState by value, so every
    call would start from the client's state (Dask's ``client.map`` behaves so); the Pool ships
    such module-level methods by name, so each worker uses its own generator.
    """
    arrays = pool.map(np.random.random, [1_000] * 6)
    assert arrays[0].key.startswith("random-")
    firsts = {a.get()[0] for a in arrays}
    assert len(firsts) == 6, "every call returned the same 'random' array"
    assert np.random.random.__self__ is np.random.mtrand._rand  # the client's generator is untouched
    assert pool.apply(np.random.randint, args=(0, 10**9)).get() != pool.apply(np.random.randint, args=(0, 10**9)).get()


def test_repr_names_scheduler_and_key(pool):
    handle = pool.apply(add, args=(1, 2))
    assert re.fullmatch(rf"RemoteData<scheduler={re.escape(pool.address)}, key=add-[0-9a-f]{{32}}>", repr(handle))
    assert handle.scheduler == pool.address
    assert handle.get() == 3


def test_handles_in_graphs(pool):
    arrays = pool.map(make_array, range(8))
    dsk = {("sum", i): (np.sum, x) for i, x in enumerate(arrays)}
    dsk["total"] = (sum, [("sum", i) for i in range(8)])
    expected = sum(make_array(i).sum() for i in range(8))
    assert pool.get(dsk, "total") == pytest.approx(expected)
    assert pool.get({"x": arrays[0], "n": (len, "x")}, "n") == 50_000


def test_map_runs_where_the_data_is(pool):
    made = pool.map(tagged, range(20))
    wait([h.future for h in made])
    places = [h.get() for h in pool.map(where, made)]
    same = sum(maker == user for maker, user in places)
    assert same >= 15, f"only {same} of 20 calls ran on the worker holding their input"


def test_apply_with_handles_at_any_depth_and_kwargs(pool):
    a, b = pool.map(make_array, [1, 2])
    both = pool.apply(np.concatenate, args=([a, b],))
    assert both.get().shape == (100_000,)
    d = pool.apply(lambda x, *, scale: {k: v * scale for k, v in x.items()},
                   args=({"first": pool.apply(add, args=(1, 1))},), kwargs={"scale": 10})
    assert d.get() == {"first": 20}


def test_map_over_several_iterables(pool):
    out = pool.map(add, range(5), pool.map(add, range(5), range(5)))
    assert pool.gather(out) == [3 * i for i in range(5)]


def test_delete_frees_the_data(pool):
    with Client(pool.address, timeout=10, set_as_default=False) as observer:
        before = in_memory(observer)
        handles = pool.map(make_array, range(6))
        wait_until(lambda: in_memory(observer) >= before + 6)
        delete(handles)
        wait_until(lambda: in_memory(observer) <= before)
    assert handles[0].status == "deleted"
    with pytest.raises(DeletedError, match="deleted"):
        handles[0].get()
    with pytest.raises(DeletedError):
        pool.map(np.sum, handles[:1])
    delete(handles)  # twice is fine


def test_runtime_delete_is_the_same_function():
    assert runtime.delete is delete
    from lazyarr.distributed import Pool as P, RemoteData as R, delete as d

    assert (P, R, d) == (Pool, RemoteData, delete)


def test_errors_come_back_with_their_type(pool):
    bad = pool.apply(fail, args=(3,))
    with pytest.raises(ZeroDivisionError, match="no 3"):
        bad.get()
    assert isinstance(bad.exception(), ZeroDivisionError)
    downstream = pool.map(add, [bad], [1])[0]
    with pytest.raises(ZeroDivisionError):
        downstream.get()


def test_scatter_and_gather(pool):
    local = np.arange(100_000)
    handle = pool.scatter(local)
    assert isinstance(handle, RemoteData)
    assert pool.apply(np.sum, args=(handle,)).get() == local.sum()
    several = pool.scatter([1, 2, 3])
    assert pool.gather(several) == [1, 2, 3]


def test_handles_refuse_to_be_pickled_or_sent_around_the_pool(pool):
    handle = pool.apply(add, args=(2, 3))
    with pytest.raises(TypeError, match="Pool.map, Pool.apply or Pool.get"):
        pickle.dumps(handle)
    with pytest.raises(SerializationError):
        pool.client.get({"y": (add, handle, 1)}, "y")
    assert pool.client.get({"y": (add, handle.future, 1)}, "y") == 6


def test_address_forms_and_default_client(local_cluster):
    host_port = local_cluster.scheduler_address[len("tcp://"):]
    with Pool(host_port, timeout=10) as p:
        assert p.apply(add, args=(1, 1)).get() == 2
    with Client(local_cluster, timeout=10) as c:
        with Pool() as p:  # the default client, not closed by the pool
            assert p.client is c
            assert p.apply(add, args=(2, 2)).get() == 4
        assert not c.closed
        with Pool(c) as p:
            assert p.client is c
    with pytest.raises(ValueError, match="default Client"):
        Pool()


def test_closed_pool(local_cluster):
    p = Pool(local_cluster.scheduler_address, timeout=10)
    handle = p.apply(add, args=(1, 2))
    assert handle.get() == 3
    p.close()
    assert p.closed and "closed" in repr(p)
    with pytest.raises(ClientClosedError):
        handle.get()
    with pytest.raises(ClientClosedError):
        p.map(add, [1], [2])


def test_bad_input(pool):
    with pytest.raises(TypeError, match="iterable"):
        pool.map(add)
    with pytest.raises(TypeError, match="tuple or list"):
        pool.apply(add, args=1)
    with pytest.raises(TypeError, match="mapping"):
        pool.apply(add, kwargs=[1])
    with pytest.raises(TypeError, match="RemoteData"):
        delete(5)
    with pytest.raises(ValueError, match="address"):
        Pool("nowhere")
