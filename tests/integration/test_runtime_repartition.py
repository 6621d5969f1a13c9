"""Tasks that group by a subset of the series' tags: one state per group across instances.

Series ``cpu,cpu=N,host=hX`` are spread over the 4 ``points`` partitions, so one host's
points reach both instances' engines; through the ``repartition`` topic each host's group
lives on one partition of the regroup stage. A per-partition state would emit a host's
CRITICAL once per partition holding one of its series, and count fewer than 8 per window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from kapacity.config.model import Config
from kapacity.models import Point
from kapacity.runtime import Runtime
from tests.integration.test_runtime_engine import _config
from tests.support.kafka import Broker, create_topic, unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

HOSTS = [f"h{h}" for h in range(4)]
CPUS = [str(c) for c in range(8)]
LEVEL = (
    "stream|from().measurement('cpu').groupBy('host')"
    "|alert().id('level-{{ index .Tags \"host\" }}').crit(lambda: \"value\" > 90).stateChangesOnly()"
    ".topic('cpu')"
)
COUNT = (
    "stream|from().measurement('cpu').groupBy('host')|window().period(1s).every(1s)|count('value')"
    "|alert().id('count-{{ index .Tags \"host\" }}').info(lambda: \"count\" > 0)"
    ".message('{{ index .Fields \"count\" }}').topic('cpu')"
)


def _read_all(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, bytes | None, Any]]:
    """Every committed message of ``topic`` up to its end: (partition, key, decoded value)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("rd"), "isolation.level": "read_committed"})
    tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
    marks = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in range(partitions)}
    c.assign(tps)
    out: list[tuple[int, bytes | None, Any]] = []

    def done() -> bool:
        for m in c.consume(1000, 0.2):
            if m.error() is None:
                out.append((m.partition() or 0, m.key(), json.loads(m.value() or b"null")))
        positions = c.position([TopicPartition(topic, p) for p in range(partitions)])
        # An empty partition has no position: it is done when it has nothing to read.
        return all(tp.offset >= marks[tp.partition][1] or marks[tp.partition][0] >= marks[tp.partition][1]
                   for tp in positions)

    try:
        wait_for(done, timeout=20, what=f"the end of {topic}")
    finally:
        c.close()
    return out


@pytest.fixture
def cluster(tmp_path: Path, noida: Broker) -> Iterator[tuple[Config, str, str, list[Runtime]]]:
    prefix = unique("rp").replace("-", "_")
    out = f"{prefix}_out"
    create_topic(noida.bootstrap, out, 1)
    config = _config(tmp_path, bootstrap=noida.bootstrap, prefix=prefix, queue="kafka")
    runtimes: list[Runtime] = []
    yield config, prefix, out, runtimes
    for rt in runtimes:
        rt.stop(10)


def _round(t: int, value: float) -> list[Point]:
    return [Point("cpu", {"host": h, "cpu": c}, {"value": value}, t * 10**9) for h in HOSTS for c in CPUS]


def test_a_group_spread_over_partitions_has_one_state(
    cluster: tuple[Config, str, str, list[Runtime]], noida: Broker, tmp_path: Path
) -> None:
    config, prefix, out, runtimes = cluster
    a = Runtime(config, instance="a")
    a.start()
    runtimes.append(a)
    b = Runtime(config, tmp_path / "data-b", instance="b")
    b.start()
    runtimes.append(b)
    a.define_task("level", LEVEL)
    a.define_task("count", COUNT)
    a.put_handler({"id": "out", "topic": "cpu", "kind": "kafka", "options": {"cluster": "out", "topic": out}})

    def split(stage: str) -> bool:
        pa = set(a.status()["stages"][stage]["partitions"])
        pb = set(b.status()["stages"][stage]["partitions"])
        return bool(pa and pb and not pa & pb and pa | pb == {0, 1, 2, 3})

    wait_for(lambda: split("engine") and split("regroup"), timeout=40,
             what="the two instances to split the engine and regroup partitions")

    def regrouped() -> int:
        return sum(int(rt.status()["stages"]["regroup"]["points"]) for rt in (a, b))

    per_round = len(HOSTS) * len(CPUS) * 2  # each point, once for each task
    # A round is wholly regrouped before the next is sent: the windows then hold one round.
    for n, value in enumerate([50.0, 95.0, 10.0], start=1):
        (a if n % 2 else b).submit_points(_round(n, value))
        target = n * per_round  # read by the predicate while wait_for runs, before the next round
        wait_for(lambda: regrouped() >= target, timeout=40, what=f"round {n} regrouped")
    expected = 2 * len(HOSTS) + 2 * len(HOSTS)  # CRITICAL + OK, and 2 windows, per host
    wait_for(lambda: len(_read_all(noida.bootstrap, out, 1)) >= expected, timeout=40, what=f"{expected} events")
    status = {rt.instance: rt.status()["stages"] for rt in (a, b)}
    assert a.stop(20) and b.stop(20)
    runtimes.clear()

    # The premise: every host's series went through more than one points partition.
    points = _read_all(noida.bootstrap, f"{prefix}_points", 4)
    spread: dict[str, set[int]] = {}
    for partition, _key, value in points:
        spread.setdefault(value["t"]["host"], set()).add(partition)
    assert len(points) == 3 * len(HOSTS) * len(CPUS)
    assert all(len(parts) > 1 for parts in spread.values()), spread

    events = [e for _p, _k, e in _read_all(noida.bootstrap, out, 1)]
    by_id: dict[str, list[tuple[str, str]]] = {}
    for e in events:
        by_id.setdefault(e["id"], []).append((e["level"], e["message"]))
    assert {k: [lvl for lvl, _m in v] for k, v in by_id.items() if k.startswith("level-")} == {
        f"level-{h}": ["CRITICAL", "OK"] for h in HOSTS
    }
    assert {k: v for k, v in by_id.items() if k.startswith("count-")} == {
        f"count-{h}": [("INFO", "8"), ("INFO", "8")] for h in HOSTS
    }
    assert len(events) == expected  # exactly once across both hops

    # Each group lives on one repartition partition, keyed by task + group.
    repart = _read_all(noida.bootstrap, f"{prefix}_repartition", 4)
    where: dict[bytes | None, set[int]] = {}
    for partition, key, _value in repart:
        where.setdefault(key, set()).add(partition)
    assert sorted(k.decode() for k in where if k) == sorted(f"{t}/cpu,host={h}" for t in ("count", "level")
                                                             for h in HOSTS)
    assert all(len(parts) == 1 for parts in where.values())
    assert sum(s["engine"]["repartitioned"] for s in status.values()) == len(repart) == 2 * len(points)
    assert sum(s["engine"]["events"] for s in status.values()) == 0  # no aligned task: nothing ran there
