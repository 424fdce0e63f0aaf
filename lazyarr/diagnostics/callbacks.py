"""The callback mechanism of the local schedulers: hooks called at the start, around every task,
and at the end of a computation.

A callback is a :class:`Callback` object (or, for compatibility, a plain 5-tuple
``(start, start_state, pretask, posttask, finish)`` with ``None`` for unused hooks). The
schedulers call, in this order:

``start(dsk)``
    once, before anything is looked at; ``dsk`` is the graph as given.
``start_state(dsk, state)``
    once the graph is prepared; ``state['ntasks']`` is the number of tasks that will run.
``pretask(key, dsk, state)``
    before each task runs.
``posttask(key, result, dsk, state, worker_id)``
    after each task ran.
``finish(dsk, state, errored)``
    once at the end, also after an error (``errored`` is then true).

Callbacks are active while registered globally (``cb.register()`` / ``cb.unregister()``, or
``with cb:``) or when passed to one computation as ``compute(callbacks=[cb])``.
This module is deliberately light: the schedulers import it on every call.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = ["Callback", "active_callbacks", "callback_tuple"]

_FIELDS = ("_start", "_start_state", "_pretask", "_posttask", "_finish")
_registry_lock = threading.Lock()


class Callback:
    """Base class for scheduler callbacks; also usable directly with functions.

    Subclass and define any of ``_start(dsk)``, ``_start_state(dsk, state)``,
    ``_pretask(key, dsk, state)``, ``_posttask(key, result, dsk, state, worker_id)`` and
    ``_finish(dsk, state, errored)``, or pass the functions to the constructor::

        >>> seen = []
        >>> cb = Callback(pretask=lambda key, dsk, state: seen.append(key))
        >>> from lazyarr.local import get_sync
        >>> with cb:
        ...     get_sync({'x': 1, 'y': (abs, 'x')}, 'y')
        1
        >>> sorted(seen)
        ['x', 'y']

    ``with cb:`` registers it for the block (for every scheduler call in the process, from any
    thread); ``register()`` / ``unregister()`` do it explicitly.
    """

    #: The callback tuples registered globally.
    active: ClassVar[set] = set()

    def __init__(self, start: Callable | None = None, start_state: Callable | None = None,
                 pretask: Callable | None = None, posttask: Callable | None = None,
                 finish: Callable | None = None):
        for field, f in zip(_FIELDS, (start, start_state, pretask, posttask, finish)):
            if f is not None:
                if not callable(f):
                    raise TypeError(f"callback {field[1:]}= must be callable, not {type(f).__name__}")
                setattr(self, field, f)

    @property
    def _callback(self) -> tuple:
        """The hooks as a ``(start, start_state, pretask, posttask, finish)`` tuple."""
        return tuple(getattr(self, f, None) for f in _FIELDS)

    def register(self) -> None:
        """Make this callback active for every computation until :meth:`unregister`."""
        with _registry_lock:
            Callback.active.add(self._callback)

    def unregister(self) -> None:
        """Undo :meth:`register` (does nothing if it is not registered)."""
        with _registry_lock:
            Callback.active.discard(self._callback)

    def __enter__(self) -> "Callback":
        self.register()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.unregister()


def active_callbacks() -> list:
    """The globally registered callback tuples (a snapshot)."""
    with _registry_lock:
        return list(Callback.active)


def callback_tuple(cb: Any) -> tuple:
    """A callback given to ``callbacks=`` as its 5-tuple of hooks."""
    if isinstance(cb, Callback):
        return cb._callback
    if isinstance(cb, tuple) and len(cb) == 5 and all(f is None or callable(f) for f in cb):
        return cb
    raise TypeError(
        "callbacks= takes Callback objects or (start, start_state, pretask, posttask, finish) "
        f"tuples, not {cb!r}"
    )
