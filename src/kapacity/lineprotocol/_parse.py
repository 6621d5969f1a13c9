"""``parse_lines``: a fast path for plain lines, the exact scanner for the rest.

Most writes are machine-made lines such as
``cpu,host=a,region=b usage_idle=12.5,usage_user=80i 1700000000000000000``: no
escapes, no quotes, one space between sections. For those, ``str.split`` does
the work in C. The fast path never reports an error: whenever a line is not
exactly what it expects (or a value does not parse), it answers ``None`` and the
exact scanner in ``_scan`` decides, so both paths accept the same lines with the
same points (a property test holds them to it).

``kapacity._native.lineproto`` (optional, C) is the twin of ``_fast_lines`` over a whole
plain body: the same gate, the same series-key cache, the same "unsure, ask the exact
scanner" rule, 3-5x faster (``bench/lineprotocol.py``). ``_LINEPROTO`` is ``None`` when it is not built or
``KAPACITY_NO_NATIVE=1``; tests set it to ``None`` to run the pure twin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import ModuleType

from kapacity._native import load
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

#: Series keys (``name,tags``) parsed once and reused across bodies: writes repeat the
#: same series over and over. Bounded (about 400 bytes an entry): emptied when full, so
#: it must exceed the number of live series to help — 2**18 covers the 100,000 series of
#: the ingest benchmark with room to spare.
MAX_CACHED_KEYS = 2**18

#: The shared series-key cache: ``name,k=v,...`` → (name, sorted tags). Entries are
#: immutable in use (every point gets its own copy of the tags); dict operations are
#: atomic under the GIL, so concurrent parses of different bodies may share it.
_KEYS: dict[str, tuple[str, dict[str, str]]] = {}
#: Series keys whose last line had a field that is not a float (``1i``, ``2u``, ``t``...):
#: their fields go straight to the typed loop. Emptied with ``_KEYS``.
_TYPED: set[str] = set()

#: Spellings Python's ``float`` accepts and line protocol refuses: a ``+`` sign (after the
#: ``=``) and ``_`` between digits. A body without ``=+`` and ``_<digit>`` — the usual
#: case; false alarms only cost speed — gets its float fields parsed by ``float`` plus a
#: finiteness check. (A regex for digits-underscore-digit costs 20x more than this
#: literal-led one on a 5,000-line body: the check must stay cheaper than what it saves.)
_UNDERSCORE_DIGIT = re.compile(r"_[0-9]")

# Characters that force the exact scanner: escapes, quotes, the whitespace InfluxDB
# skips between sections (tab, NUL) that ``str.split(" ")`` would keep, and the
# ASCII whitespace Python's ``int``/``float`` would silently strip from a value.
_NOT_PLAIN = re.compile('[\\\\"\t\0\r\x0b\x0c\x1c-\x1f]')

#: The C twin of the fast path, or ``None`` (see the module docs).
_LINEPROTO: ModuleType | None = load("lineproto")


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
    """Parse one plain line (see ``_NOT_PLAIN``) with the fast path, or ``None`` when unsure."""
    if not line.isascii() or _NOT_PLAIN.search(line) is not None:
        return None
    points: list[Point | None] = []
    _fast_lines([line], multiplier, now_ns, database, retention_policy, points, _risky(line))
    return points[0] if points else None


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


class _Unsure(Exception):
    """The fast path leaves this line to the exact scanner."""


def _risky(text: str) -> bool:
    return "=+" in text or _UNDERSCORE_DIGIT.search(text) is not None


def _typed_fields(field_text: str) -> dict[str, FieldValue]:
    """Fields of any type, each value checked; raises ``_Unsure`` (or ``ValueError``).

    Python's ``int``/``float`` accept more than line protocol does (``_`` separators, a
    ``+`` sign, ``inf``/``nan``), so each value they accept is checked for those.
    """
    fields: dict[str, FieldValue] = {}
    for text in field_text.split(","):
        fk, _, fv = text.partition("=")
        if not fk or not fv:
            raise _Unsure
        last = fv[-1]
        if last <= "9":
            number = float(fv)
            if number - number != 0 or "_" in fv or fv[0] == "+":
                raise _Unsure  # inf / nan, or a spelling only Python accepts
            value: FieldValue = number
        elif last == "i":
            value = int(fv[:-1])
            if not INT64_MIN <= value <= INT64_MAX or fv[0] == "+" or "_" in fv:
                raise _Unsure
        elif last == "u":
            value = int(fv[:-1])
            if not 0 <= value <= UINT64_MAX or fv[0] in "+-" or "_" in fv:
                raise _Unsure
        else:
            flag = BOOLEANS.get(fv)
            if flag is None:
                raise _Unsure
            value = flag
        fields[fk] = value
    return fields


def _fast_lines(
    lines: list[str],
    multiplier: int,
    now_ns: int,
    database: str,
    retention_policy: str,
    out: list[Point | None],
    risky: bool,
) -> list[int]:
    """Parse plain ASCII lines (no ``_NOT_PLAIN`` character) into ``out``, in order.

    Empty lines and comments are skipped. A line the fast path is unsure of gets a
    ``None`` in ``out``; the returned list holds, per such line, its index in ``lines``
    (the caller hands it to the exact scanner and puts the result in its place). The
    loop is one function on purpose: per line, a Python call costs as much as a field.
    ``risky``: the lines may hold numbers only the typed loop's checks reject.
    """
    keys = _KEYS
    typed = _TYPED
    append = out.append
    unsure: list[int] = []
    index = -1
    for line in lines:
        index += 1
        if not line or line[0] == "#":
            continue
        try:
            parts = line.split(" ")
            count = len(parts)
            if count == 3:
                key, field_text, stamp = parts
                if not stamp.isdigit():
                    raise _Unsure
                ns = int(stamp) * multiplier
                if ns > MAX_NANO_TIME:
                    raise _Unsure
            elif count == 2:
                key, field_text = parts
                ns = now_ns
            else:
                raise _Unsure
            cached = keys.get(key)
            if cached is None:
                cached = _fast_key(key)
                if cached is None:
                    raise _Unsure
                if len(keys) >= MAX_CACHED_KEYS:
                    keys.clear()
                    typed.clear()
                keys[key] = cached
            if risky or key in typed:
                fields = _typed_fields(field_text)
            else:
                # Floats only, the common case: ``float`` and a finiteness check. ``risky``
                # ruled out the digit-ending spellings it would wrongly accept; ``inf``,
                # ``nan``, ``1i``, ``t`` do not end with a digit. Anything else: typed loop.
                fields = {}
                try:
                    for text in field_text.split(","):
                        fk, _, fv = text.partition("=")
                        if fv[-1] > "9":
                            raise ValueError(fv)
                        number = float(fv)
                        if number - number:  # inf (1e999) or nan: not line protocol
                            raise ValueError(fv)
                        fields[fk] = number
                except (ValueError, IndexError):
                    if len(typed) >= MAX_CACHED_KEYS:
                        typed.clear()
                    typed.add(key)
                    fields = _typed_fields(field_text)
                if "" in fields:
                    raise _Unsure
            append(Point(cached[0], cached[1].copy(), fields, ns, database, retention_policy))
        except (_Unsure, ValueError):
            unsure.append(index)
            append(None)
    return unsure


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
    if _LINEPROTO is not None:
        native = _native(body, multiplier, now_ns, database, retention_policy)
        if native is not None:
            return native
    text, undecodable = _decode(body)
    result = ParseResult()
    if (
        not undecodable and "\r" not in text and text.isascii()
        and _NOT_PLAIN.search(text) is None
    ):
        # The common body: machine-made lines, all for the fast path in one loop.
        lines = text.split("\n")
        found: list[Point | None] = []
        unsure = _fast_lines(
            lines, multiplier, now_ns, database, retention_policy, found, _risky(text)
        )
        if not unsure:
            result.points = found  # type: ignore[assignment]  # no None without unsure lines
            return result
        return _settle(result, found, unsure, lines, multiplier, now_ns, database, retention_policy)
    points = result.points
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
        if (plain or _NOT_PLAIN.search(line) is None) and line.isascii():
            one: list[Point | None] = []
            _fast_lines([line], multiplier, now_ns, database, retention_policy, one, _risky(line))
            if one and one[0] is not None:
                points.append(one[0])
                continue
        _exact(result, lineno, line, multiplier, now_ns, database, retention_policy)
    return result


def _native(
    body: bytes | str, multiplier: int, now_ns: int, database: str, retention_policy: str
) -> ParseResult | None:
    """A plain body through the C fast path; ``None`` for a body it does not take."""
    assert _LINEPROTO is not None
    if isinstance(body, str):
        if not body.isascii():
            return None
        body = body.encode("ascii")
    answer = _LINEPROTO.fast_body(
        body, multiplier, now_ns, database, retention_policy, Point, _KEYS, _TYPED,
        MAX_CACHED_KEYS, MAX_KEY_LENGTH,
    )
    if answer is None:
        return None
    found, unsure = answer
    result = ParseResult()
    if not unsure:
        result.points = found
        return result
    lines = body.decode("ascii").split("\n")
    return _settle(result, found, unsure, lines, multiplier, now_ns, database, retention_policy)


def _exact(
    result: ParseResult, lineno: int, line: str, multiplier: int, now_ns: int,
    database: str, retention_policy: str,
) -> None:
    """The exact scanner on one line: its point or its error into ``result``."""
    try:
        exact = scan_line(line, multiplier, now_ns, database, retention_policy)
    except ScanError as err:
        result.errors.append(LineError(lineno, err.pos + 1, _quote(line), err.message))
        return
    if exact is not None:
        result.points.append(exact)


def _settle(
    result: ParseResult, found: list[Point | None], unsure: list[int], lines: list[str],
    multiplier: int, now_ns: int, database: str, retention_policy: str,
) -> ParseResult:
    """Merge the fast path's points with the exact scanner's verdict on its unsure lines,
    in body order (``found`` has a ``None`` per unsure line, in the same order)."""
    pending = iter(unsure)
    for point in found:
        if point is not None:
            result.points.append(point)
            continue
        index = next(pending)
        _exact(result, index + 1, lines[index], multiplier, now_ns, database, retention_policy)
    return result
