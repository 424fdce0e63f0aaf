"""What the dashboard shows, built from a running scheduler (from the HTTP threads: reads only,
over snapshots, so the scheduler's thread never waits for a browser)."""
from __future__ import annotations

import threading
import time
from typing import Any

from ..task_stream import prefix_states

__all__ = ["info", "workers", "progress", "task_stream", "metrics", "STREAM_LIMIT"]

#: Task-stream events sent per poll at most (the page draws the most recent ones).
STREAM_LIMIT = 2000
_MAX_LIMIT = 20000
_CACHE_SECONDS = 0.25
_cache_lock = threading.Lock()


def _snapshot(mapping: dict) -> list:
    for _ in range(5):
        try:
            return list(mapping.values())
        except RuntimeError:  # resized meanwhile
            continue
    return []


def _cached(scheduler: Any, name: str, build: Any) -> Any:
    """``build()``, reused for ``_CACHE_SECONDS`` (several browsers, several endpoints)."""
    cache = scheduler.__dict__.setdefault("_dashboard_cache", {})
    now = time.monotonic()
    with _cache_lock:
        hit = cache.get(name)
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
    value = build()
    with _cache_lock:
        cache[name] = (now, value)
    return value


def workers(scheduler: Any) -> list:
    """One dict per worker, sorted by name."""
    stream = scheduler.task_stream
    rows = []
    for ws in _snapshot(scheduler.state.workers):
        metrics = dict(ws.metrics)
        rows.append({
            "address": ws.address, "name": str(ws.name), "nthreads": ws.nthreads,
            "memory": metrics.get("memory"), "memory_limit": ws.memory_limit,
            "processing": len(ws.processing), "executing": metrics.get("executing"),
            "ready": metrics.get("ready"), "in_memory": len(ws.has_what), "nbytes": ws.nbytes,
            "transfer_bytes": stream.transfer_by_worker.get(ws.address, 0),
            "last_seen": round(time.monotonic() - ws.last_seen, 3),
        })
    rows.sort(key=lambda r: r["name"])
    return rows


def _states(scheduler: Any) -> dict:
    return _cached(scheduler, "states", lambda: prefix_states(scheduler.state.tasks))


def progress(scheduler: Any) -> dict:
    """Per task prefix: tasks in each state now, plus completions and seconds so far."""
    states = _states(scheduler)
    done = scheduler.task_stream.prefixes()
    out = {}
    for prefix in sorted(set(states) | set(done)):
        row = dict(states.get(prefix) or {"waiting": 0, "processing": 0, "memory": 0, "erred": 0, "released": 0})
        row["total"] = sum(row.values())
        d = done.get(prefix) or {}
        row["done"] = d.get("done", 0)
        row["seconds"] = round(d.get("seconds", 0.0), 6)
        out[prefix] = row
    return {"prefixes": out}


def info(scheduler: Any) -> dict:
    """Totals: graph size, task states, workers, threads, clients, stream and transfer counters."""
    state = scheduler.state
    totals: dict = {"waiting": 0, "processing": 0, "memory": 0, "erred": 0, "released": 0}
    for row in _states(scheduler).values():
        for k, v in row.items():
            totals[k] += v
    ws = _snapshot(state.workers)
    stream = scheduler.task_stream
    return {
        "scheduler": scheduler.address_to_clients,
        "dashboard": scheduler.dashboard_link,
        "tasks": len(state.tasks),
        "task_states": totals,
        "workers": len(ws),
        "threads": sum(w.nthreads for w in ws),
        "clients": sum(1 for c in _snapshot(state.clients) if not c.persistent),
        "tasks_done": stream.count,
        "transfer_bytes": stream.transfer_bytes,
        "transfers": stream.transfer_count,
        "uptime": round(time.time() - stream.started, 3),
        "now": time.time(),
    }


def task_stream(scheduler: Any, since: int = 0, limit: int | None = None) -> dict:
    """Finished tasks since index ``since`` (the most recent ``limit``), with thread rows."""
    limit = STREAM_LIMIT if limit is None else max(0, min(int(limit), _MAX_LIMIT))
    out = scheduler.task_stream.since(since, limit)
    out["now"] = time.time()
    out["threads"] = {ws.address: ws.nthreads for ws in _snapshot(scheduler.state.workers)}
    return out


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics(scheduler: Any) -> str:
    """The Prometheus text exposition format (version 0.0.4)."""
    lines: list = []

    def metric(name: str, kind: str, help_text: str, samples: list) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")

    i = info(scheduler)
    rows = workers(scheduler)
    prog = progress(scheduler)["prefixes"]
    metric("lazyarr_scheduler_workers", "gauge", "Workers connected.", [({}, i["workers"])])
    metric("lazyarr_scheduler_threads", "gauge", "Executor threads over all workers.", [({}, i["threads"])])
    metric("lazyarr_scheduler_clients", "gauge", "Clients connected.", [({}, i["clients"])])
    metric("lazyarr_scheduler_tasks", "gauge", "Tasks known to the scheduler (graph size).", [({}, i["tasks"])])
    metric("lazyarr_scheduler_tasks_by_state", "gauge", "Tasks known to the scheduler, by state.",
           [({"state": k}, v) for k, v in i["task_states"].items()])
    metric("lazyarr_tasks_completed_total", "counter", "Tasks run to completion, by task prefix.",
           [({"prefix": p}, r["done"]) for p, r in prog.items() if r["done"]])
    metric("lazyarr_task_seconds_total", "counter", "Seconds spent executing tasks, by task prefix.",
           [({"prefix": p}, r["seconds"]) for p, r in prog.items() if r["done"]])
    metric("lazyarr_transfer_bytes_total", "counter", "Bytes of data received by workers (peer fetches, scatters).",
           [({}, i["transfer_bytes"])])
    metric("lazyarr_worker_memory_bytes", "gauge", "Resident memory of each worker process.",
           [({"worker": r["name"]}, r["memory"]) for r in rows if r["memory"] is not None])
    metric("lazyarr_worker_memory_limit_bytes", "gauge", "Memory limit of each worker.",
           [({"worker": r["name"]}, r["memory_limit"]) for r in rows if r["memory_limit"]])
    metric("lazyarr_worker_threads", "gauge", "Executor threads of each worker.",
           [({"worker": r["name"]}, r["nthreads"]) for r in rows])
    metric("lazyarr_worker_processing_tasks", "gauge", "Tasks assigned to each worker.",
           [({"worker": r["name"]}, r["processing"]) for r in rows])
    metric("lazyarr_worker_stored_keys", "gauge", "Results held by each worker.",
           [({"worker": r["name"]}, r["in_memory"]) for r in rows])
    metric("lazyarr_worker_stored_bytes", "gauge", "Bytes of results held by each worker.",
           [({"worker": r["name"]}, r["nbytes"]) for r in rows])
    return "\n".join(lines) + "\n"
