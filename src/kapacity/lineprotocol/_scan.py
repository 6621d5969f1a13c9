"""The exact, character-by-character line parser.

It follows InfluxDB 1.x ``models/points.go`` rule by rule (escapes, quoting,
whitespace, error wording) so that a line rejected by InfluxDB is rejected here
with the same reason. It is the reference the fast path in ``_parse`` must
agree with; lines the fast path is not sure about come here.

Escaping rules (as in InfluxDB):

* measurement: ``\\,`` and ``\\ ``; tag keys, tag values, field keys: ``\\,``
  ``\\=`` ``\\ ``. Any other backslash is kept literally. While scanning a name,
  a character right after a backslash never ends the name.
* string field values: ``\\"`` and ``\\\\``; other backslashes are literal.
"""

from __future__ import annotations

import math
import operator
import re

from kapacity.lineprotocol._precision import (
    INT64_MAX,
    INT64_MIN,
    MAX_NANO_TIME,
    MIN_NANO_TIME,
    UINT64_MAX,
)
from kapacity.models import FieldValue, Point

#: Largest encoded measurement + tags + field key InfluxDB accepts.
MAX_KEY_LENGTH = 65535

_WHITESPACE = " \t\0"
_INT = re.compile(r"-?[0-9]+")
_UINT = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_STRING_ESCAPE = re.compile(r'\\([\\"])')
_ESCAPED_CHAR = operator.itemgetter(1)  # a C-level replacement: the escaped character

# Scanning with regexes keeps the loops in C. Names (measurement, tag keys and
# values) end at a special character *not preceded by a backslash* (InfluxDB's
# rule, hence the lookbehind); field keys and string values use backslash pairs.
_NAME_END = re.compile(r"(?<!\\)[, ]")
_TAG_KEY_END = re.compile(r"(?<!\\)[ ,=]")
_TAG_VALUE_END = re.compile(r"(?<!\\)[=, ]")
_FIELD_KEY = re.compile(r"(?:[^\\=, ]|\\[\s\S])*")
_STRING_BODY = re.compile(r'(?:[^"\\]|\\[\s\S])*')
_VALUE_END = re.compile("[ ,]")

BOOLEANS: dict[str, bool] = {
    "t": True,
    "T": True,
    "true": True,
    "True": True,
    "TRUE": True,
    "f": False,
    "F": False,
    "false": False,
    "False": False,
    "FALSE": False,
}


class ScanError(Exception):
    """A problem at 0-based ``pos`` of the line (internal; becomes a ``LineError``)."""

    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


def unescape_measurement(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return raw.replace("\\,", ",").replace("\\ ", " ")


def unescape_key(raw: str) -> str:
    """Unescape a tag key, tag value or field key."""
    if "\\" not in raw:
        return raw
    return raw.replace("\\,", ",").replace("\\=", "=").replace("\\ ", " ")


def unescape_string(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return _STRING_ESCAPE.sub(_ESCAPED_CHAR, raw)


def _skip_whitespace(line: str, i: int) -> int:
    n = len(line)
    while i < n and line[i] in _WHITESPACE:
        i += 1
    return i


def parse_number(raw: str, pos: int) -> FieldValue:
    """Parse an unquoted numeric field value starting at ``pos`` of the line."""
    last = raw[-1]
    if last == "i":
        digits = raw[:-1]
        if not _INT.fullmatch(digits):
            raise ScanError(pos, "invalid number")
        value = int(digits)
        if not INT64_MIN <= value <= INT64_MAX:
            raise ScanError(pos, f"unable to parse integer {digits}: value out of range")
        return value
    if last == "u":
        digits = raw[:-1]
        if not _UINT.fullmatch(digits):
            raise ScanError(pos, "invalid number")
        value = int(digits)
        if value > UINT64_MAX:
            raise ScanError(pos, f"unable to parse unsigned {digits}: value out of range")
        return value
    if not _FLOAT.fullmatch(raw):
        raise ScanError(pos, "invalid number")
    number = float(raw)
    if math.isinf(number):
        raise ScanError(pos, "invalid float")
    return number


def _scan_measurement(line: str, i: int) -> tuple[str, int, bool]:
    """Return (name, end, has_tags); ``end`` is the ``,`` or space after the name."""
    n = len(line)
    if line[i] == ",":
        raise ScanError(i, "missing measurement")
    found = _NAME_END.search(line, i + 1)
    if found is None:
        raise ScanError(n, "missing fields")
    j = found.start()
    return unescape_measurement(line[i:j]), j, line[j] == ","


def _scan_tags(line: str, pos: int) -> tuple[dict[str, str], int]:
    """Scan ``k=v,k2=v2`` from ``pos``; return sorted tags and the space after them."""
    n = len(line)
    pairs: list[tuple[str, str, int]] = []
    while True:
        k0 = pos
        if pos >= n or line[pos] in " ,=":
            raise ScanError(pos, "missing tag key")
        found = _TAG_KEY_END.search(line, pos + 1)
        if found is None:
            raise ScanError(n, "missing tag value")
        p = found.start()
        if line[p] != "=":
            raise ScanError(p, "missing tag value")
        v0 = p + 1
        if v0 >= n or line[v0] in ", ":
            raise ScanError(v0, "missing tag value")
        found = _TAG_VALUE_END.search(line, v0 + 1)
        if found is None:
            raise ScanError(n, "missing fields")
        q = found.start()
        c = line[q]
        if c == "=":
            raise ScanError(q, "invalid tag format")
        more = c == ","
        pairs.append((unescape_key(line[k0:p]), unescape_key(line[v0:q]), k0))
        if not more:
            break
        pos = q + 1
    tags: dict[str, str] = {}
    for key, value, at in sorted(pairs):
        if key in tags:
            raise ScanError(at, "duplicate tags")
        tags[key] = value
    return tags, q


def _scan_fields(line: str, pos: int) -> tuple[dict[str, FieldValue], int]:
    """Scan ``k=v,...`` from ``pos``; return the fields and the position after them."""
    n = len(line)
    fields: dict[str, FieldValue] = {}
    while True:
        k0 = pos
        p = _FIELD_KEY.match(line, pos).end()  # type: ignore[union-attr]  # always matches
        if p < n and line[p] == "\\":  # a lone backslash ending the line is part of the key
            p = n
        if p >= n or line[p] != "=":
            raise ScanError(p, "invalid field format")
        if p == k0:
            raise ScanError(p, "missing field key")
        key = unescape_key(line[k0:p])
        v0 = p + 1
        if v0 >= n or line[v0] in " ,":
            raise ScanError(v0, "missing field value")
        c = line[v0]
        value: FieldValue
        if c == '"':
            q = _STRING_BODY.match(line, v0 + 1).end()  # type: ignore[union-attr]  # always matches
            if q >= n or line[q] != '"':
                raise ScanError(v0, "unbalanced quotes")
            value = unescape_string(line[v0 + 1 : q])
            q += 1
            if q < n and line[q] not in " ,":
                raise ScanError(q, "invalid field format")
        else:
            found = _VALUE_END.search(line, v0)
            q = n if found is None else found.start()
            raw = line[v0:q]
            if c in "0123456789.-":
                value = parse_number(raw, v0)
            elif c in "nN":
                raise ScanError(v0, "invalid number")
            else:
                flag = BOOLEANS.get(raw)
                if flag is None:
                    raise ScanError(v0, "invalid boolean")
                value = flag
        fields[key] = value
        if q >= n or line[q] == " ":
            return fields, q
        pos = q + 1


def _scan_time(line: str, pos: int, multiplier: int, now_ns: int) -> int:
    n = len(line)
    pos = _skip_whitespace(line, pos)
    if pos >= n:
        return now_ns
    t0 = q = pos
    while q < n and line[q] != " ":
        c = line[q]
        if not ("0" <= c <= "9" or (c == "-" and q == t0)):
            raise ScanError(q, "bad timestamp")
        q += 1
    raw = line[t0:q]
    if raw == "-":
        raise ScanError(t0, "bad timestamp")
    stamp = int(raw)
    if not INT64_MIN <= stamp <= INT64_MAX:
        raise ScanError(t0, f"bad timestamp {raw}: value out of range")
    ns = stamp * multiplier
    if not MIN_NANO_TIME <= ns <= MAX_NANO_TIME:
        raise ScanError(t0, f"time outside range {MIN_NANO_TIME} - {MAX_NANO_TIME}")
    while q < n:
        if line[q] != " ":
            raise ScanError(q, "point is invalid: unexpected text after the timestamp")
        q += 1
    return ns


def scan_line(
    line: str, multiplier: int, now_ns: int, database: str, retention_policy: str
) -> Point | None:
    """Parse one line exactly; ``None`` for a blank or comment line.

    Raises :class:`ScanError` naming the position of the first problem.
    """
    start = _skip_whitespace(line, 0)
    if start >= len(line) or line[start] == "#":
        return None
    name, pos, has_tags = _scan_measurement(line, start)
    tags: dict[str, str] = {}
    if has_tags:
        tags, pos = _scan_tags(line, pos + 1)
    key_end = pos
    fields, pos = _scan_fields(line, _skip_whitespace(line, pos))
    if key_end - start > MAX_KEY_LENGTH:
        raise ScanError(start, f"max key length exceeded: {key_end - start} > {MAX_KEY_LENGTH}")
    ns = _scan_time(line, pos, multiplier, now_ns)
    return Point(name, tags, fields, ns, database, retention_policy)
