"""Which tasks are series-aligned, the regrouping key, and the routing of the first hop."""

from __future__ import annotations

import random
import textwrap

import pytest

from kapacity.config import ConfigError, parse_config
from kapacity.config.queue import KafkaQueueConfig
from kapacity.models import Point
from kapacity.pipeline import build_task
from kapacity.queue.kinds import SPECS, Kind
from kapacity.runtime.processor import PartitionProcessor, TaskSet
from kapacity.runtime.records import RecordError, series_key
from kapacity.runtime.regroup import (
    SERIES,
    Grouping,
    Router,
    repartition_value,
    split_repartition_value,
    task_grouping,
)

ALERT = "|alert().crit(lambda: \"v\" > 90)"


def _grouping(script: str) -> Grouping:
    return task_grouping(build_task(script, task_name="t"))


@pytest.mark.parametrize(
    ("script", "aligned"),
    [
        ("stream|from().measurement('cpu').groupBy(*)" + ALERT, True),
        ("stream|from().groupBy(*).groupByMeasurement()" + ALERT, True),
        ("stream|from().measurement('cpu').groupBy('host')" + ALERT, False),
        ("stream|from().measurement('cpu')" + ALERT, False),  # one group for everything
        ("stream|from().groupBy(*)" + ALERT, False),  # * across measurements
        ("stream|from().measurement('cpu').groupBy(*)|groupBy('host')" + ALERT, False),
        ("stream|from().measurement('cpu')|groupBy(*)" + ALERT, False),  # from() had the nil group
        ("stream|from().measurement('cpu').groupBy(*)|groupBy(*).exclude('cpu')" + ALERT, False),
        ("stream|from().measurement('cpu').groupBy(*)|window().period(10s).every(10s)|count('v')"
         "|alert().crit(lambda: \"count\" > 1)", True),
    ],
)
def test_alignment(script: str, aligned: bool) -> None:
    assert _grouping(script).aligned is aligned


def test_the_key_is_the_tags_of_the_group() -> None:
    g = _grouping("stream|from().measurement('cpu').groupBy('host', 'dc')" + ALERT)
    assert g == Grouping(frozenset({"host", "dc"}), frozenset(), True)
    p = Point("cpu", {"host": "a b", "dc": "x", "cpu": "3"}, {"v": 1.0}, 0)
    assert g.key(p) == "cpu,dc=x,host=a\\ b"
    # a missing tag is empty, as in the group id: both points are in group "dc=,host=a"
    assert g.key(Point("cpu", {"host": "a"}, {}, 0)) == g.key(Point("cpu", {"host": "a", "dc": ""}, {}, 0))


def test_a_later_groupby_narrows_the_key_to_the_common_tags() -> None:
    g = _grouping("stream|from().groupBy('host', 'cpu')|groupBy('host', 'dc')" + ALERT)
    assert g == Grouping(frozenset({"host"}), frozenset(), False)
    assert g.key(Point("mem", {"host": "a", "cpu": "1", "dc": "x"}, {}, 0)) == "host=a"


def test_star_across_measurements_keys_by_every_tag_without_the_measurement() -> None:
    g = _grouping("stream|from().groupBy(*)" + ALERT)
    assert g.key(Point("cpu", {"host": "a"}, {}, 0)) == g.key(Point("mem", {"host": "a"}, {}, 0)) == "host=a"
    ex = _grouping("stream|from().groupBy(*)|groupBy(*).exclude('cpu')" + ALERT)
    assert ex.key(Point("cpu", {"host": "a", "cpu": "1"}, {}, 0)) == "host=a"


def test_no_groupby_means_one_key_for_every_point() -> None:
    g = _grouping("stream|from().measurement('cpu')" + ALERT)
    assert {g.key(Point("cpu", {"host": h}, {}, 0)) for h in "abc"} == {"cpu"}


def test_meet_is_commutative_and_series_is_its_identity() -> None:
    gs = [SERIES, Grouping(None, frozenset({"cpu"})), Grouping(frozenset({"host", "cpu"}), by_measurement=True),
          Grouping(frozenset({"host"})), Grouping(frozenset())]
    for a in gs:
        assert SERIES.meet(a) == a
        for b in gs:
            assert a.meet(b) == b.meet(a)


def test_points_of_one_group_always_get_one_key_and_series_keys_do_not() -> None:
    """The property that matters: whatever the series, a group maps to one key."""
    rng = random.Random(7)
    g = _grouping("stream|from().measurement('cpu').groupBy('host')" + ALERT)
    task = build_task("stream|from().measurement('cpu').groupBy('host')" + ALERT, task_name="t")
    keyer = task.graph.sources[0].keyer
    by_group: dict[str, set[str]] = {}
    series_by_group: dict[str, set[str]] = {}
    for _ in range(500):
        p = Point("cpu", {"host": f"h{rng.randrange(5)}", "cpu": str(rng.randrange(8))}, {"v": 1.0}, 0)
        group, _dims = keyer.key(p.name, p.tags)
        by_group.setdefault(group, set()).add(g.key(p))
        series_by_group.setdefault(group, set()).add(series_key(p))
    assert all(len(keys) == 1 for keys in by_group.values())
    assert all(len(keys) > 1 for keys in series_by_group.values())  # why the hop is needed


def test_repartition_values_round_trip_and_poison_names_the_field() -> None:
    p = Point("cpu", {"host": "a"}, {"v": 1.5}, 10, "db", "rp")
    assert split_repartition_value(repartition_value("t1", p)) == ("t1", p)
    with pytest.raises(RecordError, match="'task'"):
        split_repartition_value({"p": {}})
    with pytest.raises(RecordError, match="'p'"):
        split_repartition_value({"task": "t"})


def _taskset(**scripts: str) -> TaskSet:
    ts = TaskSet()
    for tid, script in scripts.items():
        ts.apply(tid, {"id": tid, "script": script})
    return ts


def test_router_routes_only_tasks_that_are_not_aligned_and_read_the_point() -> None:
    ts = _taskset(
        series="stream|from().measurement('cpu').groupBy(*)" + ALERT,
        byhost="stream|from().measurement('cpu').groupBy('host')" + ALERT,
        mem="stream|from().measurement('mem')" + ALERT,
    )
    ts.apply("broken", {"id": "broken", "script": "stream|from().nosuch()"})
    router = Router(ts)
    p = Point("cpu", {"host": "a", "cpu": "0"}, {"v": 95.0}, 1)
    assert router.routes(p) == [("byhost/cpu,host=a", repartition_value("byhost", p))]
    assert [k for k, _ in router.routes(Point("mem", {"host": "a"}, {"v": 1.0}, 1))] == ["mem/mem"]
    assert router.aligned(ts.defs["series"]) and router.regrouped(ts.defs["byhost"])
    assert router.aligned(ts.defs["broken"])  # not routed: the processor reports it

    ts.apply("byhost", None)  # deleted: routed no more
    assert router.routes(p) == []


def test_router_respects_dbrps() -> None:
    ts = TaskSet()
    ts.apply("t", {"id": "t", "script": "stream|from().measurement('cpu')" + ALERT, "dbrps": [["db", "rp"]]})
    router = Router(ts)
    assert router.routes(Point("cpu", {}, {"v": 1.0}, 1, "other", "rp")) == []
    assert len(router.routes(Point("cpu", {}, {"v": 1.0}, 1, "db", "rp"))) == 1


def test_the_two_hops_split_tasks_and_keep_event_ids_apart() -> None:
    ts = _taskset(
        series="stream|from().measurement('cpu').groupBy(*)" + ALERT,
        byhost="stream|from().measurement('cpu').groupBy('host')" + ALERT,
    )
    router = Router(ts)
    first = PartitionProcessor(1, ts, select=router.aligned)
    second = PartitionProcessor(1, ts, select=router.regrouped, eid_prefix="r")
    p = Point("cpu", {"host": "a", "cpu": "0"}, {"v": 95.0}, 1)
    assert [(e.task, e.eid) for e in first.process(4, p)] == [("series", "1:4:series:0")]
    assert [(e.task, e.eid) for e in second.process(4, p, only="byhost")] == [("byhost", "r1:4:byhost:0")]
    assert second.process(5, p, only="series") == []  # not run by this hop


def test_the_new_kinds_follow_their_source_partition_count() -> None:
    cfg = KafkaQueueConfig.model_validate({"topics": {"points": {"partitions": 6}}})
    assert cfg.partitions(Kind.REPARTITION) == cfg.partitions(Kind.REGROUP_STATE) == 6
    assert cfg.naming().topic(Kind.REPARTITION) == "kapacity_repartition"
    assert SPECS[Kind.REPARTITION].properties["retention.ms"] == "604800000"
    assert SPECS[Kind.REGROUP_STATE].properties["cleanup.policy"] == "compact"


def test_a_regroup_changelog_with_other_partitions_than_its_source_is_refused() -> None:
    text = """
    queue:
      type: kafka
      kafka:
        topics:
          repartition: {partitions: 8}
          regroup_state: {partitions: 4}
    """
    with pytest.raises(ConfigError) as info:
        parse_config(textwrap.dedent(text), "yaml", "kapacity.yaml")
    assert any("regroup_state" in str(p) and "must equal the partitions of repartition (8), got 4" in str(p)
               for p in info.value.problems)
