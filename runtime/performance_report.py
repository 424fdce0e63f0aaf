"""``with performance_report(filename='report.html'):`` -- one self-contained HTML file (inline
SVG and CSS, nothing fetched from the network) describing what the cluster did during the block:
the task stream (every task, per worker thread, coloured by prefix), time per task prefix,
transfer volume and worker memory over time.

The scheduler keeps the record (:mod:`runtime.task_stream`); the report asks it, through the
client, for its counters when the block starts and for everything since when it ends.

>>> # with performance_report(filename='report.html'):
>>> #     x.sum().compute()
"""
from __future__ import annotations

import html
import os
import time
from typing import Any

from lazyarr.utils import format_bytes, format_time

__all__ = ["performance_report", "render_report"]

#: Rectangles drawn in the report's task stream at most (evenly sampled beyond that).
MAX_RECTS = 10_000


class performance_report:
    """Context manager recording the cluster's activity into an HTML file on exit.

    Parameters
    ----------
    filename: where to write the report (overwritten).
    client: the client whose scheduler to record (default: the default client).
    title: the report's heading.

    After the block, :attr:`data` holds what was recorded and :attr:`filename` the file written.
    """

    def __init__(self, filename: str = "lazyarr-report.html", client: Any = None, title: str | None = None):
        if not isinstance(filename, (str, os.PathLike)):
            raise TypeError(f"performance_report(filename=) must be a path, not {type(filename).__name__}")
        self.filename = os.fspath(filename)
        self.title = title or "lazyarr performance report"
        self._client = client
        self.data: dict | None = None

    def _request(self, **fields: Any) -> dict:
        return self._client._request({"op": "task-stream", **fields}).value

    def __enter__(self) -> "performance_report":
        if self._client is None:
            from .client import default_client

            self._client = default_client()
            if self._client is None:
                raise RuntimeError("performance_report needs a client: open one (Client(...)) or pass client=")
        start = self._request(since=0, limit=0)
        self._since = start["next"]
        self._t0 = start["now"]
        self._prefixes0 = start["prefixes"]
        self._transfer0 = start["transfer_bytes"]
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        elapsed = time.perf_counter() - self._started
        end = self._request(since=self._since, t0=self._t0, limit=None)
        prefixes = {}
        for p, row in end["prefixes"].items():
            before = self._prefixes0.get(p) or {"done": 0, "seconds": 0.0, "nbytes": 0}
            done = row["done"] - before["done"]
            if done > 0:
                prefixes[p] = {"done": done, "seconds": row["seconds"] - before["seconds"],
                               "nbytes": row["nbytes"] - before["nbytes"]}
        self.data = {
            "title": self.title, "t0": self._t0, "t1": end["now"], "elapsed": elapsed,
            "events": end["events"], "dropped": end["dropped"], "prefixes": prefixes,
            "transfer_bytes": end["transfer_bytes"] - self._transfer0, "transfers": end["transfers"],
            "memory": end["memory"], "workers": end["workers"], "scheduler": self._client.address,
            "failed": exc[0] is not None,
        }
        with open(self.filename, "w", encoding="utf-8") as f:
            f.write(render_report(self.data))


# ----------------------------------------------------------------------------------------------
# rendering (plain functions of the recorded data: testable without a cluster)

_CSS = """
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 15px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; } .muted { color: #888; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; } dt { color: #666; } dd { margin: 0; }
svg text { font: 10px sans-serif; fill: #555; }
"""


def _color(prefix: str) -> str:
    h = 0
    for ch in prefix:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return f"hsl({round((h * 137.508) % 360)},62%,50%)"  # golden angle: neighbours differ


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _task_stream_svg(events: list, t0: float, t1: float, width: int = 1100) -> str:
    if not events:
        return '<p class="muted">No task finished during the block.</p>'
    rows = sorted({(e[0], e[1]) for e in events})
    index = {r: i for i, r in enumerate(rows)}
    start = min(t0, min(e[2] for e in events))
    span = max(max(t1, max(e[3] for e in events)) - start, 1e-6)
    row_h = max(4, min(24, 400 // max(1, len(rows))))
    label = 170
    height = row_h * len(rows) + 20
    scale = (width - label) / span
    step = max(1, len(events) // MAX_RECTS)
    parts = [f'<svg id="task-stream" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'data-rects="{len(events[::step])}">']
    for (worker, thread), i in index.items():
        if row_h >= 9:
            parts.append(f'<text x="2" y="{i * row_h + row_h * 0.75:.1f}">{_esc(worker.replace("tcp://", ""))} '
                         f'#{thread}</text>')
    for e in events[::step]:
        x = label + (e[2] - start) * scale
        w = max(0.5, (e[3] - e[2]) * scale)
        y = index[(e[0], e[1])] * row_h
        parts.append(f'<rect x="{x:.1f}" y="{y + 1}" width="{w:.2f}" height="{row_h - 2}" fill="{_color(e[4])}">'
                     f'<title>{_esc(e[5])}: {(e[3] - e[2]) * 1000:.3f} ms</title></rect>')
    for k in range(6):
        t = span * k / 5
        parts.append(f'<text x="{label + t * scale - (25 if k == 5 else 0):.1f}" y="{height - 4}">{t:.2f}s</text>')
    parts.append("</svg>")
    note = f' <span class="muted">(1 in {step} tasks drawn)</span>' if step > 1 else ""
    return "".join(parts) + note


def _prefix_table(prefixes: dict) -> str:
    if not prefixes:
        return '<p class="muted">No tasks.</p>'
    total = sum(r["seconds"] for r in prefixes.values()) or 1e-12
    rows = []
    for p, r in sorted(prefixes.items(), key=lambda kv: -kv[1]["seconds"]):
        frac = r["seconds"] / total
        rows.append(
            f'<tr class="prefix" data-prefix="{_esc(p)}"><td><span style="color:{_color(p)}">&#9632;</span> {_esc(p)}</td>'
            f'<td>{r["done"]}</td><td>{r["seconds"]:.6f}</td><td>{r["seconds"] / r["done"] * 1000:.3f}</td>'
            f'<td>{format_bytes(r["nbytes"])}</td><td><svg width="200" height="10"><rect width="{200 * frac:.1f}" '
            f'height="10" fill="{_color(p)}"/></svg> {frac * 100:.1f}%</td></tr>')
    return ("<table id=\"prefix-times\"><tr><th>task prefix</th><th>tasks</th><th>seconds (total)</th>"
            "<th>ms per task</th><th>result bytes</th><th>share of task time</th></tr>" + "".join(rows) + "</table>")


def _series_svg(svg_id: str, series: dict, t0: float, t1: float, unit: str, width: int = 800,
                height: int = 180, cumulative: bool = False) -> str:
    if not series:
        return '<p class="muted">No samples during the block.</p>'
    points_by: dict = {}
    for name, samples in series.items():
        samples = sorted(samples)
        if cumulative:  # a step line from 0 at the start to the total at the end
            acc, pts = 0, [(t0, 0)]
            for t, v in samples:
                pts.append((t, acc))
                acc += v
                pts.append((t, acc))
            pts.append((t1, acc))
            samples = pts
        points_by[name] = samples
    top = max((v for pts in points_by.values() for _, v in pts), default=0) or 1
    span = max(t1 - t0, 1e-6)
    left, bottom = 70, 20
    parts = [f'<svg id="{svg_id}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
             f'<text x="2" y="12">{_esc(format_bytes(top))}</text><text x="2" y="{height - bottom}">0</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#ccc"/>']
    for name, pts in points_by.items():
        xy = " ".join(f"{left + (t - t0) / span * (width - left):.1f},"
                      f"{(height - bottom) - v / top * (height - bottom - 10):.1f}" for t, v in pts)
        parts.append(f'<polyline fill="none" stroke="{_color(name)}" stroke-width="1.5" points="{xy}">'
                     f'<title>{_esc(name)}</title></polyline>')
    parts.append(f'<text x="{left}" y="{height - 4}">0 s</text><text x="{width - 40}" y="{height - 4}">{span:.1f} s</text>')
    parts.append("</svg>")
    legend = " ".join(f'<span style="color:{_color(n)}">&#9632;</span> {_esc(n)}' for n in points_by)
    return "".join(parts) + f"<div>{legend} <span class=\"muted\">({unit})</span></div>"


def render_report(data: dict) -> str:
    """The report's HTML for recorded ``data`` (see :class:`performance_report`)."""
    t0, t1 = data["t0"], data["t1"]
    events = data["events"]
    prefixes = data["prefixes"]
    workers = data["workers"]
    ntasks = sum(r["done"] for r in prefixes.values())
    task_seconds = sum(r["seconds"] for r in prefixes.values())
    per_worker: dict = {}
    transfer_series: dict = {}
    for t, worker, nbytes in data["transfers"]:
        per_worker[worker] = per_worker.get(worker, 0) + nbytes
        transfer_series.setdefault(worker, []).append((t, nbytes))
    memory_series: dict = {}
    for t, worker, rss in data["memory"]:
        memory_series.setdefault(worker, []).append((t, rss))
    transfer_rows = "".join(f"<tr><td>{_esc(w)}</td><td>{format_bytes(n)}</td><td>{n}</td></tr>"
                            for w, n in sorted(per_worker.items()))
    worker_rows = "".join(
        f"<tr><td>{_esc(a)}</td><td>{_esc(w['name'])}</td><td>{w['nthreads']}</td>"
        f"<td>{format_bytes(w['memory_limit']) if w['memory_limit'] else '-'}</td>"
        f"<td>{format_bytes(max((r for _, r in memory_series.get(a, [])), default=0))}</td></tr>"
        for a, w in sorted(workers.items()))
    dropped = (f'<p class="muted">{data["dropped"]} older tasks fell out of the scheduler\'s buffer and are not '
               f"drawn (the per-prefix times below include them).</p>" if data.get("dropped") else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(data['title'])}</title><style>{_CSS}</style></head>
<body>
<h1>{_esc(data['title'])}</h1>
<section id="summary"><h2>Summary</h2><dl>
<dt>scheduler</dt><dd>{_esc(data['scheduler'])}</dd>
<dt>recorded</dt><dd>{_esc(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t0)))}, for {format_time(data['elapsed'])}{' (the block raised)' if data.get('failed') else ''}</dd>
<dt>tasks run</dt><dd id="ntasks">{ntasks}</dd>
<dt>task time (all threads)</dt><dd id="task-seconds">{task_seconds:.6f} s</dd>
<dt>workers / threads</dt><dd>{len(workers)} / {sum(w['nthreads'] for w in workers.values())}</dd>
<dt>data transferred</dt><dd id="transfer-total">{format_bytes(data['transfer_bytes'])} ({data['transfer_bytes']} bytes)</dd>
</dl></section>
<section id="task-stream-section"><h2>Task stream</h2>
<p class="muted">One row per worker thread; each rectangle is a task, coloured by its prefix (hover for the key).</p>
{dropped}{_task_stream_svg(events, t0, t1)}</section>
<section id="prefixes"><h2>Time per task prefix</h2>{_prefix_table(prefixes)}</section>
<section id="transfers"><h2>Transfer volume</h2>
<p>Data received by workers from peers (and scattered by clients): <b>{format_bytes(data['transfer_bytes'])}</b>.</p>
{('<table><tr><th>worker</th><th>received</th><th>bytes</th></tr>' + transfer_rows + '</table>') if transfer_rows else ''}
{_series_svg('transfer-chart', transfer_series, t0, t1, 'cumulative bytes received', cumulative=True)}</section>
<section id="memory"><h2>Worker memory</h2>
<table><tr><th>worker</th><th>name</th><th>threads</th><th>memory limit</th><th>peak memory</th></tr>{worker_rows}</table>
{_series_svg('memory-chart', memory_series, t0, t1, 'resident memory per worker')}</section>
</body></html>
"""
