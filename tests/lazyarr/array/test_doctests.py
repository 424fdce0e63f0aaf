"""The examples in the docstrings of the array modules run and give what they show."""
from __future__ import annotations

import doctest
import importlib

import pytest

pytestmark = pytest.mark.timeout(60)

MODULES = ["", "chunks", "core", "creation", "layers", "optimization", "random", "reductions", "storage", "ufunc"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    mod = importlib.import_module("lazyarr.array" + (f".{module}" if module else ""))
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if module not in ("optimization",):
        assert result.attempted > 0
