"""The log handler: options, one JSON line per alert, file mode, background delivery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kapacity.alert.event import AlertData, Result, Series
from kapacity.gotypes import Duration, Level, Time
from kapacity.handlers.errors import HandlerOptionError
from kapacity.handlers.log import LogHandler, parse_log_options


def alert(i: int = 0, level: Level = Level.CRITICAL) -> AlertData:
    return AlertData(f"cpu:host=a#{i}", "Hey, check your CPU", "", Time(10**9), Duration(0), level,
                     Result([Series("cpu", {"host": "a"}, ["time", "usage_idle"], [[Time(10**9), 5.0]])]))


def test_options_are_validated_naming_the_option(tmp_path: Path) -> None:
    assert parse_log_options({"Path": str(tmp_path / "a.log")}).mode == 0o600
    assert parse_log_options({"path": str(tmp_path / "a.log"), "mode": "0644"}).mode == 0o644
    for opts, option in [({}, "path"), ({"path": "rel.log"}, "path"),
                         ({"path": "/a.log", "mode": "rw"}, "mode"), ({"path": "/a", "size": 1}, "size")]:
        with pytest.raises(HandlerOptionError) as err:
            parse_log_options(opts)
        assert err.value.option == option and "log handler" in str(err.value)


def test_appends_one_json_line_per_alert_with_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "alerts.log"
    h = LogHandler(parse_log_options({"path": str(path), "mode": 0o640}))
    for i in range(3):
        h.handle(alert(i))
    assert h.flush(5)
    h.close(5)
    lines = path.read_bytes().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["cpu:host=a#0", "cpu:host=a#1", "cpu:host=a#2"]
    assert json.loads(lines[0])["data"]["series"][0]["values"] == [["1970-01-01T00:00:01Z", 5]]
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert h.stats() == {"alerts": 3, "delivered": 3, "errors": 0, "dropped": 0}


def test_unwritable_path_is_counted_not_raised(tmp_path: Path) -> None:
    h = LogHandler(parse_log_options({"path": str(tmp_path / "missing-dir" / "a.log")}))
    h.handle(alert())
    h.close(5)
    assert h.stats()["errors"] == 1


def test_full_queue_blocks_then_drops_and_counts() -> None:
    import threading

    from kapacity.handlers.log import BackgroundHandler

    release = threading.Event()
    delivered: list[str] = []

    class Stuck(BackgroundHandler):
        kind = "stuck"

        def deliver(self, a: AlertData) -> None:
            release.wait(10)
            delivered.append(a.id)

    h = Stuck(queue_size=1, full_wait=0.05)
    for i in range(3):  # one in delivery, one queued...
        h.handle(alert(i))
    for i in range(3, 6):  # ...the queue is full: each waits 50 ms, then is dropped
        h.handle(alert(i))
    release.set()
    h.close(5)
    stats = h.stats()
    assert stats["alerts"] == 6 and stats["dropped"] + stats["delivered"] == 6
    assert stats["dropped"] >= 3 and delivered[0] == "cpu:host=a#0"
