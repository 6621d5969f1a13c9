"""``|httpOut`` in Kafka mode: ``GET /kapacitor/v1/tasks/<task>/<endpoint>`` on any instance
shows the latest series of every group, whichever instance's partitions hold it — in the
engine stage (series-aligned task) or the regroup stage (grouped by a subset of the tags).

Two ``kapacity serve`` instances (QueuedEngine + uvicorn on real sockets) share one noida.
"""

from __future__ import annotations

import httpx
import pytest

from kapacity.server.queued import QueuedEngine
from tests.integration.server_support import V1, define, write
from tests.integration.test_scaleout_broadcast import two_servers  # noqa: F401 - a fixture
from tests.integration.test_scaleout_taskstats import FIRST_COUNTS_S
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

TICK = """stream
  |from()
    .measurement('cpu')
    .groupBy({by})
  |httpOut('latest')
"""
#: s1 and s4 land on different partitions (crc32 of the series key, see
#: test_scaleout_taskstats): the groups are split between the instances.
FIRST = "cpu,host=s1 usage_idle=5 1767225610\ncpu,host=s2 usage_idle=50 1767225610\n" \
        "cpu,host=s4 usage_idle=7 1767225610\n"
LATER = "cpu,host=s1 usage_idle=60 1767225620\n"
WANT = {"s1": [["2026-01-01T00:00:20Z", 60]], "s2": [["2026-01-01T00:00:10Z", 50]],
        "s4": [["2026-01-01T00:00:10Z", 7]]}


def _latest(client: httpx.Client, task: str) -> dict[str, list[list[object]]] | None:
    r = client.get(f"{V1}/tasks/{task}/latest")
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
    define(a, "by_series", TICK.format(by="*"))  # series-aligned: the engine stage
    define(a, "by_host", TICK.format(by="'host'"))  # regrouped: the regroup stage
    assert _latest(b, "by_host") is None  # before the first point: a nil series list
    write(a, FIRST)
    write(b, LATER)
    for client in (a, b):
        for task in ("by_series", "by_host"):
            wait_for(lambda c=client, t=task: _latest(c, t) == WANT, timeout=FIRST_COUNTS_S, interval=0.2,
                     what=f"{client.base_url} to show {WANT} for {task}")
    published = [e.runtime.status()["stages"]["engine"].get("http_out", {}) for e in engines]
    # The groups really are split: each instance published part of them.
    assert all(p.get("by_series") for p in published), published
    r = a.get(f"{V1}/tasks/by_host/nothere")
    assert r.status_code == 404 and "httpOut('nothere')" in r.text
