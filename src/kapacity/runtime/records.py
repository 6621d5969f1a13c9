"""The work items of the queue-based runtime, as compact JSON values (pure, no I/O).

========================  =========================  =========================================
kind                      key                        value
========================  =========================  =========================================
``points``                series key                 ``{"m","t","f","ts","db","rp"}``
                          (``cpu,host=a``)           — the same series always lands on the
                                                     same partition (Kafka keys by hash)
``events``                alert ID                   ``{"eid","task","node","topic","pub",
                                                     "h","name","tags","a"}``
``alert_state``           ``task/node/group``        ``{"g": GroupState, "l": {id: level}}``
``tasks``                 task id                    ``{"id","script","vars","dbrps",
                                                     "enabled"}`` (tombstone = delete)
``handlers``              ``topic/handler id``       a :class:`HandlerSpec` dict (tombstone)
``topic_state``           ``topic/alert id``         an :class:`EventState` dict
========================  =========================  =========================================

The event id (``eid``) is ``<points partition>:<points offset>:<task>:<n>``: processing is
deterministic, so a point processed again after a crash yields the same event ids, and an
at-least-once receiver can de-duplicate on it. The regroup stage's ids start with ``r``; a
clock tick's (deadman) with ``t``, its wall-clock time in place of the offset.

>>> from kapacity.models import Point
>>> series_key(Point("cpu", {"host": "a b", "dc": "x"}, {"v": 1.0}, 5))
'cpu,dc=x,host=a\\\\ b'
>>> point_from_value(point_value(Point("cpu", {"h": "a"}, {"v": 1}, 5))).fields
{'v': 1}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kapacity.alert.config import AlertEvent
from kapacity.alert.event import AlertData, Result, Series
from kapacity.alert.handlerspec import HandlerSpec
from kapacity.errors import KapacityError
from kapacity.gotypes import Duration, Level, Time
from kapacity.models import Point

__all__ = [
    "EVENT_ID_HEADER",
    "EventRecord",
    "RecordError",
    "TaskDefinition",
    "alert_from_value",
    "alert_value",
    "event_id",
    "event_id_base",
    "event_record",
    "handler_key",
    "point_from_value",
    "point_value",
    "series_key",
    "split_state_key",
    "state_key",
]

#: The Kafka header carrying the event id on messages of Kafka handlers.
EVENT_ID_HEADER: Final = "kapacity-event-id"

_ESCAPES: Final = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})


class RecordError(KapacityError, ValueError):
    """A queue record whose value does not have the documented shape (names the field)."""


def series_key(p: Point) -> str:
    """``measurement,tag=v,...`` with tags sorted (line-protocol escaping): the partition key."""
    name = p.name.translate(_ESCAPES)
    if not p.tags:
        return name
    return name + "," + ",".join(f"{k.translate(_ESCAPES)}={v.translate(_ESCAPES)}" for k, v in sorted(p.tags.items()))


def point_value(p: Point) -> dict[str, Any]:
    out: dict[str, Any] = {"m": p.name, "t": p.tags, "f": p.fields, "ts": p.time}
    if p.database:
        out["db"] = p.database
    if p.retention_policy:
        out["rp"] = p.retention_policy
    return out


def _field(v: Mapping[str, Any], name: str, kind: type, what: str) -> Any:
    try:
        x = v[name]
    except (KeyError, TypeError):
        raise RecordError(f"{what} record: missing field {name!r}") from None
    if not isinstance(x, kind):
        raise RecordError(f"{what} record: field {name!r} must be {kind.__name__}, got {type(x).__name__}")
    return x


def point_from_value(v: Any) -> Point:
    """The point of a ``points`` value; :class:`RecordError` names a missing or mistyped field.

    The value's ``t`` and ``f`` dicts become the point's (values are freshly decoded per
    record): no copy on the hot path. Anything unusual takes the checking path below.
    """
    if type(v) is dict:
        m, t, f, ts = v.get("m"), v.get("t"), v.get("f"), v.get("ts")
        db, rp = v.get("db", ""), v.get("rp", "")
        if (type(m) is str and type(f) is dict and type(ts) is int and (t is None or type(t) is dict)
                and type(db) is str and type(rp) is str):
            return Point(m, t or {}, f, ts, db, rp)
    return _checked_point(v)


def _checked_point(v: Any) -> Point:
    return Point(
        _field(v, "m", str, "point"),
        dict(v.get("t") or {}),
        dict(_field(v, "f", dict, "point")),
        int(_field(v, "ts", int, "point")),
        str(v.get("db", "")),
        str(v.get("rp", "")),
    )


# --- alert events -----------------------------------------------------------------------


def _series_value(s: Series) -> list[Any]:
    values = [[x.ns if isinstance(x, Time) else x for x in row] for row in s.values]
    return [s.name, s.tags, s.columns, values]


def alert_value(a: AlertData) -> dict[str, Any]:
    """AlertData as JSON (times as integer ns; a ``time`` column is restored as Time)."""
    return {
        "id": a.id, "msg": a.message, "det": a.details, "t": a.time.ns, "d": a.duration.ns,
        "l": int(a.level), "pl": int(a.previous_level), "r": a.recoverable,
        "s": [_series_value(s) for s in a.data.series],
    }


def alert_from_value(v: Any) -> AlertData:
    series = []
    for name, tags, columns, values in v.get("s", []):
        ti = columns.index("time") if "time" in columns else -1
        rows = [[Time(x) if i == ti and isinstance(x, int) else x for i, x in enumerate(row)] for row in values]
        series.append(Series(name, dict(tags), list(columns), rows))
    return AlertData(
        id=_field(v, "id", str, "alert"), message=str(v.get("msg", "")), details=str(v.get("det", "")),
        time=Time(int(v.get("t", 0))), duration=Duration(int(v.get("d", 0))),
        level=Level(int(v.get("l", 0))), data=Result(series),
        previous_level=Level(int(v.get("pl", 0))), recoverable=bool(v.get("r", True)),
    )


def event_id(partition: int, offset: int, task: str, n: int) -> str:
    return f"{event_id_base(partition, offset, task)}{n}"


def event_id_base(partition: int, offset: int, task: str) -> str:
    """The ids of the events one input (point or clock tick) caused: this, then their number."""
    return f"{partition}:{offset}:{task}:"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An alert event on the ``events`` kind: what delivery needs, nothing more."""

    eid: str
    task: str
    node: str
    topic: str
    publish: bool
    """``.topic()`` events go to the topic's handlers; anonymous topics only keep state."""
    handlers: tuple[tuple[str, dict[str, Any]], ...]
    name: str
    tags: dict[str, str]
    alert: AlertData

    def value(self) -> dict[str, Any]:
        return {
            "eid": self.eid, "task": self.task, "node": self.node, "topic": self.topic,
            "pub": self.publish, "h": [[k, o] for k, o in self.handlers], "name": self.name,
            "tags": self.tags, "a": alert_value(self.alert),
        }

    @classmethod
    def from_value(cls, v: Any) -> EventRecord:
        return cls(
            eid=_field(v, "eid", str, "event"), task=_field(v, "task", str, "event"),
            node=str(v.get("node", "")), topic=_field(v, "topic", str, "event"),
            publish=bool(v.get("pub", False)),
            handlers=tuple((str(k), dict(o)) for k, o in v.get("h", [])),
            name=str(v.get("name", "")), tags=dict(v.get("tags") or {}),
            alert=alert_from_value(_field(v, "a", dict, "event")),
        )


def event_record(eid: str, task_id: str, ev: AlertEvent) -> EventRecord:
    """The record of an event a task emitted (anonymous topic ``main:<task>:<node>``)."""
    topic = ev.topic or f"main:{task_id}:{ev.node}"
    return EventRecord(
        eid, task_id, ev.node, topic, bool(ev.topic), tuple((h.kind, dict(h.options)) for h in ev.handlers),
        ev.name, dict(ev.tags), ev.data,
    )


# --- state and definitions ----------------------------------------------------------------


def state_key(task: str, node: str, group: str) -> str:
    return f"{task}/{node}/{group}"


def split_state_key(key: str) -> tuple[str, str, str]:
    """``task/node/group`` → parts (the group may itself contain ``/``)."""
    parts = key.split("/", 2)
    if len(parts) != 3:
        raise RecordError(f"alert state key {key!r} is not task/node/group")
    return parts[0], parts[1], parts[2]


def handler_key(spec: HandlerSpec) -> str:
    return f"{spec.topic}/{spec.id}"


@dataclass(frozen=True, slots=True)
class TaskDefinition:
    """A task on the broadcast ``tasks`` kind."""

    id: str
    script: str
    vars: dict[str, Any] = field(default_factory=dict)
    dbrps: tuple[tuple[str, str], ...] = ()
    enabled: bool = True

    def value(self) -> dict[str, Any]:
        return {"id": self.id, "script": self.script, "vars": self.vars,
                "dbrps": [list(d) for d in self.dbrps], "enabled": self.enabled}

    @classmethod
    def from_value(cls, v: Any) -> TaskDefinition:
        return cls(
            _field(v, "id", str, "task"), _field(v, "script", str, "task"), dict(v.get("vars") or {}),
            tuple((str(d[0]), str(d[1])) for d in v.get("dbrps", [])), bool(v.get("enabled", True)),
        )
