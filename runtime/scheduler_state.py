"""The scheduler's decisions, as a plain class: events in, messages out, no sockets, no threads.

:class:`SchedulerState` holds metadata only (task states, who holds what, who wants what). Each
public method is an **event** (a client sent a graph, a worker finished tasks, a worker left, ...)
and returns the **messages** it causes, as a list of ``(destination, op)`` pairs where
``destination`` is ``('w', worker_address)`` or ``('c', client_id)`` and ``op`` is a dict with an
``'op'`` name, ready for :func:`runtime.protocol.encode`. Within one event, all tasks for one
worker go out as one ``compute`` op and all notices for one client as one op (batching).

Task states::

    released -> waiting -> ready -> processing -> memory -> released -> forgotten
                                          \\-> erred -> forgotten

* ``waiting``: some dependencies are not in memory yet (``nwaiting`` counts them);
* ``ready``: all inputs in memory, queued at the scheduler (root tasks wait here, in priority
  order, until a worker has room: no root-task overproduction);
* ``processing``: sent to ``ts.worker``;
* ``memory``: result held by the workers in ``ts.who_has``;
* ``erred``: it (or a dependency, ``extra['blame']``) raised;
* ``released``: not held anywhere, but remembered (computation kept) so it can be recomputed from
  lineage when a worker holding something downstream leaves;
* ``forgotten``: dropped from :attr:`SchedulerState.tasks`.

Reference counts decide what to keep: ``who_wants`` (clients holding futures, named
collections), ``nwaiters`` (dependents still pending: waiting, ready or processing) and ``nalive``
(dependents not yet forgotten). A result is freed as soon as no client wants it and no pending
dependent needs it; a task is forgotten once, in addition, none of its dependents exists.

Placement: a ready task with dependencies goes to the worker holding most of its input bytes
(balanced against how busy that worker is); when a task is sent to a worker, dependents whose
other inputs are already in memory or processing on that same worker are sent along with it
(**chaining**), so the worker runs linear chains back to back without a round trip per step.
Root tasks (no dependencies) are handed out in priority order, a worker holding at most
``nthreads + buffer`` of them, the buffer sized from measured task durations
(``queue_seconds`` of work, clamped to ``[min_buffer, max_buffer]``). A priority is the client's
``priority=`` first (higher first), then the graph's arrival, then its position in the graph's
static order, as in Dask. A task needing **resources** (``{'GPU': 1}``) goes only to a worker
that declared enough of them and has them free: the scheduler counts what each worker's tasks
use, gives it back when a task finishes, fails, is cancelled or moves, or its worker leaves, and
keeps the task waiting (:attr:`SchedulerState.constrained`) until then. A worker paused for its
memory gets no new work while another is running. **Work stealing** corrects placements that
measured durations prove wrong: a worker with an idle thread takes queued tasks from a busy (or
paused) one when moving their inputs costs less than their wait there (:meth:`SchedulerState.balance`,
``docs/stealing.md``).

Payloads (task computations, exceptions, collections) are opaque ``bytes``/``Serialized`` here:
the scheduler never unpickles them. It pickles only exceptions it creates itself.
"""
from __future__ import annotations

import heapq
import logging
import pickle
import sys
import time
from collections import defaultdict
from typing import Any, Iterable, Sequence

from concurrent.futures import CancelledError

from .errors import KilledWorker, LostDataError, MissingDependencyError, WorkerLeftError
from .protocol import PayloadSharer, SharedPayload
from .resources import check_resources
from .task_stream import prefix_of

__all__ = ["SchedulerState", "TaskState", "WorkerState", "ClientState",
           "WAITING", "READY", "PROCESSING", "MEMORY", "ERRED", "RELEASED", "FORGOTTEN", "FIRE_AND_FORGET"]

#: The scheduler's logger: a line says why tasks wait for resources no worker has.
logger = logging.getLogger("runtime.scheduler")

WAITING = "waiting"
READY = "ready"
PROCESSING = "processing"
MEMORY = "memory"
ERRED = "erred"
RELEASED = "released"
FORGOTTEN = "forgotten"
_PENDING = (WAITING, READY, PROCESSING)

#: ``TaskState.flags`` bits.
CHAINED = 1      # sent before its inputs were ready: does not take one of the worker's slots
SCATTERED = 2    # data from a client (no computation): cannot be recomputed
SECEDED = 4      # running, but left its worker's thread pool to wait (secede()): takes no slot
CONSTRAINED = 8  # ready, waiting in SchedulerState.constrained for a worker's resources to free up
NO_WORKER_LOGGED = 16  # the log already said that no worker has the resources it needs

_ROOT_PRIORITY_SHIFT = 32
#: A client's ``priority=`` sits above the generation and position bits: it dominates them
#: (``priority = (-user priority << 64) + (generation << 32 | position)``, smallest first).
_USER_PRIORITY_SHIFT = 64
_BASE_PRIORITY_MASK = (1 << _USER_PRIORITY_SHIFT) - 1
_INT64 = 1 << 63
#: Float sums of resource amounts (0.1 + 0.2) are compared with this much slack.
_RESOURCE_SLACK = 1e-9
#: Transfer-cost model for placement: assumed bandwidth and per-fetch latency.
_BANDWIDTH = 100e6
_FETCH_LATENCY = 0.001
_DEFAULT_DURATION = 0.0005
#: Added to a paused worker's cost and load: it gets work only when every worker is paused.
_PAUSED_PENALTY = 1e9
#: Work stealing: seconds a steal costs beyond moving the inputs (two messages, a fresh start).
_STEAL_OVERHEAD = 0.005
_intern = sys.intern
#: The pseudo-client that wants the keys given to ``fire_and_forget`` until they are done.
FIRE_AND_FORGET = "\x00fire-and-forget"


class TaskState:
    """Metadata of one task at the scheduler (kept small: about 1 KB per 1,000 tasks matters)."""

    __slots__ = ("key", "state", "payload", "deps", "dependents", "nwaiting", "nwaiters", "nalive",
                 "who_wants", "who_has", "worker", "priority", "nbytes", "flags", "extra")

    def __init__(self, key: Any, payload: Any, priority: int):
        self.key = key
        self.state = RELEASED
        self.payload = payload
        self.deps: tuple = ()
        self.dependents: tuple | list | None = None
        self.nwaiting = 0
        self.nwaiters = 0
        self.nalive = 0
        self.who_wants: set | None = None
        self.who_has: set | None = None
        self.worker: WorkerState | None = None
        self.priority = priority
        self.nbytes = 0
        self.flags = 0
        self.extra: dict | None = None

    def __lt__(self, other: "TaskState") -> bool:  # heap tie-break only
        return self.priority < other.priority

    def __repr__(self) -> str:
        return f"<TaskState {self.key!r} {self.state}>"


class WorkerState:
    """What the scheduler knows of one worker."""

    __slots__ = ("address", "name", "nthreads", "memory_limit", "processing", "nready", "has_what",
                 "nbytes", "metrics", "last_seen", "avg_duration", "capacity", "gathers", "paused",
                 "resources", "used")

    def __init__(self, address: str, nthreads: int, name: str | None, memory_limit: int | None, now: float,
                 resources: dict | None = None):
        self.address = address
        self.name = name if name is not None else address
        self.nthreads = max(1, int(nthreads))
        self.memory_limit = memory_limit
        self.processing: set = set()
        self.nready = 0          # processing tasks that take a slot (not chained)
        self.has_what: set = set()
        self.nbytes = 0
        self.metrics: dict = {}
        self.last_seen = now
        self.avg_duration: float | None = None
        self.capacity = self.nthreads
        self.gathers: dict = {}  # (client, rid) -> keys asked of this worker for a client
        self.paused = False      # above its memory pause threshold: starts no new task
        self.resources: dict = dict(resources or {})  # what it declared: {'GPU': 2.0}
        self.used: dict = {}     # taken by the tasks processing here that need resources

    def has(self, needs: dict) -> bool:
        """Does this worker declare at least ``needs`` (whether or not they are in use)?"""
        have = self.resources
        return all(have.get(name, 0.0) >= amount for name, amount in needs.items())

    def fits(self, needs: dict, claimed: dict | None = None) -> bool:
        """Are ``needs`` free here now (beyond what running tasks use, and ``claimed``)?"""
        have, used = self.resources, self.used
        return all(have.get(name, 0.0) - used.get(name, 0.0) - (claimed.get(name, 0.0) if claimed else 0.0)
                   + _RESOURCE_SLACK >= amount for name, amount in needs.items())

    def take(self, needs: dict) -> None:
        """A task needing ``needs`` now processes here."""
        used = self.used
        for name, amount in needs.items():
            used[name] = used.get(name, 0.0) + amount

    def give_back(self, needs: dict) -> None:
        """A task needing ``needs`` no longer processes here."""
        used = self.used
        for name, amount in needs.items():
            left = used.get(name, 0.0) - amount
            if left > _RESOURCE_SLACK:
                used[name] = left
            else:
                used.pop(name, None)  # no float residue: 0.1 + 0.2 - 0.1 - 0.2 must free it all

    def __repr__(self) -> str:
        return f"<WorkerState {self.address} processing={len(self.processing)} memory={len(self.has_what)}>"


class ClientState:
    """A client (or a named collection, ``persistent``) and the keys it wants."""

    __slots__ = ("id", "wants", "last_seen", "persistent", "partial")

    def __init__(self, cid: str, now: float, persistent: bool = False):
        self.id = cid
        self.wants: set = set()
        self.last_seen = now
        self.persistent = persistent
        self.partial: list = []   # tasks of a graph still arriving in pieces


class _Call:
    """A ``client.run`` or ``client.upload_file`` under way: who has yet to answer, and the answers."""

    __slots__ = ("pending", "answers")

    def __init__(self, answers: list):
        self.pending: dict = {}       # worker address -> the peer asked (the worker, or its nanny)
        self.answers = answers        # [worker address, ok, opaque payload]


def _exception_payload(exc: BaseException) -> bytes:
    """An exception created by the scheduler, pickled as workers pickle theirs: ``(exc, tb)``."""
    return pickle.dumps((exc, ""), protocol=5)


def _check_graph(keys: Sequence, dependencies: Sequence, priorities: Sequence | None, wanted: Sequence) -> None:
    """Reject a malformed graph before it changes anything (a buggy or hostile client)."""
    try:
        for key in keys:
            hash(key)
        for deps in dependencies:
            if type(deps) not in (tuple, list):
                raise TypeError(f"dependencies must be lists of keys, not {type(deps).__name__}")
            for dep in deps:
                hash(dep)
        for key in wanted:
            hash(key)
    except TypeError as e:
        raise ValueError(f"update-graph: malformed graph: {e}") from None
    if priorities is not None and not all(type(p) is int and 0 <= p < 1 << 32 for p in priorities):
        raise ValueError("update-graph: priorities must be integers in [0, 2**32)")


def _check_needs(resources: dict | None) -> dict:
    """``{key: {resource: amount}}`` from a client, checked; equal needs share one dict (a
    graph's tasks usually all need the same)."""
    shared: dict = {}
    out = {}
    for key, needs in (resources or {}).items():
        try:
            hash(key)
            checked = check_resources(needs)
        except (TypeError, ValueError) as e:
            raise ValueError(f"update-graph: malformed resources: {e}") from None
        checked = {name: amount for name, amount in checked.items() if amount > 0}  # 0 is no need
        if checked:
            out[key] = shared.setdefault(tuple(sorted(checked.items())), checked)
    return out


def _killed_worker(ts: TaskState, allowed: int) -> KilledWorker:
    deaths = ts.extra["deaths"]
    listing = "; ".join(f"{address} ({name}): {reason}" if name != address else f"{address}: {reason}"
                        for address, name, reason in deaths)
    return KilledWorker(f"task {ts.key!r} was running on {len(deaths)} workers that died, and "
                        f"runtime.allowed-failures is {allowed}; giving up on it. The workers: {listing}",
                        ts.key, deaths)


def _priority(ts: TaskState) -> int:
    return ts.priority


def _allowed(ws: WorkerState, restrictions: frozenset | None, needs: dict | None) -> bool:
    """May ``ws`` run a task restricted to ``restrictions`` (addresses or names) that needs the
    resources ``needs`` (once they are free there)?"""
    return ((not restrictions or ws.address in restrictions or ws.name in restrictions)
            and (not needs or ws.has(needs)))


def _has_free(ws: WorkerState) -> bool:
    """Is some of ``ws``'s resources not in use?"""
    used = ws.used
    return any(amount - used.get(name, 0.0) > _RESOURCE_SLACK for name, amount in ws.resources.items())


def _claim(claimed: dict, needs: dict) -> None:
    for name, amount in needs.items():
        claimed[name] = claimed.get(name, 0.0) + amount


def _check_priority(priority: Any) -> int:
    if type(priority) is not int or not -_INT64 <= priority < _INT64:
        raise ValueError(f"update-graph: priority must be an integer in [-2**63, 2**63), not {priority!r}")
    return priority


def _collection_owner(name: str) -> str:
    return "\x00collection:" + name


def _payload_bytes(payload: Any) -> Any:
    """What goes on the wire for a stored payload."""
    return bytes(payload) if type(payload) is SharedPayload else payload


class ReadyQueue:
    """Ready root tasks in priority order, at 8 bytes per queued task.

    Tasks pushed between two pops are sorted once into a *run*; a small heap orders the runs by
    their first priority. A graph's roots become ready together, so a million queued roots cost
    one sorted list rather than a million heap entries. Entries whose task is no longer ready
    are skipped by the caller (lazy deletion).

    >>> q = ReadyQueue()
    >>> for p in (5, 1, 3):
    ...     t = TaskState(p, None, p); q.push(t)
    >>> [q.pop().priority for _ in range(3)]
    [1, 3, 5]
    """

    __slots__ = ("_new", "_runs", "_count", "_seq")

    def __init__(self) -> None:
        self._new: list = []
        self._runs: list = []   # heap of [head priority, seq, run, position]
        self._count = 0
        self._seq = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def push(self, ts: TaskState) -> None:
        self._new.append(ts)
        self._count += 1

    def _merge_new(self) -> None:
        run = self._new
        self._new = []
        run.sort(key=_priority)
        self._seq += 1
        heapq.heappush(self._runs, [run[0].priority, self._seq, run, 0])

    def pop(self) -> TaskState:
        """The queued task with the lowest priority number (IndexError if empty)."""
        if self._new:
            self._merge_new()
        entry = self._runs[0]
        run, pos = entry[2], entry[3]
        ts = run[pos]
        run[pos] = None
        pos += 1
        self._count -= 1
        if pos == len(run):
            heapq.heappop(self._runs)
        else:
            entry[0] = run[pos].priority
            entry[3] = pos
            if len(self._runs) > 1:
                heapq.heapreplace(self._runs, entry)  # re-sift the run whose head changed
        return ts

    def __iter__(self):
        yield from self._new
        for _, _, run, pos in self._runs:
            yield from run[pos:]


class SchedulerState:
    """The scheduler's state machine (see the module docstring). Not thread-safe: one owner."""

    def __init__(self, queue_seconds: float = 0.01, min_buffer: int = 1, max_buffer: int = 256,
                 chain_max_deps: int = 8, worker_timeout: float = 10.0, client_timeout: float = 60.0,
                 allowed_failures: int = 3, work_stealing: bool = True, steal_interval: float = 0.02):
        self.tasks: dict = {}
        #: A task that was processing on this many workers that died fails with KilledWorker.
        self.allowed_failures = max(1, int(allowed_failures))
        #: Named collections were loaded from disk and wait for :meth:`recover_collections`.
        self.restoring = False
        self.workers: dict[str, WorkerState] = {}
        self.clients: dict[str, ClientState] = {}
        self.collections: dict[str, tuple] = {}
        self.queue = ReadyQueue()           # ready root tasks waiting for a free slot
        self.unrunnable: set = set()        # ready but no (allowed) worker exists
        #: Ready tasks whose resources some worker has, but all such workers use them now: a heap
        #: by priority; an entry is valid while its task has the ``CONSTRAINED`` flag.
        self.constrained: list = []
        self.idle: set = set()              # workers with a free slot
        self.pending_scatters: list = []
        self.generation = 0
        self.queue_seconds = queue_seconds
        self.min_buffer = min_buffer
        self.max_buffer = max_buffer
        self.chain_max_deps = chain_max_deps
        self.worker_timeout = worker_timeout
        self.client_timeout = client_timeout
        self._rr = 0
        self.retiring: dict = {}   # address -> {key: (target address, time asked)}: moving data off
        #: Work stealing (see :meth:`balance`): on/off, and at most one balancing pass per
        #: ``steal_interval`` seconds; a pass skipped for that reason is due at ``balance_due``.
        self.work_stealing = work_stealing
        self.steal_interval = steal_interval
        self.balance_due: float | None = None
        self._last_balance = float("-inf")
        self.stealing: dict = {}   # TaskState -> (victim, thief) WorkerStates: asked, not answered
        self.retired: set = set()  # addresses removed by retire_workers, not yet closed
        #: Retiring workers to be told to ``close`` once their data is safe (``close_workers``).
        self.closing: set = set()
        self.nforgotten = 0        # tasks forgotten since the owner last gave memory back (trim_memory)
        #: ``client.run`` / ``client.upload_file`` calls waiting for answers, by (client, request id).
        self.calls: dict = {}
        #: Files from ``client.upload_file`` (name -> (bytes, load)): sent to every worker that joins.
        self.uploads: dict = {}
        self._reset_outbox()

    # ------------------------------------------------------------------ outbox

    def _reset_outbox(self) -> None:
        self._compute: dict = defaultdict(list)
        self._free: dict = defaultdict(list)
        self._store: dict = defaultdict(list)
        self._note_mem: dict = defaultdict(list)
        self._note_err: dict = defaultdict(list)
        self._note_lost: dict = defaultdict(list)
        self._direct: list = []
        self._freed: set = set()      # workers whose resources freed up (or that joined): try constrained tasks
        self._no_worker: list = []    # tasks found waiting for resources no worker has: logged once

    def _flush(self) -> list:
        """Turn what this event decided into messages (and hand out queued root tasks first)."""
        if self._freed:
            self._place_constrained()
        if self.queue and self.idle:
            self._fill()
        if self._no_worker:
            self._log_no_worker()
        out: list = []
        for ws, keys in self._free.items():
            out.append((("w", ws.address), {"op": "free-keys", "keys": keys}))
        for ws, items in self._store.items():
            out.append((("w", ws.address), {"op": "store-data", "keys": [k for k, _ in items],
                                            "values": [v for _, v in items]}))
        for ws, tss in self._compute.items():
            op = self._compute_op(ws, tss)
            if op is not None:
                out.append((("w", ws.address), op))
        for cid, keys in self._note_lost.items():
            out.append((("c", cid), {"op": "key-lost", "keys": keys}))
        for cid, keys in self._note_mem.items():
            out.append((("c", cid), {"op": "key-in-memory", "keys": keys}))
        for cid, tss in self._note_err.items():
            out.append((("c", cid), self._erred_op(tss)))
        out.extend(self._direct)
        self._reset_outbox()
        return out

    def _compute_op(self, ws: WorkerState, tss: list) -> dict | None:
        """One ``compute`` op. A priority goes as ``prios`` (its generation and position bits)
        plus, only when some task has one, ``user_prios`` (the client's ``priority=``), as
        msgpack integers stop at 64 bits; ``resources`` (only when some task needs any) lets the
        worker hold such a task while the ones it sent before still use them."""
        keys, tasks, deps, prios, users, needs = [], [], [], [], [], []
        who_has: dict = {}
        any_user = any_needs = False
        for ts in tss:
            if ts.state is not PROCESSING or ts.worker is not ws:
                continue  # cancelled or moved later in the same event
            keys.append(ts.key)
            tasks.append(_payload_bytes(ts.payload))
            prio = ts.priority
            user = prio >> _USER_PRIORITY_SHIFT
            prios.append(prio & _BASE_PRIORITY_MASK)
            users.append(-user)
            any_user = any_user or user != 0
            need = ts.extra.get("resources") if ts.extra else None
            needs.append(need)
            any_needs = any_needs or need is not None
            dkeys = []
            for dep in ts.deps:
                dkeys.append(dep.key)
                if dep.state is MEMORY and ws not in dep.who_has and dep.key not in who_has:
                    who_has[dep.key] = [w.address for w in dep.who_has]
            deps.append(dkeys)
        if not keys:
            return None
        op = {"op": "compute", "keys": keys, "tasks": tasks, "deps": deps, "prios": prios,
              "who_has": list(who_has.items())}
        if any_user:
            op["user_prios"] = users
        if any_needs:
            op["resources"] = needs
        return op

    @staticmethod
    def _erred_op(tss: list) -> dict:
        keys, excs, blame = [], [], []
        for ts in tss:
            root = ts.extra["blame"] if ts.extra and "blame" in ts.extra else ts
            keys.append(ts.key)
            excs.append(root.extra.get("exception") if root.extra else None)
            blame.append(root.key)
        return {"op": "key-erred", "keys": keys, "exceptions": excs, "blame": blame}

    def _reply(self, client: str, rid: Any, ok: bool = True, result: Any = None, error: str | None = None,
               message: str | None = None) -> None:
        op = {"op": "reply", "rid": rid, "ok": ok}
        if ok:
            op["result"] = result
        else:
            op["error"] = error
            op["message"] = message
        self._direct.append((("c", client), op))

    # ------------------------------------------------------------------ bookkeeping helpers

    def _client(self, cid: str, now: float | None = None, persistent: bool = False) -> ClientState:
        cs = self.clients.get(cid)
        if cs is None:
            cs = self.clients[cid] = ClientState(cid, time.monotonic() if now is None else now, persistent)
        return cs

    def _want(self, cs: ClientState, ts: TaskState, tell: bool = False) -> None:
        """``cs`` wants ``ts``: count it, and tell the client at once if it is already done
        (also when it wanted it before, if ``tell``: a client asking again needs the answer)."""
        if ts.who_wants is None:
            ts.who_wants = {cs.id}
        elif cs.id in ts.who_wants:
            if not tell:
                return
        else:
            ts.who_wants.add(cs.id)
        cs.wants.add(ts)
        if cs.persistent:
            return
        if ts.state is MEMORY:
            self._note_mem[cs.id].append(ts.key)
        elif ts.state is ERRED:
            self._note_err[cs.id].append(ts)

    def _unwant(self, cs: ClientState, ts: TaskState, release: list) -> None:
        if ts.who_wants is None or cs.id not in ts.who_wants:
            return
        ts.who_wants.discard(cs.id)
        cs.wants.discard(ts)
        if not ts.who_wants:
            ts.who_wants = None
            release.append(ts)

    def _notify_memory(self, ts: TaskState) -> None:
        for cid in ts.who_wants:
            if not self.clients[cid].persistent:
                self._note_mem[cid].append(ts.key)

    def _update_capacity(self, ws: WorkerState) -> None:
        if ws.avg_duration is None:
            buffer = self.min_buffer
        else:
            buffer = int(self.queue_seconds * ws.nthreads / max(ws.avg_duration, 1e-7))
            buffer = min(self.max_buffer, max(self.min_buffer, buffer))
        ws.capacity = ws.nthreads + buffer
        if self.retiring and ws.address in self.retiring:
            ws.capacity = 0  # a retiring worker gets no new root tasks
        if ws.paused:
            ws.capacity = 0  # nor does a worker paused for its memory
        if ws.address in self.workers:
            if ws.nready < ws.capacity:
                self.idle.add(ws)
            else:
                self.idle.discard(ws)

    def _unprocess(self, ts: TaskState) -> WorkerState | None:
        """Take a processing task off its worker (slot accounting included)."""
        ws = ts.worker
        ts.worker = None
        if ws is None:
            return None
        ws.processing.discard(ts)
        if not ts.flags & (CHAINED | SCATTERED | SECEDED):
            ws.nready -= 1
            if ws.nready < ws.capacity and ws.address in self.workers:
                self.idle.add(ws)
        ts.flags &= ~(CHAINED | SECEDED)
        if ws.used and ts.extra and "resources" in ts.extra:
            ws.give_back(ts.extra["resources"])
            self._freed.add(ws)  # tasks waiting for these resources may go there now
        return ws

    def _add_dependent(self, dep: TaskState, ts: TaskState) -> None:
        dependents = dep.dependents
        if dependents is None:
            dep.dependents = (ts,)  # most tasks have one or a few dependents: a tuple is smallest
            return
        if type(dependents) is tuple:
            if len(dependents) < 8:
                dep.dependents = dependents + (ts,)
                return
            dependents = dep.dependents = list(dependents)
        dependents.append(ts)
        # forgotten dependents stay in the list until it grows: compact then (amortised O(1))
        if len(dependents) > 2 * dep.nalive + 16:
            dep.dependents = [d for d in dependents if d.state is not FORGOTTEN]

    # ------------------------------------------------------------------ transitions

    def _need(self, roots: Iterable[TaskState]) -> None:
        """Make sure each root is computed (or being computed), recomputing lost inputs too."""
        stack = list(roots)
        while stack:
            ts = stack.pop()
            if ts.state is not RELEASED:
                continue
            if ts.payload is None:  # scattered data nobody holds any more
                self._to_erred(ts, _exception_payload(LostDataError(
                    f"the data of key {ts.key!r} was scattered to workers that have left; "
                    f"it cannot be recomputed")))
                continue
            bad = None
            for dep in ts.deps:
                if dep.state is ERRED:
                    bad = dep
                    break
            if bad is not None:
                self._to_erred(ts, blame=bad)
                continue
            ts.state = WAITING
            missing = 0
            for dep in ts.deps:
                dep.nwaiters += 1
                if dep.state is not MEMORY:
                    missing += 1
                    if dep.state is RELEASED:
                        stack.append(dep)
            ts.nwaiting = missing
            if missing == 0:
                self._ready(ts)

    def _ready(self, ts: TaskState) -> None:
        """All inputs are in memory: place the task, or queue it."""
        ts.state = READY
        extra = ts.extra
        if extra and ("restrictions" in extra or "resources" in extra):
            self._ready_restricted(ts, extra.get("restrictions"), extra.get("resources"))
        elif not ts.deps:
            self.queue.push(ts)
        else:
            ws = self._best_worker(ts)
            if ws is None:
                self.unrunnable.add(ts)
            else:
                self._assign(ts, ws)

    def _ready_restricted(self, ts: TaskState, restrictions: frozenset | None, needs: dict | None) -> None:
        """Place a task that may only run on some workers (``workers=``) or needs resources.

        A task restricted to workers goes to the cheapest of them. A task needing resources
        waits in :attr:`constrained`, and at the end of the event those that fit where
        resources are free go there in priority order (:meth:`_place_constrained`); the others
        stay until resources are given back. If no worker is allowed or has enough at all, the
        task waits in :attr:`unrunnable` for one to join (as in Dask), and for resources the
        log says so."""
        allowed = [ws for ws in self.workers.values() if _allowed(ws, restrictions, needs)]
        if not allowed:
            self.unrunnable.add(ts)
            if needs and not ts.flags & NO_WORKER_LOGGED:
                self._no_worker.append(ts)
        elif needs:
            self._constrain(ts)
            self._freed.update(ws for ws in allowed if ws.fits(needs))
        else:
            self._assign(ts, self._cheapest(ts, allowed))

    def _constrain(self, ts: TaskState) -> None:
        if not ts.flags & CONSTRAINED:
            ts.flags |= CONSTRAINED
            heapq.heappush(self.constrained, ts)

    def _unready(self, ts: TaskState) -> None:
        """``ts`` leaves the ready state without being placed: it waits for a worker no more."""
        self.unrunnable.discard(ts)
        ts.flags &= ~CONSTRAINED  # its entry in the constrained heap is now stale

    def _place_constrained(self) -> None:
        """Resources were given back on some workers (or workers joined): start the tasks
        waiting for resources that now fit there, highest priority first. A task that fits
        nowhere yet keeps its place; smaller ones behind it may go first."""
        freed = [ws for ws in self._freed
                 if self.workers.get(ws.address) is ws and ws.address not in self.retiring and ws.resources]
        self._freed = set()
        heap = self.constrained
        skipped = []
        while heap and freed:
            ts = heapq.heappop(heap)
            if not ts.flags & CONSTRAINED:
                continue  # placed, or no longer ready: a stale entry
            extra = ts.extra
            needs, restrictions = extra["resources"], extra.get("restrictions")
            fits = [ws for ws in freed if _allowed(ws, restrictions, needs) and ws.fits(needs)]
            if not fits:
                skipped.append(ts)
                continue
            ts.flags &= ~CONSTRAINED
            self._assign(ts, self._cheapest(ts, fits))
            freed = [ws for ws in freed if _has_free(ws)]
        for ts in skipped:
            heapq.heappush(heap, ts)

    def _recheck_constrained(self) -> None:
        """A worker left: tasks waiting for resources that no remaining worker has at all now
        wait in :attr:`unrunnable` (and the log says so) instead."""
        stranded = [ts for ts in self.constrained if ts.flags & CONSTRAINED
                    and not any(_allowed(ws, ts.extra.get("restrictions"), ts.extra["resources"])
                                for ws in self.workers.values())]
        if not stranded:
            return
        for ts in stranded:
            ts.flags &= ~CONSTRAINED
            self.unrunnable.add(ts)
            if not ts.flags & NO_WORKER_LOGGED:
                self._no_worker.append(ts)
        self.constrained = [ts for ts in self.constrained if ts.flags & CONSTRAINED]
        heapq.heapify(self.constrained)

    def _log_no_worker(self) -> None:
        """Say, once per task, why tasks wait: no worker has the resources they need. (Without
        any worker at all, every task waits: nothing to say until workers join.)"""
        tss, self._no_worker = self._no_worker, []
        tss = [ts for ts in tss if ts.state is READY and ts in self.unrunnable and not ts.flags & NO_WORKER_LOGGED]
        if not tss or not self.workers:
            return
        by_needs: dict = defaultdict(list)
        for ts in tss:
            ts.flags |= NO_WORKER_LOGGED
            by_needs[tuple(sorted(ts.extra["resources"].items()))].append(ts.key)
        declared = {name for ws in self.workers.values() for name in ws.resources}
        for needs, keys in by_needs.items():
            logger.warning("%d task(s) (%r%s) need resources %s that no worker has (workers declare: %s); they wait "
                           "until such a worker joins (lazyarr-worker --resources, Worker(resources=...), "
                           "LocalCluster(resources=...))", len(keys), keys[0], ", ..." if len(keys) > 1 else "",
                           dict(needs), ", ".join(sorted(declared)) or "none")

    def _cheapest(self, ts: TaskState, pool: list) -> WorkerState:
        """Of ``pool``, the worker where ``ts`` would start soonest (as :meth:`_best_worker`)."""
        if len(pool) == 1:
            return pool[0]
        local = {ws: 0 for ws in pool}
        for dep in ts.deps:
            for ws in dep.who_has or ():
                if ws in local:
                    local[ws] += dep.nbytes
        return self._lowest_cost(local, sum(dep.nbytes for dep in ts.deps))

    @staticmethod
    def _load(ws: WorkerState) -> float:
        return ws.nready / ws.nthreads + (_PAUSED_PENALTY if ws.paused else 0.0)

    def _occupancy_seconds(self, ws: WorkerState) -> float:
        return ws.nready / ws.nthreads * (ws.avg_duration or _DEFAULT_DURATION)

    def _best_worker(self, ts: TaskState) -> WorkerState | None:
        """The worker where ``ts`` would start soonest: input bytes to move against its queue."""
        if not self.workers:
            return None
        deps = ts.deps
        if len(deps) == 1 and deps[0].who_has and len(deps[0].who_has) == 1:
            (holder,) = deps[0].who_has
            candidates = {holder: deps[0].nbytes}
        else:
            candidates: dict = {}
            for dep in deps:
                nbytes = dep.nbytes
                for ws in dep.who_has or ():
                    candidates[ws] = candidates.get(ws, 0) + nbytes
        total = 0
        for dep in deps:
            total += dep.nbytes
        if self.idle:
            spare = min(self.idle, key=self._load)
            candidates.setdefault(spare, 0)
        if self.retiring:
            candidates = {ws: b for ws, b in candidates.items() if ws.address not in self.retiring}
        if not candidates:
            pool = [ws for ws in self.workers.values() if ws.address not in self.retiring]
            return min(pool or self.workers.values(), key=self._load)
        return self._lowest_cost(candidates, total)

    def _lowest_cost(self, candidates: dict, total: int) -> WorkerState:
        """The worker of ``candidates`` (``{worker: input bytes it holds}``) where a task with
        ``total`` input bytes starts soonest: bytes to fetch against the queue there."""
        best, best_cost = None, None
        for ws, local in candidates.items():
            missing = total - local
            cost = self._occupancy_seconds(ws) + (missing / _BANDWIDTH + _FETCH_LATENCY if missing > 0 else 0.0)
            if ws.paused:
                cost += _PAUSED_PENALTY  # it starts nothing until its memory drops: anywhere else
            if best_cost is None or cost < best_cost:
                best, best_cost = ws, cost
        return best

    def _assign(self, ts: TaskState, ws: WorkerState) -> None:
        """Send ``ts`` to ``ws``, with the dependents that can be chained behind it."""
        ts.state = PROCESSING
        ts.worker = ws
        ts.flags &= ~CHAINED
        ws.processing.add(ts)
        ws.nready += 1
        if ts.extra and "resources" in ts.extra:
            ws.take(ts.extra["resources"])
        if ws.nready >= ws.capacity:
            self.idle.discard(ws)
        compute = self._compute[ws]
        compute.append(ts)
        limit = self.chain_max_deps
        stack = [ts]
        while stack:
            t = stack.pop()
            for d in t.dependents or ():
                if d.state is not WAITING or len(d.deps) > limit or (
                        d.extra and ("restrictions" in d.extra or "resources" in d.extra)):
                    continue  # placed on its own when ready: only some workers may run it
                for dep in d.deps:
                    st = dep.state
                    if not (st is MEMORY or (st is PROCESSING and dep.worker is ws)):
                        break
                else:
                    d.state = PROCESSING
                    d.worker = ws
                    d.flags |= CHAINED
                    ws.processing.add(d)
                    compute.append(d)
                    stack.append(d)

    def _fill(self) -> None:
        """Hand queued root tasks, in priority order, to workers with free slots."""
        queue = self.queue
        while queue and self.idle:
            ws = min(self.idle, key=self._load)
            room = ws.capacity - ws.nready
            while room > 0 and queue:
                ts = queue.pop()
                if ts.state is not READY or ts.worker is not None:
                    continue  # stale entry
                self._assign(ts, ws)
                room -= 1
            if ws.nready >= ws.capacity:
                self.idle.discard(ws)

    def _to_memory(self, ts: TaskState, ws: WorkerState, nbytes: int) -> None:
        prev = ts.state
        if prev is PROCESSING:
            self._unprocess(ts)
        elif prev is READY:
            self._unready(ts)
        ts.state = MEMORY
        ts.nbytes = nbytes
        ts.who_has = {ws}
        ws.has_what.add(ts)
        ws.nbytes += nbytes
        if ts.extra and "exception" in ts.extra:
            ts.extra.pop("exception", None)
        release: list = []
        if prev in _PENDING:
            for dep in ts.deps:
                dep.nwaiters -= 1
                if dep.nwaiters == 0 and dep.who_wants is None:
                    release.append(dep)
        if ts.who_wants:
            self._notify_memory(ts)
            if FIRE_AND_FORGET in ts.who_wants:
                self._fired(ts)
        for d in ts.dependents or ():
            st = d.state
            if st is WAITING:
                d.nwaiting -= 1
                if d.nwaiting == 0:
                    self._ready(d)
            elif st is PROCESSING and d.flags & CHAINED and all(x.state is MEMORY for x in d.deps):
                self._unchain(d)
        if ts.who_wants is None and ts.nwaiters == 0:
            release.append(ts)
        if release:
            self._release(release)

    def _fired(self, ts: TaskState) -> None:
        """A task given to :meth:`fire_and_forget` is done (in memory or erred): the
        fire-and-forget no longer holds it, so it is released unless someone else wants it."""
        ts.who_wants.discard(FIRE_AND_FORGET)
        self.clients[FIRE_AND_FORGET].wants.discard(ts)
        if not ts.who_wants:
            ts.who_wants = None

    def _unchain(self, ts: TaskState) -> None:
        """A chained task's inputs are all in memory: it is now an ordinary queued task on its
        worker, taking a slot (so the worker's load is counted right, and it may be stolen)."""
        ts.flags &= ~CHAINED
        ws = ts.worker
        ws.nready += 1
        if ws.nready >= ws.capacity:
            self.idle.discard(ws)

    def _release(self, roots: list) -> None:
        """Free or cancel what nothing needs any more, and forget what nothing refers to."""
        stack = roots
        while stack:
            ts = stack.pop()
            st = ts.state
            if st is FORGOTTEN or ts.who_wants is not None or ts.nwaiters:
                continue
            if st is MEMORY:
                for ws in ts.who_has:
                    ws.has_what.discard(ts)
                    ws.nbytes -= ts.nbytes
                    self._free[ws].append(ts.key)
                ts.who_has = None
                ts.state = RELEASED
            elif st in _PENDING:
                if st is PROCESSING:
                    ws = self._unprocess(ts)
                    if ws is not None:
                        self._free[ws].append(ts.key)
                elif st is READY:
                    self._unready(ts)
                ts.state = RELEASED
                for dep in ts.deps:
                    dep.nwaiters -= 1
                    if dep.nwaiters == 0:
                        stack.append(dep)
            if ts.nalive == 0 and ts.state in (RELEASED, ERRED):
                ts.state = FORGOTTEN
                del self.tasks[ts.key]
                self.nforgotten += 1
                for dep in ts.deps:
                    dep.nalive -= 1
                    if dep.nalive == 0:
                        stack.append(dep)
                ts.deps = ()
                ts.dependents = None
                ts.payload = None
                ts.extra = None

    def _to_erred(self, root: TaskState, exception: Any = None, blame: TaskState | None = None,
                  traceback: str | None = None) -> None:
        """``root`` failed (or depends on ``blame`` that failed): so do its pending dependents."""
        if blame is None:
            extra = root.extra if root.extra is not None else {}
            root.extra = extra
            extra["exception"] = exception
            if traceback is not None:
                extra["traceback"] = traceback
            blame = root
        release: list = []
        stack = [root]
        while stack:
            ts = stack.pop()
            st = ts.state
            if st is PROCESSING:
                ws = self._unprocess(ts)
                if ws is not None and ts is not root:
                    self._free[ws].append(ts.key)  # chained behind the failure: cancel it there
            elif st is READY:
                self._unready(ts)
            ts.state = ERRED
            if ts is not blame:
                if ts.extra is None:
                    ts.extra = {}
                ts.extra["blame"] = blame
            if st in _PENDING:
                for dep in ts.deps:
                    dep.nwaiters -= 1
                    if dep.nwaiters == 0:
                        release.append(dep)
            if ts.who_wants and FIRE_AND_FORGET in ts.who_wants:
                self._fired(ts)
            if ts.who_wants:
                for cid in ts.who_wants:
                    if not self.clients[cid].persistent:
                        self._note_err[cid].append(ts)
            elif ts.nalive == 0:
                release.append(ts)
            for d in ts.dependents or ():
                if d.state in _PENDING:
                    stack.append(d)
        if release:
            self._release(release)

    def _reset(self, tss: Iterable[TaskState]) -> None:
        """Put pending tasks back to waiting and recount their inputs (a worker left, inputs lost,
        a retry). Tasks chained behind a reset task are reset too (and cancelled where they were
        sent): they would otherwise wait on their worker for an input it will not compute."""
        tss = list(tss)
        seen = set(tss)
        i = 0
        while i < len(tss):
            ts = tss[i]
            i += 1
            if ts.state is PROCESSING or ts.state is WAITING:
                for d in ts.dependents or ():
                    if d.state is PROCESSING and d.flags & CHAINED and d not in seen:
                        seen.add(d)
                        tss.append(d)
        for ts in tss:
            st = ts.state
            if st is PROCESSING:
                ws = self._unprocess(ts)
                if ws is not None:
                    self._free[ws].append(ts.key)
                ts.state = WAITING
            elif st is READY:
                self._unready(ts)
                ts.state = WAITING
        need: list = []
        tss.sort(key=_priority)
        for ts in tss:
            if ts.state is not WAITING:
                continue  # erred or chained again meanwhile
            missing = 0
            bad = None
            for dep in ts.deps:
                st = dep.state
                if st is not MEMORY:
                    missing += 1
                    if st is RELEASED:
                        need.append(dep)
                    elif st is ERRED:
                        bad = dep
            if bad is not None:
                self._to_erred(ts, blame=bad)
                continue
            ts.nwaiting = missing
            if missing == 0:
                self._ready(ts)
        if need:
            self._need(need)

    def _lose(self, lost: list) -> None:
        """These keys are no longer held anywhere: recompute what is still needed."""
        resets: list = []
        need: list = []
        release: list = []
        for ts in lost:
            if ts.state is not MEMORY:
                continue
            ts.state = RELEASED
            ts.who_has = None
            if ts.who_wants:
                for cid in ts.who_wants:
                    if not self.clients[cid].persistent:
                        self._note_lost[cid].append(ts.key)
            for d in ts.dependents or ():
                if d.state in _PENDING:
                    resets.append(d)
            if ts.who_wants is not None or ts.nwaiters:
                need.append(ts)
            else:
                release.append(ts)
        if need:
            self._need(need)
        if resets:
            self._reset(resets)
        if release:
            self._release(release)

    def _drop_replica(self, ts: TaskState, ws: WorkerState) -> None:
        """``ws`` does not hold ``ts`` after all."""
        if ts.state is not MEMORY or ws not in ts.who_has:
            return
        ts.who_has.discard(ws)
        ws.has_what.discard(ts)
        ws.nbytes -= ts.nbytes
        if not ts.who_has:
            self._lose([ts])

    # ------------------------------------------------------------------ events from clients

    def client_added(self, client: str, now: float | None = None) -> list:
        """A client said hello."""
        self._client(client, now).last_seen = time.monotonic() if now is None else now
        return self._flush()

    def update_graph(self, client: str, keys: Sequence, tasks: Sequence, dependencies: Sequence,
                     wanted: Sequence = (), priorities: Sequence | None = None,
                     restrictions: dict | None = None, retries: dict | None = None,
                     partial: bool = False, user_priority: int = 0, resources: dict | None = None) -> list:
        """A client sent tasks (``keys[i]`` computes opaque ``tasks[i]`` from ``dependencies[i]``)
        and wants ``wanted``. Keys already known are reused (computed once), not replaced.

        ``user_priority`` (the client's ``priority=``, higher first) orders this graph's new
        tasks before anything else; then graphs are served in the order they arrive, and
        ``priorities[i]`` orders the tasks of one graph (default: the order given), as in Dask.
        ``resources`` (``{key: {'GPU': 1}}``) are what new tasks need from a worker to run
        there (:meth:`_ready_restricted`). A large graph may come in pieces, each ``partial``
        but the last: the pieces' tasks are kept until the last piece says what is wanted (a
        piece may refer to keys of earlier pieces, not of later ones).
        """
        n = len(keys)
        if len(tasks) != n or len(dependencies) != n or (priorities is not None and len(priorities) != n):
            raise ValueError("update-graph: keys, tasks, dependencies and priorities differ in length")
        _check_graph(keys, dependencies, priorities, wanted)
        needs_by_key = _check_needs(resources)
        user_priority = _check_priority(user_priority)
        cs = self._client(client)
        self.generation += 1
        base = (self.generation << _ROOT_PRIORITY_SHIFT) - (user_priority << _USER_PRIORITY_SHIFT)
        tasks_by_key = self.tasks
        new: list = []
        compact = PayloadSharer()
        for i in range(n):
            key = keys[i]
            if type(key) is tuple and key and type(key[0]) is str:
                key = (_intern(key[0]),) + key[1:]
            ts = tasks_by_key.get(key)
            if ts is None:
                ts = TaskState(key, compact(tasks[i]), base + (priorities[i] if priorities is not None else i))
                tasks_by_key[key] = ts
                new.append((ts, dependencies[i]))
            elif ts.payload is None and not ts.flags & SCATTERED and ts.state is RELEASED:
                ts.payload = compact(tasks[i])
        broken: list = []
        for ts, dkeys in new:
            if len(dkeys) > 1:
                dkeys = dict.fromkeys(dkeys)
            deps = []
            for dk in dkeys:
                dep = tasks_by_key.get(dk)
                if dep is None:
                    broken.append((ts, dk))
                    continue
                deps.append(dep)
                self._add_dependent(dep, ts)
                dep.nalive += 1
            ts.deps = tuple(deps)
        for key, workers in (restrictions or {}).items():
            ts = tasks_by_key.get(key)
            if ts is not None and workers:
                (ts.extra if ts.extra is not None else self._extra(ts))["restrictions"] = frozenset(workers)
        for key, needs in needs_by_key.items():
            ts = tasks_by_key.get(key)
            if ts is not None and ts.state is RELEASED:  # never changed under a task using them
                (ts.extra if ts.extra is not None else self._extra(ts))["resources"] = needs
        for key, count in (retries or {}).items():
            ts = tasks_by_key.get(key)
            if ts is not None and count:
                (ts.extra if ts.extra is not None else self._extra(ts))["retries"] = int(count)
        roots: list = []
        for key in wanted:
            ts = tasks_by_key.get(key)
            if ts is None:
                self._note_unknown(cs, key)
                continue
            self._want(cs, ts, tell=True)
            roots.append(ts)
        for ts, dk in broken:
            if ts.state is RELEASED:
                self._to_erred(ts, _exception_payload(MissingDependencyError(
                    f"task {ts.key!r} depends on key {dk!r}, which the scheduler does not hold "
                    f"(was its future released?)")))
        if partial:
            cs.partial.extend(ts for ts, _ in new)
            return self._flush()
        self._need(roots)
        candidates = [ts for ts, _ in new]
        if cs.partial:
            candidates.extend(cs.partial)
            cs.partial = []
        unused = [ts for ts in candidates if ts.state is RELEASED and ts.who_wants is None and ts.nalive == 0]
        if unused:
            self._release(unused)
        return self._flush()

    @staticmethod
    def _extra(ts: TaskState) -> dict:
        ts.extra = {}
        return ts.extra

    def _note_unknown(self, cs: ClientState, key: Any) -> None:
        """Tell a client that a key it asked for does not exist (as an erred key)."""
        ts = TaskState(key, None, 0)
        ts.extra = {"exception": _exception_payload(MissingDependencyError(
            f"key {key!r} is not held by the scheduler (was it released?)"))}
        self._note_err[cs.id].append(ts)

    def want_keys(self, client: str, keys: Sequence) -> list:
        """A client holds futures for existing ``keys`` (e.g. unpickled from a collection)."""
        cs = self._client(client)
        roots = []
        for key in keys:
            ts = self.tasks.get(key)
            if ts is None:
                self._note_unknown(cs, key)
                continue
            self._want(cs, ts, tell=True)
            roots.append(ts)
        self._need(roots)
        return self._flush()

    def release_keys(self, client: str, keys: Sequence) -> list:
        """A client no longer wants ``keys`` (its futures were garbage collected or cancelled)."""
        cs = self.clients.get(client)
        if cs is not None:
            release: list = []
            for key in keys:
                ts = self.tasks.get(key)
                if ts is not None:
                    self._unwant(cs, ts, release)
            self._release(release)
        return self._flush()

    def shrink(self) -> None:
        """Let go of the room a large forgotten graph left behind (the owner calls this when
        :attr:`nforgotten` is large, then gives the memory back to the system): a dict or set
        keeps its table after its items are deleted, 40 MB for a million tasks."""
        self.nforgotten = 0
        self.tasks = dict(self.tasks)
        for ws in self.workers.values():
            ws.has_what = set(ws.has_what)
            ws.processing = set(ws.processing)
        self.unrunnable = set(self.unrunnable)
        self.constrained = [ts for ts in self.constrained if ts.flags & CONSTRAINED]
        heapq.heapify(self.constrained)

    def client_removed(self, client: str) -> list:
        """A client closed or timed out: drop everything it wanted."""
        for key in [k for k in self.calls if k[0] == client]:
            del self.calls[key]   # nobody to answer any more
        cs = self.clients.pop(client, None)
        if cs is not None:
            release: list = [ts for ts in cs.partial if ts.state is RELEASED and ts.nalive == 0]
            for ts in list(cs.wants):
                self._unwant(cs, ts, release)
            self._release(release)
        return self._flush()

    def client_heartbeat(self, client: str, now: float | None = None) -> list:
        """A client is alive; it gets an acknowledgement so it knows the scheduler is too."""
        self._client(client).last_seen = time.monotonic() if now is None else now
        self._direct.append((("c", client), {"op": "heartbeat-ack"}))
        return self._flush()

    def gather(self, client: str, rid: Any, keys: Sequence) -> list:
        """A client asks for data: ask holders to send it (through the scheduler) to the client."""
        per_worker: dict = defaultdict(list)
        missing = []
        for key in keys:
            ts = self.tasks.get(key)
            if ts is None or ts.state is not MEMORY:
                missing.append(key)
                continue
            per_worker[min(ts.who_has, key=self._load)].append(key)
        for ws, ks in per_worker.items():
            ws.gathers[(client, rid)] = ks
            self._direct.append((("w", ws.address), {"op": "send-data", "client": client, "rid": rid, "keys": ks}))
        if missing or not per_worker:
            self._direct.append((("c", client), {"op": "data", "rid": rid, "keys": [], "values": [],
                                                 "missing": missing}))
        return self._flush()

    def scatter(self, client: str, keys: Sequence, values: Sequence, workers: Sequence | None = None,
                broadcast: bool = False) -> list:
        """A client sends data: store it on workers; the client wants the keys."""
        if len(keys) != len(values):
            raise ValueError("scatter: keys and values differ in length")
        self._scatter(client, keys, values, workers, broadcast)
        return self._flush()

    def _scatter(self, client: str, keys: Sequence, values: Sequence, workers: Sequence | None,
                 broadcast: bool) -> None:
        cs = self._client(client)
        targets = [ws for ws in self.workers.values()
                   if not workers or ws.address in workers or ws.name in workers]
        if not targets:
            self.pending_scatters.append((client, list(keys), list(values), workers, broadcast))
            return
        for key, value in zip(keys, values):
            ts = self.tasks.get(key)
            if ts is None:
                ts = self.tasks[key] = TaskState(key, None, 0)
            if ts.state is RELEASED or ts.state is ERRED:
                ts.flags = SCATTERED
                ts.payload = None
                ts.extra = None
                chosen = targets if broadcast else [self._next_target(targets)]
                ts.state = PROCESSING
                ts.worker = chosen[0]
                chosen[0].processing.add(ts)
                for ws in chosen:
                    self._store[ws].append((key, value))
            self._want(cs, ts)

    def _next_target(self, targets: list) -> WorkerState:
        self._rr += 1
        least = min(ws.nbytes + len(ws.processing) for ws in targets)
        light = [ws for ws in targets if ws.nbytes + len(ws.processing) == least]
        return light[self._rr % len(light)]

    def set_collection(self, client: str, rid: Any, name: str, blob: Any, keys: Sequence,
                       override: bool = True) -> list:
        """Store a named collection or dataset (opaque pickled ``blob``), keeping its ``keys``
        alive; without ``override`` a name already taken is refused (``publish_dataset``)."""
        if not override and name in self.collections:
            self._reply(client, rid, ok=False, error="KeyError",
                        message=f"a dataset named {name!r} already exists; pass override=True to replace it")
            return self._flush()
        unknown = [k for k in keys if k not in self.tasks]
        if unknown:
            self._reply(client, rid, ok=False, error="KeyError",
                        message=f"collection {name!r} refers to keys the scheduler does not hold: {unknown[:5]!r}")
            return self._flush()
        owner = self._client(_collection_owner(name), persistent=True)
        old = set(owner.wants)
        for key in keys:
            self._want(owner, self.tasks[key])
        new = {self.tasks[k] for k in keys}
        release: list = []
        for ts in old - new:
            self._unwant(owner, ts, release)
        self._release(release)
        self.collections[name] = (blob, tuple(keys))
        self._reply(client, rid, result=None)
        return self._flush()

    def get_collection(self, client: str, rid: Any, name: str) -> list:
        """Send a stored collection to a client, which from now on wants its keys."""
        entry = self.collections.get(name)
        if entry is None:
            self._reply(client, rid, ok=False, error="KeyError", message=self._no_collection(name))
            return self._flush()
        blob, keys = entry
        cs = self._client(client)
        for key in keys:
            ts = self.tasks.get(key)
            if ts is not None:
                self._want(cs, ts)
        self._reply(client, rid, result={"blob": blob, "keys": list(keys)})
        return self._flush()

    def _no_collection(self, name: str) -> str:
        known = ", ".join(repr(n) for n in sorted(self.collections)) or "none"
        return f"no collection named {name!r} on the scheduler (stored: {known})"

    def delete_collection(self, client: str, rid: Any, name: str) -> list:
        """Forget a named collection and release the keys it kept alive."""
        if self.collections.pop(name, None) is None:
            self._reply(client, rid, ok=False, error="KeyError", message=self._no_collection(name))
            return self._flush()
        owner = self.clients.pop(_collection_owner(name), None)
        if owner is not None:
            release: list = []
            for ts in list(owner.wants):
                self._unwant(owner, ts, release)
            self._release(release)
        self._reply(client, rid, result=None)
        return self._flush()

    def list_collections(self, client: str, rid: Any) -> list:
        """The names of the stored collections."""
        self._reply(client, rid, result=sorted(self.collections))
        return self._flush()

    # ------------------------------------------------------------------ the cluster as clients see it

    def _workers_named(self, workers: Sequence | None) -> list[WorkerState]:
        """The workers with these addresses or names, in order (every worker for ``None``);
        ``ValueError`` naming the ones the scheduler does not know."""
        if workers is None:
            return list(self.workers.values())
        found: dict = {}
        unknown = []
        for worker in workers:
            ws = self._worker_named(worker) if type(worker) is str else None
            if ws is None:
                unknown.append(worker)
            else:
                found[ws] = None
        if unknown:
            known = ", ".join(sorted(ws.address if ws.name == ws.address else f"{ws.address} ({ws.name})"
                                     for ws in self.workers.values())) or "none"
            raise ValueError(f"unknown workers {unknown!r}: not the address or name of any worker of this "
                             f"scheduler (its workers: {known})")
        return list(found)

    def who_has(self, keys: Sequence | None = None) -> dict:
        """``{key: [addresses of the workers holding it]}`` for ``keys`` (``[]`` for a key not in
        memory), or for every key in memory."""
        if keys is None:
            return {ts.key: sorted(ws.address for ws in ts.who_has) for ts in self.tasks.values() if ts.who_has}
        out = {}
        for key in keys:
            ts = self.tasks.get(key)
            out[key] = sorted(ws.address for ws in ts.who_has) if ts is not None and ts.who_has else []
        return out

    def has_what(self, workers: Sequence | None = None) -> dict:
        """``{worker address: [keys it holds]}`` (workers by address or name; all by default)."""
        return {ws.address: [ts.key for ts in ws.has_what] for ws in self._workers_named(workers)}

    def nthreads(self, workers: Sequence | None = None) -> dict:
        """``{worker address: threads}``."""
        return {ws.address: ws.nthreads for ws in self._workers_named(workers)}

    def processing(self, workers: Sequence | None = None) -> dict:
        """``{worker address: [keys sent to it and not finished]}``, running or queued there."""
        return {ws.address: [ts.key for ts in ws.processing] for ws in self._workers_named(workers)}

    def nbytes(self, keys: Sequence | None = None, summary: bool = True) -> dict:
        """Bytes of each key in memory (of ``keys``, or all); with ``summary``, summed per key
        prefix (``'add'`` for ``'add-3f2c...'``, ``'x'`` for ``('x', 0)``), as Dask's ``nbytes``."""
        tss = self.tasks.values() if keys is None else [self.tasks[k] for k in keys if k in self.tasks]
        out: dict = {}
        for ts in tss:
            if ts.state is MEMORY:
                if summary:
                    prefix = prefix_of(ts.key)
                    out[prefix] = out.get(prefix, 0) + ts.nbytes
                else:
                    out[ts.key] = ts.nbytes
        return out

    def query(self, client: str, rid: Any, what: str, keys: Sequence | None = None,
              workers: Sequence | None = None, summary: bool = True) -> list:
        """Answer ``client.who_has`` / ``has_what`` / ``nthreads`` / ``processing`` / ``nbytes``
        with that method's result as ``[key, value]`` pairs (task keys may be tuples)."""
        try:
            if what == "who_has":
                result = self.who_has(keys)
            elif what == "nbytes":
                result = self.nbytes(keys, summary)
            elif what in ("has_what", "nthreads", "processing"):
                result = getattr(self, what)(workers)
            else:
                raise ValueError(f"unknown query {what!r}")
        except ValueError as e:
            self._reply(client, rid, ok=False, error="ValueError", message=str(e))
        else:
            self._reply(client, rid, result=list(result.items()))
        return self._flush()

    def replicate(self, client: str, rid: Any, keys: Sequence, n: int | None = None,
                  workers: Sequence | None = None) -> list:
        """``client.replicate``: have each key held by ``n`` of ``workers`` (by default every
        worker, never one being retired). A worker chosen for a copy gets ``acquire-replicas``
        and fetches it from a holder, peer to peer, as it fetches task inputs; copies beyond
        ``n`` among ``workers`` are freed, busiest holders first, as Dask does. The reply is the
        number of copies asked for; the client watches :meth:`who_has` until they arrive (asking
        again is harmless: a worker already fetching a key ignores the request)."""
        try:
            targets = [ws for ws in self._workers_named(workers) if ws.address not in self.retiring]
            absent = [k for k in keys if k not in self.tasks or self.tasks[k].state is not MEMORY]
            if absent:
                raise ValueError(f"cannot replicate keys that are not in memory: {absent[:5]!r}")
        except ValueError as e:
            self._reply(client, rid, ok=False, error="ValueError", message=str(e))
            return self._flush()
        n = len(targets) if n is None else min(int(n), len(targets))
        planned = {ws: ws.nbytes for ws in targets}
        per_target: dict = defaultdict(list)
        for key in dict.fromkeys(keys) if n > 0 else ():
            ts = self.tasks[key]
            holders = [ws for ws in targets if ws in ts.who_has]
            if len(holders) > n:
                users = {d.worker for d in ts.dependents or () if d.state is PROCESSING}
                extra = [ws for ws in holders if ws not in users]  # keep the copies tasks there will read
                for ws in sorted(extra, key=self._load, reverse=True)[:len(holders) - n]:
                    self._free[ws].append(ts.key)
                    self._drop_replica(ts, ws)
                continue
            lacking = sorted((ws for ws in targets if ws not in ts.who_has), key=planned.__getitem__)
            for ws in lacking[:n - len(holders)]:
                planned[ws] += ts.nbytes
                per_target[ws].append(ts)
        for ws, tss in per_target.items():
            self._acquire(ws, tss)
        self._reply(client, rid, result=sum(len(tss) for tss in per_target.values()))
        return self._flush()

    def fire_and_forget(self, keys: Sequence) -> list:
        """Keep computing ``keys`` (and what they need) until each is done, even once every client
        has let go of them (``runtime.fire_and_forget``); then they are released like any key
        nobody wants. Keys already done are left as they are."""
        cs = self._client(FIRE_AND_FORGET, persistent=True)
        roots = []
        for key in keys:
            ts = self.tasks.get(key)
            if ts is None or ts.state is MEMORY or ts.state is ERRED:
                continue
            self._want(cs, ts)
            roots.append(ts)
        self._need(roots)
        return self._flush()

    # ------------------------------------------------------------------ calls outside the task system

    def run_on_workers(self, client: str, rid: Any, payload: Any, workers: Sequence | None = None,
                       nannies: dict | None = None, wait: bool = True) -> list:
        """``client.run``: send the opaque pickled call to each of ``workers`` (all by default),
        or, given ``nannies`` (``{worker address: (nanny identity, worker pid)}``), to each one's
        nanny; reply to the client once every target answered (:meth:`call_answered`) or left.
        Without ``wait`` the client is answered at once and the targets do not answer."""
        try:
            targets = self._workers_named(workers)
        except ValueError as e:
            self._reply(client, rid, ok=False, error="ValueError", message=str(e))
            return self._flush()
        destinations: dict = {}
        failed: list = []
        for ws in targets:
            if nannies is None:
                destinations[ws.address] = (ws.address, {})
            elif ws.address in nannies:
                nanny, pid = nannies[ws.address]
                destinations[ws.address] = (nanny, {"pid": pid})
            else:
                failed.append([ws.address, False, _exception_payload(ValueError(
                    f"worker {ws.address} runs without a nanny, so client.run(..., nanny=True) has nowhere "
                    f"to run there"))])
        self._start_call(client, rid, {"op": "run", "function": payload}, destinations, failed, wait)
        return self._flush()

    def upload_file(self, client: str, rid: Any, filename: str, data: bytes, load: bool = True) -> list:
        """``client.upload_file``: send the file to every worker now (the client is answered once
        each has answered) and to every worker that joins later (:meth:`worker_added`)."""
        self.uploads[filename] = (data, load)
        op = {"op": "upload-file", "filename": filename, "data": data, "load": load}
        self._start_call(client, rid, op, {ws.address: (ws.address, {}) for ws in self.workers.values()}, [], True)
        return self._flush()

    def _start_call(self, client: str, rid: Any, op: dict, destinations: dict, failed: list, wait: bool) -> None:
        """Send ``op`` to each destination (``{worker address: (peer, extra fields)}``) and track
        the answers; ``failed`` holds answers known already."""
        for address, (peer, extra) in destinations.items():
            self._direct.append((("w", peer), {**op, **extra, "client": client, "rid": rid, "worker": address,
                                               "reply": wait}))
        if not wait:
            self._reply(client, rid, result=None)
            return
        call = _Call(failed)
        for address, (peer, _) in destinations.items():
            call.pending[address] = peer
        self.calls[(client, rid)] = call
        self._answer_call(client, rid, call)

    def _answer_call(self, client: str, rid: Any, call: "_Call") -> None:
        if not call.pending:
            del self.calls[(client, rid)]
            self._reply(client, rid, result=sorted(call.answers, key=lambda a: a[0]))

    def call_answered(self, peer: str, client: str, rid: Any, worker: str, ok: bool, payload: Any) -> list:
        """``peer`` (a worker, or a nanny) answered a call for ``worker``: ``(ok, opaque pickled
        result or exception)``. Answers nobody waits for, or from a peer not asked, are dropped."""
        call = self.calls.get((client, rid))
        if call is not None and call.pending.get(worker) == peer:
            del call.pending[worker]
            call.answers.append([worker, bool(ok), payload])
            self._answer_call(client, rid, call)
        return self._flush()

    def _calls_lost(self, address: str) -> None:
        """Worker ``address`` left: the calls it was running answer with :class:`WorkerLeftError`
        (calls given to its nanny go on: a nanny's call may well restart its worker)."""
        for (client, rid), call in list(self.calls.items()):
            if call.pending.get(address) == address:
                del call.pending[address]
                call.answers.append([address, False, _exception_payload(WorkerLeftError(
                    f"worker {address} left before answering"))])
                self._answer_call(client, rid, call)

    def info(self, client: str, rid: Any) -> list:
        """Reply with :meth:`scheduler_info`."""
        self._reply(client, rid, result=self.scheduler_info())
        return self._flush()

    def scheduler_info(self) -> dict:
        """Workers (threads, memory, load), counts of tasks, clients and collections."""
        counts: dict = defaultdict(int)
        for ts in self.tasks.values():
            counts[ts.state] += 1
        return {
            "workers": {
                ws.address: {"name": ws.name, "nthreads": ws.nthreads, "memory_limit": ws.memory_limit,
                             "memory": ws.metrics.get("memory"), "processing": len(ws.processing),
                             "in_memory": len(ws.has_what), "nbytes": ws.nbytes, "paused": ws.paused,
                             "spilled_bytes": ws.metrics.get("spilled_bytes", 0),
                             "resources": dict(ws.resources), "used_resources": dict(ws.used)}
                for ws in self.workers.values()
            },
            "tasks": len(self.tasks),
            "task_states": dict(counts),
            "queued": sum(1 for ts in self.queue if ts.state is READY and ts.worker is None),
            # ready tasks waiting for resources in use (constrained) or that no worker has (no worker)
            "waiting_for_resources": len({ts for ts in self.constrained if ts.flags & CONSTRAINED}),
            "no_worker": len(self.unrunnable),
            "clients": sum(1 for cs in self.clients.values() if not cs.persistent),
            "collections": sorted(self.collections),
        }

    # ------------------------------------------------------------------ events from workers

    def worker_added(self, address: str, nthreads: int, name: str | None = None,
                     memory_limit: int | None = None, keys: Sequence = (), nbytes: Sequence = (),
                     now: float | None = None, resources: dict | None = None) -> list:
        """A worker registered (again, after a scheduler restart, it may already hold ``keys``);
        ``resources`` are what it declares (``{'GPU': 2}``): tasks needing them may run there."""
        now = time.monotonic() if now is None else now
        resources = check_resources(resources, "worker resources")
        ws = self.workers.get(address)
        uploads: list = []
        if ws is None:
            ws = WorkerState(address, nthreads, name, memory_limit, now, resources)
            self.workers[address] = ws
            # uploaded files first: tasks sent along in the same message may import them
            uploads = [(("w", address), {"op": "upload-file", "filename": filename, "data": data, "load": load,
                                         "reply": False})
                       for filename, (data, load) in self.uploads.items()]
        else:
            ws.nthreads = max(1, int(nthreads))
            ws.last_seen = now
            ws.resources = resources
        self._update_capacity(ws)
        if ws.resources:
            self._freed.add(ws)  # tasks waiting for resources may fit here
        if keys:
            self._add_replicas(ws, keys, nbytes or [0] * len(keys))
        waiting = sorted(self.unrunnable, key=_priority)
        self.unrunnable.clear()
        for ts in waiting:
            if ts.state is READY:
                self._ready(ts)
        scatters, self.pending_scatters = self.pending_scatters, []
        for client, skeys, values, workers, broadcast in scatters:
            self._scatter(client, skeys, values, workers, broadcast)
        self._maybe_balance(now)
        return uploads + self._flush()

    def _add_replicas(self, ws: WorkerState, keys: Sequence, nbytes: Sequence) -> None:
        for key, nb in zip(keys, nbytes):
            ts = self.tasks.get(key)
            if ts is not None and ts.state is RELEASED and ts.who_wants:
                self._to_memory(ts, ws, nb)  # a restored collection's data, still on a worker
            elif ts is None or ts.state is RELEASED or ts.state is ERRED:
                self._free[ws].append(key)
            elif ts.state is MEMORY:
                if ws not in ts.who_has:
                    ts.who_has.add(ws)
                    ws.has_what.add(ts)
                    ws.nbytes += ts.nbytes
            else:
                self._to_memory(ts, ws, nb)

    def worker_removed(self, address: str, died: bool = False, reason: str | None = None) -> list:
        """A worker left (closed, or timed out): reschedule its tasks, recompute its lost data.

        ``died``: it went without saying goodbye (killed, crashed, silent); each task processing
        there counts the death, with ``reason`` (the nanny's exit reason, or how it was noticed),
        and one that reaches :attr:`allowed_failures` deaths fails with ``KilledWorker``.
        """
        self.retired.discard(address)      # a retired worker saying goodbye
        self.retiring.pop(address, None)   # or one that left while its data was being moved
        self.closing.discard(address)
        ws = self.workers.pop(address, None)
        if ws is None:
            return self._flush()
        self.idle.discard(ws)
        processing = list(ws.processing)
        killed = self._count_deaths(ws, processing, reason) if died else ()
        lost_scattered = []
        for ts in processing:
            ts.worker = None
            ts.flags &= ~(CHAINED | SECEDED)
            if ts.flags & SCATTERED:
                lost_scattered.append(ts)
            ts.state = WAITING
        ws.processing.clear()
        ws.used.clear()
        ws.nready = 0
        lost = []
        for ts in ws.has_what:
            ts.who_has.discard(ws)
            if not ts.who_has:
                lost.append(ts)
        ws.has_what.clear()
        for ts in killed:
            self._to_erred(ts, _exception_payload(_killed_worker(ts, self.allowed_failures)))
        for ts in lost_scattered:
            self._to_erred(ts, _exception_payload(LostDataError(
                f"the data of key {ts.key!r} was being scattered to worker {address}, which left")))
        self._lose(lost)
        self._reset(sorted(processing, key=lambda t: t.priority))
        if self.constrained:
            self._recheck_constrained()  # its resources are gone with it
        for other in self.workers:
            self._direct.append((("w", other), {"op": "worker-left", "address": address}))
        for (client, rid), keys in ws.gathers.items():
            self._direct.append((("c", client), {"op": "data", "rid": rid, "keys": [], "values": [],
                                                 "missing": list(keys)}))
        ws.gathers.clear()
        if self.calls:
            self._calls_lost(address)
        return self._flush()

    def _count_deaths(self, ws: WorkerState, processing: list, reason: str | None) -> list:
        """Record a death on each task processing on ``ws``; those out of retries."""
        killed = []
        death = (ws.address, ws.name, reason or "died (reason unknown)")
        for ts in processing:
            if ts.flags & SCATTERED:
                continue
            extra = ts.extra if ts.extra is not None else self._extra(ts)
            deaths = extra.get("deaths")
            if deaths is None:
                deaths = extra["deaths"] = []
            deaths.append(death)
            if len(deaths) >= self.allowed_failures:
                killed.append(ts)
        return killed

    def restore_collections(self, entries: dict) -> None:
        """Named collections loaded from disk (``{name: (blob, keys, lineage)}``, lineage being
        ``(key, payload, dependency keys)`` inputs first), into a state that has no workers yet.

        Their keys are wanted by the collections but stay ``released`` (:attr:`restoring`) so
        that workers registering again can first report the data they still hold; then
        :meth:`recover_collections` recomputes what nobody reported.
        """
        for name, (blob, keys, lineage) in entries.items():
            for key, payload, dkeys in lineage:
                if key in self.tasks:
                    continue
                ts = self.tasks[key] = TaskState(key, payload, len(self.tasks))
                if payload is None:
                    ts.flags = SCATTERED
                ts.deps = tuple(self.tasks[d] for d in dkeys if d in self.tasks)
                for dep in ts.deps:
                    self._add_dependent(dep, ts)
                    dep.nalive += 1
            owner = self._client(_collection_owner(name), persistent=True)
            for key in keys:
                ts = self.tasks.get(key)
                if ts is not None:
                    if ts.who_wants is None:
                        ts.who_wants = set()
                    ts.who_wants.add(owner.id)
                    owner.wants.add(ts)
            self.collections[name] = (blob, tuple(keys))
        self.restoring = bool(entries)

    def recover_collections(self) -> list:
        """Recompute (from lineage) the data of restored collections that no worker reported."""
        if not self.restoring:
            return self._flush()
        self.restoring = False
        roots = [ts for cs in self.clients.values() if cs.persistent for ts in cs.wants if ts.state is RELEASED]
        self._need(sorted(roots, key=_priority))
        unused = [ts for ts in self.tasks.values()
                  if ts.state is RELEASED and ts.who_wants is None and ts.nalive == 0]
        if unused:
            self._release(unused)
        return self._flush()

    def restart(self) -> list:
        """Clients' work is dropped (their pending futures fail with ``CancelledError``), so is
        the work given to ``fire_and_forget``, and every worker is forgotten; the caller restarts
        the worker processes. Named collections keep their keys: their data is recomputed from
        lineage once workers are back."""
        exc = _exception_payload(CancelledError(
            "the cluster was restarted (client.restart()): this task was cancelled; submit it again"))
        for cs in list(self.clients.values()):
            if cs.persistent and cs.id != FIRE_AND_FORGET:
                continue  # named collections keep their keys; fire-and-forget work is dropped
            release: list = []
            for ts in list(cs.wants):
                if ts.state is not ERRED and not cs.persistent:
                    note = TaskState(ts.key, None, 0)
                    note.extra = {"exception": exc}
                    self._note_err[cs.id].append(note)
                self._unwant(cs, ts, release)
            release.extend(ts for ts in cs.partial if ts.state is RELEASED and ts.nalive == 0)
            cs.partial = []
            self._release(release)
        out = self._flush()
        for address in list(self.workers):
            out.extend(self.worker_removed(address))
        return out

    def tasks_finished(self, worker: str, keys: Sequence, nbytes: Sequence, duration: float | None = None) -> list:
        """A worker finished (or stored, or fetched a copy of) ``keys``; ``duration`` is the total
        execution time of those tasks, used to size the worker's queue."""
        ws = self.workers.get(worker)
        if ws is None:
            return self._flush()
        computed = 0
        for key, nb in zip(keys, nbytes):
            ts = self.tasks.get(key)
            if ts is None:
                self._free[ws].append(key)
                continue
            st = ts.state
            if st is MEMORY:
                if ws not in ts.who_has:
                    ts.who_has.add(ws)
                    ws.has_what.add(ts)
                    ws.nbytes += ts.nbytes
            elif st in _PENDING:
                if ts.flags & SCATTERED:
                    self._unprocess(ts)  # a broadcast's other copies report in as replicas
                else:
                    computed += 1
                    if st is PROCESSING and ts.worker is not ws:
                        other = self._unprocess(ts)
                        if other is not None:
                            self._free[other].append(key)  # a stale copy still running there
                self._to_memory(ts, ws, nb)
            else:  # released or erred: nobody needs this result
                self._free[ws].append(key)
        if duration is not None and computed:
            avg = duration / computed
            ws.avg_duration = avg if ws.avg_duration is None else 0.7 * ws.avg_duration + 0.3 * avg
            self._update_capacity(ws)
        if self.idle:
            self._maybe_balance()  # some worker may have a free thread: steal for it
        return self._flush()

    def task_finished(self, worker: str, key: Any, nbytes: int = 0, duration: float | None = None) -> list:
        """One task finished (see :meth:`tasks_finished`)."""
        return self.tasks_finished(worker, [key], [nbytes], duration)

    def task_erred(self, worker: str, key: Any, exception: Any, traceback: str | None = None) -> list:
        """A task raised on ``worker``; ``exception`` is its opaque pickled ``(exc, traceback)``."""
        ws = self.workers.get(worker)
        ts = self.tasks.get(key)
        if ws is None or ts is None or ts.state is not PROCESSING or ts.worker is not ws:
            return self._flush()  # stale: the task was cancelled or moved meanwhile
        retries = ts.extra.get("retries", 0) if ts.extra else 0
        if retries > 0:
            ts.extra["retries"] = retries - 1
            self._reset([ts])
        else:
            self._unprocess(ts)
            extra = ts.extra if ts.extra is not None else self._extra(ts)
            extra["worker"] = worker
            self._to_erred(ts, exception, traceback=traceback)
        return self._flush()

    def task_seceded(self, worker: str, keys: Sequence) -> list:
        """Tasks running on ``worker`` left its thread pool to wait for other tasks (``secede()``,
        ``worker_client()``); the worker runs others in their place, so they stop taking one of
        its slots. Without this a task waiting for tasks it submitted could wait forever for a
        thread of its own worker."""
        ws = self.workers.get(worker)
        if ws is None:
            return self._flush()
        for key in keys:
            ts = self.tasks.get(key)
            if ts is None or ts.state is not PROCESSING or ts.worker is not ws or ts.flags & (SECEDED | SCATTERED):
                continue  # finished, moved or cancelled meanwhile
            if ts.flags & CHAINED:
                ts.flags &= ~CHAINED  # it runs, so its inputs are there; it never took a slot
            else:
                ws.nready -= 1
            ts.flags |= SECEDED
        self._update_capacity(ws)
        return self._flush()

    def missing_data(self, worker: str, key: Any, dependency: Any, holder: str | None) -> list:
        """``worker`` could not get ``dependency`` of ``key`` from ``holder``: fix who holds what
        and put ``key`` back to waiting."""
        ws = self.workers.get(worker)
        dep = self.tasks.get(dependency)
        if dep is not None and holder is not None:
            hs = self.workers.get(holder)
            if hs is not None and dep.state is MEMORY and hs in dep.who_has:
                self._free[hs].append(dependency)
                self._drop_replica(dep, hs)
        ts = self.tasks.get(key)
        if ts is not None and ws is not None and ts.state is PROCESSING and ts.worker is ws:
            self._reset([ts])
        return self._flush()

    def client_data(self, worker: str, client: str, rid: Any, keys: Sequence, values: Sequence,
                    missing: Sequence = (), errors: Sequence = ()) -> list:
        """A worker answered a gather: pass the (opaque) values on to the client."""
        ws = self.workers.get(worker)
        if ws is not None:
            ws.gathers.pop((client, rid), None)
            for key in missing:
                ts = self.tasks.get(key)
                if ts is not None:
                    self._drop_replica(ts, ws)
        op = {"op": "data", "rid": rid, "keys": keys, "values": values, "missing": missing}
        if errors:
            op["errors"] = errors
        self._direct.append((("c", client), op))
        return self._flush()

    # ------------------------------------------------------------------ pausing and work stealing

    def worker_paused(self, worker: str, paused: bool) -> list:
        """A worker passed its memory pause threshold (``paused``) or fell back under it.

        A paused worker gets no new tasks (unless every worker is paused) and its queued tasks
        may be stolen by others; once it resumes it takes queued root tasks again.
        """
        ws = self.workers.get(worker)
        if ws is not None and ws.paused != bool(paused):
            ws.paused = bool(paused)
            self._update_capacity(ws)
            if not ws.paused:
                waiting = [ts for ts in self.unrunnable if ts.state is READY]
                self.unrunnable.difference_update(waiting)
                for ts in waiting:
                    self._ready(ts)
            self._maybe_balance()
        return self._flush()

    def balance(self, now: float | None = None) -> list:
        """Event: time for a work-stealing pass (the scheduler's loop calls this at
        :attr:`balance_due`, when a pass was skipped to keep passes ``steal_interval`` apart).

        A worker with an idle thread takes queued (not yet started) tasks from a busy or paused
        one when moving their inputs costs less than their expected wait there: the cost is the
        input bytes it lacks over an assumed bandwidth, plus latency and a fixed overhead; the wait
        is the tasks ahead of it in the victim's queue times the victim's average task duration.
        The victim is asked with ``steal-request``; it gives up the tasks that have not started
        and says which in a ``steal-response`` (:meth:`steal_response`). Tasks restricted to
        workers (``workers=``) are not stolen; a task needing resources goes only to a thief
        that has them free (counting those of the tasks already asked for it), and stays with
        its victim if the thief's were taken by the time the victim answers.
        """
        self._balance(time.monotonic() if now is None else now)
        return self._flush()

    def steal_response(self, worker: str, keys: Sequence, released: Sequence) -> list:
        """The victim of a steal answered: for each key, did it give the task up (it had not
        started)? Those go to their thief; the others (already running or done) stay."""
        victim = self.workers.get(worker)
        for key, ok in zip(keys, released):
            ts = self.tasks.get(key)
            if ts is None:
                continue
            entry = self.stealing.get(ts)
            if entry is None or entry[0] is not victim:
                continue
            del self.stealing[ts]
            if ok and ts.state is PROCESSING and ts.worker is victim:
                self._move(ts, entry[1])
        return self._flush()

    def _move(self, ts: TaskState, thief: WorkerState) -> None:
        """Take processing ``ts`` off its worker (which gave it up) and send it to ``thief``."""
        victim = self._unprocess(ts)
        if victim is not None:
            self._free[victim].append(ts.key)  # no-op there unless a new copy was sent meanwhile
        chained = [d for d in ts.dependents or ()
                   if d.state is PROCESSING and d.flags & CHAINED and d.worker is victim]
        ts.state = WAITING
        if chained:
            self._reset(chained)  # they waited there for ts: cancel them; they follow it below
        ts.state = READY
        needs = ts.extra.get("resources") if ts.extra else None
        if thief.address in self.workers and not thief.paused and (not needs or thief.fits(needs)):
            self._assign(ts, thief)
        else:
            self._ready(ts)  # the thief is gone, paused, or its resources were taken meanwhile

    def _maybe_balance(self, now: float | None = None) -> None:
        if not self.work_stealing or len(self.workers) < 2:
            return
        now = time.monotonic() if now is None else now
        if now - self._last_balance >= self.steal_interval:
            self._balance(now)
        elif self.balance_due is None:
            self.balance_due = self._last_balance + self.steal_interval

    def _mean_duration(self) -> float | None:
        known = [ws.avg_duration for ws in self.workers.values() if ws.avg_duration is not None]
        return sum(known) / len(known) if known else None

    def _balance(self, now: float) -> None:
        """One work-stealing pass (see :meth:`balance`)."""
        self._last_balance = now
        self.balance_due = None
        if not self.work_stealing or len(self.workers) < 2:
            return
        if self.queue and self.idle:
            self._fill()
        reserved: dict = defaultdict(int)
        claimed: dict = defaultdict(dict)  # thief -> resources that tasks asked for it will take
        for ts, (victim, thief) in list(self.stealing.items()):
            if ts.state is not PROCESSING or ts.worker is not victim or victim.address not in self.workers:
                del self.stealing[ts]  # answered by events (finished, reset, victim gone)
            else:
                reserved[thief] += 1
                if ts.extra and "resources" in ts.extra:
                    _claim(claimed[thief], ts.extra["resources"])
        free = {ws: ws.nthreads - ws.nready - reserved[ws] for ws in self.workers.values()
                if not ws.paused and ws.address not in self.retiring}
        free = {ws: n for ws, n in free.items() if n > 0}
        if not free:
            return
        victims = [ws for ws in self.workers.values()
                   if ws.nready > (0 if ws.paused else ws.nthreads) and ws not in free]
        victims.sort(key=self._occupancy_seconds, reverse=True)
        requests: dict = defaultdict(list)
        for victim in victims:
            duration = victim.avg_duration or self._mean_duration()
            if duration is None:
                continue  # nothing measured yet: no estimate of the wait
            queued = victim.nready if victim.paused else victim.nready - victim.nthreads
            budget = min(queued, sum(free.values()))
            candidates = heapq.nlargest(budget, (
                ts for ts in victim.processing
                if not ts.flags & (CHAINED | SCATTERED | SECEDED) and ts not in self.stealing
                and not (ts.extra and ts.extra.get("restrictions"))), key=_priority)
            for i, ts in enumerate(candidates):
                if not free:
                    break
                ahead = queued - 1 - i   # the victim runs its tasks in priority order
                wait = (ahead / victim.nthreads + 1) * duration
                if victim.paused:
                    wait += 1.0  # until its memory drops: unknown, long
                needs = ts.extra.get("resources") if ts.extra else None
                thieves = free if not needs else [ws for ws in free if ws.fits(needs, claimed[ws])]
                if not thieves:
                    continue  # no idle worker has its resources free
                thief, cost = self._cheapest_thief(ts, thieves)
                if cost + _STEAL_OVERHEAD >= wait:
                    continue
                if needs:
                    _claim(claimed[thief], needs)
                self.stealing[ts] = (victim, thief)
                requests[victim].append(ts.key)
                free[thief] -= 1
                if not free[thief]:
                    del free[thief]
        for victim, keys in requests.items():
            self._direct.append((("w", victim.address), {"op": "steal-request", "keys": keys}))

    @staticmethod
    def _cheapest_thief(ts: TaskState, free: Iterable[WorkerState]) -> tuple:
        """Of the workers with free threads, the one that must fetch the fewest input bytes, and
        the seconds that fetch is expected to take."""
        best, best_cost = None, None
        for ws in free:
            missing = 0
            for dep in ts.deps:
                if not dep.who_has or ws not in dep.who_has:
                    missing += dep.nbytes
            cost = missing / _BANDWIDTH + _FETCH_LATENCY if missing else 0.0
            if best_cost is None or cost < best_cost:
                best, best_cost = ws, cost
        return best, best_cost

    def worker_heartbeat(self, worker: str, metrics: dict | None = None, now: float | None = None) -> list:
        """A worker is alive (``metrics``: memory etc.); an unknown one is asked to register."""
        ws = self.workers.get(worker)
        if ws is None:
            if worker not in self.retired:  # a retired worker is about to close: keep it out
                self._direct.append((("w", worker), {"op": "register-again"}))
        else:
            ws.last_seen = time.monotonic() if now is None else now
            if metrics:
                ws.metrics.update(metrics)
        return self._flush()

    def check_timeouts(self, now: float | None = None) -> list:
        """Remove workers and clients silent for longer than their timeouts."""
        now = time.monotonic() if now is None else now
        out: list = []
        for address, ws in list(self.workers.items()):
            if now - ws.last_seen > self.worker_timeout:
                out.extend(self.worker_removed(address, died=True,
                                               reason=f"silent for more than {self.worker_timeout:g} s"))
        for cid, cs in list(self.clients.items()):
            if not cs.persistent and now - cs.last_seen > self.client_timeout:
                out.extend(self.client_removed(cid))
        return out + self._flush()

    # ------------------------------------------------------------------ retiring workers

    def _worker_named(self, worker: str) -> WorkerState | None:
        ws = self.workers.get(worker)
        if ws is None:
            for candidate in self.workers.values():
                if candidate.name == worker:
                    return candidate
        return ws

    def workers_to_retire(self, n: int) -> list[str]:
        """Addresses of ``n`` workers to retire (every one if there are fewer), chosen as adaptive
        scaling chooses (:class:`runtime.adaptive.AdaptivePolicy`): idle workers (nothing
        processing) first, and among those the ones holding the fewest bytes, so that the least
        work is interrupted and the least data moved. Workers already retiring are not chosen.
        """
        candidates = [ws for ws in self.workers.values() if ws.address not in self.retiring]
        candidates.sort(key=lambda ws: (bool(ws.processing), ws.nbytes, ws.address))
        return [ws.address for ws in candidates[:max(0, n)]]

    def retire_workers(self, workers: Sequence, now: float | None = None, resend_after: float = 5.0,
                       close: bool = False) -> list:
        """Start or continue retiring ``workers`` (addresses or names) without losing data.

        A retiring worker gets no new tasks. Each result it holds that is still needed (wanted
        by a client or by a pending task) and that no other, non-retiring worker holds is copied
        to the least loaded remaining worker: an ``acquire-replicas`` op makes that worker fetch
        it from its holders, peer to peer, as it fetches task inputs, and report the copy. Once
        nothing needed is held only there, the worker is removed (as by :meth:`worker_removed`,
        so whatever it was still running goes elsewhere) and its address is kept in
        :attr:`retired` until it closes, so it is not asked to register again. With ``close``,
        the removed worker is also sent a ``close`` op: it shuts down (its process exits
        cleanly, and a nanny does not restart it); :attr:`closing` lists those waiting for it.

        Call again (with any ``workers``, even none) to make progress once copies were reported:
        the event is idempotent, and a copy not confirmed within ``resend_after`` seconds is asked
        of a worker again. With no other worker to move data to, a worker stays retiring until
        :meth:`cancel_retirement`. :attr:`retiring` lists those still in progress.
        """
        now = time.monotonic() if now is None else now
        for worker in workers:
            ws = self._worker_named(worker)
            if ws is None:
                continue
            if ws.address not in self.retiring:
                self.retiring[ws.address] = {}
                self._update_capacity(ws)  # capacity 0: off the idle set, no new root tasks
            if close:
                self.closing.add(ws.address)
        out: list = []
        keep = [ws for ws in self.workers.values() if ws.address not in self.retiring]
        planned = {ws: ws.nbytes for ws in keep}
        for address in list(self.retiring):
            ws = self.workers.get(address)
            if ws is None:
                del self.retiring[address]
                self.closing.discard(address)
                continue
            moves = self.retiring[address]
            unsafe = [ts for ts in ws.has_what
                      if (ts.who_wants or ts.nwaiters)
                      and not any(h.address not in self.retiring for h in ts.who_has)]
            if not unsafe:
                close = address in self.closing
                del self.retiring[address]
                out.extend(self.worker_removed(address))
                self.retired.add(address)
                if close:  # after worker_removed: its data is already known to be elsewhere
                    out.append((("w", address), {"op": "close", "reason": "retired"}))
                continue
            if not keep:
                continue
            per_target: dict = defaultdict(list)
            for ts in unsafe:
                asked = moves.get(ts.key)
                if (asked is not None and asked[0] in self.workers and asked[0] not in self.retiring
                        and now - asked[1] < resend_after):
                    continue
                target = min(keep, key=planned.__getitem__)
                planned[target] += ts.nbytes
                moves[ts.key] = (target.address, now)
                per_target[target].append(ts)
            for target, tss in per_target.items():
                self._acquire(target, tss)
        return out + self._flush()

    def _acquire(self, ws: WorkerState, tss: list) -> None:
        """Ask ``ws`` to fetch copies of ``tss`` from their holders, peer to peer."""
        self._direct.append((("w", ws.address), {
            "op": "acquire-replicas", "keys": [ts.key for ts in tss],
            "who_has": [[ts.key, [h.address for h in ts.who_has]] for ts in tss]}))

    def cancel_retirement(self, workers: Sequence) -> list:
        """Put retiring ``workers`` (addresses or names) back into service (and keep them open)."""
        for worker in workers:
            ws = self._worker_named(worker)
            if ws is not None and self.retiring.pop(ws.address, None) is not None:
                self.closing.discard(ws.address)
                self._update_capacity(ws)
                self._freed.add(ws)  # its resources are open to waiting tasks again
        return self._flush()

    # ------------------------------------------------------------------ checks

    def validate(self) -> None:
        """Check the invariants of the whole state (for tests; linear in its size)."""
        for key, ts in self.tasks.items():
            assert ts.key == key and ts.state is not FORGOTTEN, ts
            waiters = sum(1 for d in ts.dependents or () if d.state in _PENDING)
            assert ts.nwaiters == waiters, (ts, ts.nwaiters, waiters)
            alive = sum(1 for d in ts.dependents or () if d.state is not FORGOTTEN)
            assert ts.nalive == alive, (ts, ts.nalive, alive)
            for dep in ts.deps:
                assert dep.key in self.tasks, (ts, dep)
            if ts.state is WAITING:
                missing = sum(1 for d in ts.deps if d.state is not MEMORY)
                assert ts.nwaiting == missing and missing > 0, (ts, ts.nwaiting, missing)
            if ts.state is READY:
                assert all(d.state is MEMORY for d in ts.deps), ts
            if ts.state is PROCESSING:
                assert ts.worker is not None and ts in ts.worker.processing, ts
                assert ts.worker.address in self.workers, ts
                if not ts.flags & CHAINED:
                    assert all(d.state is MEMORY for d in ts.deps), ts
            else:
                assert ts.worker is None, ts
            if ts.state is MEMORY:
                assert ts.who_has, ts
                for ws in ts.who_has:
                    assert ts in ws.has_what and ws.address in self.workers, (ts, ws)
            else:
                assert not ts.who_has, ts
            if ts.state is RELEASED:
                assert ts.nwaiters == 0 and (not ts.who_wants or self.restoring), ts
            for cid in ts.who_wants or ():
                assert ts in self.clients[cid].wants, (ts, cid)
        for ws in self.workers.values():
            for ts in ws.processing:
                assert ts.worker is ws and ts.state is PROCESSING, (ws, ts)
            assert ws.nready == sum(1 for ts in ws.processing if not ts.flags & (CHAINED | SCATTERED | SECEDED)), ws
            for ts in ws.has_what:
                assert ts.state is MEMORY and ws in ts.who_has, (ws, ts)
            used: dict = {}
            for ts in ws.processing:
                if ts.extra and "resources" in ts.extra:
                    assert not ts.flags & CHAINED, ts
                    _claim(used, ts.extra["resources"])
            for name in set(used) | set(ws.used):
                assert abs(used.get(name, 0.0) - ws.used.get(name, 0.0)) <= 1e-6, (ws, name, used, ws.used)
                assert ws.used.get(name, 0.0) <= ws.resources.get(name, 0.0) + 1e-6, (ws, name, ws.used)
        constrained = set(self.constrained)
        for ts in self.tasks.values():
            if ts.flags & CONSTRAINED:
                assert ts.state is READY and ts in constrained and ts not in self.unrunnable, ts
        for ts in self.unrunnable:
            assert ts.state is READY and not ts.flags & CONSTRAINED, ts
        for cs in self.clients.values():
            for ts in cs.wants:
                assert ts.key in self.tasks and cs.id in ts.who_wants, (cs.id, ts)
        for address in self.retiring:
            assert address in self.workers and self.workers[address] not in self.idle, address
        for address in self.closing:
            assert address in self.retiring, address
        fired = self.clients.get(FIRE_AND_FORGET)
        for ts in fired.wants if fired is not None else ():
            assert ts.state not in (MEMORY, ERRED), ts  # done: no longer held for fire_and_forget
