"""Work stealing: the state machine's decisions with scripted events, then a real cluster where
one worker is handed every long task and the other steals some."""
from __future__ import annotations

import threading
import time

import pytest

from runtime.scheduler_state import CHAINED, MEMORY, PROCESSING
from test_scheduler_state import W1, W2, W3, Sim

pytestmark = pytest.mark.timeout(60)

BIG = 50_000_000     # 0.5 s to move at the assumed 100 MB/s
HUGE = 2_000_000_000  # 20 s to move


def steal_requests(sim, worker):
    return [k for op in sim.direct[worker] if op["op"] == "steal-request" for k in op["keys"]]


def fan_out(sim, n=6, nbytes=BIG, extra=None):
    """Root x (``nbytes`` large) computed on W1, then ``n`` tasks reading it: all placed on W1,
    where x is, because moving x looks dearer than queueing there before durations are known."""
    deps = {"x": [], **{f"t{i}": ["x"] for i in range(n)}, **(extra or {})}
    sim.graph("A", deps, [k for k in deps if k != "x"], priorities=list(range(len(deps))))
    holder = next(w for w in (W1, W2) if "x" in sim.computes[w])
    sim.finish(holder, "x", nbytes=nbytes)
    return holder


def make_sim(**kwargs):
    kwargs.setdefault("steal_interval", 0.0)
    return Sim(workers=(W1, W2), **kwargs)


def test_idle_worker_steals_the_last_queued_task_when_moving_inputs_is_cheaper():
    sim = make_sim()
    victim = fan_out(sim)
    thief = W2 if victim == W1 else W1
    assert sim.processing(victim) == {f"t{i}" for i in range(6)} and not sim.processing(thief)
    assert steal_requests(sim, victim) == []          # no duration measured yet: no estimate
    sim.finish(victim, "t0", duration=2.0)             # 2 s per task: t5 would wait ~8 s there
    assert steal_requests(sim, victim) == ["t5"]       # the last in line, one per free thread
    assert sim.state("t5") == PROCESSING and sim.s.tasks["t5"].worker.address == victim
    sim.feed(sim.s.steal_response(victim, ["t5"], [True]))
    assert sim.s.tasks["t5"].worker.address == thief
    op = sim.compute_ops[thief][-1]
    assert op["keys"] == ["t5"] and dict(op["who_has"]) == {"x": [victim]}
    assert "t5" in sim.frees[victim]
    assert sim.s.stealing == {}
    sim.run_all()
    assert all(sim.state(f"t{i}") == MEMORY for i in range(6))


def test_steal_race_task_already_started_stays_where_it_is():
    sim = make_sim()
    victim = fan_out(sim)
    sim.finish(victim, "t0", duration=2.0)
    assert steal_requests(sim, victim) == ["t5"]
    sim.feed(sim.s.steal_response(victim, ["t5"], [False]))   # it had started there
    ts = sim.s.tasks["t5"]
    assert ts.state == PROCESSING and ts.worker.address == victim and sim.s.stealing == {}
    assert "t5" not in sim.frees[victim]
    sim.finish(victim, "t5", duration=2.0)
    assert sim.state("t5") == MEMORY


def test_steal_race_task_finished_before_the_answer():
    sim = make_sim()
    victim = fan_out(sim)
    sim.finish(victim, "t0", duration=2.0)
    assert steal_requests(sim, victim) == ["t5"]
    sim.finish(victim, "t5", duration=2.0)          # it ran; then the victim answers "not released"
    sim.feed(sim.s.steal_response(victim, ["t5"], [False]))
    assert sim.state("t5") == MEMORY and sim.s.tasks["t5"] not in sim.s.stealing
    assert steal_requests(sim, victim) == ["t5", "t4"]   # the thread is still free: next in line


def test_no_steal_when_moving_inputs_costs_more_than_waiting():
    sim = make_sim()
    victim = fan_out(sim, nbytes=HUGE)
    sim.finish(victim, "t0", duration=0.5)   # the last task waits ~2 s; moving x takes ~20 s
    assert steal_requests(sim, victim) == []


def test_no_steal_for_short_tasks():
    sim = make_sim()
    victim = fan_out(sim)
    sim.finish(victim, "t0", duration=0.0001)
    assert steal_requests(sim, victim) == []   # a few 0.1 ms tasks: not worth a message


def test_stealing_can_be_switched_off():
    sim = make_sim(work_stealing=False)
    victim = fan_out(sim)
    sim.finish(victim, "t0", duration=2.0)
    assert steal_requests(sim, victim) == []


def test_stolen_task_takes_its_chained_dependents_along():
    sim = make_sim()
    victim = fan_out(sim, extra={"u": ["t5"]})
    thief = W2 if victim == W1 else W1
    assert sim.s.tasks["u"].flags & CHAINED and sim.s.tasks["u"].worker.address == victim
    sim.finish(victim, "t0", duration=2.0)
    assert steal_requests(sim, victim) == ["t5"]
    sim.feed(sim.s.steal_response(victim, ["t5"], [True]))
    assert {"t5", "u"} <= set(sim.frees[victim])          # u waited there for t5: cancelled
    assert sim.s.tasks["u"].worker.address == thief       # and chained behind t5 on the thief
    assert sim.compute_ops[thief][-1]["keys"] == ["t5", "u"]
    sim.run_all()
    assert sim.state("u") == MEMORY


def test_victim_leaves_before_answering():
    sim = make_sim()
    victim = fan_out(sim)
    sim.finish(victim, "t0", duration=2.0)
    assert steal_requests(sim, victim) == ["t5"]
    sim.feed(sim.s.worker_removed(victim))          # x is lost: recomputed on the other worker
    sim.feed(sim.s.steal_response(victim, ["t5"], [True]))   # a late answer changes nothing
    sim.run_all()
    assert all(sim.state(f"t{i}") == MEMORY for i in range(6))


def test_thief_leaves_before_the_answer():
    sim = Sim(workers=(W1, W2, W3), steal_interval=0.0)
    deps = {"x": [], **{f"t{i}": ["x"] for i in range(8)}}
    sim.graph("A", deps, [k for k in deps if k != "x"], priorities=list(range(len(deps))))
    victim = next(w for w in (W1, W2, W3) if "x" in sim.computes[w])
    sim.finish(victim, "x", nbytes=BIG)
    sim.finish(victim, sorted(sim.processing(victim))[0], duration=2.0)
    stolen = steal_requests(sim, victim)
    assert len(stolen) == 2                          # one per idle worker
    thieves = {sim.s.stealing[sim.s.tasks[k]][1].address for k in stolen}
    gone = sorted(thieves)[0]
    sim.feed(sim.s.worker_removed(gone))
    sim.feed(sim.s.steal_response(victim, stolen, [True, True]))
    for key in stolen:
        assert sim.s.tasks[key].worker.address != gone
    sim.run_all()
    assert all(sim.state(f"t{i}") == MEMORY for i in range(8))


def test_restricted_tasks_are_not_stolen():
    sim = make_sim()
    deps = {"x": [], **{f"t{i}": ["x"] for i in range(6)}}
    sim.graph("A", deps, [k for k in deps if k != "x"], priorities=list(range(len(deps))),
              restrictions={f"t{i}": [W1] for i in range(6)} | {"x": [W1]})
    sim.finish(W1, "x", nbytes=8)
    sim.finish(W1, "t0", duration=2.0)
    assert steal_requests(sim, W1) == []


def test_paused_worker_gets_no_new_work_and_its_queue_is_stolen():
    sim = make_sim()
    sim.feed(sim.s.worker_paused(W1, True))
    sim.graph("A", {f"r{i}": [] for i in range(4)}, [f"r{i}" for i in range(4)])
    assert not sim.processing(W1) and sim.processing(W2)      # roots only to the running worker
    sim.feed(sim.s.worker_paused(W2, True))                   # everyone paused: work waits
    sim.feed(sim.s.worker_paused(W1, False))                  # W1 back: takes queued roots
    assert sim.processing(W1)
    sim.run_all()
    assert all(sim.state(f"r{i}") == MEMORY for i in range(4))


def test_queued_tasks_of_a_paused_worker_are_stolen():
    sim = make_sim()
    victim = fan_out(sim)
    thief = W2 if victim == W1 else W1
    sim.finish(victim, "t0", duration=0.1)    # short tasks: no reason to steal from a running worker
    assert steal_requests(sim, victim) == []
    sim.feed(sim.s.worker_paused(victim, True))   # but now it starts nothing until memory drops
    assert steal_requests(sim, victim) == ["t5"]
    sim.feed(sim.s.steal_response(victim, ["t5"], [True]))
    assert sim.s.tasks["t5"].worker.address == thief


def test_balance_due_when_a_pass_was_throttled():
    sim = Sim(workers=(W1, W2), steal_interval=10.0)
    victim = fan_out(sim)
    sim.s._last_balance = time.monotonic()        # a pass just ran
    sim.finish(victim, "t0", duration=2.0)
    assert steal_requests(sim, victim) == [] and sim.s.balance_due is not None
    sim.feed(sim.s.balance(now=sim.s.balance_due))
    assert steal_requests(sim, victim) == ["t5"] and sim.s.balance_due is None


# ----------------------------------------------------------------------------------------------
# A real cluster (threads, sockets on 127.0.0.1)


def _make_input(nbytes):
    return bytearray(nbytes)


def _slow(data, i, seconds):
    time.sleep(seconds)
    return i, threading.current_thread().name


def test_idle_worker_steals_long_tasks_end_to_end(cli):
    from runtime import Client, Scheduler, Worker

    scheduler = Scheduler(dashboard_address=None)
    workers = []
    try:
        workers = [Worker(scheduler.address_to_workers, nthreads=1, name=f"w{i}") for i in range(2)]
        with Client(scheduler.address_to_clients, timeout=20, set_as_default=False) as c:
            cli.wait_for_workers(c, 2)
            first = workers[0]
            # 20 MB held by w0 only: moving it "costs" 0.2 s, so before any duration is known
            # every task goes to w0; once one has taken 0.4 s, w1 steals what waits behind.
            x = c.submit(_make_input, 20_000_000, workers=[first.address])
            x.result()
            start = time.monotonic()
            futures = [c.submit(_slow, x, i, 0.4) for i in range(8)]
            results = c.gather(futures)
            elapsed = time.monotonic() - start
        assert sorted(i for i, _ in results) == list(range(8))
        ran_on = {name.split("-exec")[0] for _, name in results}
        ports = {str(w.port) for w in workers}
        assert len(ran_on) == 2, f"every task ran on one worker: {ran_on} (ports {ports})"
        assert elapsed < 8 * 0.4, f"no time saved by stealing: {elapsed:.2f} s"
    finally:
        for w in workers:
            w.close()
        scheduler.close()
