"""The scheduler's web dashboard: a self-contained page, JSON endpoints and Prometheus metrics.

Served by a stdlib ``ThreadingHTTPServer`` in a thread the :class:`Dashboard` owns (started by
the :class:`~runtime.scheduler.Scheduler`, joined by its ``close``). Endpoints (see
``docs/dashboard.md``):

=====================  ==========================================================
``/`` , ``/status``    the page (HTML + inline JS, no network needed)
``/api/info``          graph size, task states, workers, threads, clients, transfers
``/api/workers``       one row per worker: threads, memory used/limit, tasks, data held
``/api/progress``      per task prefix: waiting / processing / memory / erred / released / done
``/api/task-stream``   ``?since=N&limit=M``: finished tasks (worker, thread, start, stop, prefix)
``/metrics``           Prometheus text format
=====================  ==========================================================

>>> parse_dashboard_address('127.0.0.1:0')
('127.0.0.1', 0)
>>> parse_dashboard_address(None) is None
True
"""
from __future__ import annotations

import logging
from typing import Any

__all__ = ["Dashboard", "start_dashboard", "parse_dashboard_address", "DEFAULT_PORT"]

logger = logging.getLogger("runtime.dashboard")

DEFAULT_PORT = 8787


def parse_dashboard_address(address: Any) -> tuple | None:
    """``'host:port'`` (or ``':port'``, or a bare port) as ``(host, port)``; None stays None.

    Raises ValueError naming the problem for anything else.
    """
    if address is None:
        return None
    if isinstance(address, bool):
        raise ValueError(f"dashboard_address must be 'host:port' or None, not {address!r}")
    if isinstance(address, int):
        host, port_text = "127.0.0.1", str(address)
    elif isinstance(address, str):
        text = address.strip()
        if text.lower() in ("", "none", "off", "false"):
            return None
        for scheme in ("http://", "https://"):
            if text.startswith(scheme):
                text = text[len(scheme):].rstrip("/")
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = ("127.0.0.1", text) if text.isdigit() else (text, str(DEFAULT_PORT))
        host = host.strip("[]") or "127.0.0.1"
    else:
        raise ValueError(f"dashboard_address must be 'host:port' or None, not {type(address).__name__}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"dashboard_address {address!r}: the port must be a number") from None
    if not 0 <= port < 65536:
        raise ValueError(f"dashboard_address {address!r}: port {port} is out of range")
    return host, port


def start_dashboard(scheduler: Any, spec: tuple | None) -> "Dashboard | None":
    """Serve the dashboard of ``scheduler`` at ``spec`` = ``(host, port)``; None if off.

    A taken port falls back to a free one (logged); a failure to listen at all is logged and
    the scheduler runs without a dashboard (it must not stop the cluster from starting).
    """
    if spec is None:
        return None
    from .server import Dashboard

    try:
        return Dashboard(scheduler, *spec)
    except OSError as e:
        logger.error("dashboard: cannot listen on %s:%s (%s); running without a dashboard", spec[0], spec[1], e)
        return None


def __getattr__(name: str) -> Any:
    if name == "Dashboard":
        from .server import Dashboard

        return Dashboard
    raise AttributeError(f"module 'runtime.dashboard' has no attribute {name!r}")
