"""Parsing: the seed scripts, every literal kind, precedence, declarations."""

from __future__ import annotations

import re

import pytest

from kapacity.tick import (
    DBRP,
    BinaryOp,
    BoolLit,
    Call,
    Chain,
    DurationLit,
    Identifier,
    Lambda,
    ListLit,
    NumberFloat,
    NumberInt,
    Program,
    Reference,
    RegexLit,
    Star,
    StringLit,
    TickError,
    UnaryOp,
    VarDecl,
    parse,
    parse_lambda,
)

KAFKA_CPU_ALERT = """\
stream
  |from()
    .measurement('cpu')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('Hey, check your CPU')
    .kafka()
      .kafkaTopic('cpu-alerts')
"""

CPU_ALERT = """\
stream
  |from()
    .measurement('cpu')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('Hey, check your CPU')
    .topic('cpu')
"""

DOCS_KAFKA_OPTIONS = """\
stream
  |from()
    .measurement('cpu')
  |alert()
  // ...
  .kafka()
    .cluster('kafka-cluster')
    .kafkaTopic('kafka-topic-name')
    .template('kafka-template-name')
    .disablePartitionById(FALSE)
    .partitionAlgorithm('crc32')
"""


def unchain(expr: object) -> list[tuple[str, str, tuple[object, ...]]]:
    """Flatten a chain into (op, name, args) steps from the source outwards."""
    steps: list[tuple[str, str, tuple[object, ...]]] = []
    while isinstance(expr, Chain):
        steps.append((expr.op, expr.call.name, expr.call.args))
        expr = expr.left
    assert expr == Identifier("stream")
    return steps[::-1]


def test_seed_kafka_cpu_alert() -> None:
    program = parse(KAFKA_CPU_ALERT)
    assert len(program.statements) == 1
    crit = Lambda(BinaryOp("<", Reference("usage_idle"), NumberInt(10)))
    assert unchain(program.statements[0]) == [
        ("|", "from", ()),
        (".", "measurement", (StringLit("cpu"),)),
        ("|", "alert", ()),
        (".", "crit", (crit,)),
        (".", "message", (StringLit("Hey, check your CPU"),)),
        (".", "kafka", ()),
        (".", "kafkaTopic", (StringLit("cpu-alerts"),)),
    ]


def test_seed_cpu_alert() -> None:
    steps = unchain(parse(CPU_ALERT).statements[0])
    assert steps[-1] == (".", "topic", (StringLit("cpu"),))
    assert [name for _, name, _ in steps] == ["from", "measurement", "alert", "crit", "message", "topic"]


def test_docs_handler_options_parse() -> None:
    steps = unchain(parse(DOCS_KAFKA_OPTIONS).statements[0])
    assert (".", "disablePartitionById", (BoolLit(False),)) in steps
    assert steps[-1] == (".", "partitionAlgorithm", (StringLit("crc32"),))


def test_positions() -> None:
    chain = parse(KAFKA_CPU_ALERT).statements[0]
    assert isinstance(chain, Chain)
    assert (chain.line, chain.col) == (8, 7)  # the '.' before kafkaTopic
    assert (chain.call.line, chain.call.col) == (8, 8)
    crit = parse(CPU_ALERT).statements[0]
    while isinstance(crit, Chain) and crit.call.name != "crit":
        crit = crit.left
    assert isinstance(crit, Chain)
    lam = crit.call.args[0]
    assert isinstance(lam, Lambda)
    assert (lam.line, lam.col) == (5, 11)
    assert isinstance(lam.expr, BinaryOp)
    assert (lam.expr.line, lam.expr.col) == (5, 32)  # the operator
    assert (lam.expr.left.line, lam.expr.left.col) == (5, 19)


def only(source: str) -> object:
    program = parse(source)
    assert len(program.statements) == 1
    stmt = program.statements[0]
    assert isinstance(stmt, VarDecl)
    return stmt.value


@pytest.mark.parametrize(
    ("literal", "node"),
    [
        ("10", NumberInt(10)),
        ("0", NumberInt(0)),
        ("0755", NumberInt(0o755)),
        ("1.5", NumberFloat(1.5)),
        (".5", NumberFloat(0.5)),
        ("10.", NumberFloat(10.0)),
        ("9223372036854775807", NumberInt(2**63 - 1)),
        ("10u", DurationLit(10_000)),
        ("10µ", DurationLit(10_000)),
        ("10ms", DurationLit(10_000_000)),
        ("10s", DurationLit(10_000_000_000)),
        ("5m", DurationLit(300_000_000_000)),
        ("2h", DurationLit(7_200_000_000_000)),
        ("1d", DurationLit(86_400_000_000_000)),
        ("1w", DurationLit(604_800_000_000_000)),
        ("'str'", StringLit("str")),
        ("''", StringLit("")),
        ("'it\\'s'", StringLit("it's")),
        ("'back\\slash'", StringLit("back\\slash")),
        ("'''raw 'it' \\n'''", StringLit("raw 'it' \\n")),
        ("'multi\nline'", StringLit("multi\nline")),
        ('"ref"', Reference("ref")),
        ('"say \\"hi\\""', Reference('say "hi"')),
        ("TRUE", BoolLit(True)),
        ("FALSE", BoolLit(False)),
        ("['a', 'b', ident, *]", ListLit((StringLit("a"), StringLit("b"), Identifier("ident"), Star()))),
        ("[]", ListLit(())),
        ("other", Identifier("other")),
        ("lambda: TRUE", Lambda(BoolLit(True))),
        ("-1", UnaryOp("-", NumberInt(1))),
        ("!FALSE", UnaryOp("!", BoolLit(False))),
    ],
)
def test_literals(literal: str, node: object) -> None:
    assert only(f"var x = {literal}") == node


def test_regex_literal() -> None:
    value = only("var r = /^cpu\\/[0-9]+$/")
    assert isinstance(value, RegexLit)
    assert value.pattern == "^cpu/[0-9]+$"
    assert value.compiled.search("cpu/12")
    assert not value.compiled.search("cpu/x")


def test_regex_posix_class_and_go_end_anchor() -> None:
    value = only("var r = /^[[:digit:]]+\\z/")
    assert isinstance(value, RegexLit)
    assert value.compiled.search("123")
    assert not value.compiled.search("12a")


def test_star_argument_and_property_without_parens() -> None:
    program = parse("stream|from().groupBy(*)|alert().noRecoveries")
    chain = program.statements[0]
    assert isinstance(chain, Chain)
    assert chain.call == Call("noRecoveries", (), parens=False)
    group_by = chain.left.left  # type: ignore[union-attr]
    assert isinstance(group_by, Chain)
    assert group_by.call == Call("groupBy", (Star(),))


def test_udf_chain() -> None:
    chain = parse("stream|from()@myUDF().field('x')").statements[0]
    assert isinstance(chain, Chain) and isinstance(chain.left, Chain)
    assert chain.left.op == "@"
    assert chain.left.call.name == "myUDF"


def test_declarations_and_dbrp() -> None:
    program = parse(
        """
        // template task
        dbrp "telegraf"."autogen"
        var measurement string
        var crit lambda
        var window = 5m
        var data = stream|from().measurement(measurement)
        data|alert().crit(crit)
        """
    )
    assert program.statements[:4] == (
        DBRP("telegraf", "autogen"),
        VarDecl("measurement", None, "string"),
        VarDecl("crit", None, "lambda"),
        VarDecl("window", DurationLit(300_000_000_000)),
    )
    data = program.statements[4]
    assert isinstance(data, VarDecl) and isinstance(data.value, Chain)
    last = program.statements[5]
    assert isinstance(last, Chain)
    assert last.call == Call("crit", (Identifier("crit"),))
    assert last.left == Chain(Identifier("data"), "|", Call("alert"))


def test_empty_program() -> None:
    assert parse("") == Program(())
    assert parse("  // nothing\n\n") == Program(())


def test_function_args_are_expressions() -> None:
    chain = parse("stream|eval(lambda: \"a\" * 2, lambda: 1).as('x', 'y')|join(a, b)").statements[0]
    assert isinstance(chain, Chain)
    assert chain.call == Call("join", (Identifier("a"), Identifier("b")))


# --- precedence ---------------------------------------------------------------------

B = BinaryOp
a, b, c = Reference("a"), Reference("b"), Reference("c")


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ('"a" OR "b" AND "c"', B("OR", a, B("AND", b, c))),
        ('"a" AND "b" OR "c"', B("OR", B("AND", a, b), c)),
        ('"a" AND "b" == "c"', B("AND", a, B("==", b, c))),
        ('"a" == "b" < "c"', B("==", a, B("<", b, c))),
        ('"a" =~ /x/ AND "b"', B("AND", B("=~", a, RegexLit("x", re.compile("x"))), b)),
        ('"a" < "b" + "c"', B("<", a, B("+", b, c))),
        ('"a" + "b" * "c"', B("+", a, B("*", b, c))),
        ('"a" * "b" + "c"', B("+", B("*", a, b), c)),
        ('"a" - "b" - "c"', B("-", B("-", a, b), c)),
        ('"a" / "b" % "c"', B("%", B("/", a, b), c)),
        ('"a" - ("b" - "c")', B("-", a, B("-", b, c))),
        ('("a" OR "b") AND "c"', B("AND", B("OR", a, b), c)),
        ('-"a" * "b"', B("*", UnaryOp("-", a), b)),
        ('!"a" AND "b"', B("AND", UnaryOp("!", a), b)),
        ('"a" != "b" OR "a" !~ /y/', B("OR", B("!=", a, b), B("!~", a, RegexLit("y", re.compile("y"))))),
        ('"a" <= 1 AND "b" >= 2.5', B("AND", B("<=", a, NumberInt(1)), B(">=", b, NumberFloat(2.5)))),
        ('abs("a" - 1) > 2', B(">", Call("abs", (B("-", a, NumberInt(1)),)), NumberInt(2))),
        ('"a" * "b" + "c" * "a" > "b" OR "c"', B("OR", B(">", B("+", B("*", a, b), B("*", c, a)), b), c)),
    ],
)
def test_precedence(source: str, tree: object) -> None:
    assert parse_lambda(source) == tree
    assert only(f"var x = lambda: {source}") == Lambda(tree)  # type: ignore[arg-type]


def test_parenthesised_binary_keeps_a_hint_but_compares_equal() -> None:
    with_parens = parse_lambda('("a" + 1)')
    assert isinstance(with_parens, BinaryOp) and with_parens.parens
    assert with_parens == parse_lambda('"a" + 1')


def test_vars_are_immutable() -> None:
    with pytest.raises(TickError) as info:
        parse("var x = 1\nvar y = 2\n  var x = 3")
    assert (info.value.line, info.value.col) == (3, 3)
    assert "redefine x" in str(info.value) and "immutable" in str(info.value)


def test_global_function_statement_with_concatenation() -> None:
    program = parse("f('first ' + string(5m) + 'third')")
    assert program.statements == (
        Call(
            "f",
            (
                BinaryOp(
                    "+",
                    BinaryOp("+", StringLit("first "), Call("string", (DurationLit(300_000_000_000),))),
                    StringLit("third"),
                ),
            ),
        ),
    )


def test_negative_octal_and_raw_escape() -> None:
    assert only("var x = -0600") == UnaryOp("-", NumberInt(384))
    assert parse("f('''\\'asdf''')").statements[0] == Call("f", (StringLit("\\'asdf"),))


def test_vars_used_in_later_expressions() -> None:
    program = parse("var x = 5\nvar y = x * 2")
    assert program.statements[1] == VarDecl("y", BinaryOp("*", Identifier("x"), NumberInt(2)))
