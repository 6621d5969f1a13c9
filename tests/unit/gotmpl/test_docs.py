"""The examples in the package's docstrings stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import kapacity.gotmpl
import kapacity.gotmpl.gofmt
import kapacity.gotmpl.template
import kapacity.gotmpl.timefmt


@pytest.mark.parametrize(
    "module",
    [kapacity.gotmpl, kapacity.gotmpl.gofmt, kapacity.gotmpl.template, kapacity.gotmpl.timefmt],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
