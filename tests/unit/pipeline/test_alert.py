"""The alert node through whole TICKscripts: the seed's scripts, levels, emission rules,
handlers, state persistence and deadman."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kapacity.alert.event import encode_alert_json
from kapacity.gotypes import Level
from kapacity.models import Point
from kapacity.pipeline import AlertEvent, HandlerSpec, Task, build_task

S = 1_000_000_000

KAFKA_CPU_ALERT = """
stream
  |from()
    .measurement('cpu')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('Hey, check your CPU')
    .kafka()
      .kafkaTopic('cpu-alerts')
"""

CPU_ALERT = """
stream
  |from()
    .measurement('cpu')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('Hey, check your CPU')
    .topic('cpu')
"""


def cpu(t: int, tags: dict[str, str] | None = None, **fields: Any) -> Point:
    return Point("cpu", dict(tags or {}), fields, time=t * S)


def feed(task: Task, points: list[Point]) -> list[AlertEvent]:
    out: list[AlertEvent] = []
    for p in points:
        out.extend(task.process(p))
    return out


def levels(events: list[AlertEvent]) -> list[str]:
    return [e.data.level.name for e in events]


# --- the seed's scripts -----------------------------------------------------------------


def test_kafka_cpu_alert_seed_script() -> None:
    task = build_task(KAFKA_CPU_ALERT, task_name="kafka-cpu-alert")
    events = feed(task, [cpu(1, {"host": "a"}, usage_idle=50.0), cpu(2, {"host": "a"}, usage_idle=5.0),
                         cpu(3, {"host": "a"}, usage_idle=4.5), cpu(4, {"host": "a"}, usage_idle=60.0),
                         cpu(5, {"host": "a"}, usage_idle=70.0)])
    assert levels(events) == ["CRITICAL", "CRITICAL", "OK"]
    first = events[0]
    assert first.handlers == (HandlerSpec("kafka", {"topic": "cpu-alerts", "disablePartitionById": False,
                                                    "partitionAlgorithm": "crc32"}),)
    assert first.topic == "" and first.task == "kafka-cpu-alert"
    d = first.data
    assert (d.id, d.message, d.previous_level, d.duration.ns, d.recoverable) == (
        "cpu:nil", "Hey, check your CPU", Level.OK, 0, True)
    body = json.loads(encode_alert_json(d))
    assert body["time"] == "1970-01-01T00:00:02Z"
    assert body["data"] == {"series": [{"name": "cpu", "tags": {"host": "a"}, "columns": ["time", "usage_idle"],
                                        "values": [["1970-01-01T00:00:02Z", 5]]}]}
    # details is html/template over {{ json . }}: Go's struct order, HTML-escaped quotes.
    assert d.details.startswith("{&#34;Name&#34;:&#34;cpu&#34;,&#34;TaskName&#34;:&#34;kafka-cpu-alert&#34;,"
                                "&#34;Group&#34;:&#34;nil&#34;,&#34;Tags&#34;:{&#34;host&#34;:&#34;a&#34;}")
    assert "&#34;Level&#34;:&#34;CRITICAL&#34;" in d.details
    # ... and ends with the newline of Go's json.Encoder, as Kapacitor's does.
    assert d.details.endswith("&#34;Message&#34;:&#34;Hey, check your CPU&#34;}\n")
    raw = encode_alert_json(d)
    assert raw.endswith(b"}\n") and b"\\u0026#34;" in raw
    # Episode chain: duration grows from the first non-OK point; previousLevel follows the ID.
    assert [(e.data.duration.ns // S, e.data.previous_level.name) for e in events] == [
        (0, "OK"), (1, "CRITICAL"), (2, "CRITICAL")]


def test_cpu_alert_seed_script_publishes_to_topic() -> None:
    task = build_task(CPU_ALERT, task_name="cpu_alert")
    events = feed(task, [cpu(1, usage_idle=5.0), cpu(2, usage_idle=50.0)])
    assert [(e.topic, e.data.level.name, e.handlers) for e in events] == [
        ("cpu", "CRITICAL", ()), ("cpu", "OK", ())]
    line = encode_alert_json(events[1].data).decode()
    assert line.startswith('{"id":"cpu:nil","message":"Hey, check your CPU","details":"')
    assert '"duration":1000000000,"level":"OK","data":' in line
    assert line.endswith('"previousLevel":"CRITICAL","recoverable":true}\n')


# --- levels -----------------------------------------------------------------------------

RESETS = """
stream|from()
  |alert()
    .info(lambda: "v" > 60).infoReset(lambda: "v" < 50)
    .warn(lambda: "v" > 70).warnReset(lambda: "v" < 60)
    .crit(lambda: "v" > 80).critReset(lambda: "v" < 70)
"""


def test_documented_reset_example() -> None:
    task = build_task(RESETS, task_name="t")
    events = feed(task, [cpu(i, v=float(v)) for i, v in enumerate([61, 73, 64, 85, 62, 56, 47])])
    assert levels(events) == ["INFO", "WARNING", "WARNING", "CRITICAL", "INFO", "INFO", "OK"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([10, 65, 75, 85, 10], ["INFO", "WARNING", "CRITICAL", "OK"]),
        ([10, 10], []),
        ([85, 85, 75], ["CRITICAL", "CRITICAL", "WARNING"]),
    ],
)
def test_levels_without_resets(values: list[int], expected: list[str]) -> None:
    script = "stream|from()|alert().info(lambda: \"v\" > 60).warn(lambda: \"v\" > 70).crit(lambda: \"v\" > 80)"
    task = build_task(script, task_name="t")
    assert levels(feed(task, [cpu(i, v=v) for i, v in enumerate(values)])) == expected


def test_lambda_error_counts_as_false_and_is_counted() -> None:
    script = "stream|from()|alert().warn(lambda: \"v\" > 1).crit(lambda: \"missing\" > 1)"
    task = build_task(script, task_name="t")
    assert levels(feed(task, [cpu(1, v=5)])) == ["WARNING"]
    assert task.stats()["alert2"]["errors"] == 1


# --- emission rules ---------------------------------------------------------------------


def test_state_changes_only() -> None:
    task = build_task("stream|from()|alert().crit(lambda: \"v\" > 5).stateChangesOnly()", task_name="t")
    events = feed(task, [cpu(i, v=v) for i, v in enumerate([9, 9, 9, 1, 1, 9])])
    assert [(e.data.time.ns // S, e.data.level.name) for e in events] == [(0, "CRITICAL"), (3, "OK"), (5, "CRITICAL")]


def test_state_changes_only_with_interval() -> None:
    task = build_task("stream|from()|alert().crit(lambda: \"v\" > 5).stateChangesOnly(10s)", task_name="t")
    events = feed(task, [cpu(t, v=9) for t in range(0, 26, 5)])
    assert [e.data.time.ns // S for e in events] == [0, 10, 20]
    assert [e.data.duration.ns // S for e in events] == [0, 10, 20]


def test_no_recoveries() -> None:
    task = build_task("stream|from()|alert().crit(lambda: \"v\" > 5).noRecoveries()", task_name="t")
    events = feed(task, [cpu(i, v=v) for i, v in enumerate([9, 1, 9])])
    assert levels(events) == ["CRITICAL", "CRITICAL"]
    assert all(not e.data.recoverable for e in events)
    # The dropped recovery still reset the state: the second CRITICAL starts a new episode.
    assert events[1].data.duration.ns == 0
    assert events[1].data.previous_level == Level.CRITICAL  # the last level this ID was sent with


def test_flapping_suppresses_then_resumes() -> None:
    script = "stream|from()|alert().crit(lambda: \"v\" > 5).flapping(0.25, 0.5).history(10)"
    task = build_task(script, task_name="t")
    values = [1, 9] * 6 + [9] * 12
    events = feed(task, [cpu(i, v=v) for i, v in enumerate(values)])
    times = [e.data.time.ns // S for e in events]
    assert times[0] == 1 and len(events) < len(values) // 2
    assert times[-1] == len(values) - 1  # stable again: events resume


def test_group_by_gives_independent_states() -> None:
    script = "stream|from().groupBy('host')|alert().crit(lambda: \"v\" > 5)"
    task = build_task(script, task_name="t")
    events = feed(task, [cpu(1, {"host": "a"}, v=9), cpu(2, {"host": "b"}, v=1), cpu(3, {"host": "b"}, v=9),
                         cpu(4, {"host": "a"}, v=1)])
    assert [(e.data.id, e.data.level.name, e.data.duration.ns // S) for e in events] == [
        ("cpu:host=a", "CRITICAL", 0), ("cpu:host=b", "CRITICAL", 0), ("cpu:host=a", "OK", 3)]
    assert events[0].group == "host=a" and events[0].tags == {"host": "a"}


def test_custom_templates_see_kapacitor_data() -> None:
    script = """
    stream|from().groupBy('host')
      |alert()
        .id('{{ .TaskName }}/{{ index .Tags "host" }}')
        .message('{{ .ID }} {{ .Level }} {{ index .Fields "v" }} {{ .Duration }} {{ .Name }}')
        .details('<b>{{ .Message }}</b>')
        .crit(lambda: "v" > 5)
    """
    task = build_task(script, task_name="tk")
    events = feed(task, [cpu(0, {"host": "a"}, v=9), cpu(90, {"host": "a"}, v=7)])
    assert events[1].data.id == "tk/a"
    assert events[1].data.message == "tk/a CRITICAL 7 1m30s cpu"
    assert events[1].data.details == "<b>tk/a CRITICAL 7 1m30s cpu</b>"


def test_window_aggregate_feeds_alert() -> None:
    script = """
    stream|from().measurement('cpu').groupBy('host')
      |window().period(10s).every(10s)
      |mean('v').as('m')
      |alert().crit(lambda: "m" > 50).message('{{ index .Fields "m" }}')
    """
    task = build_task(script, task_name="t")
    pts = [cpu(t, {"host": "a"}, v=v) for t, v in [(0, 40.0), (3, 80.0), (6, 90.0), (10, 1.0), (20, 1.0)]]
    events = feed(task, pts)
    assert [(e.data.level.name, e.data.message, e.data.time.ns // S) for e in events] == [
        ("CRITICAL", "70", 10), ("OK", "1", 20)]
    assert events[0].data.data.series[0].columns == ["time", "m"]
    assert events[0].data.data.series[0].tags == {"host": "a"}


def test_alert_over_window_batch_uses_highest_level() -> None:
    script = "stream|from()|window().period(10s).every(10s)|alert().warn(lambda: \"v\" > 5).crit(lambda: \"v\" > 8)"
    task = build_task(script, task_name="t")
    events = feed(task, [cpu(0, v=1), cpu(1, v=9), cpu(2, v=6), cpu(10, v=0)])
    assert levels(events) == ["CRITICAL"]
    assert events[0].data.time.ns == 1 * S  # the time of the point that set the level
    assert len(events[0].data.data.series[0].values) == 3


def test_state_fields_and_tags_on_output() -> None:
    script = """
    stream|from()
      |alert().crit(lambda: "v" > 5)
        .levelTag('level').idTag('alertID').levelField('lf').messageField('mf').idField('idf')
        .durationField('dur')
      |httpOut('out')
    """
    task = build_task(script, task_name="t")
    feed(task, [cpu(0, v=9), cpu(2, v=9)])
    res = task.http_out("out")
    assert res is not None
    s = res.series[0]
    assert s.tags == {"level": "CRITICAL", "alertID": "cpu:nil"}
    row = dict(zip(s.columns, s.values[0], strict=True))
    assert (row["lf"], row["idf"], row["dur"], row["mf"]) == ("CRITICAL", "cpu:nil", 2 * S, "cpu:nil is CRITICAL")


# --- handlers ---------------------------------------------------------------------------


def handlers_of(script: str) -> tuple[HandlerSpec, ...]:
    task = build_task(script, task_name="t")
    return task.alert_nodes[0].config.handlers


def test_kafka_handler_both_spellings() -> None:
    docs = handlers_of("stream|from()|alert().kafka().cluster('c1').kafkaTopic('t').template('{{ .ID }}')"
                       ".disablePartitionById(FALSE).partitionAlgorithm('murmur2')")
    code = handlers_of("stream|from()|alert().kafka().cluster('c1').kafkaTopic('t').template('{{ .ID }}')"
                       ".disablePartitionById().partitionHashAlgorithm('fnv-1a')")
    assert docs == (HandlerSpec("kafka", {"cluster": "c1", "topic": "t", "template": "{{ .ID }}",
                                          "disablePartitionById": False, "partitionAlgorithm": "murmur2"}),)
    assert code[0].options["disablePartitionById"] is True
    assert code[0].options["partitionAlgorithm"] == "fnv-1a"
    assert handlers_of("stream|from()|alert().kafka().kafkaTopic('t').disablePartitionById(TRUE)")[0].options[
        "disablePartitionById"] is True


def test_kafka_partition_algorithm_names_match_handler_files() -> None:
    # Case-insensitive like a handler file's option; the canonical name reaches the handler.
    for written, canonical in (("MURMUR2", "murmur2"), ("FNV-1a", "fnv-1a"), ("fnv1a", "fnv-1a"), ("Crc32", "crc32")):
        spec = handlers_of(f"stream|from()|alert().kafka().kafkaTopic('t').partitionAlgorithm('{written}')")[0]
        assert spec.options["partitionAlgorithm"] == canonical
    from kapacity.pipeline import PipelineError

    with pytest.raises(PipelineError, match=r"line 1 char \d+: kafka: invalid partition algorithm 'md5'; "
                                             r"valid choices: crc32, murmur2, fnv-1a"):
        handlers_of("stream|from()|alert().kafka().kafkaTopic('t').partitionAlgorithm('md5')")


def test_other_handlers_and_alert_properties_after_a_handler() -> None:
    hs = handlers_of("""
    stream|from()|alert()
      .log('/tmp/alerts.log').mode(0644)
      .post('http://example.com/hook').header('Authorization', 'Bearer x').header('X-A', 'b')
      .tcp('localhost:9000')
      .exec('/bin/notify', '--level', 'crit')
      .kafka().kafkaTopic('k')
      .crit(lambda: TRUE)
    """)
    assert [h.kind for h in hs] == ["log", "post", "tcp", "exec", "kafka"]
    assert hs[0].options == {"path": "/tmp/alerts.log", "mode": 0o644}
    assert hs[1].options == {"url": "http://example.com/hook",
                             "headers": {"Authorization": "Bearer x", "X-A": "b"}}
    assert hs[2].options == {"address": "localhost:9000"}
    assert hs[3].options == {"prog": "/bin/notify", "args": ["--level", "crit"]}


def test_invalid_kafka_template_rejected() -> None:
    from kapacity.pipeline import PipelineError

    with pytest.raises(PipelineError, match="invalid template"):
        build_task("stream|from()|alert().kafka().kafkaTopic('t').template('{{ .ID ')", task_name="t")


# --- state persistence ------------------------------------------------------------------


def test_snapshot_restore_continues_episode() -> None:
    script = "stream|from().groupBy('host')|alert().crit(lambda: \"v\" > 5)"
    a = build_task(script, task_name="t")
    feed(a, [cpu(1, {"host": "a"}, v=9)])
    snap = json.loads(json.dumps(a.snapshot()))
    b = build_task(script, task_name="t")
    b.restore(snap)
    events = feed(b, [cpu(5, {"host": "a"}, v=1)])
    assert [(e.data.level.name, e.data.previous_level.name, e.data.duration.ns // S) for e in events] == [
        ("OK", "CRITICAL", 4)]


def test_seeded_topic_state_fires_recovery_after_restart() -> None:
    task = build_task(CPU_ALERT, task_name="cpu_alert")
    task.seed_events({"cpu:nil": (Level.CRITICAL, 1 * S)})
    events = feed(task, [cpu(10, usage_idle=50.0)])
    assert [(e.data.level.name, e.data.previous_level.name, e.data.duration.ns // S) for e in events] == [
        ("OK", "CRITICAL", 9)]


def test_inhibit_suppresses_category_while_inhibitor_group_is_not_ok() -> None:
    script = """
    stream|from().measurement('cpu').groupBy('host')
      |alert().inhibit('app', 'host').crit(lambda: "v" > 5)
    stream|from().measurement('mem').groupBy('host')
      |alert().category('app').crit(lambda: "v" > 5)
    """
    task = build_task(script, task_name="t")
    events = feed(task, [
        Point("mem", {"host": "a"}, {"v": 9}, 1 * S),  # not inhibited yet
        Point("cpu", {"host": "a"}, {"v": 9}, 2 * S),  # host a's cpu alert now inhibits 'app'
        Point("mem", {"host": "a"}, {"v": 9}, 3 * S),  # suppressed
        Point("mem", {"host": "b"}, {"v": 9}, 4 * S),  # other host: not suppressed
        Point("cpu", {"host": "a"}, {"v": 1}, 5 * S),  # cpu recovers: inhibition ends
        Point("mem", {"host": "a"}, {"v": 9}, 6 * S),
    ])
    assert [(e.name, e.tags["host"], e.data.time.ns // S) for e in events] == [
        ("mem", "a", 1), ("cpu", "a", 2), ("mem", "b", 4), ("cpu", "a", 5), ("mem", "a", 6)]
    assert events[0].category == "app"
    assert task.stats()["alert4"]["alerts_inhibited"] == 1


def test_inhibition_ends_on_a_recovery_dropped_by_no_recoveries() -> None:
    script = """
    stream|from().measurement('cpu')|alert().noRecoveries().inhibit('app').crit(lambda: "v" > 5)
    stream|from().measurement('mem')|alert().category('app').crit(lambda: "v" > 5)
    """
    task = build_task(script, task_name="t")
    events = feed(task, [Point("cpu", {}, {"v": 9}, 1 * S), Point("cpu", {}, {"v": 1}, 2 * S),
                         Point("mem", {}, {"v": 9}, 3 * S)])
    assert [e.name for e in events] == ["cpu", "mem"]


# --- deadman ----------------------------------------------------------------------------


def test_deadman_fires_on_low_throughput_and_recovers() -> None:
    script = "stream|from().measurement('cpu')|deadman(1.0, 10s)"
    task = build_task(script, task_name="dm")
    events: list[AlertEvent] = []
    events += task.tick(0)  # arms the stats clock: first emission at 10s
    for t in range(0, 10):
        task.process(cpu(t, v=1))
    events += task.tick(10 * S)  # first stats row: no derivative yet
    for t in range(10, 20):
        task.process(cpu(t, v=1))
    events += task.tick(20 * S)  # 10 points in 10s: alive, OK, nothing to say
    assert events == []
    events += task.tick(30 * S)  # nothing in the last 10s: dead
    assert [(e.data.level.name, e.data.id) for e in events] == [("CRITICAL", "nil:from1 for task 'dm'")]
    assert events[0].data.message == "nil:from1 for task 'dm' is dead: 0.000 points/10s."
    for t in range(30, 35):
        task.process(cpu(t, v=1))
    events = task.tick(40 * S)
    assert [(e.data.level.name, e.data.message) for e in events] == [
        ("OK", "nil:from1 for task 'dm' is alive: 5.000 points/10s.")]


def test_deadman_accepts_alert_properties_and_handlers() -> None:
    script = "stream|from()|deadman(0.0, 1m).id('dead').kafka().kafkaTopic('dead-topic')"
    task = build_task(script, task_name="dm")
    node = task.alert_nodes[0]
    assert node.config.handlers[0].options["topic"] == "dead-topic"
    assert node.config.id_text == "dead"


def test_deadman_fires_for_a_stream_that_never_delivered() -> None:
    task = build_task("stream|from().measurement('cpu')|deadman(0.0, 10s)", task_name="dm")
    events = [e for now in (0, 10, 20, 30) for e in task.tick(now * S)]
    # Dead from the second stats row on, and re-sent every interval (no stateChangesOnly).
    assert [(e.data.level.name, e.data.time.ns // S) for e in events] == [("CRITICAL", 20), ("CRITICAL", 30)]
