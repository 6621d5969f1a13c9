"""The alert data every handler receives, and its Kapacitor JSON body.

Field order and shapes follow Kapacitor's ``alert.Data`` (see
shared/reference/kapacitor-compat.md §2); handlers must not reorder them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from kapacity.alert.gojson import encode, go_string
from kapacity import gotypes as _gt
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


def encode_alert_json(alert: AlertData) -> bytes:
    """The Kafka message value Kapacitor writes when no template is set: one JSON line + ``\\n``.

    Byte-identical to Go's ``encoding/json``. The common case goes through orjson (C);
    values whose Go spelling orjson does not share take the exact pure-Python path.
    """
    fast = _encode_alert_json_fast(alert)
    return fast if fast is not None else encode_alert_json_exact(alert)


# Go escapes these inside strings; in JSON text they can only occur inside strings, so
# replacing them in the whole document is the same as escaping every string.
_HTML_BYTES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
               ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))
_NOT_SAFE = object()


def _go_safe(v: Any) -> Any:
    """``v`` as a value orjson prints exactly like Go, or ``_NOT_SAFE``."""
    t = type(v)
    if t is float:
        if v.is_integer():
            # Go prints whole floats without ".0"; int() is exact below 2**53 (and 1e16).
            if abs(v) >= 1e16 or (v == 0 and math.copysign(1.0, v) < 0):
                return _NOT_SAFE
            return int(v)
        # orjson switches to exponent form below 1e-5, Go only below 1e-6.
        return v if not abs(v) < 1e-5 else _NOT_SAFE
    if t is _gt.Time:
        return v.rfc3339nano()
    if t is str or t is int or t is bool or v is None:
        return v
    return _NOT_SAFE


def _encode_alert_json_fast(alert: AlertData) -> bytes | None:
    series = []
    for s in alert.data.series:
        row: dict[str, Any] = {}
        if s.name:
            row["name"] = s.name
        if s.tags:
            tags = s.tags
            row["tags"] = {k: tags[k] for k in sorted(tags)}
        if s.columns:
            row["columns"] = s.columns
        if s.values:
            values = []
            for r in s.values:
                out = [_go_safe(v) for v in r]
                if _NOT_SAFE in out:
                    return None
                values.append(out)
            row["values"] = values
        series.append(row)
    doc = {
        "id": alert.id,
        "message": alert.message,
        "details": alert.details,
        "time": alert.time.rfc3339nano(),
        "duration": alert.duration.ns,
        "level": alert.level.name,
        "data": {"series": series},
        "previousLevel": alert.previous_level.name,
        "recoverable": alert.recoverable,
    }
    try:
        body = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
    except (TypeError, orjson.JSONEncodeError):  # e.g. lone surrogates, huge ints
        return None
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
