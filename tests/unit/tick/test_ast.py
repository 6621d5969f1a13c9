"""AST value semantics the pipeline relies on."""

from __future__ import annotations

import dataclasses
import re

import pytest

from kapacity.tick import (
    BinaryOp,
    Call,
    DurationLit,
    FunctionCall,
    NumberInt,
    Reference,
    RegexLit,
    StringLit,
    parse,
)


def test_equality_ignores_positions_and_formatting_hints() -> None:
    assert NumberInt(8, line=1, col=2) == NumberInt(8, octal=True)
    assert StringLit("x", triple=True) == StringLit("x")
    assert DurationLit(60_000_000_000, "60s") == DurationLit(60_000_000_000, "1m")
    assert BinaryOp("+", Reference("a"), NumberInt(1), parens=True) == BinaryOp("+", Reference("a"), NumberInt(1))
    assert RegexLit("a", re.compile("a")) == RegexLit("a", re.compile("a"), line=3)
    assert Call("f") != Call("f", parens=False)


def test_nodes_are_frozen_and_hashable() -> None:
    node = parse("stream|from().measurement('cpu')").statements[0]
    assert hash(node) == hash(parse("stream\n|from()\n.measurement('cpu')").statements[0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.op = "."  # type: ignore[misc, union-attr]


def test_function_call_alias() -> None:
    assert FunctionCall is Call
