"""lazyarr.dot: DOT text always; SVG/PNG when the graphviz package and the dot program exist."""
from __future__ import annotations

import builtins
import re
import shutil
from operator import add

import pytest

import lazyarr
from lazyarr import delayed
from lazyarr.dot import MissingGraphviz, to_dot, visualize


def inc(x):
    return x + 1


def _has_graphviz():
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


needs_graphviz = pytest.mark.skipif(
    not _has_graphviz(), reason="needs the 'graphviz' Python package and Graphviz's 'dot' program"
)


def nodes_and_edges(text):
    nodes = dict(re.findall(r'^\s+(\w+) \[label="([^"]*)", shape="(?:box|circle)"', text, flags=re.M))
    shapes = dict(re.findall(r'^\s+(\w+) \[label="[^"]*", shape="(box|circle)"', text, flags=re.M))
    edges = re.findall(r"^\s+(\w+) -> (\w+);", text, flags=re.M)
    return nodes, shapes, edges


def test_to_dot_function_and_data_nodes():
    dsk = {("x", 0): 1, "y-0123456789abcdef": (inc, ("x", 0)), "z": (add, "y-0123456789abcdef", ("x", 0)),
           "alias": "z", "gather": ["z", ("x", 0)]}
    text = to_dot(dsk)
    assert text.startswith("digraph {") and text.rstrip().endswith("}")
    assert 'rankdir="BT"' in text
    nodes, shapes, edges = nodes_and_edges(text)
    labels = {label for label in nodes.values()}
    assert {"x (0)", "y", "z", "alias", "gather", "inc", "add"} <= labels
    by_label = {}
    for node, label in nodes.items():
        by_label.setdefault(label, []).append(node)
    (inc_fn,) = [n for n in by_label["inc"] if shapes[n] == "circle"]
    (y_data,) = by_label["y"]
    (x_data,) = by_label["x (0)"]
    (add_fn,) = by_label["add"]
    (z_data,) = by_label["z"]
    assert shapes[y_data] == "box" and shapes[add_fn] == "circle"
    assert (x_data, inc_fn) in edges and (inc_fn, y_data) in edges
    assert (y_data, add_fn) in edges and (x_data, add_fn) in edges and (add_fn, z_data) in edges
    (alias,) = by_label["alias"]
    assert (z_data, alias) in edges
    (gather,) = by_label["gather"]
    assert (z_data, gather) in edges and (x_data, gather) in edges
    assert len([n for n in nodes if shapes[n] == "circle"]) == 2  # literals and aliases have no function


def test_to_dot_quotes_labels_and_takes_attributes():
    dsk = {'say "hi"\\now': 1, "b": (inc, 'say "hi"\\now')}
    text = to_dot(dsk, data_attributes={"b": {"color": "red"}}, function_attributes={"b": {"style": "filled"}},
                  rankdir="LR", node_attr={"fontsize": 10})
    assert 'label="say \\"hi\\"\\\\now"' in text
    assert 'color="red"' in text and 'style="filled"' in text
    assert 'rankdir="LR"' in text and 'node [fontsize="10"]' in text


@pytest.fixture
def without_graphviz_package(monkeypatch):
    """Make ``import graphviz`` fail, as on a machine without the package."""
    real_import = builtins.__import__

    def no_graphviz(name, *args, **kwargs):
        if name == "graphviz":
            raise ImportError("no graphviz here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_graphviz)


def test_visualize_writes_dot_without_any_dependency(tmp_path, monkeypatch, without_graphviz_package):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot either
    total = delayed(sum)([delayed(inc)(i) for i in range(3)])
    target = tmp_path / "graph"
    text = total.visualize(filename=str(target), format="dot")
    written = (tmp_path / "graph.dot").read_text()
    assert written == text
    nodes, shapes, edges = nodes_and_edges(text)
    assert sorted(nodes.values()).count("inc") == 6  # three calls: a function and a data node each
    assert len(edges) == 3 + 3 + 1  # inc->data x3, data->sum x3, sum->result
    assert lazyarr.visualize(total, filename=str(tmp_path / "same.dot")) == text
    assert visualize(total, filename=None, format="dot") == text


def test_visualize_many_collections_and_raw_graphs(tmp_path):
    a = delayed(inc)(1)
    b = delayed(inc)(a)
    text = visualize(a, b, {"extra": (inc, 5)}, filename=str(tmp_path / "g.dot"))
    nodes, _, _ = nodes_and_edges(text)
    # a, b, extra: a function node and a data node each; the literal 1 stays inside a's task
    assert sorted(nodes.values()) == ["extra"] + ["inc"] * 5
    with pytest.raises(TypeError, match="lazyarr collections or task graph dicts"):
        visualize(42, filename=None, format="dot")


def test_visualize_optimize_graph_draws_fused_tasks(tmp_path):
    x = delayed(1)
    for _ in range(4):
        x = delayed(inc)(x)
    plain = visualize(x, filename=None, format="dot")
    optimized = visualize(x, filename=None, format="dot", optimize_graph=True)
    plain_nodes, _, _ = nodes_and_edges(plain)
    opt_nodes, _, _ = nodes_and_edges(optimized)
    assert len(plain_nodes) == 1 + 4 * 2
    assert len(opt_nodes) == 2
    assert "value-inc-...-inc" in opt_nodes.values()


def test_rendering_without_graphviz_names_what_is_missing(tmp_path, without_graphviz_package):
    x = delayed(inc)(1)
    with pytest.raises(MissingGraphviz, match="package 'graphviz'.*pip install graphviz"):
        x.visualize(filename=str(tmp_path / "g.png"))
    with pytest.raises(ImportError, match="format='dot'"):
        x.visualize(filename=str(tmp_path / "g"), format="svg")
    assert not list(tmp_path.iterdir())


def test_rendering_without_dot_program_names_it(tmp_path, monkeypatch):
    pytest.importorskip("graphviz", reason="needs the 'graphviz' Python package")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingGraphviz, match="'dot' program.*apt-get install graphviz"):
        delayed(inc)(1).visualize(filename=str(tmp_path / "g.svg"))


@needs_graphviz
def test_svg_output(tmp_path):
    x = delayed(add)(delayed(inc)(1), 2)
    svg = x.visualize(filename=str(tmp_path / "graph.svg"))
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert (tmp_path / "graph.svg").read_text() == svg
    assert ">inc<" in svg and ">add<" in svg


@needs_graphviz
def test_png_output_default_format(tmp_path):
    x = delayed(inc)(1)
    data = x.visualize(filename=str(tmp_path / "mygraph"))
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "mygraph.png").read_bytes() == data


@needs_graphviz
def test_to_graphviz_digraph():
    from lazyarr.dot import to_graphviz

    digraph = to_graphviz({"a": 1, "b": (inc, "a")}, rankdir="LR")
    source = digraph.source
    assert "rankdir=LR" in source and "inc" in source and "->" in source
