"""Draw task graphs with Graphviz: :func:`visualize` for collections, :func:`to_dot` for raw graphs.

Every task becomes two nodes, as in Dask's drawings: a circle for the function call (labelled
with the function's name) and a box for its result (labelled with the key's readable part and
block index). Arrows run from data to the calls that use it, and from each call to its result.

Writing DOT text needs nothing extra. Rendering SVG, PNG, PDF, ... needs the Python package
``graphviz`` (``pip install graphviz``, or the ``lazyarr[viz]`` extra) and Graphviz's ``dot``
program (``apt-get install graphviz``, ``brew install graphviz`` or ``conda install graphviz``).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

from .core import get_dependencies, ishashable, istask
from .utils import funcname, key_split

__all__ = ["visualize", "to_dot", "to_graphviz", "MissingGraphviz"]

_TEXT_FORMATS = {"dot", "gv", "svg"}
_INSTALL_HINT = (
    "install the Python package with 'pip install graphviz' (or the 'lazyarr[viz]' extra) and the "
    "Graphviz programs with 'apt-get install graphviz', 'brew install graphviz' or "
    "'conda install graphviz'"
)


class MissingGraphviz(ImportError):
    """Rendering needs the ``graphviz`` package or the ``dot`` program, and one is missing."""


def _data_label(key: Any) -> str:
    name = key_split(key)
    if type(key) is tuple and len(key) > 1:
        return f"{name} ({', '.join(str(part) for part in key[1:])})"
    return name


def _elements(dsk: Mapping, data_attributes: Mapping | None, function_attributes: Mapping | None
              ) -> Iterator[tuple]:
    """``('node', id, attrs)`` and ``('edge', tail, head)`` items describing the drawing."""
    data_attributes = data_attributes or {}
    function_attributes = function_attributes or {}
    ids = {key: f"d{i}" for i, key in enumerate(dsk)}
    for key, task in dsk.items():
        data_id = ids[key]
        yield "node", data_id, {"label": _data_label(key), "shape": "box", **data_attributes.get(key, {})}
        if istask(task):
            func_id = "f" + data_id[1:]
            attrs = {"label": funcname(task[0]), "shape": "circle", **function_attributes.get(key, {})}
            yield "node", func_id, attrs
            yield "edge", func_id, data_id
            for dep in sorted(get_dependencies(dsk, task=task), key=lambda k: ids[k]):
                yield "edge", ids[dep], func_id
        elif ishashable(task) and task in dsk and task != key:  # an alias
            yield "edge", ids[task], data_id
        elif type(task) in (list, dict):  # a list or dict of keys: gather them, no function
            for dep in sorted(get_dependencies(dsk, task=task), key=lambda k: ids[k]):
                yield "edge", ids[dep], data_id


def _quote(text: Any) -> str:
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _attr_list(attrs: Mapping) -> str:
    return ", ".join(f"{name}={_quote(value)}" for name, value in attrs.items())


def to_dot(dsk: Mapping, data_attributes: Mapping | None = None, function_attributes: Mapping | None = None,
           rankdir: str = "BT", graph_attr: Mapping | None = None, node_attr: Mapping | None = None,
           edge_attr: Mapping | None = None) -> str:
    """The DOT text of a graph drawing; needs no Graphviz installation.

    ``data_attributes`` / ``function_attributes`` map keys to extra Graphviz attributes of their
    data / function nodes (e.g. ``{'x': {'color': 'red'}}``).

    >>> from operator import add
    >>> print(to_dot({'x': 1, 'y': (add, 'x', 1)}), end='')
    digraph {
      graph [rankdir="BT"];
      d0 [label="x", shape="box"];
      d1 [label="y", shape="box"];
      f1 [label="add", shape="circle"];
      f1 -> d1;
      d0 -> f1;
    }
    """
    lines = ["digraph {"]
    graph = {"rankdir": rankdir, **(graph_attr or {})}
    lines.append(f"  graph [{_attr_list(graph)}];")
    if node_attr:
        lines.append(f"  node [{_attr_list(node_attr)}];")
    if edge_attr:
        lines.append(f"  edge [{_attr_list(edge_attr)}];")
    for kind, a, b in _elements(dsk, data_attributes, function_attributes):
        lines.append(f"  {a} [{_attr_list(b)}];" if kind == "node" else f"  {a} -> {b};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _require_graphviz(what: str) -> Any:
    try:
        import graphviz
    except ImportError:
        raise MissingGraphviz(
            f"{what} needs the Python package 'graphviz', which is not installed: {_INSTALL_HINT}. "
            "format='dot' writes the DOT text without it."
        ) from None
    return graphviz


def _require_dot(what: str) -> None:
    if shutil.which("dot") is None:
        raise MissingGraphviz(
            f"{what} needs Graphviz's 'dot' program, which is not on the PATH: {_INSTALL_HINT}. "
            "format='dot' writes the DOT text without it."
        )


def to_graphviz(dsk: Mapping, data_attributes: Mapping | None = None, function_attributes: Mapping | None = None,
                rankdir: str = "BT", graph_attr: Mapping | None = None, node_attr: Mapping | None = None,
                edge_attr: Mapping | None = None) -> Any:
    """A ``graphviz.Digraph`` of the graph (needs the ``graphviz`` package; rendering needs ``dot``)."""
    graphviz = _require_graphviz("to_graphviz")
    digraph = graphviz.Digraph(graph_attr={"rankdir": rankdir, **(graph_attr or {})}, node_attr=node_attr,
                               edge_attr=edge_attr)
    for kind, a, b in _elements(dsk, data_attributes, function_attributes):
        if kind == "node":
            digraph.node(a, **{k: str(v) for k, v in b.items()})
        else:
            digraph.edge(a, b)
    return digraph


def _graph_of(objects: tuple, optimize_graph: bool) -> dict:
    from .base import collections_to_graph, is_lazyarr_collection

    collections = []
    graph: dict = {}
    for obj in objects:
        if is_lazyarr_collection(obj):
            collections.append(obj)
        elif isinstance(obj, Mapping):
            graph.update(obj)
        else:
            raise TypeError(f"visualize takes lazyarr collections or task graph dicts, not {type(obj).__name__}")
    if collections:
        graph.update(collections_to_graph(collections, optimize_graph))
    return graph


def visualize(*collections: Any, filename: str | None = "mygraph", format: str | None = None,
              optimize_graph: bool = False, **kwargs: Any) -> str | bytes:
    """Draw the task graph of ``collections`` (lazyarr collections or graph dicts) to a file.

    ``format`` is ``'dot'`` (DOT text, no dependencies), ``'svg'``, ``'png'``, ``'pdf'`` or any
    other Graphviz output format; by default it is taken from the extension of ``filename``,
    else ``'png'``. The extension is added to ``filename`` when missing. With
    ``filename=None`` nothing is written. ``optimize_graph=True`` draws the graph as it would
    run, after culling and fusing. Other keyword arguments go to :func:`to_dot`.

    Returns what was drawn: ``str`` for ``dot`` and ``svg``, ``bytes`` for other formats.
    Raises :class:`MissingGraphviz`, naming what is missing and how to install it, when a
    rendered format is asked for without the ``graphviz`` package or the ``dot`` program.
    """
    if filename is not None:
        ext = os.path.splitext(filename)[1]
        if format is None:
            format = ext[1:].lower() if ext else "png"
        if not ext or ext[1:].lower() != format.lower():
            filename = f"{filename}.{format}"
    format = (format or "png").lower()
    graphviz = None
    if format not in ("dot", "gv"):  # check before the work of drawing
        what = f"visualize(format={format!r})"
        graphviz = _require_graphviz(what)
        _require_dot(what)
    dot_text = to_dot(_graph_of(collections, optimize_graph), **kwargs)
    if graphviz is None:
        data: str | bytes = dot_text
    else:
        rendered = graphviz.Source(dot_text).pipe(format=format)
        data = rendered.decode() if format in _TEXT_FORMATS else rendered
    if filename is not None:
        mode, encoding = ("w", "utf-8") if isinstance(data, str) else ("wb", None)
        with open(filename, mode, encoding=encoding) as f:
            f.write(data)
    return data
