"""Go fmt verbs, flags and error annotations (the outputs of Go's fmt.Sprintf)."""

from __future__ import annotations

from typing import Any

import pytest

from kapacity.gotmpl import format_value, sprint, sprintf, sprintln
from kapacity.gotypes import Duration, Level, Time

SPRINTF_CASES: list[tuple[str, tuple[Any, ...], str]] = [
    ("%d", (42,), "42"),
    ("%5d|%-5d|", (7, 7), "    7|7    |"),
    ("%05d", (-42,), "-0042"),
    ("%+d % d", (5, 5), "+5  5"),
    ("%.3d", (7,), "007"),
    ("%x %#x %X %#X", (255, 255, 255, 255), "ff 0xff FF 0XFF"),
    ("%x", (-255,), "-ff"),
    ("%o %#o %O %b", (8, 8, 8, 5), "10 010 0o10 101"),
    ("%c %q %U %#U", (65, 65, 0x1F600, 65), "A 'A' U+1F600 U+0041 'A'"),
    ("%f", (3.14159,), "3.141590"),
    ("%.2f", (3.14159,), "3.14"),
    ("%8.3f|%-8.3f|%08.3f", (3.14159, 3.14159, -3.14159), "   3.142|3.142   |-003.142"),
    ("%.0f %.1f", (2.5, 0.25), "2 0.2"),
    ("%e %E", (1234.5678, 1234.5678), "1.234568e+03 1.234568E+03"),
    ("%.3e", (1e6,), "1.000e+06"),
    ("%g %g %g %G", (100000.0, 1e6, 1e-7, 1e-7), "100000 1e+06 1e-07 1E-07"),
    ("%.3g", (1234.5678,), "1.23e+03"),
    ("%v %v %v %v", (10.0, 1e21, 0.00001, 123456.7), "10 1e+21 1e-05 123456.7"),
    ("%v", (-0.0,), "-0"),
    ("%.2v", (3.14159,), "3.1"),
    ("%+.1e", (0.0,), "+0.0e+00"),
    ("%f %v %08.3f", (float("inf"), float("-inf"), float("nan")), "+Inf -Inf      NaN"),
    ("%s|%10s|%-10s|%.2s", ("go", "go", "go", "hello"), "go|        go|go        |he"),
    ("%q %+q %#q", ("hi\n", "é", "hi"), '"hi\\n" "\\u00e9" `hi`'),
    ("%x % x %#x % #x", ("hi", "hi", "hi", "hi"), "6869 68 69 0x6869 0x68 0x69"),
    ("%t %5t", (True, False), "true false"),
    ("%v %v", (None, [1, "a", None]), "<nil> [1 a <nil>]"),
    ("%v", ({"b": 2, "a": [1]},), "map[a:[1] b:2]"),
    ("%d", ([1, 2],), "[1 2]"),
    ("%s", ([1],), "[%!s(int=1)]"),
    ("%v %d %s", (Level.CRITICAL, Level.CRITICAL, Level.OK), "CRITICAL 3 OK"),
    ("%v %d", (Duration(90_000_000_000), Duration(1500)), "1m30s 1500"),
    ("%v", (Time(0),), "1970-01-01 00:00:00 +0000 UTC"),
    ("%T %T %T %T %T", (1, "x", 1.5, None, [1]), "int string float64 <nil> []interface {}"),
    ("%x %.2x %.0x %X %b", (3.0, 0.1, 1.5, -0.1, 1.0), "0x1.8p+01 0x1.9ap-04 0x1p+01 -0X1.999999999999AP-04 4503599627370496p-52"),
    ("%[2]d %[1]d", (1, 2), "2 1"),
    ("%[2]d", (1,), "%!d(BADINDEX)"),
    ("%*d|%-*d|", (5, 1, 5, 2), "    1|2    |"),
    ("%6.2f%%", (99.5,), " 99.50%"),
    # Go's annotations for mistakes.
    ("%d", ("foo",), "%!d(string=foo)"),
    ("%s", (5,), "%!s(int=5)"),
    ("%f", (5,), "%!f(int=5)"),
    ("%d", (1.5,), "%!d(float64=1.5)"),
    ("%s", (None,), "%!s(<nil>)"),
    ("%z", (True,), "%!z(bool=true)"),
    ("%d %d", (1,), "1 %!d(MISSING)"),
    ("%d", (1, 2, "x"), "1%!(EXTRA int=2, string=x)"),
    ("%!", (), "%!!(MISSING)"),
    ("100%", (), "100%!(NOVERB)"),
    ("%*d", ("x", 1), "%!(BADWIDTH)1"),
    ("%[3]d", (1,), "%!d(BADINDEX)"),
]


@pytest.mark.parametrize(("fmt", "args", "expected"), SPRINTF_CASES)
def test_sprintf_matches_go(fmt: str, args: tuple[Any, ...], expected: str) -> None:
    assert sprintf(fmt, *args) == expected


def test_sprint_spaces_only_between_non_strings() -> None:
    assert sprint("a", 1, 2, "b", 3.0) == "a1 2b3"
    assert sprint(1, 2) == "1 2"
    assert sprint() == ""


def test_sprintln_always_spaces_and_newline() -> None:
    assert sprintln("a", 1, "b") == "a 1 b\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "1"),
        (1.0, "1"),
        (2.5e-5, "2.5e-05"),
        (1234567.0, "1.234567e+06"),
        (999999.0, "999999"),
        (True, "true"),
        (None, "<nil>"),
        ("s", "s"),
        ([], "[]"),
        ({}, "map[]"),
        (Level.WARNING, "WARNING"),
        (Duration(0), "0s"),
        (Duration(1_500_000), "1.5ms"),
        (Time(1_700_000_000_123_000_000), "2023-11-14 22:13:20.123 +0000 UTC"),
    ],
)
def test_format_value(value: Any, expected: str) -> None:
    assert format_value(value) == expected
