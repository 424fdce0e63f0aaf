"""Configuration: one nested dict of settings, read from defaults, YAML files and the environment.

Precedence, lowest first:

1. built-in defaults (``DEFAULTS`` below);
2. YAML files: every ``*.yaml`` / ``*.yml`` in ``~/.config/lazyarr/``, then in the directory
   named by ``LAZYARR_CONFIG`` (or that file itself, if it names a file);
3. environment variables ``LAZYARR_<SECTION>__<NAME>=value`` (double underscore nests;
   values are parsed as YAML scalars, so ``LAZYARR_ARRAY__SPLIT_EVERY=8`` gives the int 8);
4. :func:`set`, globally or in a ``with`` block.

Keys are dotted paths and ``-`` and ``_`` are the same::

    >>> get('scheduler', None) is None or True
    True
    >>> with set({'array.chunk-size': '64MiB'}):
    ...     get('array.chunk_size')
    '64MiB'
"""
from __future__ import annotations

import copy
import os
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["config", "get", "set", "refresh", "DEFAULTS", "update_defaults"]

DEFAULTS: dict = {
    "scheduler": None,
    "num-workers": None,
    "array": {"chunk-size": "128MiB", "split-every": 8},
    "bag": {"split-every": 8},
    "dataframe": {"split-every": 8, "shuffle": {"method": None}},
    "optimization": {"fuse": {"active": True, "max-width": 1, "max-length": None}},
    "temporary-directory": None,
}

_lock = threading.RLock()
config: dict = {}
_no_default = object()


def _norm(key: str) -> str:
    return key.replace("_", "-").lower()


def _merge(into: dict, new: Mapping) -> None:
    """Deep-merge ``new`` into ``into`` in place, normalising key spelling."""
    for key, value in new.items():
        key = _norm(str(key))
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, Mapping):
            into[key] = {}
            _merge(into[key], value)
        else:
            into[key] = value


def _yaml_files() -> list[str]:
    places = [os.path.join(os.path.expanduser("~"), ".config", "lazyarr")]
    if os.environ.get("LAZYARR_CONFIG"):
        places.append(os.environ["LAZYARR_CONFIG"])
    files = []
    for place in places:
        if os.path.isfile(place):
            files.append(place)
        elif os.path.isdir(place):
            files.extend(
                os.path.join(place, name)
                for name in sorted(os.listdir(place))
                if name.endswith((".yaml", ".yml"))
            )
    return files


def _load_yaml_files(into: dict) -> None:
    files = _yaml_files()
    if not files:
        return
    import yaml  # only paid for when a config file exists

    for path in files:
        with open(path) as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise ValueError(f"lazyarr config file {path} is not valid YAML: {e}") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"lazyarr config file {path} must hold a mapping at the top level")
        _merge(into, data)


def _parse_env_value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("none", "null", ""):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _load_env(into: dict, environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith("LAZYARR_") or name == "LAZYARR_CONFIG":
            continue
        path = [_norm(part) for part in name[len("LAZYARR_"):].split("__")]
        node = into
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = _parse_env_value(value)


def refresh(environ: Mapping[str, str] | None = None) -> None:
    """Rebuild the configuration from defaults, YAML files and environment variables.

    Values given with :func:`set` are discarded.
    """
    fresh: dict = {}
    _merge(fresh, DEFAULTS)
    _load_yaml_files(fresh)
    _load_env(fresh, os.environ if environ is None else environ)
    with _lock:
        config.clear()
        config.update(fresh)


def update_defaults(new: Mapping) -> None:
    """Add defaults for a subsystem (collections and the runtime call this on import).

    Existing user settings win over the new defaults.
    """
    with _lock:
        _merge(DEFAULTS, new)
        merged: dict = {}
        _merge(merged, new)
        _merge(merged, config)
        config.clear()
        config.update(merged)


def get(key: str, default: Any = _no_default) -> Any:
    """The value at dotted ``key``; ``default`` if it is missing, else a ``KeyError``.

    >>> get('array.split-every')
    8
    >>> get('no.such.thing', 'fallback')
    'fallback'
    """
    node: Any = config
    for part in key.split("."):
        part = _norm(part)
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif default is not _no_default:
            return default
        else:
            raise KeyError(f"no configuration value for {key!r}")
    return node


class set:
    """Set configuration values globally, or temporarily in a ``with`` block.

    Give a dict of dotted keys, or keyword arguments (``__`` nests in those)::

        lazyarr.config.set(scheduler='sync')              # from now on
        with lazyarr.config.set({'array.chunk-size': '32MiB'}):
            ...                                           # restored afterwards
    """

    def __init__(self, arg: Mapping | None = None, **kwargs: Any):
        updates = dict(arg or {})
        updates.update({k.replace("__", "."): v for k, v in kwargs.items()})
        self._undo: list = []
        with _lock:
            for key, value in updates.items():
                self._assign(key.split("."), value)

    def _assign(self, path: list[str], value: Any) -> None:
        node = config
        for depth, part in enumerate(path[:-1]):
            part = _norm(part)
            if not isinstance(node.get(part), dict):
                self._undo.append((path[: depth + 1], node.get(part, _no_default)))
                node[part] = {}
            node = node[part]
        last = _norm(path[-1])
        self._undo.append((path, copy.copy(node.get(last, _no_default))))
        node[last] = value

    def __enter__(self) -> "set":
        return self

    def __exit__(self, *exc: Any) -> None:
        with _lock:
            for path, old in reversed(self._undo):
                node = config
                for part in path[:-1]:
                    node = node.setdefault(_norm(part), {})
                last = _norm(path[-1])
                if old is _no_default:
                    node.pop(last, None)
                else:
                    node[last] = old


refresh()
