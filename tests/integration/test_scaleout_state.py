"""Fault 5: the state dir is lost (or stale) while an instance is stopped.

On restart the alert state is rebuilt from the ``alert_state`` changelog, and the next points
give the right transitions: no second CRITICAL for an ID that was CRITICAL, a recovery emits
OK with previousLevel CRITICAL. Also: a checkpoint left by an older run is caught up from the
changelog, and one that points past the changelog's end (a recreated topic) is discarded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from kapacity.config import load_config
from kapacity.config.model import Config
from kapacity.models import Point
from kapacity.runtime import Runtime
from kapacity.queue.transactional import TransactionalLoop
from kapacity.runtime.engine import KafkaEngineStage
from tests.support.kafka import Broker, create_topic, unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 4
HOSTS = 8
SCRIPT = (
    "stream|from().measurement('cpu').groupBy('host')"
    "|alert().crit(lambda: \"v\" > 10).stateChangesOnly().topic('cpu')"
)
#: Per round, per host: CRITICAL (50) or OK (1). Round 0 leaves even hosts CRITICAL and odd
#: hosts OK; later rounds keep some, recover some, raise some.
ROUNDS = [
    [50 if h % 2 == 0 else 1 for h in range(HOSTS)],
    [60 if h % 4 == 0 else 50 if h % 4 == 1 else 1 for h in range(HOSTS)],
    [1 if h % 4 == 1 else 70 if h % 4 == 3 else 50 if h % 4 == 0 else 1 for h in range(HOSTS)],
]


def _expected(rounds: range) -> list[tuple[str, str, str]]:
    """(id, level, previousLevel) of every level change in ``rounds`` (state carried over)."""
    levels = ["OK"] * HOSTS
    out = []
    for rnd in range(max(rounds) + 1):
        for h, v in enumerate(ROUNDS[rnd]):
            new = "CRITICAL" if v > 10 else "OK"
            if new != levels[h] and rnd in rounds:
                out.append((f"cpu:host=h{h}", new, levels[h]))
            levels[h] = new
    return sorted(out)


def _points(rnd: int) -> list[Point]:
    return [Point("cpu", {"host": f"h{h}"}, {"v": float(v)}, (rnd + 1) * 10**9) for h, v in enumerate(ROUNDS[rnd])]


def _config(tmp: Path, bootstrap: str, prefix: str) -> Config:
    path = tmp / "kapacity.toml"
    path.write_text(
        f'data_dir = "{tmp / "data"}"\n'
        '[queue]\ntype = "kafka"\n'
        f'[queue.kafka.client.properties]\n"bootstrap.servers" = "{bootstrap}"\n'
        f'[queue.kafka.defaults]\ntopic-prefix = "{prefix}_"\nconsumer-prefix = "{prefix}_"\n'
        f'[queue.kafka.defaults.topic]\npartitions = {PARTITIONS}\n'
        '[queue.kafka.defaults.consumer.properties]\n"session.timeout.ms" = "6000"\n"heartbeat.interval.ms" = "1000"\n'
        f'[[kafka]]\nenabled = true\nid = "out"\nbrokers = ["{bootstrap}"]\n'
    )
    return load_config(path)


def _events(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every committed message of the one-partition ``topic``, up to its end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("rd"), "isolation.level": "read_committed"})
    c.assign([TopicPartition(topic, 0, 0)])
    _low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    out: list[dict[str, Any]] = []

    def at_end() -> bool:
        out.extend(json.loads(m.value()) for m in c.consume(1000, 0.2) if m.error() is None)
        return bool(c.position([TopicPartition(topic, 0)])[0].offset >= high)

    try:
        wait_for(at_end, timeout=20, what=f"the end of {topic}")
    finally:
        c.close()
    return out


class Cluster:
    """One instance ("a") started and stopped in turn over the same config and state dir."""

    def __init__(self, config: Config, bootstrap: str, out: str) -> None:
        self.config, self.bootstrap, self.out = config, bootstrap, out
        self.rt: Runtime | None = None
        self.seen = 0

    def start(self) -> Runtime:
        self.rt = Runtime(self.config, instance="a")
        self.rt.start()
        return self.rt

    def engine(self) -> KafkaEngineStage:
        assert self.rt is not None
        stage = self.rt.stages[0].stage
        assert isinstance(stage, KafkaEngineStage)
        return stage

    def loops(self) -> dict[str, TransactionalLoop]:
        """The stages' transactional loops by stage name (engine, regroup, delivery...)."""
        assert self.rt is not None
        return {t.stage.name: t.stage.loop for t in self.rt.stages if isinstance(getattr(t.stage, "loop", None), TransactionalLoop)}

    def run_round(self, rnd: int) -> list[tuple[str, str, str]]:
        """Submit round ``rnd``; the events it caused, once every point went through."""
        assert self.rt is not None
        expected = len(_expected(range(rnd, rnd + 1)))
        before = self.engine().status()["points"]
        self.rt.submit_points(_points(rnd))
        wait_for(lambda: self.engine().status()["points"] >= before + HOSTS, timeout=30, what=f"round {rnd} processed")
        wait_for(lambda: len(_events(self.bootstrap, self.out)) >= self.seen + expected, timeout=30,
                 what=f"the {expected} events of round {rnd}")
        rt = self.rt
        wait_for(lambda: all(t.idle.is_set() for t in rt.stages), timeout=30, what="every stage idle")
        events = _events(self.bootstrap, self.out)[self.seen:]
        self.seen += len(events)
        return sorted((e["id"], e["level"], e["previousLevel"]) for e in events)

    def stop(self) -> None:
        assert self.rt is not None and self.rt.stop(15)
        self.rt = None


@pytest.fixture
def cluster(tmp_path: Path, noida: Broker) -> Iterator[Cluster]:
    prefix = unique("st").replace("-", "_")
    out = f"{prefix}_out"
    create_topic(noida.bootstrap, out, 1)
    c = Cluster(_config(tmp_path, noida.bootstrap, prefix), noida.bootstrap, out)
    rt = c.start()
    rt.define_task("cpu", SCRIPT)
    rt.put_handler({"id": "out", "topic": "cpu", "kind": "kafka", "options": {"cluster": "out", "topic": out}})
    yield c
    if c.rt is not None:
        c.rt.stop(10)


def _owns_all(c: Cluster) -> bool:
    """Every stage restored its partitions (one instance: it owns them all)."""
    loops = c.loops()
    return bool(loops) and all(loop.assignment() for loop in loops.values()) and \
        sorted(c.engine().status()["partitions"]) == list(range(PARTITIONS))


def _restored(c: Cluster, stages: tuple[str, ...] = ("engine", "regroup")) -> int:
    """Alert-state changelog records read at assignment (0 when a checkpoint was current).

    The alert state of a task lives in the stage that runs it: ``engine`` for series-aligned
    tasks, ``regroup`` for the others (see kapacity.runtime.regroup)."""
    return sum(s.restored_records for name, loop in c.loops().items() if name in stages
               for s in loop.states.values())


def test_a_deleted_state_dir_is_rebuilt_from_the_changelog(cluster: Cluster) -> None:
    assert cluster.run_round(0) == _expected(range(0, 1))
    state_dir = cluster.rt.state_dir if cluster.rt else Path()
    cluster.stop()
    assert list(state_dir.rglob("*.json"))  # the clean stop wrote checkpoints...
    shutil.rmtree(state_dir)  # ...and they are lost with the state dir

    cluster.start()
    wait_for(lambda: _owns_all(cluster), timeout=30, what="the restarted instance to own every partition")
    assert _restored(cluster) > 0  # the alert state was read from the changelog
    got = cluster.run_round(1)
    assert got == _expected(range(1, 2))
    assert ("cpu:host=h0", "CRITICAL", "OK") not in got  # h0 stayed CRITICAL: no second CRITICAL
    assert ("cpu:host=h2", "OK", "CRITICAL") in got  # a recovery emits OK from CRITICAL


def test_a_checkpoint_of_an_older_run_is_caught_up_from_the_changelog(cluster: Cluster, tmp_path: Path) -> None:
    assert cluster.run_round(0) == _expected(range(0, 1))
    assert cluster.rt is not None
    state_dir = cluster.rt.state_dir
    cluster.stop()
    old = tmp_path / "old-state"
    shutil.copytree(state_dir, old)  # the checkpoints after round 0

    cluster.start()
    assert cluster.run_round(1) == _expected(range(1, 2))
    cluster.stop()
    shutil.rmtree(state_dir)
    shutil.copytree(old, state_dir)  # back to the older run's checkpoints

    cluster.start()
    wait_for(lambda: _owns_all(cluster), timeout=30, what="the restarted instance to own every partition")
    assert _restored(cluster) > 0  # what changed after the old checkpoint was replayed
    assert cluster.run_round(2) == _expected(range(2, 3))


def test_a_checkpoint_past_the_changelog_end_is_discarded(cluster: Cluster) -> None:
    assert cluster.run_round(0) == _expected(range(0, 1))
    assert cluster.rt is not None
    state_dir = cluster.rt.state_dir
    cluster.stop()
    checkpoints = list(state_dir.rglob("*.json"))
    assert checkpoints
    for path in checkpoints:  # as if the changelog had been recreated: offsets beyond its end
        path.write_text(json.dumps({"offset": 10**9, "data": {}}))

    cluster.start()
    wait_for(lambda: _owns_all(cluster), timeout=30, what="the restarted instance to own every partition")
    assert _restored(cluster) > 0  # rebuilt from the beginning, the empty "state" ignored
    assert cluster.run_round(1) == _expected(range(1, 2))
