"""The alert data every handler receives, and its Kapacitor JSON body.

Field order and shapes follow Kapacitor's ``alert.Data`` (see
shared/reference/kapacitor-compat.md §2); handlers must not reorder them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from kapacity.alert.gojson import encode, go_string
from kapacity import gotypes as _gt
from kapacity._native import load as _load_native
from kapacity.gotypes import Duration, Level, Time


@dataclass(slots=True)
class Series:
    """One row set of a result: Kapacitor's ``models.Row``.

    ``values`` rows hold plain Python values; the ``time`` column holds a :class:`Time`.
    """

    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    values: list[list[Any]] = field(default_factory=list)

    # Capitalised accessors: templates say ``.Name``, ``.Tags``, ``.Columns``, ``.Values``.
    @property
    def Name(self) -> str:  # noqa: N802
        return self.name

    @property
    def Tags(self) -> dict[str, str]:  # noqa: N802
        return self.tags

    @property
    def Columns(self) -> list[str]:  # noqa: N802
        return self.columns

    @property
    def Values(self) -> list[list[Any]]:  # noqa: N802
        return self.values

    def to_json(self) -> str:
        parts = []
        if self.name:
            parts.append('"name":' + go_string(self.name))
        if self.tags:
            parts.append('"tags":' + encode(self.tags))
        if self.columns:
            parts.append('"columns":' + encode(self.columns))
        if self.values:
            parts.append('"values":' + encode(self.values))
        return "{" + ",".join(parts) + "}"


@dataclass(slots=True)
class Result:
    """Kapacitor's ``models.Result``: the data that triggered an alert."""

    series: list[Series] = field(default_factory=list)

    @property
    def Series(self) -> list[Series]:  # noqa: N802
        return self.series

    def to_json(self) -> str:
        # Go encodes a nil slice as null; Kapacitor's alerts always carry a non-nil one.
        return '{"series":[' + ",".join(s.to_json() for s in self.series) + "]}"


@dataclass(slots=True)
class AlertData:
    """What an alert handler is given: Kapacitor's ``alert.Data``."""

    id: str
    message: str
    details: str
    time: Time
    duration: Duration
    level: Level
    data: Result
    previous_level: Level = Level.OK
    recoverable: bool = True

    # Template field names, as in Kapacitor's Go struct.
    @property
    def ID(self) -> str:  # noqa: N802
        return self.id

    @property
    def Message(self) -> str:  # noqa: N802
        return self.message

    @property
    def Details(self) -> str:  # noqa: N802
        return self.details

    @property
    def Time(self) -> _gt.Time:  # noqa: N802
        return self.time

    @property
    def Duration(self) -> _gt.Duration:  # noqa: N802
        return self.duration

    @property
    def Level(self) -> _gt.Level:  # noqa: N802
        return self.level

    @property
    def Data(self) -> Result:  # noqa: N802
        return self.data

    @property
    def PreviousLevel(self) -> _gt.Level:  # noqa: N802
        return self.previous_level

    @property
    def Recoverable(self) -> bool:  # noqa: N802
        return self.recoverable


def encode_alert_json_py(alert: AlertData) -> bytes:
    """The Kafka message value Kapacitor writes when no template is set: one JSON line + ``\\n``.

    Byte-identical to Go's ``encoding/json``. This is the pure-Python implementation: the
    orjson path for the common case, the exact encoder for values whose Go spelling orjson
    does not share. :data:`encode_alert_json` is the C twin when it is built (same bytes).
    """
    fast = _encode_alert_json_fast(alert)
    return fast if fast is not None else encode_alert_json_exact(alert)


# Go escapes ``<``, ``>``, ``&``, U+2028 and U+2029 inside strings; in JSON text they can only
# occur inside strings, so replacing them in the whole document is the same as escaping every
# string. Membership tests use ints (a C memchr): ``b"<" in body`` is ~10x slower.
_LT, _GT, _AMP = 0x3C, 0x3E, 0x26
_HTML_BYTES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
               ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))

_NS: Final = _gt.NANOS_PER_SECOND
_SORT_KEYS: Final = orjson.OPT_SORT_KEYS

#: ``"YYYY-MM-DDTHH:MM:SS"`` per Unix second: alerts of one burst share their second.
#: Bounded: cleared when full (a cache miss costs one strftime).
_SECONDS: dict[int, str] = {}
_SECONDS_MAX: Final = 4096


def _rfc3339nano(ns: int) -> str:
    """``Time(ns).rfc3339nano()`` without the method and lru_cache call overheads."""
    secs, frac = divmod(ns, _NS)
    base = _SECONDS.get(secs)
    if base is None:
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        base = _SECONDS[secs] = _gt.Time(secs * _NS).rfc3339nano()[:-1]
    if frac:
        # str(frac + 1e9)[1:] is frac zero-padded to 9 digits, faster than f"{frac:09d}".
        return f"{base}.{str(frac + _NS)[1:].rstrip('0')}Z"
    return base + "Z"


def _encode_alert_json_fast(alert: AlertData) -> bytes | None:
    """orjson encoding of ``alert``, or None when a value's Go spelling differs from orjson's.

    Every value is passed to orjson only in a form it prints like Go: whole floats as ints
    (Go prints ``10`` for ``10.0``), times as RFC3339Nano strings. Floats orjson would print
    in exponent form where Go does not (below 1e-5), whole floats beyond 1e16 and -0.0 take
    the exact path. Level names come from the member's ``_name_`` (``.name`` is a slow
    descriptor). This is the handlers' hot path: keep it flat.
    """
    time_ns = alert.time.ns
    time_text = _rfc3339nano(time_ns)
    time_type = _gt.Time
    series = []
    for s in alert.data.series:
        row: dict[str, Any] = {}
        if s.name:
            row["name"] = s.name
        tags = s.tags
        if tags:
            # Go sorts map keys by their UTF-8 bytes, which is code point order, as orjson's.
            try:
                row["tags"] = orjson.Fragment(orjson.dumps(tags, option=_SORT_KEYS))
            except TypeError:  # orjson.JSONEncodeError too: lone surrogates, non-str keys
                return None
        if s.columns:
            row["columns"] = s.columns
        if s.values:
            rows = []
            for r in s.values:
                out: list[Any] = []
                append = out.append
                for v in r:
                    t = type(v)
                    if t is float:
                        if v.is_integer():
                            # int() is exact below 2**53 (and 1e16); Go prints no ".0".
                            if v >= 1e16 or v <= -1e16 or (v == 0 and math.copysign(1.0, v) < 0):
                                return None
                            append(int(v))
                        elif -1e-5 < v < 1e-5:
                            return None  # orjson switches to exponent form below 1e-5, Go below 1e-6
                        else:
                            append(v)  # NaN and infinities: null, like the exact encoder
                    elif t is time_type:
                        ns = v.ns
                        append(time_text if ns == time_ns else _rfc3339nano(ns))
                    elif t is str or t is int or t is bool or v is None:
                        append(v)
                    else:
                        return None
                rows.append(out)
            row["values"] = rows
        series.append(row)
    try:
        body = orjson.dumps(
            {
                "id": alert.id,
                "message": alert.message,
                "details": alert.details,
                "time": time_text,
                "duration": alert.duration.ns,
                "level": alert.level._name_,
                "data": {"series": series},
                "previousLevel": alert.previous_level._name_,
                "recoverable": alert.recoverable,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
    except (TypeError, orjson.JSONEncodeError):  # e.g. lone surrogates, huge ints
        return None
    if _LT in body or _GT in body or _AMP in body or not body.isascii():
        for raw, escaped in _HTML_BYTES:
            if raw in body:
                body = body.replace(raw, escaped)
    return body


def encode_alert_json_exact(alert: AlertData) -> bytes:
    """The pure-Python reference encoding of :func:`encode_alert_json`."""
    text = (
        '{"id":' + go_string(alert.id)
        + ',"message":' + go_string(alert.message)
        + ',"details":' + go_string(alert.details)
        + ',"time":"' + alert.time.rfc3339nano() + '"'
        + ',"duration":' + str(alert.duration.ns)
        + ',"level":"' + alert.level.name + '"'
        + ',"data":' + alert.data.to_json()
        + ',"previousLevel":"' + alert.previous_level.name + '"'
        + ',"recoverable":' + ("true" if alert.recoverable else "false")
        + "}\n"
    )
    return text.encode("utf-8")


def _bind_native() -> tuple[Callable[[AlertData], bytes | None], Callable[[AlertData], bytes]] | None:
    """The C module's ``encode`` and ``render``, bound; None when not built or ``KAPACITY_NO_NATIVE=1``."""
    module = _load_native("alertjson")
    if module is None:
        return None
    module.bind(_gt.Time, _gt.Level, encode_alert_json_py)
    return module.encode, module.render


_native = _bind_native()

#: ``encode(alert) -> bytes | None`` of the C module (None: the Python path decides), or None.
_native_encode = _native[0] if _native is not None else None

#: ``encode_alert_json(alert) -> bytes``: Kapacitor's JSON body of an alert (see
#: :func:`encode_alert_json_py`). The C module's ``render`` when built (no Python frame on the
#: hot path: every handler renders every alert; it falls back to the Python encoder for what
#: it declines), else :func:`encode_alert_json_py` itself.
encode_alert_json: Callable[[AlertData], bytes] = _native[1] if _native is not None else encode_alert_json_py
