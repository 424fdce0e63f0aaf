"""A text progress bar for computations, built on the scheduler callbacks."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from ..utils import format_time
from .callbacks import Callback

__all__ = ["ProgressBar"]


class ProgressBar(Callback):
    """Show percent done and elapsed time while a computation runs.

    Quiet on fast computations: nothing is written until ``minimum`` seconds have passed. The
    bar is redrawn every ``dt`` seconds by a helper thread that is joined when the computation
    ends (and, at the latest, when the ``with`` block is left). Output goes to ``out``
    (default: ``sys.stdout`` at the time the computation starts).

    >>> import io
    >>> from lazyarr.local import get_sync
    >>> buf = io.StringIO()
    >>> with ProgressBar(out=buf):
    ...     get_sync({'x': 1, 'y': (abs, 'x')}, 'y')
    1
    >>> buf.getvalue().splitlines()[-1].split('|')[0]
    '[########################################] 100% '

    It relies only on ``start``, ``start_state`` (``state['ntasks']``, if given), ``posttask``
    and ``finish``, which the local schedulers and the distributed client both call.
    """

    def __init__(self, minimum: float = 0.0, width: int = 40, dt: float = 0.1, out: IO[str] | None = None):
        if minimum < 0 or dt <= 0 or width < 1:
            raise ValueError("ProgressBar needs minimum >= 0, dt > 0 and width >= 1")
        self.minimum = minimum
        self.width = width
        self.dt = dt
        self._out = out
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ntasks = 0
        self._ndone = 0
        self._started = 0.0
        self._shown = False
        self.last_duration = 0.0

    # -- callbacks -----------------------------------------------------------------------------

    def _start(self, dsk: Mapping) -> None:
        self._stop_thread()
        with self._lock:
            self._ntasks = len(dsk)
            self._ndone = 0
            self._shown = False
            self._started = time.perf_counter()
        self._file = self._out if self._out is not None else sys.stdout
        self._stopping.clear()
        self._thread = threading.Thread(target=self._refresh, name="lazyarr-progressbar", daemon=True)
        self._thread.start()

    def _start_state(self, dsk: Mapping, state: Mapping) -> None:
        ntasks = state.get("ntasks") if isinstance(state, Mapping) else None
        if ntasks is not None:
            with self._lock:
                self._ntasks = int(ntasks)

    def _posttask(self, key: Any, result: Any, dsk: Mapping, state: Any, worker_id: Any) -> None:
        with self._lock:
            self._ndone += 1

    def _finish(self, dsk: Mapping, state: Any, errored: bool) -> None:
        self._stop_thread()
        elapsed = time.perf_counter() - self._started
        self.last_duration = elapsed
        if elapsed >= self.minimum:
            with self._lock:
                if not errored:
                    self._ndone = self._ntasks
                self._draw(elapsed)
            self._file.write("\n")
            self._file.flush()

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self._stop_thread()

    # -- drawing -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        while not self._stopping.wait(self.dt):
            elapsed = time.perf_counter() - self._started
            if elapsed >= self.minimum:
                with self._lock:
                    self._draw(elapsed)

    def _draw(self, elapsed: float) -> None:
        frac = min(1.0, self._ndone / self._ntasks) if self._ntasks else 1.0
        filled = int(round(self.width * frac))
        bar = "#" * filled + " " * (self.width - filled)
        self._file.write(f"\r[{bar}] {int(frac * 100):3d}% | {format_time(elapsed)} elapsed")
        self._file.flush()
        self._shown = True

    def _stop_thread(self) -> None:
        thread = self._thread
        if thread is not None:
            self._stopping.set()
            if thread is not threading.current_thread():
                thread.join()
            self._thread = None
