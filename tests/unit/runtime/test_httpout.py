"""|httpOut in Kafka mode (pure parts): what a stage publishes and how an instance's API
merges the cluster's results."""

from __future__ import annotations

import json

from kapacity.models import Point
from kapacity.runtime.httpout import bounded, cluster_http_out, merge
from kapacity.runtime.membership import stage_summary
from kapacity.runtime.processor import PartitionProcessor, TaskSet

SCRIPT = "stream|from().measurement('cpu').groupBy('host')|httpOut('latest')"


def _proc(partition: int) -> PartitionProcessor:
    ts = TaskSet()
    ts.apply("t", {"id": "t", "script": SCRIPT})
    return PartitionProcessor(partition, ts)


def _inst(state: str, groups: dict[str, str]) -> dict[str, object]:
    return {"state": state, "stages": {"regroup": {"http_out": {"t": {"latest": groups}}}}}


def test_a_partition_publishes_the_latest_series_of_each_of_its_groups() -> None:
    proc = _proc(0)
    for i, (host, v) in enumerate([("a", 1.0), ("b", 2.0), ("a", 3.0)]):
        proc.process(i, Point("cpu", {"host": host}, {"v": v}, (i + 1) * 10**9))
    published = proc.http_out()
    assert sorted(published["t"]["latest"]) == ["host=a", "host=b"]
    assert json.loads(published["t"]["latest"]["host=a"])["values"] == [["1970-01-01T00:00:03Z", 3.0]]


def test_the_api_serves_the_union_of_every_instance_ordered_by_group() -> None:
    a, b = _proc(0), _proc(1)
    a.process(0, Point("cpu", {"host": "z"}, {"v": 1.0}, 10**9))
    b.process(0, Point("cpu", {"host": "m"}, {"v": 2.0}, 10**9))
    instances = [{"state": "running", "stages": {"regroup": stage_summary({"http_out": p.http_out()})}}
                 for p in (a, b)]
    body = json.loads(cluster_http_out(instances, "t", "latest") or "null")
    assert [s["tags"]["host"] for s in body["series"]] == ["m", "z"]
    assert cluster_http_out(instances, "t", "other") is None


def test_a_live_instance_wins_a_group_over_a_lost_one_and_stopped_ones_are_left_out() -> None:
    instances = [_inst("running", {"g": '"new"'}), _inst("lost", {"g": '"old"', "h": '"only-lost"'}),
                 _inst("stopped", {"s": '"gone"'})]
    assert cluster_http_out(instances, "t", "latest") == '{"series":["new","only-lost"]}'


def test_publishing_is_bounded_and_says_so() -> None:
    outs = {"t": {"latest": {f"g{i:03d}": "x" * 100 for i in range(50)}}}
    kept, truncated = bounded(outs, limit=1_000)
    assert truncated and len(kept["t"]["latest"]) == 10 and "g000" in kept["t"]["latest"]
    assert bounded(outs) == (outs, False)
    assert merge([{"t": {"latest": {"a": "1"}}}, {"t": {"latest": {"a": "2", "b": "3"}}}]) == {
        "t": {"latest": {"a": "2", "b": "3"}}}
