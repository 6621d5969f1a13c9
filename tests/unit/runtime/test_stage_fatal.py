"""StageThread on a fatal client error: the instance's own stage is rebuilt, an adopted one
dropped; both counted. And which Kafka errors are fatal (no broker)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from kapacity.queue.transactional import FatalLoopError, is_fatal
from kapacity.runtime.app import stages_status
from kapacity.runtime.engine import StageThread
from tests.support.waiting import wait_for


class FakeStage:
    name = "engine"

    def __init__(self, script: list[Callable[[], int]]) -> None:
        self.script = script
        self.calls = 0
        self.closed = self.abandoned = False

    def run_once(self) -> int:
        step = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return step()

    def close(self) -> None:
        self.closed = True

    def abandon(self) -> None:
        self.abandoned = True

    def status(self) -> dict[str, Any]:
        return {"partitions": [0]}


def fenced() -> int:
    raise FatalLoopError("engine_a cannot go on: fenced")


def idle() -> int:
    return 0


def work() -> int:
    return 5


@pytest.fixture(autouse=True)
def fast_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StageThread, "REBUILD_PAUSE_S", 0.01)
    monkeypatch.setattr(StageThread, "ERROR_PAUSE_S", 0.01)


def test_an_own_stage_fenced_for_good_is_abandoned_and_built_again() -> None:
    first = FakeStage([work, fenced])
    second = FakeStage([work, idle])
    builds: list[FakeStage] = []
    failures = [RuntimeError("broker down")]

    def rebuild() -> FakeStage:
        if failures:  # the first attempt fails: tried again after the pause
            raise failures.pop()
        builds.append(second)
        return second

    t = StageThread(first, rebuild)
    t.start()
    wait_for(lambda: t.handled == 10 and t.idle.is_set(), timeout=5, what="the rebuilt stage to run")
    assert t.stop(5)
    assert first.abandoned and not first.closed  # no checkpoint from a fenced stage
    assert second.closed and builds == [second] and t.stage is second
    assert (t.fatal_errors, t.rebuilds, t.dropped, t.errors) == (1, 1, False, 2)
    assert stages_status([t])["engine"] == {"partitions": [0], "handled": 10, "errors": 2, "idle": True,
                                                  "fatal_errors": 1, "rebuilds": 1, "dropped": False}


def test_an_adopted_stage_fenced_by_its_owner_is_dropped_and_its_thread_ends() -> None:
    stage = FakeStage([work, fenced, work])
    t = StageThread(stage)  # no rebuild: adopted
    t.start()
    wait_for(lambda: not t.alive, timeout=5, what="the thread to end")
    assert (t.dropped, t.fatal_errors, t.rebuilds, t.handled) == (True, 1, 0, 5)
    assert stage.abandoned and not stage.closed and stage.calls == 2
    assert t.stop(1)


def test_ordinary_batch_failures_are_retried_not_rebuilt() -> None:
    calls = threading.Event()

    def flaky() -> int:
        calls.set()
        raise RuntimeError("broker blip")

    stage = FakeStage([flaky, flaky, idle])
    t = StageThread(stage, lambda: pytest.fail("no rebuild for a retriable failure"))
    t.start()
    wait_for(lambda: t.idle.is_set(), timeout=5, what="the stage to recover")
    assert t.stop(5)
    assert (t.errors, t.fatal_errors, t.rebuilds) == (2, 0, 0) and stage.closed


def test_a_stop_during_the_rebuild_pause_ends_the_thread_without_building() -> None:
    stage = FakeStage([fenced])
    built = []
    t = StageThread(stage, lambda: built.append(1) or stage)  # type: ignore[func-returns-value]
    t.REBUILD_PAUSE_S = 30.0  # type: ignore[misc]  # the pause the stop interrupts
    t.start()
    wait_for(lambda: t.fatal_errors == 1, timeout=5, what="the fatal error")
    assert t.stop(5) and built == [] and not t.dropped


@pytest.mark.parametrize(("err", "fatal"), [
    (KafkaError(KafkaError.FENCED_INSTANCE_ID), True),
    (KafkaError(KafkaError.PRODUCER_FENCED), True),
    (KafkaError(KafkaError.INVALID_PRODUCER_EPOCH), True),
    (KafkaError(KafkaError._FENCED), True),
    (KafkaError(KafkaError._FATAL), True),
    (KafkaError(KafkaError._TRANSPORT, fatal=True), True),
    (KafkaException(KafkaError(KafkaError.PRODUCER_FENCED)), True),
    (KafkaError(KafkaError._TRANSPORT), False),
    (KafkaError(KafkaError.REQUEST_TIMED_OUT), False),
    (KafkaException(KafkaError(KafkaError._TIMED_OUT)), False),
    (RuntimeError("not a Kafka error"), False),
    (None, False),
])
def test_which_client_errors_are_fatal(err: object, fatal: bool) -> None:
    assert is_fatal(err) is fatal
