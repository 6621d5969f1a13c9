"""Property tests: format → parse round-trips, garbage never raises, paths agree."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kapacity.lineprotocol import format_point, parse_lines
from kapacity.lineprotocol._parse import _fast
from kapacity.lineprotocol._scan import ScanError, scan_line
from kapacity.models import FieldValue, Point

# Names line protocol can carry: no newline, no backslash (a backslash before a
# special character cannot be written, see ``_format``), not starting with the
# whitespace or ``#`` a line may start with.
_NAME_CHARS = st.characters(
    blacklist_categories=("Cs",), blacklist_characters="\n\r\\"
)
_name = st.text(_NAME_CHARS, min_size=1, max_size=12).filter(
    lambda s: s[0] not in " \t\0#" and s.strip(" ") != ""
)
_tag_name = st.text(_NAME_CHARS, min_size=1, max_size=12)
# InfluxDB skips tabs and NULs before the field section, so a field key cannot start with one.
_field_name = _tag_name.filter(lambda s: s[0] not in "\t\0")
_field_value: st.SearchStrategy[FieldValue] = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)
_points = st.builds(
    Point,
    name=_name,
    tags=st.dictionaries(_tag_name, _tag_name, max_size=4),
    fields=st.dictionaries(_field_name, _field_value, min_size=1, max_size=4),
    time=st.integers(min_value=-(2**63) + 2, max_value=2**63 - 2),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_points, min_size=1, max_size=5))
def test_format_then_parse_round_trips(points: list[Point]) -> None:
    body = "\n".join(format_point(p) for p in points)
    result = parse_lines(body.encode(), now_ns=0)
    assert result.errors == [], (body, result.error_text())
    assert len(result.points) == len(points)
    for got, want in zip(result.points, points, strict=True):
        assert got.name == want.name
        assert got.tags == dict(sorted(want.tags.items()))
        assert list(got.tags) == sorted(want.tags)
        assert got.time == want.time
        assert got.fields.keys() == want.fields.keys()
        for key, value in want.fields.items():
            assert type(got.fields[key]) is type(value)
            assert got.fields[key] == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_bytes_never_raise(body: bytes) -> None:
    result = parse_lines(body, now_ns=0)
    assert all(e.line >= 1 and e.column >= 1 for e in result.errors)


# Text built from the characters line protocol cares about, so the parser's
# corners are hit far more often than by arbitrary text.
_LP_ALPHABET = 'cpu,= "\\\t\n\r#01-.eE+iutfTF_xé'


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from(_LP_ALPHABET), max_size=60))
def test_line_protocol_shaped_garbage_never_raises(body: str) -> None:
    result = parse_lines(body, now_ns=0, precision="ms")
    lines = body.count("\n") + 1
    assert all(1 <= e.line <= lines for e in result.errors)


@settings(max_examples=1000, deadline=None)
@given(st.text(st.sampled_from('cpu,= 01-.eE+iutfTF_é#'), min_size=1, max_size=40))
def test_fast_path_never_disagrees_with_the_exact_scanner(line: str) -> None:
    fast = _fast(line, 1, 42, "db", "rp")
    if fast is None:
        return
    try:
        exact = scan_line(line, 1, 42, "db", "rp")
    except ScanError as err:
        raise AssertionError(f"fast path accepted {line!r}; exact says {err.message}") from None
    assert fast == exact
    assert {k: type(v) for k, v in fast.fields.items()} == {
        k: type(v) for k, v in exact.fields.items()  # type: ignore[union-attr]
    }
