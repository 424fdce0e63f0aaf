"""The dashboard page: one self-contained HTML document (inline CSS and JS, no network).

It polls the JSON endpoints (``/api/info`` and ``/api/workers`` and ``/api/progress`` every
second, ``/api/task-stream?since=`` every half second) and draws the task stream on a canvas,
one row per worker thread, coloured by task prefix. For tests and tools the page records what it
drew in data attributes: ``#task-stream[data-drawn]`` (rectangles in the last frame),
``[data-events]`` (events received), ``#workers[data-count]`` (worker rows).
"""

PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lazyarr dashboard</title>
<style>
  body { font: 13px/1.35 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fafafa; }
  header { background: #243447; color: #fff; padding: 8px 16px; display: flex; gap: 24px; align-items: baseline; }
  header h1 { font-size: 16px; margin: 0; }
  header .stat b { font-size: 15px; }
  main { padding: 12px 16px; display: grid; grid-template-columns: minmax(420px, 1fr) minmax(360px, 1fr); gap: 16px; }
  section { background: #fff; border: 1px solid #ddd; border-radius: 4px; padding: 8px 12px; }
  section.wide { grid-column: 1 / span 2; }
  h2 { font-size: 14px; margin: 2px 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: right; padding: 2px 6px; border-bottom: 1px solid #eee; white-space: nowrap; }
  th:first-child, td:first-child { text-align: left; }
  .mem { display: inline-block; width: 80px; height: 9px; background: #eee; vertical-align: middle; margin-right: 4px; }
  .mem i { display: block; height: 100%; background: #4a90d9; }
  .prow { display: grid; grid-template-columns: 160px 1fr 120px; gap: 8px; align-items: center; margin: 3px 0; }
  .pname { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .pbar { display: flex; height: 14px; background: #eee; border-radius: 2px; overflow: hidden; }
  .pbar span { display: block; height: 100%; }
  .released { background: #8fbc8f; } .memory { background: #2e8b57; } .processing { background: #e0b040; }
  .erred { background: #d9534f; } .waiting { background: #ddd; }
  .legend span { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 10px; vertical-align: middle; }
  canvas { width: 100%; display: block; background: #fcfcfc; border: 1px solid #eee; }
  .muted { color: #888; }
</style>
</head>
<body>
<header>
  <h1>lazyarr</h1>
  <span class="stat">workers <b id="n-workers">-</b></span>
  <span class="stat">threads <b id="n-threads">-</b></span>
  <span class="stat">graph size <b id="n-tasks">-</b> tasks</span>
  <span class="stat">done <b id="n-done">-</b></span>
  <span class="stat">transferred <b id="n-transfer">-</b></span>
  <span class="stat muted" id="status">connecting...</span>
</header>
<main>
  <section class="wide">
    <h2>Task stream <span class="muted" id="stream-window"></span></h2>
    <canvas id="task-stream" data-drawn="0" data-events="0" data-rows="0" width="1200" height="260"></canvas>
    <div class="legend muted" id="stream-legend"></div>
  </section>
  <section>
    <h2>Workers</h2>
    <table id="workers" data-count="0">
      <thead><tr><th>worker</th><th>threads</th><th>memory</th><th>limit</th><th>tasks</th><th>results</th><th>data</th></tr></thead>
      <tbody id="workers-body"></tbody>
    </table>
  </section>
  <section>
    <h2>Progress by task prefix</h2>
    <div class="legend muted">
      <span class="released"></span>done (released)<span class="memory"></span>in memory<span class="processing"></span>processing<span class="waiting"></span>waiting<span class="erred"></span>erred
    </div>
    <div id="progress" data-count="0"></div>
  </section>
</main>
<script>
"use strict";
const WINDOW = 20;          // seconds of task stream shown
const MAX_EVENTS = 20000;   // kept in the page
let events = [], since = 0, serverNow = 0, serverSkew = 0, received = 0;
const rows = new Map();     // "worker|thread" -> row index
const colors = new Map();

function fmtBytes(n) {
  if (n === null || n === undefined) return "-";
  const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }
function color(prefix) {
  let c = colors.get(prefix);
  if (!c) {
    let h = 0; for (const ch of prefix) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    c = "hsl(" + Math.round((h * 137.508) % 360) + ",62%,50%)"; colors.set(prefix, c);
  }
  return c;
}
async function getJSON(path) {
  const r = await fetch(path, {cache: "no-store"});
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}
function nowServer() { return Date.now() / 1000 + serverSkew; }

async function pollInfo() {
  try {
    const [info, ws, prog] = await Promise.all([getJSON("/api/info"), getJSON("/api/workers"), getJSON("/api/progress")]);
    serverSkew = info.now - Date.now() / 1000;
    document.getElementById("n-workers").textContent = info.workers;
    document.getElementById("n-threads").textContent = info.threads;
    document.getElementById("n-tasks").textContent = info.tasks.toLocaleString();
    document.getElementById("n-done").textContent = info.tasks_done.toLocaleString();
    document.getElementById("n-transfer").textContent = fmtBytes(info.transfer_bytes);
    document.getElementById("status").textContent = "live";
    drawWorkers(ws.workers);
    drawProgress(prog.prefixes);
  } catch (e) {
    document.getElementById("status").textContent = "disconnected: " + e.message;
  }
  setTimeout(pollInfo, 1000);
}

function drawWorkers(list) {
  const body = document.getElementById("workers-body");
  body.innerHTML = list.map(w => {
    const frac = w.memory && w.memory_limit ? Math.min(1, w.memory / w.memory_limit) : 0;
    return '<tr class="worker-row" data-address="' + esc(w.address) + '"><td>' + esc(w.name) + "</td><td>" + w.nthreads +
      '</td><td><span class="mem"><i style="width:' + (frac * 100).toFixed(1) + '%"></i></span>' + fmtBytes(w.memory) +
      "</td><td>" + fmtBytes(w.memory_limit) + "</td><td>" + w.processing + "</td><td>" + w.in_memory +
      "</td><td>" + fmtBytes(w.nbytes) + "</td></tr>";
  }).join("");
  document.getElementById("workers").dataset.count = list.length;
}

function drawProgress(prefixes) {
  for (const p in prefixes) {  // finished and forgotten: show what ran
    const r = prefixes[p];
    if (r.total === 0 && r.done > 0) { r.released = r.done; r.total = r.done; }
  }
  const names = Object.keys(prefixes).filter(p => prefixes[p].total > 0);
  names.sort((a, b) => prefixes[b].total - prefixes[a].total);
  const shown = names.slice(0, 50);
  const el = document.getElementById("progress");
  el.innerHTML = shown.map(p => {
    const r = prefixes[p], total = Math.max(1, r.total);
    const part = k => '<span class="' + k + '" style="width:' + (100 * r[k] / total).toFixed(2) + '%"></span>';
    return '<div class="prow" data-prefix="' + esc(p) + '"><span class="pname" title="' + esc(p) + '">' + esc(p) +
      '</span><div class="pbar">' + part("released") + part("memory") + part("processing") + part("erred") +
      '</div><span class="muted">' + (r.released + r.memory).toLocaleString() + " / " + r.total.toLocaleString() +
      (r.erred ? ', <b style="color:#d9534f">' + r.erred + " erred</b>" : "") + "</span></div>";
  }).join("") + (names.length > shown.length ? '<div class="muted">... ' + (names.length - shown.length) + " more prefixes</div>" : "");
  el.dataset.count = shown.length;
}

async function pollStream() {
  try {
    const s = await getJSON("/api/task-stream?since=" + since);
    since = s.next; serverSkew = s.now - Date.now() / 1000;
    for (const e of s.events) {
      events.push(e);
      const row = e[0] + "|" + e[1];
      if (!rows.has(row)) rows.set(row, rows.size);
    }
    received += s.events.length;
    if (events.length > MAX_EVENTS) events = events.slice(events.length - MAX_EVENTS);
    drawStream();
  } catch (e) { /* pollInfo reports connection problems */ }
  setTimeout(pollStream, 500);
}

function drawStream() {
  const canvas = document.getElementById("task-stream");
  const ctx = canvas.getContext("2d");
  const wanted = Math.min(420, Math.max(120, rows.size * 26 + 20));
  if (canvas.height !== wanted) { canvas.height = wanted; canvas.style.height = wanted + "px"; }
  const width = canvas.width, height = canvas.height, label = 130;
  ctx.clearRect(0, 0, width, height);
  const now = nowServer(), t0 = now - WINDOW;
  const names = [...rows.keys()].sort();
  names.forEach((n, i) => rows.set(n, i));
  const nrows = Math.max(1, rows.size), rowH = Math.max(2, Math.min(28, (height - 14) / nrows));
  ctx.font = "10px sans-serif"; ctx.fillStyle = "#666";
  names.forEach((n, i) => {
    const [addr, thread] = n.split("|");
    if (rowH >= 9) ctx.fillText(addr.replace("tcp://", "") + " #" + thread, 2, i * rowH + rowH * 0.7);
  });
  let drawn = 0;
  const seen = new Set();
  const scale = (width - label) / WINDOW;
  for (const e of events) {
    const start = e[2], stop = e[3];
    if (stop < t0) continue;
    const x = label + Math.max(0, start - t0) * scale;
    const w = Math.max(1, (stop - Math.max(start, t0)) * scale);
    const y = rows.get(e[0] + "|" + e[1]) * rowH;
    ctx.fillStyle = color(e[4]);
    ctx.fillRect(x, y + 1, w, rowH - 2);
    drawn++; seen.add(e[4]);
  }
  ctx.fillStyle = "#999";
  for (let s = 0; s <= WINDOW; s += 5) ctx.fillText("-" + (WINDOW - s) + "s", label + s * scale - 10, height - 2);
  canvas.dataset.drawn = drawn;
  canvas.dataset.events = received;
  canvas.dataset.rows = rows.size;
  document.getElementById("stream-window").textContent = "(last " + WINDOW + " s, " + received.toLocaleString() + " tasks received)";
  document.getElementById("stream-legend").innerHTML = [...seen].slice(0, 20).map(p =>
    '<span style="background:' + color(p) + '"></span>' + esc(p)).join("");
}

pollInfo();
pollStream();
</script>
</body>
</html>
"""
