"""Read-your-writes across the API (issue 6): a point written right after its task was
defined runs through that task, and its event reaches the topic handler defined before it —
even when the stages' definition readers fetch late.

The lag is injected (each stage's ``tasks`` / ``handlers`` reader hands a record out only
:data:`LAG_S` after it fetched it), so the race that made the Kafka-mode end-to-end test
flaky on busy machines is lost every time: without reading up to the definitions' end
before a batch, the points run through no task and nothing is ever delivered.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from kapacity.config import load_config
from kapacity.config.model import Config
from kapacity.models import Point
from kapacity.queue.base import DEFAULT_BATCH, BroadcastReader, Message, Queue
from kapacity.queue.heads import log_end
from kapacity.queue.kinds import Kind
from kapacity.runtime import Runtime
from kapacity.runtime.definitions import END_WAIT_S, Definitions
from tests.support.kafka import Broker, unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

#: How late the stages' definition readers hand records out: far longer than a batch takes
#: to be processed here, within the stages' bound on the wait. The handlers lag more than
#: the tasks: the events (which wait for the task) still reach delivery before the handler.
LAG_S = {Kind.TASKS: 1.0, Kind.HANDLERS: 3.0}
assert max(LAG_S.values()) < END_WAIT_S

SCRIPT = (
    "stream|from().measurement('cpu').groupBy('host')"
    "|alert().crit(lambda: \"v\" > 10).stateChangesOnly().topic('cpu')"
)


class LateReader(BroadcastReader):
    """A reader whose fetch lags: a record is returned ``lag_s`` after the inner reader gave it."""

    def __init__(self, inner: BroadcastReader, lag_s: float) -> None:
        self.inner, self.lag_s = inner, lag_s
        self.held: list[tuple[float, Message]] = []

    def poll(self, max_messages: int = DEFAULT_BATCH, timeout: float = 1.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            self.held += [(now + self.lag_s, m) for m in self.inner.poll(max_messages, 0.0)]
            out = [m for due, m in self.held if due <= now][:max_messages]
            if out or now >= deadline:
                self.held = self.held[len(out):]
                return out
            time.sleep(min(0.02, max(0.0, deadline - now)))

    def log_end(self, timeout: float) -> dict[int, int] | None:
        return log_end(self.inner, timeout)

    def close(self) -> None:
        self.inner.close()


def _config(tmp: Path, bootstrap: str) -> Config:
    prefix = unique("defs").replace("-", "_")
    path = tmp / "kapacity.toml"
    path.write_text(
        f'data_dir = "{tmp / "data"}"\n'
        '[queue]\ntype = "kafka"\n'
        f'[queue.kafka.client.properties]\n"bootstrap.servers" = "{bootstrap}"\n'
        f'[queue.kafka.defaults]\ntopic-prefix = "{prefix}_"\nconsumer-prefix = "{prefix}_"\n'
        '[queue.kafka.defaults.topic]\npartitions = 2\n'
        '[queue.kafka.defaults.consumer.properties]\n"session.timeout.ms" = "6000"\n"heartbeat.interval.ms" = "1000"\n'
    )
    return load_config(path)


def _alerts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_points_written_after_a_define_run_through_it_although_the_readers_lag(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def late(self: Definitions, queue: Queue, kind: Kind) -> BroadcastReader:
        return LateReader(queue.broadcast(kind), LAG_S[kind])

    monkeypatch.setattr(Definitions, "open_reader", late)
    log = tmp_path / "alerts.log"
    rt = Runtime(_config(tmp_path, broker.bootstrap), instance="a")
    rt.start()
    try:
        def ready() -> bool:  # the stages own their partitions: a batch is processed at once
            stages = rt.status()["stages"]
            return all(sorted(stages[s].get("partitions") or []) == [0, 1] for s in ("engine", "delivery"))

        wait_for(ready, timeout=60, what="the engine and delivery stages to own their partitions")
        rt.define_task("cpu", SCRIPT)
        rt.put_handler({"id": "log", "topic": "cpu", "kind": "log", "options": {"path": str(log)}})
        rt.submit_points([Point("cpu", {"host": h}, {"v": 50.0}, 10**9) for h in ("a", "b")])
        got = wait_for(lambda: len(a := _alerts(log)) >= 2 and a, timeout=30, what="2 alerts in the log")
        stages = rt.status()["stages"]
    finally:
        assert rt.stop(15)
    assert sorted(a["id"] for a in got) == ["cpu:host=a", "cpu:host=b"]
    assert {a["level"] for a in got} == {"CRITICAL"}
    # Each stage waited for its readers (the points and the events came before the lagging
    # definitions), and none gave up.
    assert stages["engine"]["definitions_waited"] >= 1 and stages["engine"]["definitions_late"] == 0
    assert stages["delivery"]["definitions_waited"] >= 1 and stages["delivery"]["definitions_late"] == 0
