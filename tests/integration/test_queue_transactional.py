"""Exactly-once loop on noida (its read_committed hides aborted records; Tansu's does not)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from kapacity.config.queue import KafkaQueueConfig, QueueConfig
from kapacity.queue import Kind
from kapacity.queue.base import Message
from kapacity.queue.kafka import KafkaQueue
from kapacity.queue.transactional import Output, PartitionState, TransactionalLoop
from tests.support.kafka import Broker
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


def settings(bootstrap: str) -> KafkaQueueConfig:
    p = f"t{uuid.uuid4().hex[:8]}_"
    raw: dict[str, Any] = {
        "client": {"properties": {"bootstrap.servers": bootstrap}},
        "defaults": {
            "topic": {"partitions": 2},
            "topic-prefix": p,
            "consumer-prefix": p,
            "consumer": {"properties": {"session.timeout.ms": 6000}},
        },
    }
    return QueueConfig.model_validate({"type": "kafka", "kafka": raw}, by_alias=True, by_name=False).kafka


class Counter:
    """Counts messages per key; fails once on a chosen value to force an abort."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.fail_on = fail_on

    def __call__(self, m: Message, state: PartitionState) -> Iterable[Output]:
        if m.value == self.fail_on:
            self.fail_on = None
            raise RuntimeError("processing failed")
        count = state.get(m.key, 0) + 1
        state.put(m.key, count)
        return [(Kind.EVENTS, m.key, {"key": m.key, "count": count})]


def run_until(loop: TransactionalLoop, n: int) -> None:
    done = 0

    def step() -> bool:
        nonlocal done
        done += loop.run_once(timeout=0.2)
        return done >= n

    wait_for(step, timeout=30, what=f"{n} messages processed")


def outputs(q: KafkaQueue, n: int) -> list[Message]:
    got: list[Message] = []
    wait_for(lambda: q.receive(Kind.EVENTS, "check", got.append, timeout=0.2) >= 0 and len(got) >= n,
             timeout=30, what=f"{n} outputs")
    assert q.receive(Kind.EVENTS, "check", got.append, timeout=0.5) == 0  # nothing more
    return got


def test_abort_hides_outputs_and_state_then_the_batch_runs_again_exactly_once(noida: Broker, tmp_path: Path) -> None:
    s = settings(noida.bootstrap)
    q = KafkaQueue(s)
    q.emit_many(Kind.POINTS, [(f"k{i % 2}", i) for i in range(6)])
    loop = TransactionalLoop(
        s, name="counter", source=Kind.POINTS, changelog=Kind.ALERT_STATE,
        process=Counter(fail_on=3), state_dir=tmp_path,
    )
    with pytest.raises(RuntimeError):
        run_until(loop, 6)
    run_until(loop, 6)
    got = outputs(q, 6)
    finals = {}
    for m in got:
        finals[m.key] = max(finals.get(m.key, 0), m.value["count"])
    assert finals == {"k0": 3, "k1": 3}
    assert sorted((m.key, m.value["count"]) for m in got) == [("k0", 1), ("k0", 2), ("k0", 3), ("k1", 1), ("k1", 2), ("k1", 3)]
    loop.close()
    q.close()


def test_state_is_restored_from_the_changelog_or_the_clean_shutdown_checkpoint(noida: Broker, tmp_path: Path) -> None:
    s = settings(noida.bootstrap)
    q = KafkaQueue(s)
    q.emit_many(Kind.POINTS, [("a", 1), ("a", 2), ("b", 3)])
    first = TransactionalLoop(s, name="c", source=Kind.POINTS, changelog=Kind.ALERT_STATE, process=Counter(), state_dir=tmp_path)
    run_until(first, 3)
    first.abandon()  # dies: no checkpoint written

    q.emit(Kind.POINTS, "a", 4)
    second = TransactionalLoop(s, name="c", source=Kind.POINTS, changelog=Kind.ALERT_STATE, process=Counter(), state_dir=tmp_path)
    run_until(second, 1)
    merged = {k: v for st in second.states.values() for k, v in st.items().items()}
    assert merged == {"a": 3, "b": 1}
    # From the changelog: one record per key and committed batch (a=1/a=2 may be one batch).
    assert sum(st.restored_records for st in second.states.values()) >= 2
    second.close()  # clean: checkpoints
    assert sorted(p.name for p in (tmp_path / second.transactional_id).iterdir()) == ["0.json", "1.json"]

    q.emit(Kind.POINTS, "b", 5)
    third = TransactionalLoop(s, name="c", source=Kind.POINTS, changelog=Kind.ALERT_STATE, process=Counter(), state_dir=tmp_path)
    run_until(third, 1)
    merged = {k: v for st in third.states.values() for k, v in st.items().items()}
    assert merged == {"a": 3, "b": 2}
    assert sum(st.restored_records for st in third.states.values()) == 0  # from the checkpoints
    assert list((tmp_path / third.transactional_id).iterdir()) == []  # used once
    third.close()
    q.close()
