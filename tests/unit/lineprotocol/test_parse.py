"""Line protocol parsing: the InfluxDB rules, errors that name the line, both paths agree."""

from __future__ import annotations

import pytest

from kapacity.lineprotocol import LineError, PrecisionError, parse_lines
from kapacity.lineprotocol._parse import _fast
from kapacity.lineprotocol._scan import ScanError, scan_line
from kapacity.models import Point

NOW = 1_700_000_000_123_456_789


def one(line: str | bytes, **kwargs: object) -> Point:
    result = parse_lines(line, now_ns=NOW, **kwargs)  # type: ignore[arg-type]
    assert result.errors == [], result.error_text()
    assert len(result.points) == 1
    return result.points[0]


def error(line: str) -> LineError:
    result = parse_lines(line, now_ns=NOW)
    assert result.points == []
    assert len(result.errors) == 1
    return result.errors[0]


def test_typical_line() -> None:
    p = one(b"cpu,host=server01,region=us-west usage_idle=12.5,usage_user=80i 1700000000000000000")
    assert p == Point(
        "cpu",
        {"host": "server01", "region": "us-west"},
        {"usage_idle": 12.5, "usage_user": 80},
        1_700_000_000_000_000_000,
    )
    assert isinstance(p.fields["usage_user"], int)
    assert isinstance(p.fields["usage_idle"], float)


def test_database_and_retention_policy_are_stamped() -> None:
    p = one("cpu v=1 1", database="telegraf", retention_policy="autogen")
    assert (p.database, p.retention_policy) == ("telegraf", "autogen")


def test_tags_are_sorted() -> None:
    p = one("cpu,zone=c,host=a,region=b v=1 1")
    assert list(p.tags) == ["host", "region", "zone"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("-1.5", -1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1.5E-3", 0.0015),
        ("-2e+2", -200.0),
        ("12i", 12),
        ("-9223372036854775808i", -(2**63)),
        ("9223372036854775807i", 2**63 - 1),
        ("18446744073709551615u", 2**64 - 1),
        ("0u", 0),
        ("t", True),
        ("T", True),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("f", False),
        ("F", False),
        ("false", False),
        ("False", False),
        ("FALSE", False),
        ('"hello"', "hello"),
        ('""', ""),
        ('"a \\"quoted\\" \\\\ back\\slash"', 'a "quoted" \\ back\\slash'),
        ('"comma, space and = sign"', "comma, space and = sign"),
    ],
)
def test_field_values(text: str, value: object) -> None:
    p = one(f"m v={text} 1")
    assert p.fields["v"] == value
    assert type(p.fields["v"]) is type(value)


def test_escapes_in_names() -> None:
    p = one(r"my\ cpu\,x,ho\ st=a\,b\=c f\ k\=\,=1i 1")
    assert p.name == "my cpu,x"
    assert p.tags == {"ho st": "a,b=c"}
    assert p.fields == {"f k=,": 1}


def test_other_backslashes_are_literal() -> None:
    p = one(r"c\pu,t=a\b v=1 1")
    assert p.name == r"c\pu"
    assert p.tags == {"t": r"a\b"}


def test_equals_sign_in_measurement_is_literal() -> None:
    assert one("a=b v=1 1").name == "a=b"


def test_missing_timestamp_uses_now_unrounded() -> None:
    assert one("cpu v=1", precision="s").time == NOW
    assert one("cpu v=1 ").time == NOW


@pytest.mark.parametrize(
    ("precision", "expected"),
    [
        ("n", 7),
        ("", 7),
        ("u", 7_000),
        ("ms", 7_000_000),
        ("s", 7_000_000_000),
        ("m", 420_000_000_000),
        ("h", 25_200_000_000_000),
    ],
)
def test_precision_multiplies_timestamps(precision: str, expected: int) -> None:
    assert one("cpu v=1 7", precision=precision).time == expected


def test_invalid_precision_names_valid_choices() -> None:
    with pytest.raises(ValueError, match="valid precisions are n, u, ms, s, m, h") as info:
        parse_lines("cpu v=1", now_ns=0, precision="d")
    assert isinstance(info.value, PrecisionError)


def test_negative_timestamp() -> None:
    assert one("cpu v=1 -5").time == -5


def test_comments_blank_lines_and_crlf() -> None:
    body = "# comment\r\n\r\n   \ncpu v=1 1\r\n  # indented comment\nmem v=2 2\r\n"
    result = parse_lines(body, now_ns=0)
    assert result.errors == []
    assert [(p.name, p.time) for p in result.points] == [("cpu", 1), ("mem", 2)]


def test_duplicate_fields_last_wins() -> None:
    assert one("cpu v=1,w=2,v=3 1").fields == {"v": 3.0, "w": 2.0}


def test_extra_spaces_between_sections() -> None:
    p = one("cpu,t=a  v=1   5  ")
    assert (p.tags, p.fields, p.time) == ({"t": "a"}, {"v": 1.0}, 5)


def test_string_field_may_span_lines() -> None:
    result = parse_lines('log msg="first\nsecond",n=1i 3\ncpu v=1 4', now_ns=0)
    assert result.errors == []
    assert result.points[0].fields == {"msg": "first\nsecond", "n": 1}
    assert result.points[1].name == "cpu"


def test_unicode_names_and_values() -> None:
    p = one('température,ville=Zürich valeur=21.5,note="très chaud" 1')
    assert p.name == "température"
    assert p.tags == {"ville": "Zürich"}
    assert p.fields == {"valeur": 21.5, "note": "très chaud"}


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ("cpu", 4, "missing fields"),
        (",t=a v=1", 1, "missing measurement"),
        ("cpu,t=a", 8, "missing fields"),
        ("cpu, v=1", 5, "missing tag key"),
        ("cpu,t v=1", 6, "missing tag value"),
        ("cpu,t= v=1", 7, "missing tag value"),
        ("cpu,t=a=b v=1", 8, "invalid tag format"),
        ("cpu,t=a,t=b v=1", 9, "duplicate tags"),
        ("cpu value=", 11, "missing field value"),
        ("cpu value=,x=1", 11, "missing field value"),
        ("cpu =1", 5, "missing field key"),
        ("cpu a=1,=2", 9, "missing field key"),
        ("cpu a", 6, "invalid field format"),
        ("cpu a=1,b", 10, "invalid field format"),
        ("cpu a=1,", 9, "invalid field format"),
        ('cpu a="x', 7, "unbalanced quotes"),
        ('cpu a="x"y', 10, "invalid field format"),
        ("cpu a=1.2.3", 7, "invalid number"),
        ("cpu a=1x", 7, "invalid number"),
        ("cpu a=-", 7, "invalid number"),
        ("cpu a=1.5i", 7, "invalid number"),
        ("cpu a=1e3i", 7, "invalid number"),
        ("cpu a=-1u", 7, "invalid number"),
        ("cpu a=1_000", 7, "invalid number"),
        ("cpu a=NaN", 7, "invalid number"),
        ("cpu a=inf", 7, "invalid boolean"),
        ("cpu a=+1", 7, "invalid boolean"),
        ("cpu a=yes", 7, "invalid boolean"),
        ("cpu a=tru", 7, "invalid boolean"),
        ("cpu a=1e999", 7, "invalid float"),
        ("cpu a=9223372036854775808i", 7, "unable to parse integer 9223372036854775808"),
        ("cpu a=18446744073709551616u", 7, "unable to parse unsigned 18446744073709551616"),
        ("cpu a=1 12a", 11, "bad timestamp"),
        ("cpu a=1 1.5", 10, "bad timestamp"),
        ("cpu a=1 -", 9, "bad timestamp"),
        ("cpu a=1 99999999999999999999", 9, "value out of range"),
        ("cpu a=1 9223372036854775807", 9, "time outside range"),
        ("cpu a=1 1 2", 11, "point is invalid"),
    ],
)
def test_errors_name_line_column_and_problem(line: str, column: int, message: str) -> None:
    err = error(line)
    assert (err.line, err.column) == (1, column)
    assert message in err.message
    assert err.text == line
    assert str(err) == f"line 1:{column}: unable to parse '{line}': {err.message}"


def test_timestamp_overflowing_after_precision() -> None:
    result = parse_lines("cpu v=1 9999999999999", precision="h", now_ns=0)
    assert "time outside range" in result.errors[0].message


def test_good_lines_survive_bad_ones_and_errors_name_line_numbers() -> None:
    body = b"cpu v=1 1\n\ncpu value=\ncpu v=2 2\nbad\n"
    result = parse_lines(body, now_ns=0)
    assert [p.fields["v"] for p in result.points] == [1.0, 2.0]
    assert [e.line for e in result.errors] == [3, 5]
    assert not result.ok
    assert result.error_text() == (
        "line 3:11: unable to parse 'cpu value=': missing field value\n"
        "line 5:4: unable to parse 'bad': missing fields"
    )


def test_line_numbers_count_physical_lines_after_a_multiline_string() -> None:
    result = parse_lines('a s="x\ny\nz" 1\nbad', now_ns=0)
    assert [e.line for e in result.errors] == [4]


def test_long_lines_are_truncated_in_errors() -> None:
    line = "cpu " + "x" * 1000
    err = error(line)
    assert err.text.endswith("…")
    assert len(err.text) == 201


def test_invalid_utf8_line_is_an_error_and_others_parse() -> None:
    result = parse_lines(b"cpu v=1 1\nmem,h=\xff v=1 2\ndisk v=3 3", now_ns=0)
    assert [p.name for p in result.points] == ["cpu", "disk"]
    assert [(e.line, e.message) for e in result.errors] == [(2, "invalid UTF-8")]


def test_str_body_is_accepted() -> None:
    assert one("cpu v=1 1").name == "cpu"


@pytest.mark.parametrize(
    "line",
    [
        "cpu,host=a,region=b usage_idle=12.5,usage_user=80i 1700000000000000000",
        "cpu v=1",
        "cpu,b=2,a=1 x=t,y=FALSE,z=3u,w=-0.5e-3 5",
        "cpu v=1e+5 5",
    ],
)
def test_fast_and_exact_paths_agree_on_plain_lines(line: str) -> None:
    fast = _fast(line, 1, NOW, "db", "rp")
    assert fast is not None
    assert fast == scan_line(line, 1, NOW, "db", "rp")


@pytest.mark.parametrize(
    "line",
    ["cpu a=1_0 1", "cpu a=+1 1", "cpu a=inf 1", "cpu a=nan 1", "cpu a=1 1_0", "cpu a=٣ 1"],
)
def test_fast_path_defers_what_python_accepts_but_line_protocol_does_not(line: str) -> None:
    assert _fast(line, 1, 0, "", "") is None
    with pytest.raises(ScanError):
        scan_line(line, 1, 0, "", "")


def test_quote_in_a_tag_does_not_join_lines() -> None:
    result = parse_lines('cpu,t="x v=1 1\nmem v=2 2', now_ns=0)
    assert [(p.name, p.tags) for p in result.points] == [("cpu", {"t": '"x'}), ("mem", {})]


def test_backslash_before_newline_joins_lines_like_influxdb() -> None:
    result = parse_lines("cpu,t=a\\\nb v=1 1\nmem v=2 2", now_ns=0)
    assert result.errors == []
    assert [(p.name, p.tags) for p in result.points] == [("cpu", {"t": "a\\\nb"}), ("mem", {})]


@pytest.mark.parametrize(
    ("value", "problem"),
    [("+1", "invalid"), ("1_0", "invalid"), ("1e400", "out of range"), ("nan", "invalid"),
     ("inf", "invalid"), ("-inf", "invalid"), ("9" * 310, "out of range")],
)
def test_whole_body_fast_path_refuses_what_only_python_accepts(value: str, problem: str) -> None:
    body = f"cpu,host=a ok=1 1\ncpu,host=a v={value} 2\ncpu,host=b ok=2 3\n"
    result = parse_lines(body, now_ns=0)
    assert [p.fields for p in result.points] == [{"ok": 1.0}, {"ok": 2.0}]
    [err] = result.errors
    assert err.line == 2


def test_a_series_whose_field_types_change_keeps_each_lines_types() -> None:
    body = "m,h=a v=1 1\nm,h=a v=2i 2\nm,h=a v=3 3\nm,h=a v=t 4\nm,h=a v=4u 5\n"
    points = parse_lines(body, now_ns=0).points
    assert [(p.fields["v"], type(p.fields["v"])) for p in points] == [
        (1.0, float), (2, int), (3.0, float), (True, bool), (4, int)]


def test_empty_field_key_or_value_is_an_error_on_the_body_path() -> None:
    result = parse_lines("cpu =1 1\ncpu v= 2\ncpu v=1,=2 3\ncpu v=1 4", now_ns=0)
    assert [p.time for p in result.points] == [4]
    assert [e.line for e in result.errors] == [1, 2, 3]
