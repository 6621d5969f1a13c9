"""Property-based tests: generated programs round-trip through the formatter;
arbitrary input never raises anything but TickError / LambdaError."""

from __future__ import annotations

import os
import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapacity.tick import (
    DBRP,
    BinaryOp,
    BoolLit,
    Call,
    Chain,
    DurationLit,
    Expr,
    Identifier,
    Lambda,
    LambdaError,
    ListLit,
    NumberFloat,
    NumberInt,
    Program,
    Reference,
    RegexLit,
    Star,
    Statement,
    StringLit,
    TickError,
    UnaryOp,
    VarDecl,
    compile_lambda,
    format_program,
    parse,
)
from kapacity.tick.ast import BINARY_OPERATORS, VAR_TYPES
from kapacity.tick.functions import BUILTINS
from kapacity.tick.parser import NANOS

SETTINGS = settings(max_examples=int(os.environ.get("TICK_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYWORDS = {"AND", "OR", "TRUE", "FALSE", "var", "dbrp", "lambda"}

names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,8}", fullmatch=True).filter(lambda n: n not in KEYWORDS)
text = st.text(max_size=12)
single_quotable = text.filter(lambda s: not s.endswith("\\"))
reference_names = st.text(max_size=10).filter(lambda s: not s.endswith("\\"))
regexes = st.sampled_from(["a", "^cpu.*$", "x/y", "[0-9]+", "a|b", "\\d+", "(?i)host", "^$"])

leaves: st.SearchStrategy[Expr] = st.one_of(
    st.builds(NumberInt, st.integers(0, 2**63 - 1), octal=st.booleans()),
    st.builds(NumberFloat, st.floats(min_value=0, allow_nan=False, allow_infinity=False)),
    st.builds(
        DurationLit,
        st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(NANOS.values()))).map(lambda t: t[0] * t[1]),
    ),
    st.builds(StringLit, single_quotable, triple=st.booleans()),
    st.builds(StringLit, text.filter(lambda s: "'''" not in s and not s.endswith("'")), triple=st.just(True)),
    st.builds(BoolLit, st.booleans()),
    st.builds(Reference, st.one_of(st.sampled_from(["a", "b", "x", "host", "time"]), reference_names)),
    st.builds(Identifier, names),
    st.builds(lambda p: RegexLit(p, re.compile(p)), regexes),
)


def _compound(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.builds(BinaryOp, st.sampled_from(sorted(BINARY_OPERATORS)), children, children, parens=st.booleans()),
        st.builds(UnaryOp, st.sampled_from(["-", "!"]), children),
        st.builds(Call, st.one_of(st.sampled_from(sorted(BUILTINS)), names), st.lists(children, max_size=3).map(tuple)),
    )


lambda_exprs = st.recursive(leaves, _compound, max_leaves=12)

arguments = st.one_of(
    lambda_exprs,
    st.builds(Lambda, lambda_exprs),
    st.builds(
        ListLit,
        st.lists(st.one_of(st.builds(StringLit, single_quotable), st.builds(Identifier, names), st.just(Star())), max_size=3).map(tuple),
    ),
    st.just(Star()),
)


@st.composite
def chains(draw: st.DrawFn) -> Expr:
    expr: Expr = Identifier(draw(st.sampled_from(["stream", "batch", "data"])))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["|", ".", "@"]))
        name = draw(names)
        if op != "|" and draw(st.booleans()):
            call = Call(name, (), parens=False)
        else:
            call = Call(name, tuple(draw(st.lists(arguments, max_size=3))))
        expr = Chain(expr, op, call)
    return expr


@st.composite
def programs(draw: st.DrawFn) -> Program:
    statements: list[Statement] = []
    declared = draw(st.lists(names, unique=True, max_size=4))
    for name in declared:
        kind = draw(st.sampled_from(["value", "lambda", "typed", "chain"]))
        if kind == "typed":
            statements.append(VarDecl(name, None, draw(st.sampled_from(VAR_TYPES))))
        elif kind == "lambda":
            statements.append(VarDecl(name, Lambda(draw(lambda_exprs))))
        elif kind == "chain":
            statements.append(VarDecl(name, draw(chains())))
        else:
            statements.append(VarDecl(name, draw(arguments)))
        if draw(st.booleans()):
            statements.append(DBRP(draw(reference_names), draw(reference_names)))
    statements.extend(draw(st.lists(chains(), max_size=3)))
    order = draw(st.permutations(range(len(statements))))
    return Program(tuple(statements[i] for i in order))


@SETTINGS
@given(programs())
def test_generated_programs_round_trip(program: Program) -> None:
    text = format_program(program)
    assert parse(text) == program
    assert format_program(parse(text)) == text


@SETTINGS
@given(lambda_exprs, st.dictionaries(st.sampled_from(["a", "b", "x", "host"]), st.one_of(
    st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=3), st.booleans()), max_size=4))
def test_compiling_and_evaluating_raise_only_tick_errors(expr: Expr, fields: dict[str, object]) -> None:
    try:
        compiled = compile_lambda(expr, {"warn": 1, "name": "x"})
    except TickError:
        return
    try:
        compiled.fn(fields, {"host": "h"}, 1_700_000_000_000_000_000)
    except LambdaError:
        pass


TICK_ALPHABET = string.ascii_letters[:8] + string.digits + " \n\t|.@()[],'\"/*-+!=<>%~:_#µ\\"
TICK_WORDS = [
    "stream", "|from()", ".measurement('cpu')", "|alert()", ".crit(", "lambda:", '"usage_idle"', "<", "10",
    ")", "(", "var", "x", "=", "dbrp", '"db"', ".", "AND", "OR", "TRUE", "-", "!", "/re/", "'s'", "'''",
    "5m", "1.5", "*", "[", "]", ",", "//c\n", "\n", "@udf()", "0755", "08",
]


@SETTINGS
@given(st.one_of(
    st.text(alphabet=TICK_ALPHABET, max_size=60),
    st.lists(st.sampled_from(TICK_WORDS), max_size=25).map(" ".join),
    st.text(max_size=40),
))
def test_garbage_raises_only_tick_error(source: str) -> None:
    try:
        program = parse(source)
    except TickError as err:
        assert err.line >= 1 and err.col >= 1
        return
    # Whatever parses also survives formatting, and its lambdas compile or fail cleanly.
    assert parse(format_program(program)) == program
    stack: list[object] = list(program.statements)
    while stack:
        node = stack.pop()
        if isinstance(node, Lambda):
            try:
                compile_lambda(node)
            except TickError:
                pass
        elif isinstance(node, VarDecl) and node.value is not None:
            stack.append(node.value)
        elif isinstance(node, Chain):
            stack.extend((node.left, *node.call.args))
