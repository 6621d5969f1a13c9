"""Canonical formatting: layout, quoting, parentheses, numbers."""

from __future__ import annotations

import re

import pytest

from kapacity.tick import (
    BinaryOp,
    DurationLit,
    Lambda,
    NumberFloat,
    NumberInt,
    Program,
    Reference,
    RegexLit,
    StringLit,
    TickError,
    UnaryOp,
    VarDecl,
    format_expr,
    format_program,
    parse,
)


def test_canonical_layout() -> None:
    source = """
    var warn = 70
    var crit lambda
    dbrp "telegraf"."autogen"
    stream|from().measurement('cpu').groupBy(*)
      |alert().warn(lambda: "usage_idle" < warn).crit(crit).noRecoveries
        .kafka().kafkaTopic('cpu-alerts')
    """
    assert format_program(parse(source)) == (
        "var warn = 70\n"
        "var crit lambda\n"
        'dbrp "telegraf"."autogen"\n'
        "\n"
        "stream\n"
        "    |from()\n"
        "        .measurement('cpu')\n"
        "        .groupBy(*)\n"
        "    |alert()\n"
        '        .warn(lambda: "usage_idle" < warn)\n'
        "        .crit(crit)\n"
        "        .noRecoveries\n"
        "        .kafka()\n"
        "        .kafkaTopic('cpu-alerts')\n"
    )


def test_formatting_is_idempotent() -> None:
    source = "var x = stream|from()\nx|window().period(10s).every(5m)|mean('value').as('m')"
    once = format_program(parse(source))
    assert format_program(parse(once)) == once


@pytest.mark.parametrize(
    ("node", "text"),
    [
        (NumberInt(10), "10"),
        (NumberInt(0o755, octal=True), "0755"),
        (NumberFloat(1.5), "1.5"),
        (NumberFloat(2.0), "2.0"),
        (NumberFloat(1e20), "100000000000000000000.0"),
        (NumberFloat(1e-7), "0.0000001"),
        (DurationLit(90_000_000_000), "90s"),
        (DurationLit(120_000_000_000), "2m"),
        (DurationLit(86_400_000_000_000), "1d"),
        (DurationLit(1_500_000), "1500u"),
        (DurationLit(0), "0s"),
        (DurationLit(300_000_000_000, "300s"), "300s"),
        (StringLit("it's"), "'it\\'s'"),
        (StringLit("ends with \\"), "'''ends with \\'''"),
        (StringLit("raw", triple=True), "'''raw'''"),
        (StringLit("has ''' inside", triple=True), "'has \\'\\'\\' inside'"),
        (Reference('say "hi"'), '"say \\"hi\\""'),
        (RegexLit("a/b", re.compile("a/b")), "/a\\/b/"),
        (UnaryOp("-", BinaryOp("+", Reference("a"), NumberInt(1))), '-("a" + 1)'),
        (BinaryOp("-", Reference("a"), BinaryOp("-", Reference("b"), Reference("c"))), '"a" - ("b" - "c")'),
        (BinaryOp("-", BinaryOp("-", Reference("a"), Reference("b")), Reference("c")), '"a" - "b" - "c"'),
        (BinaryOp("*", BinaryOp("+", Reference("a"), Reference("b")), Reference("c")), '("a" + "b") * "c"'),
        (Lambda(BinaryOp("AND", BinaryOp("OR", Reference("a"), Reference("b")), Reference("c"))),
         'lambda: ("a" OR "b") AND "c"'),
    ],
)
def test_expressions(node: object, text: str) -> None:
    assert format_expr(node) == text  # type: ignore[arg-type]


def test_source_parentheses_are_kept() -> None:
    assert format_expr(parse("var x = lambda: (\"a\" * 2) + 1").statements[0].value) == (  # type: ignore[union-attr, arg-type]
        'lambda: ("a" * 2) + 1'
    )


def test_unrepresentable_string_is_an_error() -> None:
    with pytest.raises(TickError):
        format_program(Program((VarDecl("x", StringLit("''' and \\")),)))


def test_every_node_formats_itself() -> None:
    program = parse("var x = lambda: \"a\" > 1\nstream|from()")
    assert program.format() == format_program(program)
    decl = program.statements[0]
    assert decl.format() == 'var x = lambda: "a" > 1'
    assert isinstance(decl, VarDecl) and isinstance(decl.value, Lambda)
    assert decl.value.expr.format() == '"a" > 1'
