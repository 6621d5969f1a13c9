"""A task's cluster views in Kafka mode, in the engine stage (series-aligned task) or the
regroup stage (task grouped by a subset of the tags):

* task stats: ``GET /kapacitor/v1/tasks/<id>``, ``kapacity show`` and ``/debug/vars`` on any
  instance show the task's counters summed over the cluster — points processed and alerts
  triggered wherever the partitions live;
* ``|httpOut``: ``GET /kapacitor/v1/tasks/<task>/<endpoint>`` on any instance shows the
  latest series of every group, whichever instance's partitions hold it.

Two ``kapacity serve`` instances (QueuedEngine + uvicorn on real sockets) share one noida.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from kapacity.cli.main import _register as register_commands
from kapacity.cli.main import cli
from kapacity.server.queued import QueuedEngine
from tests.integration.server_support import V1, define, write
from tests.integration.test_scaleout_broadcast import two_servers  # noqa: F401 - a fixture
from tests.support.kafka import unique
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TICK = """stream
  |from()
    .measurement('cpu')
    .groupBy({by})
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .topic('{topic}')
"""
#: Three transactional stages per instance start, join and restore before the first point
#: is processed: seen past 30 s with the suite on 2 busy cores (as in test_server_queued).
FIRST_COUNTS_S = 90.0

#: Four points over three series (two partitions, two instances): s1 goes CRITICAL then
#: back to OK, s2 stays OK (no event), s4 goes CRITICAL: 3 alerts. The producer's default
#: partitioner (crc32 of the series key) puts s1 and s2 on partition 1, s4 on partition 0.
THROUGH_A = "cpu,host=s1 usage_idle=5 1767225610\ncpu,host=s2 usage_idle=50 1767225610\n" \
            "cpu,host=s4 usage_idle=5 1767225610\n"
THROUGH_B = "cpu,host=s1 usage_idle=60 1767225620\n"
WANT = {"points_in": 4, "alerts_triggered": 3, "crits_triggered": 2, "oks_triggered": 1, "groups": 3}


def _alert_node(client: httpx.Client, task: str) -> dict[str, Any]:
    r = client.get(f"{V1}/tasks/{task}")
    assert r.status_code == 200, r.text
    node: dict[str, Any] = r.json()["stats"]["node-stats"]["alert2"]
    return node


def _counts(node: dict[str, Any]) -> dict[str, Any]:
    return {k: node.get(k) for k in WANT}


def test_every_instance_shows_the_cluster_counts_of_a_task(
    two_servers: tuple[httpx.Client, httpx.Client, list[QueuedEngine]],  # noqa: F811 - the fixture
) -> None:
    a, b, engines = two_servers
    topic = unique("cpu")
    define(a, "by_series", TICK.format(by="*", topic=topic))  # series-aligned: the engine stage
    define(a, "by_host", TICK.format(by="'host'", topic=topic))  # regrouped: the regroup stage
    write(a, THROUGH_A)
    write(b, THROUGH_B)

    for client in (a, b):
        for task in ("by_series", "by_host"):
            wait_for(lambda c=client, t=task: _counts(_alert_node(c, t)) == WANT, timeout=FIRST_COUNTS_S,
                     interval=0.2, what=f"{client.base_url} to count {WANT} for {task}")
    shown = {(str(c.base_url), t): _counts(_alert_node(c, t)) for c in (a, b) for t in ("by_series", "by_host")}
    from_node = b.get(f"{V1}/tasks/by_host").json()["stats"]["node-stats"]["from1"]
    vars_b = b.get(f"{V1}/debug/vars").json()["kapacitor"]
    register_commands()
    show = CliRunner().invoke(cli, ["show", "by_series", "--url", str(b.base_url)], catch_exceptions=False)

    def split() -> dict[str, list[int]] | None:
        parts = {name: sorted(e.runtime.status()["stages"]["engine"]["partitions"])
                 for name, e in zip("ab", engines, strict=True)}
        return parts if parts["a"] and parts["b"] else None

    parts = wait_for(split, timeout=30, what="each instance to own an engine partition")
    own = [e.runtime.status()["stages"]["engine"]["task_stats"]["by_series"]["alert2"]["points_in"] for e in engines]

    assert all(v == WANT for v in shown.values()), shown  # the same on both instances
    assert (from_node["type"], from_node["points_in"]) == ("from", 4)
    assert vars_b["nodes:by_series:alert2"]["values"]["alerts_triggered"] == 3
    assert vars_b["nodes:by_host:from1"]["values"]["points_in"] == 4
    assert show.exit_code == 0 and ' alerts_triggered="3" ' in show.output
    # The counts are a sum: each instance ran part of the partitions (s1 and s4 hash apart).
    assert sorted(parts["a"] + parts["b"]) == [0, 1], parts
    assert sum(own) == 4 and all(own), own


HTTP_OUT = """stream
  |from()
    .measurement('cpu')
    .groupBy({by})
  |httpOut('latest')
"""
#: s1 and s4 land on different partitions (see THROUGH_A): the groups are split between the instances.
LATEST_FIRST = "cpu,host=s1 usage_idle=5 1767225610\ncpu,host=s2 usage_idle=50 1767225610\n" \
        "cpu,host=s4 usage_idle=7 1767225610\n"
LATEST_LATER = "cpu,host=s1 usage_idle=60 1767225620\n"
LATEST_WANT = {"s1": [["2026-01-01T00:00:20Z", 60]], "s2": [["2026-01-01T00:00:10Z", 50]],
               "s4": [["2026-01-01T00:00:10Z", 7]]}


def _latest(client: httpx.Client, task: str) -> dict[str, list[list[object]]] | None:
    """The endpoint's series by host; None before the first point, or while this instance
    has not received the task's definition yet (a broadcast: within a second)."""
    r = client.get(f"{V1}/tasks/{task}/latest")
    if r.status_code == 404 and "no task exists" in r.text:
        return None
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    if series is None:
        return None
    assert [s["tags"]["host"] for s in series] == sorted(s["tags"]["host"] for s in series)  # by group
    return {s["tags"]["host"]: s["values"] for s in series}


def test_every_instance_serves_the_latest_series_of_every_group(
    two_servers: tuple[httpx.Client, httpx.Client, list[QueuedEngine]],  # noqa: F811 - the fixture
) -> None:
    a, b, engines = two_servers
    define(a, "by_series", HTTP_OUT.format(by="*"))  # series-aligned: the engine stage
    define(a, "by_host", HTTP_OUT.format(by="'host'"))  # regrouped: the regroup stage
    r = a.get(f"{V1}/tasks/by_host/latest")
    assert (r.status_code, r.text) == (200, '{"series":null}')  # before the first point
    write(a, LATEST_FIRST)
    write(b, LATEST_LATER)
    for client in (a, b):
        for task in ("by_series", "by_host"):
            wait_for(lambda c=client, t=task: _latest(c, t) == LATEST_WANT, timeout=FIRST_COUNTS_S, interval=0.2,
                     what=f"{client.base_url} to show {LATEST_WANT} for {task}")
    published = [e.runtime.status()["stages"]["engine"].get("http_out", {}) for e in engines]
    # The groups really are split: each instance published part of them.
    assert all(p.get("by_series") for p in published), published
    r = a.get(f"{V1}/tasks/by_host/nothere")
    assert r.status_code == 404 and "httpOut('nothere')" in r.text
