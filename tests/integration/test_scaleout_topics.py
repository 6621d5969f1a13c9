"""Alert topics in Kafka mode: every instance's topic routes (and ``kapacity show-topic``)
show every event with its level, whichever instance processed it; a topic deleted through
one instance is gone from all of them, and from the ``topic_state`` log a restart reads.

Two ``kapacity serve`` instances (QueuedEngine + uvicorn on real sockets) share one noida.
"""

from __future__ import annotations

import functools
import json
import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from kapacity.alert.topics import Topics
from kapacity.cli.main import _register as register_commands
from kapacity.cli.main import cli
from kapacity.queue.base import Message, Queue
from kapacity.queue.kinds import Kind
from kapacity.server.queued import QueuedEngine
from kapacity.server.topicsync import apply_topic_state
from tests.integration.server_support import V1, define, write
from tests.integration.test_scaleout_broadcast import two_servers  # noqa: F401 - a fixture
from tests.support.kafka import unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TICK = """stream
  |from()
    .measurement('cpu')
    .groupBy('host')
  |alert()
    .warn(lambda: "usage_idle" < 30)
    .crit(lambda: "usage_idle" < 10)
    .message('{{{{ .ID }}}} is {{{{ .Level }}}}')
    .topic('{topic}')
"""
#: Three transactional stages per instance start, join and restore before the first event:
#: seen past 30 s with the suite on 2 busy cores (as in test_server_queued).
FIRST_EVENTS_S = 90.0
#: Later changes: the delivery stage's commit plus the topic sync's poll, well under this.
SHOWN_WITHIN_S = 10.0


def _events(client: httpx.Client, topic: str) -> dict[str, str]:
    r = client.get(f"{V1}/alerts/topics/{topic}/events")
    assert r.status_code == 200, r.text
    return {e["id"]: e["state"]["level"] for e in r.json()["events"]}


def _shown_everywhere(clients: list[httpx.Client], topic: str, want: dict[str, str], timeout: float) -> None:
    for c in clients:
        shows = functools.partial(lambda c: _events(c, topic) == want, c)
        wait_for(shows, timeout=timeout, what=f"{c.base_url} to show {want}")


def _read_all(queue: Queue) -> list[Message]:
    """``topic_state`` from the beginning until idle: what an instance reads at start-up."""
    reader = queue.broadcast(Kind.TOPIC_STATE)
    out: list[Message] = []
    try:
        while batch := reader.poll(1000, 1.0):
            out += batch
    finally:
        reader.close()
    return out


def test_every_instance_shows_every_event_and_a_topic_delete_is_cluster_wide(
    two_servers: tuple[httpx.Client, httpx.Client, list[QueuedEngine]],  # noqa: F811 - the fixture
) -> None:
    a, b, engines = two_servers
    topic = unique("cpu")
    define(a, "cpu_alert", TICK.format(topic=topic))
    write(b, "cpu,host=s1 usage_idle=5 1767225610\ncpu,host=s2 usage_idle=20 1767225610\n")
    _shown_everywhere([a, b], topic, {"cpu:host=s1": "CRITICAL", "cpu:host=s2": "WARNING"}, FIRST_EVENTS_S)
    one = a.get(f"{V1}/alerts/topics/{topic}/events/cpu:host=s1").json()
    assert one["state"]["message"] == "cpu:host=s1 is CRITICAL"
    assert one["state"]["time"] == "2026-01-01T00:00:10Z"
    assert b.get(f"{V1}/alerts/topics/{topic}").json()["level"] == "CRITICAL"

    write(a, "cpu,host=s1 usage_idle=60 1767225620\n")
    start = time.monotonic()
    _shown_everywhere([a, b], topic, {"cpu:host=s1": "OK", "cpu:host=s2": "WARNING"}, SHOWN_WITHIN_S)
    recovery_s = time.monotonic() - start
    for c in (a, b):  # the topic's level is the highest of its events
        listed = c.get(f"{V1}/alerts/topics", params={"pattern": topic}).json()["topics"]
        assert [(t["id"], t["level"]) for t in listed] == [(topic, "WARNING")]
    register_commands()
    shown = CliRunner().invoke(cli, ["show-topic", topic, "--url", str(a.base_url), "--json"], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert {e["id"]: e["state"]["level"] for e in json.loads(shown.output)["events"]} == {
        "cpu:host=s1": "OK", "cpu:host=s2": "WARNING"}

    # Delete through B: A drops the topic too.
    assert b.delete(f"{V1}/alerts/topics/{topic}").status_code == 204
    assert b.get(f"{V1}/alerts/topics/{topic}").status_code == 404
    wait_for(lambda: a.get(f"{V1}/alerts/topics/{topic}").status_code == 404, timeout=SHOWN_WITHIN_S,
             what="A to drop the topic deleted through B")

    # The log: each event's tombstone is on its records' partition (compaction removes them,
    # order holds), and replaying it from the beginning — a restart — leaves no such topic.
    queue = engines[0].runtime.queue
    assert queue is not None
    records = [m for m in _read_all(queue) if m.key.startswith(f"{topic}/")]
    partitions: dict[str, set[int]] = defaultdict(set)
    last: dict[str, Any] = {}
    replayed = Topics()
    for m in records:
        partitions[m.key].add(m.partition)
        last[m.key] = m.value
        apply_topic_state(replayed, m.key, m.value)
    assert sorted(last) == [f"{topic}/cpu:host=s1", f"{topic}/cpu:host=s2"]
    assert all(len(p) == 1 for p in partitions.values()), dict(partitions)
    assert all(v is None for v in last.values()), last
    assert replayed.topic(topic) is None
    for engine in engines:
        assert engine.topic_sync is not None
        status = engine.topic_sync.status()
        assert status["errors"] == 0 and status["pending_echoes"] == 0, status
    print("recovery shown on both instances after (s):", round(recovery_s, 3))
