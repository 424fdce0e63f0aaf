"""The scheduler's state machine driven by scripted events: no sockets, no threads."""
from __future__ import annotations

import pickle
from collections import defaultdict

import pytest

from runtime.errors import LostDataError, MissingDependencyError
from runtime.scheduler_state import (CHAINED, ERRED, MEMORY, PROCESSING, READY, RELEASED,
                                     SchedulerState)

pytestmark = pytest.mark.timeout(30)

W1, W2, W3 = "tcp://127.0.0.1:1001", "tcp://127.0.0.1:1002", "tcp://127.0.0.1:1003"


class Sim:
    """A scheduler state plus what each worker and client was told."""

    def __init__(self, workers=(W1,), nthreads=1, **kwargs):
        kwargs.setdefault("min_buffer", 1)
        self.s = SchedulerState(**kwargs)
        self.computes = defaultdict(list)    # worker -> keys sent to compute, in order
        self.frees = defaultdict(list)       # worker -> keys freed/cancelled
        self.stores = defaultdict(list)
        self.memory = defaultdict(list)      # client -> keys reported in memory
        self.erred = defaultdict(list)       # client -> (key, exception payload, blame)
        self.lost = defaultdict(list)
        self.direct = defaultdict(list)
        self.compute_ops = defaultdict(list)
        for w in workers:
            self.feed(self.s.worker_added(w, nthreads))

    def feed(self, messages):
        for (kind, peer), op in messages:
            name = op["op"]
            if kind == "w" and name == "compute":
                self.computes[peer].extend(op["keys"])
                self.compute_ops[peer].append(op)
            elif kind == "w" and name == "free-keys":
                self.frees[peer].extend(op["keys"])
            elif kind == "w" and name == "store-data":
                self.stores[peer].extend(op["keys"])
            elif kind == "c" and name == "key-in-memory":
                self.memory[peer].extend(op["keys"])
            elif kind == "c" and name == "key-erred":
                self.erred[peer].extend(zip(op["keys"], op["exceptions"], op["blame"]))
            elif kind == "c" and name == "key-lost":
                self.lost[peer].extend(op["keys"])
            else:
                self.direct[peer].append(op)
        self.s.validate()
        return messages

    def graph(self, client, deps: dict, wanted, **kwargs):
        keys = list(deps)
        return self.feed(self.s.update_graph(client, keys, [f"task {k}".encode() for k in keys],
                                             [list(deps[k]) for k in keys], wanted, **kwargs))

    def finish(self, worker, *keys, nbytes=8, duration=None):
        return self.feed(self.s.tasks_finished(worker, list(keys), [nbytes] * len(keys), duration))

    def processing(self, worker):
        return {ts.key for ts in self.s.workers[worker].processing}

    def state(self, key):
        ts = self.s.tasks.get(key)
        return ts.state if ts is not None else "forgotten"

    def run_all(self, limit=10_000):
        """Finish every processing task, in the order sent, until nothing is left to run."""
        for _ in range(limit):
            progressed = False
            for ws in list(self.s.workers.values()):
                runnable = [ts.key for ts in sorted(ws.processing, key=lambda t: t.priority)
                            if all(d.state == MEMORY for d in ts.deps)]
                if runnable:
                    self.finish(ws.address, runnable[0])
                    progressed = True
            if not progressed:
                return


def priorities(deps):
    """The priorities a client sends: lazyarr's static order."""
    from lazyarr.order import order_keys

    rank = {k: i for i, k in enumerate(order_keys({k: list(v) for k, v in deps.items()}))}
    return [rank[k] for k in deps]


def chain(n, prefix="c"):
    deps = {f"{prefix}0": []}
    for i in range(1, n):
        deps[f"{prefix}{i}"] = [f"{prefix}{i - 1}"]
    return deps


def test_simple_graph_runs_and_notifies_client():
    sim = Sim()
    sim.graph("A", {"x": [], "y": ["x"]}, ["y"])
    assert sim.computes[W1] == ["x", "y"]           # y chained behind x in the same message
    assert len(sim.compute_ops[W1]) == 1
    op = sim.compute_ops[W1][0]
    assert op["deps"] == [[], ["x"]] and op["tasks"] == [b"task x", b"task y"]
    sim.finish(W1, "x")
    assert sim.state("x") == MEMORY and sim.memory["A"] == []
    sim.finish(W1, "y")
    assert sim.memory["A"] == ["y"]
    assert sim.frees[W1] == ["x"]                    # intermediate freed once y is done
    assert sim.state("x") == RELEASED                # remembered for lineage while y lives
    sim.feed(sim.s.release_keys("A", ["y"]))
    assert sim.s.tasks == {}
    assert sim.frees[W1] == ["x", "y"]


def test_linear_chain_sent_in_one_message_to_one_worker():
    sim = Sim(workers=(W1, W2))
    sim.graph("A", chain(100), ["c99"])
    sent = sim.computes[W1] + sim.computes[W2]
    assert sorted(sent) == sorted(chain(100))
    assert len(sim.computes[W1]) in (0, 100)           # all on one worker
    worker = W1 if sim.computes[W1] else W2
    assert len(sim.compute_ops[worker]) == 1
    assert sum(1 for ts in sim.s.workers[worker].processing if ts.flags & CHAINED) == 99
    for i in range(100):
        sim.finish(worker, f"c{i}")
    assert sim.memory["A"] == ["c99"]
    assert sorted(sim.frees[worker]) == sorted(f"c{i}" for i in range(99))


def test_root_tasks_queued_in_priority_order_without_overproduction():
    sim = Sim(workers=(W1,), nthreads=2, min_buffer=1, max_buffer=4, queue_seconds=0.01)
    deps = {f"r{i}": [] for i in range(20)}
    sim.graph("A", deps, list(deps), priorities=list(range(19, -1, -1)))  # r19 first
    assert sim.computes[W1] == ["r19", "r18", "r17"]   # 2 threads + 1 buffer
    assert sim.s.scheduler_info()["queued"] == 17
    sim.finish(W1, "r19", duration=0.1)                # slow tasks: the buffer stays small
    assert sim.computes[W1][3:] == ["r16"]
    assert len(sim.processing(W1)) == 3
    sizes = []
    while sim.processing(W1):                            # fast tasks: more in flight, up to max
        first = min(sim.processing(W1), key=lambda k: sim.s.tasks[k].priority)
        sim.finish(W1, first, duration=1e-6)
        sizes.append(len(sim.processing(W1)))
    assert max(sizes) == 2 + 4
    assert sim.computes[W1] == [f"r{i}" for i in range(19, -1, -1)]   # priority order throughout


def test_roots_spread_over_workers_by_load():
    sim = Sim(workers=(W1, W2), nthreads=1)
    deps = {f"r{i}": [] for i in range(6)}
    sim.graph("A", deps, list(deps))
    assert len(sim.processing(W1)) == 2 and len(sim.processing(W2)) == 2
    assert sim.s.scheduler_info()["queued"] == 2
    sim.finish(W2, *sorted(sim.processing(W2)))
    assert len(sim.processing(W2)) == 2 and len(sim.processing(W1)) == 2
    sim.run_all()
    assert sorted(sim.memory["A"]) == sorted(deps)


def test_tree_reduction_releases_intermediates_early():
    sim = Sim(workers=(W1, W2), nthreads=1)
    deps = {f"x{i}": [] for i in range(8)}
    deps.update({f"s{i}": [f"x{2 * i}", f"x{2 * i + 1}"] for i in range(4)})
    deps.update({"t0": ["s0", "s1"], "t1": ["s2", "s3"], "total": ["t0", "t1"]})
    sim.graph("A", deps, ["total"], priorities=priorities(deps))
    peak = 0
    for _ in range(100):
        held = sum(len(ws.has_what) for ws in sim.s.workers.values())
        peak = max(peak, held)
        if sim.state("total") == MEMORY:
            break
        sim.run_all(limit=1)
    assert sim.memory["A"] == ["total"]
    assert peak <= 5                                    # never all 8 leaves at once
    assert {k for k in deps if sim.state(k) == MEMORY} == {"total"}
    sim.feed(sim.s.release_keys("A", ["total"]))
    assert sim.s.tasks == {}


def test_shared_keys_computed_once_across_clients():
    sim = Sim()
    sim.graph("A", {"x": [], "y": ["x"]}, ["y"])
    sim.graph("B", {"x": [], "z": ["x"]}, ["z", "x"])
    assert sim.computes[W1].count("x") == 1
    sim.run_all()
    assert sim.memory["A"] == ["y"] and sorted(sim.memory["B"]) == ["x", "z"]
    assert sim.state("x") == MEMORY                      # B wants it
    sim.feed(sim.s.client_removed("B"))
    assert sim.state("x") == RELEASED and sim.state("z") == "forgotten"
    assert sim.state("y") == MEMORY
    sim.feed(sim.s.client_removed("A"))
    assert sim.s.tasks == {}


def test_key_already_in_memory_is_reused_and_reported_at_once():
    sim = Sim()
    sim.graph("A", {"x": []}, ["x"])
    sim.finish(W1, "x")
    sim.graph("B", {"x": [], "y": ["x"]}, ["x", "y"])
    assert sim.memory["B"] == ["x"]                      # told immediately
    assert sim.computes[W1] == ["x", "y"]                 # x not computed again
    sim.finish(W1, "y")
    assert sim.memory["B"] == ["x", "y"]


def test_asking_again_for_a_known_key_reports_its_state_again():
    sim = Sim()
    sim.graph("A", {"x": []}, ["x"])
    sim.finish(W1, "x")
    sim.graph("A", {"x": []}, ["x"])
    assert sim.memory["A"] == ["x", "x"]
    sim.feed(sim.s.want_keys("A", ["x", "nope"]))
    assert sim.memory["A"] == ["x", "x", "x"]
    (key, payload, blame), = sim.erred["A"]
    assert key == "nope" and isinstance(pickle.loads(payload)[0], MissingDependencyError)


def test_errors_propagate_to_dependents_and_other_work_goes_on():
    sim = Sim(workers=(W1, W2))
    sim.graph("A", {"a": [], "b": ["a"], "c": ["b"], "ok": []}, ["c", "ok"])
    worker_of = {ts.key: ts.worker.address for ws in sim.s.workers.values() for ts in ws.processing}
    exc = pickle.dumps((ZeroDivisionError("boom"), "Traceback ..."))
    sim.feed(sim.s.task_erred(worker_of["a"], "a", exc))
    assert sim.state("a") == ERRED and sim.state("b") == ERRED and sim.state("c") == ERRED
    assert sim.erred["A"] == [("c", exc, "a")]
    assert "b" in sim.frees[worker_of["a"]]             # chained dependents cancelled there
    sim.finish(worker_of["ok"], "ok")
    assert sim.memory["A"] == ["ok"]
    sim.feed(sim.s.release_keys("A", ["c"]))
    assert set(sim.s.tasks) == {"ok"}


def test_retries_rerun_a_failed_task():
    sim = Sim()
    sim.graph("A", {"x": []}, ["x"], retries={"x": 1})
    exc = pickle.dumps((ValueError("flaky"), ""))
    sim.feed(sim.s.task_erred(W1, "x", exc))
    assert sim.state("x") == PROCESSING and sim.computes[W1] == ["x", "x"]
    sim.feed(sim.s.task_erred(W1, "x", exc))
    assert sim.state("x") == ERRED and sim.erred["A"][0][0] == "x"


def test_locality_prefers_worker_with_most_input_bytes():
    sim = Sim(workers=(W1, W2))
    sim.graph("A", {"big": [], "small": []}, ["big", "small"], restrictions={"big": [W1], "small": [W2]})
    sim.feed(sim.s.tasks_finished(W1, ["big"], [50_000_000]))
    sim.feed(sim.s.tasks_finished(W2, ["small"], [10]))
    sim.graph("A", {"f": ["big", "small"], "g": ["small"]}, ["f", "g"])
    assert sim.s.tasks["f"].worker.address == W1
    assert sim.s.tasks["g"].worker.address == W2
    op = sim.compute_ops[W1][-1]
    assert [list(pair) for pair in op["who_has"]] == [["small", [W2]]]   # where to fetch from


def test_worker_removal_reschedules_and_recomputes_lost_data():
    sim = Sim(workers=(W1, W2))
    sim.graph("A", {"x": [], "y": []}, ["x", "y"])
    where = {k: sim.s.tasks[k].worker.address for k in ("x", "y")}
    sim.finish(where["x"], "x")
    sim.graph("A", {"z": ["x", "y"]}, ["z"])             # waits for y
    gone = where["x"]
    survivor = W2 if gone == W1 else W1
    sim.feed(sim.s.worker_removed(gone))
    assert gone not in sim.s.workers
    assert sim.lost["A"] == ["x"]
    assert sim.state("x") in (PROCESSING, READY)            # recomputed from lineage
    sim.run_all()
    assert sim.state("z") == MEMORY
    assert set(sim.memory["A"]) == {"x", "y", "z"}
    assert all(ts.who_has == {sim.s.workers[survivor]} for ts in sim.s.tasks.values() if ts.state == MEMORY)


def test_worker_removal_recomputes_released_lineage():
    sim = Sim(workers=(W1,))
    sim.graph("A", {"a": [], "b": ["a"], "c": ["b"]}, ["c"])
    sim.run_all()
    assert sim.state("a") == RELEASED and sim.state("b") == RELEASED and sim.state("c") == MEMORY
    sim.feed(sim.s.worker_added(W2, 1))
    sim.feed(sim.s.worker_removed(W1))
    assert sim.state("a") == PROCESSING and sim.s.tasks["a"].worker.address == W2
    sim.run_all()
    assert sim.state("c") == MEMORY and sim.memory["A"] == ["c", "c"]


def test_chained_dependents_reset_with_their_head():
    sim = Sim(workers=(W1, W2))
    sim.graph("A", {"src": []}, ["src"])
    holder = sim.s.tasks["src"].worker.address
    sim.finish(holder, "src")
    other = W2 if holder == W1 else W1
    sim.feed(sim.s.worker_added("tcp://127.0.0.1:1009", 1))
    # h needs src (held elsewhere); t is chained behind h on h's worker
    sim.graph("A", {"h": ["src"], "t": ["h"]}, ["t"])
    w = sim.s.tasks["h"].worker.address
    assert sim.s.tasks["t"].worker.address == w and sim.s.tasks["t"].flags & CHAINED
    sim.feed(sim.s.missing_data(w, "h", "src", holder))   # the fetch failed: src is lost
    assert "t" in sim.frees[w] and "h" in sim.frees[w]   # cancelled where they were waiting
    assert sim.state("src") == PROCESSING
    src_worker = sim.s.tasks["src"].worker
    for key in ("h", "t"):                                   # chained again behind the recompute
        assert sim.state(key) == PROCESSING and sim.s.tasks[key].worker is src_worker
    sim.run_all()
    assert sim.state("t") == MEMORY


def test_client_disconnect_cancels_its_work():
    sim = Sim(workers=(W1,), nthreads=1)
    deps = {f"r{i}": [] for i in range(10)}
    deps["total"] = list(deps)
    sim.graph("A", deps, ["total"])
    running = sim.processing(W1)
    sim.feed(sim.s.client_removed("A"))
    assert set(sim.frees[W1]) == running
    assert sim.s.tasks == {} and sim.s.workers[W1].processing == set()
    sim.finish(W1, *running)                              # late reports are told to free
    assert set(sim.frees[W1]) == running | running


def test_unknown_dependency_is_an_error_for_the_client():
    sim = Sim()
    sim.graph("A", {"y": ["ghost"]}, ["y"])
    (key, payload, blame), = sim.erred["A"]
    exc, _ = pickle.loads(payload)
    assert key == "y" and isinstance(exc, MissingDependencyError) and "ghost" in str(exc)


def test_many_graphs_from_many_clients_interleave():
    sim = Sim(workers=(W1, W2), nthreads=2)
    for c in range(5):
        deps = {f"{c}-r{i}": [] for i in range(10)}
        deps[f"{c}-sum"] = list(deps)
        sim.graph(f"client{c}", deps, [f"{c}-sum"])
    sim.run_all()
    for c in range(5):
        assert sim.memory[f"client{c}"] == [f"{c}-sum"]
        sim.feed(sim.s.client_removed(f"client{c}"))
    assert sim.s.tasks == {}


def test_earlier_graph_roots_run_first():
    sim = Sim(workers=(W1,), nthreads=1, max_buffer=1)
    sim.graph("A", {f"a{i}": [] for i in range(5)}, [f"a{i}" for i in range(5)])
    sim.graph("B", {f"b{i}": [] for i in range(5)}, [f"b{i}" for i in range(5)])
    sim.run_all()
    order = sim.computes[W1]
    assert order.index("a4") < order.index("b0")


def test_scatter_gather_and_lost_scattered_data():
    sim = Sim(workers=(W1, W2))
    sim.feed(sim.s.scatter("A", ["d1", "d2"], [b"v1", b"v2"]))
    placed = {k: w for w, keys in sim.stores.items() for k in keys}
    assert set(placed) == {"d1", "d2"} and placed["d1"] != placed["d2"]
    for key, w in placed.items():
        sim.finish(w, key)
    assert sorted(sim.memory["A"]) == ["d1", "d2"]
    out = sim.feed(sim.s.gather("A", 7, ["d1", "d2", "nope"]))
    sends = [(peer, op) for (kind, peer), op in out if op["op"] == "send-data"]
    assert sorted(k for _, op in sends for k in op["keys"]) == ["d1", "d2"]
    assert any(op["op"] == "data" and op["missing"] == ("nope",) or op.get("missing") == ["nope"]
               for op in sim.direct["A"])
    sim.feed(sim.s.worker_removed(placed["d1"]))
    (key, payload, _), = sim.erred["A"]
    assert key == "d1" and isinstance(pickle.loads(payload)[0], LostDataError)
    assert sim.state("d2") == MEMORY


def test_scatter_waits_for_a_worker():
    sim = Sim(workers=())
    sim.feed(sim.s.scatter("A", ["d"], [b"v"]))
    assert not sim.stores
    sim.feed(sim.s.worker_added(W1, 1))
    assert sim.stores[W1] == ["d"]


def test_tasks_wait_for_a_worker_to_join():
    sim = Sim(workers=())
    sim.graph("A", {"x": [], "y": ["x"]}, ["y"])
    assert sim.state("x") == READY
    sim.feed(sim.s.worker_added(W1, 1))
    assert sim.computes[W1] == ["x", "y"]


def test_restrictions_honoured():
    sim = Sim(workers=(W1, W2))
    sim.graph("A", {f"r{i}": [] for i in range(4)}, [f"r{i}" for i in range(4)],
              restrictions={f"r{i}": [W2] for i in range(4)})
    assert not sim.computes[W1] and len(sim.computes[W2]) == 4
    sim.graph("A", {"z": []}, ["z"], restrictions={"z": ["no-such-worker"]})
    assert sim.state("z") == READY and sim.s.tasks["z"] in sim.s.unrunnable


def test_named_collections_outlive_their_client():
    sim = Sim()
    sim.graph("A", {"p": []}, ["p"])
    sim.finish(W1, "p")
    sim.feed(sim.s.set_collection("A", 1, "mine", b"pickled", ["p"]))
    assert sim.direct["A"][-1]["ok"]
    sim.feed(sim.s.client_removed("A"))
    assert sim.state("p") == MEMORY                      # kept alive by the collection
    sim.feed(sim.s.get_collection("B", 2, "mine"))
    reply = sim.direct["B"][-1]
    assert reply["ok"] and reply["result"]["blob"] == b"pickled" and reply["result"]["keys"] == ["p"]
    assert sim.memory["B"] == ["p"]
    sim.feed(sim.s.list_collections("B", 3))
    assert sim.direct["B"][-1]["result"] == ["mine"]
    sim.feed(sim.s.delete_collection("B", 4, "mine"))
    assert sim.state("p") == MEMORY                      # B still wants it
    sim.feed(sim.s.client_removed("B"))
    assert sim.s.tasks == {}
    sim.feed(sim.s.get_collection("C", 5, "mine"))
    assert not sim.direct["C"][-1]["ok"] and "mine" in sim.direct["C"][-1]["message"]


def test_replacing_a_collection_releases_only_what_it_no_longer_holds():
    sim = Sim()
    sim.graph("A", {"p": [], "q": []}, ["p", "q"])
    sim.finish(W1, "p", "q")
    sim.feed(sim.s.set_collection("A", 1, "c", b"1", ["p", "q"]))
    sim.feed(sim.s.set_collection("A", 2, "c", b"2", ["q"]))
    sim.feed(sim.s.client_removed("A"))
    assert sim.state("p") == "forgotten" and sim.state("q") == MEMORY
    sim.feed(sim.s.set_collection("B", 3, "bad", b"x", ["ghost"]))
    assert not sim.direct["B"][-1]["ok"]


def test_timeouts_remove_silent_workers_and_clients():
    sim = Sim(workers=(W1,), worker_timeout=5, client_timeout=5)
    sim.s.workers[W1].last_seen = 0.0
    sim.graph("A", {"x": []}, ["x"])
    sim.s.clients["A"].last_seen = 0.0
    sim.feed(sim.s.check_timeouts(now=100.0))
    assert sim.s.workers == {} and "A" not in sim.s.clients and sim.s.tasks == {}


def test_stale_and_duplicate_reports_are_harmless():
    sim = Sim(workers=(W1, W2))
    sim.graph("A", {"x": []}, ["x"])
    w = sim.s.tasks["x"].worker.address
    other = W2 if w == W1 else W1
    sim.finish(other, "x")                                # a copy from elsewhere: accepted
    assert sim.state("x") == MEMORY and "x" in sim.frees[w]
    sim.finish(w, "x")                                    # the late original: a replica
    assert {ws.address for ws in sim.s.tasks["x"].who_has} == {W1, W2}
    sim.feed(sim.s.task_erred(w, "x", b"junk"))          # stale error: ignored
    assert sim.state("x") == MEMORY
    sim.finish(W1, "never-heard-of")
    assert "never-heard-of" in sim.frees[W1]
    out = sim.feed(sim.s.worker_heartbeat("tcp://127.0.0.1:9", {}))
    assert out[0][1]["op"] == "register-again"


def test_worker_reregistering_with_data_restores_it():
    sim = Sim(workers=(W1,))
    sim.graph("A", {"x": [], "y": ["x"]}, ["y"])
    sim.feed(sim.s.worker_added(W2, 1, keys=["x", "junk"], nbytes=[8, 8]))
    assert sim.state("x") == MEMORY and "junk" in sim.frees[W2]


def test_gather_from_departed_worker_answers_missing():
    sim = Sim(workers=(W1,))
    sim.graph("A", {"x": []}, ["x"])
    sim.finish(W1, "x")
    sim.feed(sim.s.gather("A", 1, ["x"]))
    sim.feed(sim.s.worker_removed(W1))
    data = [op for op in sim.direct["A"] if op["op"] == "data"]
    assert data and list(data[-1]["missing"]) == ["x"]


def test_memory_per_task_is_small():
    """Scheduler metadata for a 20,000-task graph stays well under 750 bytes a task."""
    import tracemalloc

    sim_s = SchedulerState()
    sim_s.worker_added(W1, 1)
    n = 20_000
    keys = [("x-0123456789abcdef", i) for i in range(n)] + ["total"]
    deps = [[] for _ in range(n)] + [keys[:n]]
    payloads = [pickle.dumps((sum, [i, 1])) for i in range(n)] + [pickle.dumps((sum, keys[:n]))]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sim_s.update_graph("A", keys, payloads, deps, ["total"])
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_task = (after - before) / (n + 1)
    assert per_task < 750, per_task


def test_graph_in_pieces_kept_until_the_last_piece():
    sim = Sim(workers=(W1,), nthreads=1)
    deps = chain(6)
    keys = list(deps)
    sim.feed(sim.s.update_graph("A", keys[:3], [b"t"] * 3, [deps[k] for k in keys[:3]], partial=True))
    assert set(sim.s.tasks) == set(keys[:3]) and not sim.computes[W1]     # kept, not run yet
    sim.feed(sim.s.update_graph("A", keys[3:], [b"t"] * 3, [deps[k] for k in keys[3:]], ["c5"]))
    assert sim.computes[W1] == keys
    sim.run_all()
    assert sim.memory["A"] == ["c5"]
    # a client that leaves half-way does not leak its pieces
    sim.feed(sim.s.update_graph("B", ["p", "q"], [b"t", b"t"], [[], ["p"]], partial=True))
    sim.feed(sim.s.client_removed("B"))
    assert "p" not in sim.s.tasks and "q" not in sim.s.tasks


def test_ready_queue_orders_runs_pushed_at_different_times():
    from runtime.scheduler_state import ReadyQueue, TaskState

    q = ReadyQueue()
    for p in (50, 10, 30):
        q.push(TaskState(p, None, p))
    assert q.pop().priority == 10
    for p in (20, 5, 60):
        q.push(TaskState(p, None, p))
    assert len(q) == 5
    assert [q.pop().priority for _ in range(5)] == [5, 20, 30, 50, 60]
    assert not q


def test_malformed_graph_rejected_before_any_change():
    sim = Sim()
    for bad in [dict(keys=["a", {"x": 1}], deps=[[], []]), dict(keys=["a", "b"], deps=[[], 5]),
                dict(keys=["a"], deps=[[["nested", "list"]]]), dict(keys=["a"], deps=[[]], priorities=[-1])]:
        with pytest.raises(ValueError, match="update-graph"):
            sim.s.update_graph("A", bad["keys"], [b"t"] * len(bad["keys"]), bad["deps"], ["a"],
                               priorities=bad.get("priorities"))
        assert sim.s.tasks == {}
