"""``parse_lines``: a fast path for plain lines, the exact scanner for the rest.

Most writes are machine-made lines such as
``cpu,host=a,region=b usage_idle=12.5,usage_user=80i 1700000000000000000``: no
escapes, no quotes, one space between sections. For those, ``str.split`` does
the work in C. The fast path never reports an error: whenever a line is not
exactly what it expects (or a value does not parse), it answers ``None`` and the
exact scanner in ``_scan`` decides, so both paths accept the same lines with the
same points (a property test holds them to it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kapacity.lineprotocol._lines import logical_lines
from kapacity.lineprotocol._precision import (
    INT64_MAX,
    INT64_MIN,
    MAX_NANO_TIME,
    UINT64_MAX,
    precision_multiplier,
)
from kapacity.lineprotocol._scan import BOOLEANS, MAX_KEY_LENGTH, ScanError, scan_line
from kapacity.models import FieldValue, Point

#: Error texts quote at most this many characters of the offending line.
MAX_QUOTED_CHARS = 200

#: Series keys (``name,tags``) parsed once per body and reused: writes repeat a
#: few series many times. Bounded; the cache is emptied when full.
MAX_CACHED_KEYS = 4096

# Characters that force the exact scanner: escapes, quotes, the whitespace InfluxDB
# skips between sections (tab, NUL) that ``str.split(" ")`` would keep, and the
# ASCII whitespace Python's ``int``/``float`` would silently strip from a value.
_NOT_PLAIN = re.compile('[\\\\"\t\0\r\x0b\x0c\x1c-\x1f]')


@dataclass(frozen=True, slots=True)
class LineError:
    """One rejected line: ``line`` and ``column`` are 1-based, ``text`` is truncated."""

    line: int
    column: int
    text: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}:{self.column}: unable to parse '{self.text}': {self.message}"


@dataclass(slots=True)
class ParseResult:
    """The points of the valid lines and one error per invalid line, in body order."""

    points: list[Point] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_text(self) -> str:
        """All errors, one per line: the plain-text body of a 400 answer."""
        return "\n".join(str(e) for e in self.errors)


def _fast(
    line: str, multiplier: int, now_ns: int, database: str, retention_policy: str
) -> Point | None:
    """Parse a plain line (see ``_NOT_PLAIN``), or answer ``None`` when unsure.

    Python's ``int``/``float`` accept more than line protocol does (``_``
    separators, a ``+`` sign, ``inf``/``nan``, non-ASCII digits), so each value
    they accept is checked for those before it is trusted.
    """
    try:
        return _fast_unchecked(line, multiplier, now_ns, database, retention_policy, {})
    except ValueError:
        return None


def _fast_key(key: str) -> tuple[str, dict[str, str]] | None:
    """Split ``name,k=v,...`` into the name and sorted tags, or ``None`` when unsure."""
    if len(key) > MAX_KEY_LENGTH:
        return None
    tags: dict[str, str] = {}
    if "," in key:
        name, *tag_texts = key.split(",")
        previous = ""
        in_order = True
        for text in tag_texts:
            tk, _, tv = text.partition("=")
            if not tk or not tv or "=" in tv:
                return None
            if tk <= previous:
                in_order = False
            previous = tk
            tags[tk] = tv
        if len(tags) != len(tag_texts):
            return None
        if not in_order:
            tags = dict(sorted(tags.items()))
    else:
        name = key
    if not name or name[0] == "#":
        return None
    return name, tags


def _fast_unchecked(
    line: str,
    multiplier: int,
    now_ns: int,
    database: str,
    retention_policy: str,
    keys: dict[str, tuple[str, dict[str, str]]],
) -> Point | None:
    ascii_line = line.isascii()
    parts = line.split(" ")
    count = len(parts)
    if count == 2:
        key, field_text = parts
        ns = now_ns
    elif count == 3:
        key, field_text, stamp = parts
        if not stamp.isdigit() or not (ascii_line or stamp.isascii()):
            return None
        ns = int(stamp) * multiplier
        if ns > MAX_NANO_TIME:
            return None
    else:
        return None
    cached = keys.get(key)
    if cached is not None:
        name, tags = cached
        tags = tags.copy()
    else:
        parsed = _fast_key(key)
        if parsed is None:
            return None
        if len(keys) >= MAX_CACHED_KEYS:
            keys.clear()
        keys[key] = parsed
        name, tags = parsed
        tags = tags.copy()
    fields: dict[str, FieldValue] = {}
    for text in field_text.split(","):
        fk, _, fv = text.partition("=")
        if not fk or not fv:
            return None
        if not ascii_line and not fv.isascii():
            return None
        last = fv[-1]
        value: FieldValue
        if last <= "9":
            value = float(fv)
            if value - value != 0 or fv[0] == "+" or "_" in fv:
                return None  # inf / nan, or a spelling only Python accepts
        elif last == "i":
            value = int(fv[:-1])
            if not INT64_MIN <= value <= INT64_MAX or fv[0] == "+" or "_" in fv:
                return None
        elif last == "u":
            value = int(fv[:-1])
            if not 0 <= value <= UINT64_MAX or fv[0] in "+-" or "_" in fv:
                return None
        else:
            flag = BOOLEANS.get(fv)
            if flag is None:
                return None
            value = flag
        fields[fk] = value
    return Point(name, tags, fields, ns, database, retention_policy)


def _decode(body: bytes | str) -> tuple[str, set[int]]:
    """Decode UTF-8; return the text and the 1-based numbers of undecodable lines."""
    if isinstance(body, str):
        return body, set()
    try:
        return body.decode("utf-8"), set()
    except UnicodeDecodeError:
        pass
    bad: set[int] = set()
    lines = body.split(b"\n")
    for number, raw in enumerate(lines, 1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.add(number)
    return body.decode("utf-8", errors="replace"), bad


def _quote(line: str) -> str:
    if len(line) <= MAX_QUOTED_CHARS:
        return line
    return line[:MAX_QUOTED_CHARS] + "…"


def parse_lines(
    body: bytes | str,
    *,
    precision: str = "n",
    now_ns: int,
    database: str = "",
    retention_policy: str = "",
) -> ParseResult:
    """Parse a line-protocol body; bad lines become errors, good ones still points.

    ``now_ns`` stamps lines without a timestamp (it is not rounded to the
    precision). Raises :class:`ValueError` (a ``PrecisionError``) for an unknown
    ``precision``; never raises for bad lines.

    >>> r = parse_lines(b"cpu,host=a value=1 1700000000", precision="s", now_ns=0)
    >>> r.points[0].time, r.points[0].fields
    (1700000000000000000, {'value': 1.0})
    """
    multiplier = precision_multiplier(precision)
    text, undecodable = _decode(body)
    result = ParseResult()
    points = result.points
    keys: dict[str, tuple[str, dict[str, str]]] = {}
    plain = _NOT_PLAIN.search(text) is None
    crlf = "\r" in text
    numbered = (
        enumerate(text.split("\n"), 1)
        if '"' not in text and "\\" not in text
        else logical_lines(text)
    )
    for lineno, line in numbered:
        if crlf and line[-1:] == "\r":
            line = line[:-1]
        if not line or line[0] == "#":
            continue
        if lineno in undecodable:
            result.errors.append(LineError(lineno, 1, _quote(line), "invalid UTF-8"))
            continue
        if plain or _NOT_PLAIN.search(line) is None:
            try:
                point = _fast_unchecked(
                    line, multiplier, now_ns, database, retention_policy, keys
                )
            except ValueError:
                point = None
            if point is not None:
                points.append(point)
                continue
        try:
            exact = scan_line(line, multiplier, now_ns, database, retention_policy)
        except ScanError as err:
            result.errors.append(LineError(lineno, err.pos + 1, _quote(line), err.message))
            continue
        if exact is not None:
            points.append(exact)
    return result
