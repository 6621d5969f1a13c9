"""Through the Deliverer: at-least-once handlers get the event id, and an event delivered
again after a crash (a new Deliverer, the same ``events`` record) carries the same id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kapacity.alert.event import AlertData, Result, encode_alert_json
from kapacity.config.model import Config
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.base import EVENT_ID_ENV, with_event_id
from kapacity.runtime.delivery import Deliverer
from kapacity.runtime.records import EventRecord, event_id


def _record(offset: int, handlers: tuple[tuple[str, dict[str, Any]], ...]) -> EventRecord:
    alert = AlertData("cpu:a", "m", "", Time(offset), Duration(0), Level.CRITICAL, Result([]), Level.OK)
    return EventRecord(event_id(2, offset, "t", 0), "t", "alert2", "cpu", True, handlers, "cpu", {"host": "a"}, alert)


def _deliverer(log_path: Path) -> Deliverer:
    d = Deliverer(Config())
    d.apply_handler("cpu/log", {"id": "log", "topic": "cpu", "kind": "log", "options": {"path": str(log_path)}})
    return d


def test_a_redelivered_event_carries_the_same_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENT_ID_ENV, raising=False)
    log_path, env_path = tmp_path / "alerts.log", tmp_path / "env"
    # A shell, not Python: starts fast enough on a loaded machine for the acknowledgement wait.
    script = f'printf "%s\\n" "${{{EVENT_ID_ENV}:--}}" >> "$1"'
    chained = (("exec", {"prog": "/bin/sh", "args": ["-c", script, "sh", str(env_path)]}),)
    first, second = _record(1042, chained), _record(1043, chained)
    dead: list[Any] = []

    before_crash = _deliverer(log_path)
    before_crash.deliver(first, lambda k, v: dead.append(v))
    before_crash.close(10)  # crashed before the offset commit: the event is read again
    stored = json.loads(json.dumps(first.value()))  # what the `events` kind holds

    after_restart = _deliverer(log_path)
    after_restart.deliver(EventRecord.from_value(stored), lambda k, v: dead.append(v))
    after_restart.deliver(second, lambda k, v: dead.append(v))
    after_restart.close(10)

    assert dead == []
    assert first.eid == "2:1042:t:0"
    lines = log_path.read_bytes().splitlines(keepends=True)
    assert [json.loads(x)["eventId"] for x in lines] == [first.eid, first.eid, second.eid]
    assert lines[0] == lines[1] == with_event_id(encode_alert_json(first.alert), first.eid)
    assert env_path.read_text().splitlines() == [first.eid, first.eid, second.eid]


def test_retries_of_one_event_carry_its_id(tmp_path: Path) -> None:
    log_path = tmp_path / "missing" / "alerts.log"  # the first attempt fails: no directory
    d = _deliverer(log_path)
    rec = _record(7, ())
    target = d.topic_handlers["cpu"]["log"]
    real = target.with_event_id
    assert real is not None
    ids: list[str] = []

    def first_fails(alert: AlertData, eid: str) -> None:
        ids.append(eid)
        if len(ids) == 2:
            log_path.parent.mkdir()
        real(alert, eid)

    target.with_event_id = first_fails
    dead: list[Any] = []
    d.deliver(rec, lambda k, v: dead.append(v))
    d.close(10)
    assert dead == [] and ids == [rec.eid, rec.eid]
    assert d.counters.failed_attempts == 1
    assert json.loads(log_path.read_bytes())["eventId"] == rec.eid
