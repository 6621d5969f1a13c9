"""Task node stats summed over partitions, stages and instances (the pure core), and the
processors / task stages that count them across aborts and revocations."""

from __future__ import annotations

from typing import Any

from kapacity.models import Point
from kapacity.runtime.engine import KafkaEngineStage
from kapacity.runtime.membership import MembershipView, make_record, stage_summary
from kapacity.runtime.processor import PartitionProcessor, TaskSet
from kapacity.runtime.taskstats import (
    KeptStats,
    cluster_task_stats,
    compact,
    merge_nodes,
    merge_tasks,
    overlay,
)

SCRIPT = "stream|from().measurement('cpu').groupBy(*)|alert().crit(lambda: \"v\" > 10).topic('cpu')"


# --- merging ---------------------------------------------------------------------------------


def test_counters_and_group_gauges_add_up_and_types_are_kept() -> None:
    a = {"from1": {"type": "from", "points_in": 3, "errors": 1},
         "alert2": {"type": "alert", "points_in": 3, "alerts_triggered": 2, "crits_triggered": 2, "groups": 2}}
    b = {"from1": {"type": "from", "points_in": 4, "errors": 0},
         "alert2": {"type": "alert", "points_in": 4, "alerts_triggered": 1, "oks_triggered": 1, "groups": 1}}
    assert merge_nodes([a, b]) == {
        "from1": {"type": "from", "points_in": 7, "errors": 1},
        "alert2": {"type": "alert", "points_in": 7, "alerts_triggered": 3, "crits_triggered": 2, "groups": 3,
                   "oks_triggered": 1},
    }


def test_node_order_is_the_order_of_first_appearance() -> None:
    merged = merge_nodes([{"stream0": {}, "from1": {}}, {"alert2": {}, "from1": {}}])
    assert list(merged) == ["stream0", "from1", "alert2"]


def test_averages_are_weighted_by_the_points_each_part_handled() -> None:
    parts = [{"n": {"points_in": 1, "avg_exec_time_ns": 1000}}, {"n": {"points_in": 3, "avg_exec_time_ns": 200}}]
    assert merge_nodes(parts)["n"] == {"points_in": 4, "avg_exec_time_ns": 400}  # not (1000 + 200) / 2


def test_an_average_missing_from_a_compacted_part_counts_as_zero_with_its_weight() -> None:
    parts = [{"n": {"points_in": 2, "avg_exec_time_ns": 300}}, {"n": {"points_in": 1}}]
    assert merge_nodes(parts)["n"]["avg_exec_time_ns"] == 200


def test_averages_without_any_point_are_a_plain_mean_and_floats_stay_floats() -> None:
    assert merge_nodes([{"n": {"avg_x": 1.0}}, {"n": {"avg_x": 2.0}}])["n"] == {"avg_x": 1.5}


def test_bools_and_strings_are_not_summed() -> None:
    merged = merge_nodes([{"n": {"flag": True, "type": "a"}}, {"n": {"flag": False, "type": "b"}}])
    assert merged["n"] == {"flag": True, "type": "a"}


def test_tasks_merge_independently() -> None:
    merged = merge_tasks([{"t1": {"n": {"points_in": 1}}},
                          {"t2": {"n": {"points_in": 5}}, "t1": {"n": {"points_in": 2}}}])
    assert merged == {"t1": {"n": {"points_in": 3}}, "t2": {"n": {"points_in": 5}}}


def test_compact_keeps_non_zero_numbers_only() -> None:
    stats = {"t": {"from1": {"type": "from", "points_in": 5, "errors": 0, "flag": True},
                   "alert2": {"type": "alert", "errors": 0}}, "idle": {"from1": {"points_in": 0}}}
    assert compact(stats) == {"t": {"from1": {"points_in": 5}}}
    assert compact(None) == {} and compact({"t": "junk"}) == {}


def test_overlay_takes_node_order_types_and_zero_keys_from_the_local_copy() -> None:
    local = {"stream0": {"type": "stream", "points_in": 0}, "alert2": {"type": "alert", "points_in": 0,
                                                                      "alerts_triggered": 0}}
    got = overlay(local, {"alert2": {"points_in": 9, "alerts_triggered": 2, "avg_exec_time_ns": 5},
                          "gone7": {"points_in": 1}})
    assert got == {"stream0": {"type": "stream", "points_in": 0},
                   "alert2": {"type": "alert", "points_in": 9, "alerts_triggered": 2, "avg_exec_time_ns": 5}}
    assert overlay(local, None) == local


# --- the cluster view --------------------------------------------------------------------------


def _record(name: str, stages: dict[str, Any], *, now_ms: int = 10_000, state: str = "running") -> dict[str, Any]:
    return make_record({"instance": name, "stages": stages}, host="h", pid=1, started_ms=0, now_ms=now_ms,
                       interval_ms=2_000, state=state)


def _stage(points: int, alerts: int = 0) -> dict[str, Any]:
    return {"partitions": [0], "task_stats": {"cpu": {"from1": {"type": "from", "points_in": points},
                                                      "alert2": {"points_in": points, "alerts_triggered": alerts}}}}


def test_a_published_stage_summary_carries_compacted_task_stats() -> None:
    summary = stage_summary(_stage(3))
    assert summary["task_stats"] == {"cpu": {"from1": {"points_in": 3}, "alert2": {"points_in": 3}}}
    assert "task_stats" not in stage_summary({"partitions": [0]})


def test_the_cluster_sums_stages_and_instances_that_are_not_stopped() -> None:
    view = MembershipView()
    view.apply("a", _record("a", {"engine": _stage(5, 1), "regroup": _stage(2, 1)}))
    view.apply("b", _record("b", {"engine": _stage(7, 2), "delivery": {"partitions": [0]}}))
    view.apply("c", _record("c", {"engine": _stage(100, 100)}, state="stopped"))
    view.apply("d", _record("d", {"engine": _stage(1)}, now_ms=1_000))  # lost at 10 s: last values count
    view.apply("e", {**_record("e", {"engine": _stage(4, 1)}), "state": "adopted", "adopted_by": "a"})
    instances = view.instances(now_ms=10_000)
    assert {i["instance"]: i["state"] for i in instances} == {
        "a": "running", "b": "running", "c": "stopped", "d": "lost", "e": "adopted"}
    assert cluster_task_stats(instances) == {
        "cpu": {"from1": {"points_in": 19}, "alert2": {"points_in": 19, "alerts_triggered": 5}}}


def test_an_instance_restarted_under_its_name_counts_once() -> None:
    view = MembershipView()
    view.apply("a", _record("a", {"engine": _stage(50)}, now_ms=1_000, state="stopped"))
    view.apply("a", {**_record("a", {"engine": _stage(3)}), "started_ms": 9_000})
    assert cluster_task_stats(view.instances(now_ms=10_000))["cpu"]["from1"] == {"points_in": 3}


def test_kept_stats_follow_the_definition_they_were_counted_under() -> None:
    kept = KeptStats()
    assert not kept
    kept.keep({"t": ("v1", {"n": {"points_in": 1}}), "u": ("w1", {"n": {"points_in": 7}})})
    kept.keep({"t": ("v1", {"n": {"points_in": 2}})})
    assert kept.stats({"t": "v1", "u": "w1"}) == {"t": {"n": {"points_in": 3}}, "u": {"n": {"points_in": 7}}}
    kept.keep({"t": ("v2", {"n": {"points_in": 4}})})  # redefined: counted afresh
    assert kept.stats({"t": "v2"}) == {"t": {"n": {"points_in": 4}}}
    kept.prune({"t": "v2"})  # u deleted
    assert kept.stats({"t": "v2", "u": "w1"}) == {"t": {"n": {"points_in": 4}}}


# --- processors and stages ---------------------------------------------------------------------


def _tasks(script: str = SCRIPT, enabled: bool = True) -> TaskSet:
    ts = TaskSet()
    ts.apply("cpu", {"id": "cpu", "script": script, "enabled": enabled})
    return ts


def _feed(proc: PartitionProcessor, values: list[float], first: int = 0) -> int:
    events = 0
    for i, v in enumerate(values):
        events += len(proc.process(first + i, Point("cpu", {"host": "a"}, {"v": v}, (first + i + 1) * 10**9)))
    return events


def _alert(stats: dict[str, Any]) -> dict[str, Any]:
    [node] = [v for k, v in stats["cpu"].items() if k.startswith("alert")]
    return node  # type: ignore[no-any-return]


def test_a_processor_counts_what_its_pipelines_processed() -> None:
    proc = PartitionProcessor(0, _tasks())
    assert _feed(proc, [50, 60, 1]) == 3
    alert = _alert(proc.task_stats())
    counts = (alert["points_in"], alert["alerts_triggered"], alert["crits_triggered"], alert["oks_triggered"])
    assert counts == (3, 3, 2, 1)


def test_counters_survive_an_abort_and_the_replayed_batch_counts_again() -> None:
    proc = PartitionProcessor(0, _tasks())
    _feed(proc, [50, 60])
    proc.apply(proc.drain_changes())
    _feed(proc, [1], first=2)
    proc.abort()  # the pipeline is rebuilt from the committed state
    assert _alert(proc.task_stats())["points_in"] == 3  # kept while not yet rebuilt
    _feed(proc, [1], first=2)  # the aborted batch, again
    alert = _alert(proc.task_stats())
    assert (alert["points_in"], alert["alerts_triggered"]) == (4, 4)  # at-least-once counts


def test_a_redefined_task_starts_counting_from_zero() -> None:
    tasks = _tasks()
    proc = PartitionProcessor(0, tasks)
    _feed(proc, [50, 60])
    proc.abort()
    tasks.apply("cpu", {"id": "cpu", "script": SCRIPT.replace("> 10", "> 20")})
    assert proc.task_stats() == {}  # the kept counters were the old definition's
    _feed(proc, [50], first=2)
    assert _alert(proc.task_stats())["points_in"] == 1


def test_a_disabled_task_has_no_stats() -> None:
    tasks = _tasks()
    proc = PartitionProcessor(0, tasks)
    _feed(proc, [50])
    tasks.apply("cpu", {"id": "cpu", "script": SCRIPT, "enabled": False})
    _feed(proc, [50], first=1)
    assert proc.task_stats() == {}


def _bare_engine_stage(tasks: TaskSet) -> KafkaEngineStage:
    """The stage's stats bookkeeping without its Kafka clients."""
    stage = KafkaEngineStage.__new__(KafkaEngineStage)
    stage.tasks, stage.processors, stage.kept_stats = tasks, {}, KeptStats()
    return stage


def test_a_stage_sums_its_partitions_and_keeps_the_counts_of_revoked_ones() -> None:
    tasks = _tasks()
    stage = _bare_engine_stage(tasks)
    stage.processors = {0: PartitionProcessor(0, tasks), 1: PartitionProcessor(1, tasks)}
    _feed(stage.processors[0], [50, 1])
    _feed(stage.processors[1], [50])
    assert _alert(stage.task_stats())["points_in"] == 3
    stage._revoked([0])  # a rebalance moved partition 0 away: this instance did process those
    stage.processors[2] = PartitionProcessor(2, tasks)
    _feed(stage.processors[2], [50, 60, 70])
    alert = _alert(stage.task_stats())
    assert (alert["points_in"], alert["alerts_triggered"]) == (6, 6)
    assert stage.task_stats()["cpu"]["from1"]["type"] == "from"
