"""Kafka mode: ``GET /tasks/<id>`` (stats and DOT), ``GET /tasks`` and ``/debug/vars`` show
the task's counters summed over the cluster's instances, from their membership records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest

from kapacity.models import Point
from kapacity.runtime.membership import MembershipView, make_record
from kapacity.runtime.processor import PartitionProcessor, TaskSet
from kapacity.runtime.taskstats import compact
from kapacity.server.memrepo import MemoryRepository
from kapacity.server.pipeline import PipelineCompiler
from kapacity.server.queued import QueuedEngine
from tests.unit.server.fakes import FakeFactory
from tests.unit.server.test_queued import V1, FakeRuntime, _serve

SCRIPT = "stream\n  |from()\n    .measurement('cpu')\n    .groupBy(*)\n  |alert()\n    .crit(lambda: \"v\" > 10)\n"
NOW_MS = 100_000


def _counted(values: list[float], host: str) -> dict[str, Any]:
    """The ``task_stats`` a stage reports after running ``values`` through the task."""
    tasks = TaskSet()
    tasks.apply("cpu_alert", {"id": "cpu_alert", "script": SCRIPT})
    proc = PartitionProcessor(0, tasks)
    for i, v in enumerate(values):
        proc.process(i, Point("cpu", {"host": host}, {"v": v}, (i + 1) * 10**9, "telegraf", "autogen"))
    return compact(proc.task_stats())


class FakeMembership:
    """This instance's fresh record plus what the ``instances`` kind said of the others."""

    def __init__(self, own_stages: dict[str, Any]) -> None:
        self.own_stages = own_stages
        self.view = MembershipView()

    def publish_other(self, name: str, stages: dict[str, Any], state: str = "running") -> None:
        self.view.apply(name, make_record({"instance": name, "stages": stages}, host="h", pid=2, started_ms=0,
                                          now_ms=NOW_MS, interval_ms=2_000, state=state))

    def record(self) -> dict[str, Any]:
        return make_record({"instance": "a", "stages": self.own_stages}, host="h", pid=1, started_ms=0,
                           now_ms=NOW_MS, interval_ms=2_000)

    def instances(self, own: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.view.instances(NOW_MS, own)


class ClusterRuntime(FakeRuntime):
    def __init__(self) -> None:
        super().__init__()
        self.membership: FakeMembership | None = None


@pytest.fixture
def runtime() -> ClusterRuntime:
    return ClusterRuntime()


@pytest.fixture
def client(runtime: ClusterRuntime) -> Iterator[httpx.Client]:
    engine = QueuedEngine(runtime, compiler=PipelineCompiler(), handlers=FakeFactory(),  # type: ignore[arg-type]  # duck-typed Runtime
                          repo=MemoryRepository(), hostname="a")
    yield from _serve(engine)


def _define(client: httpx.Client) -> None:
    r = client.post(f"{V1}/tasks", json={"id": "cpu_alert", "script": SCRIPT, "status": "enabled",
                                         "dbrps": [{"db": "telegraf", "rp": "autogen"}]})
    assert r.status_code == 200, r.text


def test_task_stats_are_the_sum_over_running_instances(client: httpx.Client, runtime: ClusterRuntime) -> None:
    _define(client)
    membership = runtime.membership = FakeMembership(
        {"engine": {"partitions": [0], "task_stats": _counted([50, 1, 60], "a")}, "delivery": {"partitions": [0]}})
    membership.publish_other("b", {"engine": {"partitions": [1], "task_stats": _counted([50, 50], "b")},
                                   "regroup": {"partitions": [1], "task_stats": _counted([70], "c")}})
    membership.publish_other("old", {"engine": {"partitions": [], "task_stats": _counted([50] * 9, "d")}},
                             state="stopped")  # a stopped instance's counters left with it

    task = client.get(f"{V1}/tasks/cpu_alert").json()
    nodes = task["stats"]["node-stats"]
    assert list(nodes) == ["from1", "alert2"]  # build order, from the local copy
    assert nodes["from1"] == {"type": "from", "points_in": 6, "points_out": 6, "errors": 0}
    alert = nodes["alert2"]
    assert (alert["type"], alert["points_in"], alert["alerts_triggered"]) == ("alert", 6, 6)
    assert (alert["crits_triggered"], alert["oks_triggered"], alert["warns_triggered"]) == (5, 1, 0)
    assert alert["groups"] == 3  # hosts a, b, c: one group each, on one partition each
    assert task["stats"]["task-stats"] == {"throughput": 0.0}
    assert 'from1 [points_in="6" ' in task["dot"] and ' alerts_triggered="6" ' in task["dot"]

    listed = client.get(f"{V1}/tasks").json()["tasks"]
    assert listed[0]["stats"]["node-stats"]["alert2"]["alerts_triggered"] == 6

    kapacitor = client.get(f"{V1}/debug/vars").json()["kapacitor"]
    values = kapacitor["nodes:cpu_alert:alert2"]["values"]
    assert (values["points_in"], values["alerts_triggered"], values["crits_triggered"]) == (6, 6, 5)
    assert kapacitor["tasks:cpu_alert"]["values"] == {"throughput": 0.0}


def test_without_a_running_membership_the_stats_are_the_local_zeros(client: httpx.Client) -> None:
    _define(client)
    task = client.get(f"{V1}/tasks/cpu_alert").json()
    assert task["stats"]["node-stats"]["alert2"]["alerts_triggered"] == 0
    assert task["executing"] is True


def test_a_disabled_task_shows_no_stats(client: httpx.Client, runtime: ClusterRuntime) -> None:
    _define(client)
    runtime.membership = FakeMembership({"engine": {"partitions": [0], "task_stats": _counted([50], "a")}})
    assert client.patch(f"{V1}/tasks/cpu_alert", json={"status": "disabled"}).status_code == 200
    task = client.get(f"{V1}/tasks/cpu_alert").json()
    assert (task["executing"], task["stats"], task["dot"]) == (False, {}, "")
    assert "nodes:cpu_alert:alert2" not in client.get(f"{V1}/debug/vars").json()["kapacitor"]
