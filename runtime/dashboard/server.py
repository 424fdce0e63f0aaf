"""The dashboard's HTTP server: a stdlib ``ThreadingHTTPServer`` in a thread owned by
:class:`Dashboard` (``close()`` stops it, joins the serving thread and the request threads)."""
from __future__ import annotations

import errno
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import DEFAULT_PORT, data
from .page import PAGE

__all__ = ["Dashboard"]

logger = logging.getLogger("runtime.dashboard")


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True      # server_close() joins the request threads: no orphans
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    server_version = "lazyarr-dashboard"
    protocol_version = "HTTP/1.0"  # one request per connection: request threads end quickly

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("dashboard %s: " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        scheduler = self.server.scheduler  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            if url.path in ("/", "/status", "/index.html"):
                self._send(200, "text/html; charset=utf-8", PAGE.encode())
            elif url.path == "/api/info":
                self._json(data.info(scheduler))
            elif url.path == "/api/workers":
                self._json({"workers": data.workers(scheduler)})
            elif url.path == "/api/progress":
                self._json(data.progress(scheduler))
            elif url.path == "/api/task-stream":
                since = _int(query, "since", 0)
                limit = _int(query, "limit", None)
                self._json(data.task_stream(scheduler, since, limit))
            elif url.path == "/metrics":
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", data.metrics(scheduler).encode())
            elif url.path == "/health":
                self._send(200, "text/plain", b"ok")
            else:
                self._send(404, "text/plain", f"not found: {url.path} (try /status, /api/info, /metrics)".encode())
        except ValueError as e:
            self._send(400, "text/plain", str(e).encode())
        except Exception as e:  # a dashboard bug must not look like a hang
            logger.exception("dashboard: %s failed", url.path)
            self._send(500, "text/plain", f"{type(e).__name__}: {e}".encode())

    def _json(self, obj: Any) -> None:
        self._send(200, "application/json", json.dumps(obj, separators=(",", ":"), default=str).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _int(query: dict, name: str, default: Any) -> Any:
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[0])
    except ValueError:
        raise ValueError(f"query parameter {name!r} must be an integer, not {values[0]!r}") from None


class Dashboard:
    """Serves the dashboard of ``scheduler`` on ``host:port`` until :meth:`close`.

    Port 0 picks a free port; if the default port 8787 is taken, a free one is used instead
    (logged). ``link`` is the page's URL.
    """

    def __init__(self, scheduler: Any, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
        try:
            server = _Server((host, port), _Handler)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or port == 0:
                raise
            server = _Server((host, 0), _Handler)
            logger.warning("dashboard: port %s is taken, serving on port %s instead", port, server.server_address[1])
        server.scheduler = scheduler  # type: ignore[attr-defined]
        self._server = server
        self.host = host
        self.port = server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.link = f"http://{shown}:{self.port}/status"
        # shutdown() waits up to one poll interval: keep it short so closing a cluster is quick.
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"lazyarr-dashboard-{self.port}", daemon=True)
        self._thread.start()
        self._closed = False
        logger.info("dashboard at %s", self.link)

    def __repr__(self) -> str:
        return f"<Dashboard {self.link}>"

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving and join every thread of the server."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._thread.join(timeout)
        self._server.server_close()
