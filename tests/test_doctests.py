"""Every example in a docstring of lazyarr and runtime runs and shows what it says."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import lazyarr
import runtime

pytestmark = pytest.mark.timeout(120)


def _modules() -> list[str]:
    names = []
    for package in (lazyarr, runtime):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):  # importing it would run the command line
                names.append(info.name)
    return names


MODULES = _modules()
# modules whose docstrings must keep showing examples (guards against the runner finding none)
WITH_EXAMPLES = {
    "lazyarr.core", "lazyarr.tokenize", "lazyarr.dataframe.io.csv", "runtime.memory", "runtime.nanny", "runtime.spill",
    *(f"lazyarr.array{m}" for m in ("", ".chunks", ".core", ".creation", ".layers", ".random", ".reductions",
                                    ".storage", ".ufunc")),
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) in {name} failed (see the output above)"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} is expected to have docstring examples"


def test_the_walk_finds_every_layer():
    assert {"lazyarr.core", "lazyarr.array.core", "lazyarr.bag.core", "lazyarr.dataframe.core",
            "runtime.scheduler_state", "runtime.worker"} <= set(MODULES)
