"""The queue-based runtime in-process: embedded round trip, state restore, shared work."""

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
from tests.support.kafka import Broker, create_topic, unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

SCRIPT = (
    "stream|from().measurement('cpu').groupBy('host')"
    "|alert().crit(lambda: \"v\" > 10).stateChangesOnly().topic('cpu')"
)


def _config(tmp: Path, *, bootstrap: str = "127.0.0.1:1", prefix: str = "kapacity", queue: str = "embedded",
            name: str = "kapacity.toml", data: str = "data") -> Config:
    path = tmp / name
    path.write_text(
        f'data_dir = "{tmp / data}"\n'
        f'[queue]\ntype = "{queue}"\n'
        '[queue.embedded]\nlease = "1s"\ncleaner-interval = "0s"\n'
        f'[queue.kafka.client.properties]\n"bootstrap.servers" = "{bootstrap}"\n'
        f'[queue.kafka.defaults]\ntopic-prefix = "{prefix}_"\nconsumer-prefix = "{prefix}_"\n'
        '[queue.kafka.defaults.topic]\npartitions = 4\n'
        '[queue.kafka.defaults.consumer.properties]\n"session.timeout.ms" = "6000"\n"heartbeat.interval.ms" = "1000"\n'
        f'[[kafka]]\nenabled = true\nid = "out"\nbrokers = ["{bootstrap}"]\n'
    )
    return load_config(path)


#: Bound for the group joins and for 60 points through the stages of two instances: ~2 s here,
#: far longer with the whole suite on 2 busy cores (CI once passed 30 s).
SETTLE_S = 60.0


def _points(hosts: range, values: list[float], t0: int = 1) -> list[Point]:
    return [Point("cpu", {"host": f"h{h}"}, {"v": v}, (t0 + i) * 10**9) for i, v in enumerate(values) for h in hosts]


# --- embedded --------------------------------------------------------------------------------


def _log_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_embedded_points_in_events_out_across_a_restart(tmp_path: Path) -> None:
    config = _config(tmp_path)
    log = tmp_path / "alerts.log"
    rt = Runtime(config, instance="a")
    rt.start()
    rt.define_task("cpu", SCRIPT)
    rt.put_handler({"id": "log", "topic": "cpu", "kind": "log", "options": {"path": str(log)}})
    rt.submit_points(_points(range(3), [1, 50, 60]))  # OK, CRIT, (CRIT: no event)
    wait_for(lambda: len(_log_lines(log)) >= 3, timeout=15, what="3 alerts in the log")
    assert rt.stop(10)

    rt = Runtime(config, instance="a")
    rt.start()
    rt.submit_points(_points(range(3), [2, 70], t0=10))  # recovery, then CRIT again
    wait_for(lambda: len(_log_lines(log)) >= 9, timeout=15, what="9 alerts in the log")
    status = rt.status()
    assert rt.stop(10)
    lines = _log_lines(log)
    by_id: dict[str, list[tuple[str, str]]] = {}
    for a in lines:
        by_id.setdefault(a["id"], []).append((a["level"], a["previousLevel"]))
    assert by_id == {
        f"cpu:host=h{h}": [("CRITICAL", "OK"), ("OK", "CRITICAL"), ("CRITICAL", "OK")] for h in range(3)
    }
    assert status["stages"]["engine"]["partitions"] == [0]


# --- Kafka (noida-db: read_committed hides aborted records) ----------------------------------


def _read_committed(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every committed message of a one-partition topic, up to its end."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("rd"), "isolation.level": "read_committed"})
    tp = TopicPartition(topic, 0, 0)
    c.assign([tp])
    _low, high = c.get_watermark_offsets(tp, timeout=10)
    out: list[dict[str, Any]] = []

    def done() -> bool:
        out.extend(json.loads(m.value()) for m in c.consume(1000, 0.2) if m.error() is None)
        return bool(c.position([TopicPartition(topic, 0)])[0].offset >= high)

    try:
        wait_for(done, timeout=20, what=f"the end of {topic}")
    finally:
        c.close()
    return out


@pytest.fixture
def kafka_setup(tmp_path: Path, noida: Broker) -> Iterator[tuple[Config, str, list[Runtime]]]:
    prefix = unique("rt").replace("-", "_")
    out = f"{prefix}_out"
    create_topic(noida.bootstrap, out, 1)
    config = _config(tmp_path, bootstrap=noida.bootstrap, prefix=prefix, queue="kafka")
    runtimes: list[Runtime] = []
    yield config, out, runtimes
    for rt in runtimes:
        rt.stop(10)


def _start(config: Config, instance: str, runtimes: list[Runtime], data_dir: Path | None = None) -> Runtime:
    rt = Runtime(config, data_dir, instance=instance)
    rt.start()
    runtimes.append(rt)
    return rt


def _define(rt: Runtime, out: str) -> None:
    rt.define_task("cpu", SCRIPT)
    rt.put_handler({"id": "out", "topic": "cpu", "kind": "kafka", "options": {"cluster": "out", "topic": out}})


def _count(bootstrap: str, topic: str) -> int:
    return len(_read_committed(bootstrap, topic))


@pytest.mark.parametrize("keep_state_dir", [False, True], ids=["state-dir-deleted", "state-dir-kept"])
def test_state_is_rebuilt_from_the_changelog(
    kafka_setup: tuple[Config, str, list[Runtime]], noida: Broker, keep_state_dir: bool
) -> None:
    config, out, runtimes = kafka_setup
    rt = _start(config, "a", runtimes)
    _define(rt, out)
    rt.submit_points(_points(range(4), [50]))  # every host CRITICAL
    wait_for(lambda: _count(noida.bootstrap, out) >= 4, timeout=30, what="4 CRITICAL events")
    assert rt.stop(15)
    runtimes.remove(rt)
    checkpoints = list(rt.state_dir.rglob("*.json"))
    assert checkpoints  # a clean stop leaves a checkpoint per owned partition
    if not keep_state_dir:
        shutil.rmtree(rt.state_dir)

    rt = _start(config, "a", runtimes)
    rt.submit_points(_points(range(4), [1], t0=5))  # recoveries
    wait_for(lambda: _count(noida.bootstrap, out) >= 8, timeout=30, what="4 OK events")
    events = _read_committed(noida.bootstrap, out)
    assert sorted((e["id"], e["level"], e["previousLevel"]) for e in events[4:]) == [
        (f"cpu:host=h{h}", "OK", "CRITICAL") for h in range(4)
    ]
    assert len(events) == 8


def test_two_instances_share_the_work_and_other_prefixes_stay_apart(
    kafka_setup: tuple[Config, str, list[Runtime]], noida: Broker, tmp_path: Path
) -> None:
    config, out, runtimes = kafka_setup
    a = _start(config, "a", runtimes)
    b = _start(config, "b", runtimes, tmp_path / "data-b")
    other_config = _config(tmp_path, bootstrap=noida.bootstrap, prefix=unique("other").replace("-", "_"),
                           queue="kafka", name="other.toml", data="data-other")
    other = _start(other_config, "a", runtimes)
    _define(a, out)

    def split() -> bool:
        # Every stage's group, not only the engine's: a later stage still rebalancing when the
        # points arrive delays them by a rebalance (slow on a loaded machine).
        sa, sb = a.status()["stages"], b.status()["stages"]
        for name in sa.keys() & sb.keys():
            pa, pb = set(sa[name].get("partitions") or ()), set(sb[name].get("partitions") or ())
            if not (pa and pb and not pa & pb and pa | pb == {0, 1, 2, 3}):
                return False
        return "engine" in sa and "engine" in sb

    wait_for(split, timeout=SETTLE_S, what="the two instances to split the 4 partitions of every stage")
    hosts = range(20)
    a.submit_points(_points(hosts[:10], [50, 1, 60]))
    b.submit_points(_points(hosts[10:], [50, 1, 60]))
    wait_for(lambda: _count(noida.bootstrap, out) >= 60, timeout=SETTLE_S, what="60 events")
    events = _read_committed(noida.bootstrap, out)
    by_id: dict[str, list[str]] = {}
    for e in events:
        by_id.setdefault(e["id"], []).append(e["level"])
    assert by_id == {f"cpu:host=h{h}": ["CRITICAL", "OK", "CRITICAL"] for h in hosts}
    sa, sb = a.status()["stages"]["engine"], b.status()["stages"]["engine"]
    assert sa["points"] > 0 and sb["points"] > 0 and sa["points"] + sb["points"] == 60
    assert other.status()["stages"]["engine"]["points"] == 0  # another prefix: never saw them
