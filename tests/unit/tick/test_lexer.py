"""Tokens, including the context-sensitive cases (unary vs binary, star vs times, regex vs divide)."""

from __future__ import annotations

import pytest

from kapacity.tick.lexer import tokenize


def kinds(source: str) -> list[tuple[str, str]]:
    return [(t.kind, t.text) for t in tokenize(source)]


def test_chain_tokens() -> None:
    assert kinds("stream|from().measurement('cpu')@udf()") == [
        ("identifier", "stream"),
        ("|", "|"),
        ("identifier", "from"),
        ("(", "("),
        (")", ")"),
        (".", "."),
        ("identifier", "measurement"),
        ("(", "("),
        ("string", "'cpu'"),
        (")", ")"),
        ("@", "@"),
        ("identifier", "udf"),
        ("(", "("),
        (")", ")"),
        ("EOF", ""),
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("10", [("number", "10")]),
        ("1.5", [("number", "1.5")]),
        (".5", [("number", ".5")]),
        ("0755", [("number", "0755")]),
        ("10u", [("duration", "10u")]),
        ("10µ", [("duration", "10µ")]),
        ("10ms", [("duration", "10ms")]),
        ("10s", [("duration", "10s")]),
        ("5m", [("duration", "5m")]),
        ("1h", [("duration", "1h")]),
        ("1d", [("duration", "1d")]),
        ("2w", [("duration", "2w")]),
        ("'str'", [("string", "'str'")]),
        ("''", [("string", "''")]),
        ("'it\\'s'", [("string", "'it\\'s'")]),
        ("'''raw 'quoted' text'''", [("string", "'''raw 'quoted' text'''")]),
        ('"ref"', [("reference", '"ref"')]),
        ('"a\\"b"', [("reference", '"a\\"b"')]),
        ("/^a\\/b$/", [("regex", "/^a\\/b$/")]),
        ("TRUE FALSE", [("TRUE", "TRUE"), ("FALSE", "FALSE")]),
        ("AND OR", [("AND", "AND"), ("OR", "OR")]),
        ("lambda: x", [("lambda", "lambda:"), ("identifier", "x")]),
        ("lambda", [("identifier", "lambda")]),
        ("var x", [("var", "var"), ("identifier", "x")]),
        ("// only a comment\n", []),
    ],
)
def test_literal_tokens(source: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(source) == [*expected, ("EOF", "")]


def test_operators_after_a_value_are_binary() -> None:
    assert [t.kind for t in tokenize('"a" - 1 * 2 / 3 % 4 + 5')][:-1] == [
        "reference", "-", "number", "*", "number", "/", "number", "%", "number", "+", "number",
    ]
    assert [t.kind for t in tokenize("a == b != c < d <= e > f >= g =~ /x/ !~ /y/")][:-1] == [
        "identifier", "==", "identifier", "!=", "identifier", "<", "identifier", "<=",
        "identifier", ">", "identifier", ">=", "identifier", "=~", "regex", "!~", "regex",
    ]


def test_operand_position_makes_unary_star_and_regex() -> None:
    assert [t.kind for t in tokenize("groupBy(*)")] == ["identifier", "(", "star", ")", "EOF"]
    assert [t.kind for t in tokenize('"a" * -1')] == ["reference", "*", "-", "number", "EOF"]
    assert [t.kind for t in tokenize("!TRUE")] == ["!", "TRUE", "EOF"]
    # '/' after an operator opens a regex; after a value it divides
    assert [t.kind for t in tokenize('"a" == /x/')] == ["reference", "==", "regex", "EOF"]
    assert [t.kind for t in tokenize('"a" / 2')] == ["reference", "/", "number", "EOF"]
    # after AND a '-' is unary (Kapacitor would make it binary and fail)
    assert [t.kind for t in tokenize("a AND -b")] == ["identifier", "AND", "-", "identifier", "EOF"]


def test_comment_after_a_value() -> None:
    assert kinds("x // trailing\ny") == [("identifier", "x"), ("identifier", "y"), ("EOF", "")]


def test_comments_after_a_value_are_white_space_so_a_slash_below_divides() -> None:
    # Without the comments "0\n/ 2" divides; the comments must not turn the '/' into a regex
    # (found by the round-trip property: "0//\n/0/" did not re-parse once formatted).
    assert kinds("0 // one\n// two\n/ 2") == [("number", "0"), ("/", "/"), ("number", "2"), ("EOF", "")]


def test_positions_are_offsets() -> None:
    toks = tokenize("var x = 1\n  |b")
    assert [t.pos for t in toks] == [0, 4, 6, 8, 12, 13, 14]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("'open", "unterminated string"),
        ("'''open", "unterminated string"),
        ('"open', "unterminated reference"),
        ("/open", "unterminated regex"),
        ("1.2.3", "multiple decimals"),
        ("#", "unexpected character '#'"),
    ],
)
def test_lex_errors_end_the_stream(source: str, message: str) -> None:
    last = tokenize(source)[-1]
    assert last.kind == "ERROR"
    assert message in last.text
