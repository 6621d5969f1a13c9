"""Fakes for the engine's contracts: a one-rule compiler and recording handlers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kapacity.alert.event import AlertData, Result
from kapacity.gotypes import Duration, Level, Time
from kapacity.models import Point
from kapacity.server.contracts import CompiledScript, Emitted, HandlerRef


class FakeTask:
    """Script ``crit FIELD > N [topic T] [handler KIND]``: CRITICAL above N, OK else; emits
    only on level changes (like stateChangesOnly) with ID ``<task>:<host tag>``."""

    def __init__(self, task_id: str, script: str) -> None:
        m = re.search(r"crit (\w+) > (\d+)", script)
        if not m:
            raise ValueError("line 1 char 1: expected 'crit FIELD > N'")
        self.id, self.field, self.limit = task_id, m.group(1), float(m.group(2))
        t = re.search(r"topic (\S+)", script)
        self.topic = t.group(1) if t else ""
        self.handlers = [HandlerRef(k, {"n": 1}) for k in re.findall(r"handler (\w+)", script)]
        self.levels: dict[str, Level] = {}
        self.seen = 0
        self.restored_from_snapshot = False

    def process(self, point: Point) -> list[Emitted]:
        self.seen += 1
        value = point.fields.get(self.field)
        if not isinstance(value, int | float):
            return []
        level = Level.CRITICAL if value > self.limit else Level.OK
        eid = f"{self.id}:{point.tags.get('host', '')}"
        prev = self.levels.get(eid, Level.OK)
        self.levels[eid] = level
        if level == prev:
            return []
        alert = AlertData(eid, f"{eid} is {level.name}", "", Time(point.time), Duration(0), level, Result(),
                          previous_level=prev)
        return [Emitted(alert, self.topic or f"main:{self.id}:alert2", list(self.handlers),
                        publish=bool(self.topic), task=self.id, name=point.name, tags=dict(point.tags))]

    def process_many(self, points: list[Point]) -> list[Emitted]:
        return [e for p in points for e in self.process(p)]

    def tick(self, now_ns: int) -> list[Emitted]:
        return []

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {"alert2": {"levels": {k: int(v) for k, v in self.levels.items()}}}

    def restore(self, snapshot: dict[str, dict[str, Any]]) -> None:
        self.restored_from_snapshot = True
        for eid, level in snapshot["alert2"]["levels"].items():
            self.levels[eid] = Level(level)

    def stats(self) -> dict[str, Any]:
        return {"task-stats": {}, "node-stats": {"alert2": {"points_in": self.seen}}}

    def dot(self) -> str:
        return f"digraph {self.id} {{}}"

    def restore_levels(self, levels: Mapping[str, Mapping[str, tuple[int, int]]]) -> None:
        for lv in levels.values():
            for eid, (level, _t) in lv.items():
                if eid.startswith(self.id + ":"):
                    self.levels[eid] = Level(level)


class FakeCompiler:
    def check(self, task_id: str, script: str, vars: Mapping[str, Any]) -> CompiledScript:
        task = FakeTask(task_id, script)
        m = re.search(r'dbrp "(\w+)"\."(\w+)"', script)
        return CompiledScript(dbrps=((m.group(1), m.group(2)),) if m else (), handlers=tuple(task.handlers))

    def start(self, task_id: str, script: str, vars: Mapping[str, Any]) -> FakeTask:
        return FakeTask(task_id, script)


class RecordingHandler:
    def __init__(self, kind: str, options: Mapping[str, Any], sink: list[tuple[str, AlertData]]) -> None:
        self.kind, self.options, self.sink = kind, dict(options), sink
        self.closed = False

    def handle(self, alert: AlertData) -> None:
        if self.options.get("fail"):
            raise RuntimeError("receiver down")
        self.sink.append((self.kind, alert))

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> None:
        self.closed = True

    def stats(self) -> Mapping[str, int]:
        return {}


class FakeFactory:
    kinds: tuple[str, ...] = ("log", "kafka")

    def __init__(self) -> None:
        self.received: list[tuple[str, AlertData]] = []
        self.created: list[RecordingHandler] = []
        self.closed = False

    def validate(self, kind: str, options: Mapping[str, Any]) -> None:
        if "bad" in options:
            raise ValueError(f"{kind} handler: option 'bad': not allowed")

    def create(self, kind: str, options: Mapping[str, Any]) -> RecordingHandler:
        h = RecordingHandler(kind, options, self.received)
        self.created.append(h)
        return h

    def stats(self) -> dict[str, dict[str, Any]]:
        return {"kafka": {"c:t": {"tags": {"cluster": "c", "topic": "t"}, "values": {"write_messages": 1}}}}

    def close(self, timeout: float) -> None:
        self.closed = True


def fake_match(expr: str) -> Any:
    """``level() >= LEVEL`` only."""
    m = re.fullmatch(r"level\(\) >= (\w+)", expr.strip())
    if not m:
        raise ValueError(f"line 1 char 1: cannot parse {expr!r}")
    threshold = Level.parse(m.group(1))
    return lambda ctx: ctx.alert.level >= threshold
