"""Broken scripts: every error is a TickError naming line:col and what was expected."""

from __future__ import annotations

import pytest

from kapacity.errors import KapacityError
from kapacity.tick import TickError, parse


@pytest.mark.parametrize(
    ("source", "line", "col", "message"),
    [
        ("stream|from(", 1, 13, "unexpected end of script, expected an argument or ')' to close from("),
        ("stream|from())", 1, 14, "unexpected ')', expected a statement"),
        ('stream\n  |from()\n    .where(lambda: "a" > )', 3, 26, "unexpected ')', expected a value"),
        ("stream|.measurement('x')", 1, 8, "unexpected '.', expected a node name after '|'"),
        ("stream|from().", 1, 15, "unexpected end of script, expected a property name after '.'"),
        ("var = 5", 1, 5, "unexpected '=', expected a variable name after 'var'"),
        ("var x", 1, 6, "expected '=' or a var type (int, float, bool, string, regex, duration, lambda"),
        ("var x strin", 1, 7, "unexpected identifier strin, expected '=' or a var type"),
        ("var x = ", 1, 9, "unexpected end of script, expected a value"),
        ('dbrp "db"', 1, 10, "expected a '.' between database and retention policy"),
        ('dbrp "db".rp', 1, 11, "unexpected identifier rp, expected a retention policy name in double quotes"),
        ("dbrp db.rp", 1, 6, "expected a database name in double quotes"),
        ("stream|from().measurement('cpu)", 1, 27, "unterminated string"),
        ('stream|from().where("cpu)', 1, 21, "unterminated reference"),
        ('stream|from().where(lambda: "host" =~ /[a/)', 1, 39, "invalid regex /[a/: error parsing regexp"),
        ("var x = 08", 1, 9, "illegal number syntax: '08' (a leading 0 means octal)"),
        ("var x = 99999999999999999999", 1, 9, "out of int64 range"),
        ("var x = [1, 2]", 1, 10, "unexpected number 1, expected a list item (string, identifier or *)"),
        ("var x = ['a' 'b']", 1, 14, "unexpected string 'b', expected ',' or ']' in a list"),
        ('stream|alert().crit(lambda: ("a" > 1)', 1, 38, "expected ',' or ')' in the arguments of crit()"),
        ("stream|from() #", 1, 15, "unexpected character '#'"),
        ("var x = 1.2.3", 1, 9, "multiple decimals in number"),
        ('stream|from().where(lambda: "a" > 1 "b")', 1, 37, 'unexpected reference "b"'),
        ("stream|from()\n\n   .where(lambda: AND)", 3, 19, "unexpected 'AND', expected a value"),
        ("var x = 1 +", 1, 12, "unexpected end of script, expected a value"),
        ('stream|from()\n.where(lambda: "a" = 1)', 2, 20, "unexpected '='"),
        ("var a = 1\nvar a = 2", 2, 1, "attempted to redefine a (declared at line 1 char 1), vars are immutable"),
        ("(" * 3000, 1, None, "nested too deeply"),
    ],
)
def test_error_position_and_message(source: str, line: int, col: int | None, message: str) -> None:
    with pytest.raises(TickError) as info:
        parse(source)
    err = info.value
    assert isinstance(err, KapacityError)
    assert message in err.message
    assert err.line == line
    if col is not None:
        assert err.col == col
        assert str(err).startswith(f"line {line} char {col}: ")


def test_lexing_error_after_a_parse_error_is_not_reported_first() -> None:
    # The ')' problem comes before the unterminated string; it is the one reported.
    with pytest.raises(TickError) as info:
        parse("stream|from())\nvar x = 'open")
    assert (info.value.line, info.value.col) == (1, 14)


def test_column_counts_characters_not_bytes() -> None:
    with pytest.raises(TickError) as info:
        parse("var µ = 'é' +")
    assert (info.value.line, info.value.col) == (1, 14)
