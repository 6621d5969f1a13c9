"""Define-time errors: unsupported nodes, unknown properties, `.` vs `|`, bad arguments."""

from __future__ import annotations

import pytest

from kapacity.pipeline import PipelineError, build_task
from kapacity.tick import TickError


def error_of(script: str) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        build_task(script, task_name="t")
    assert isinstance(info.value, TickError)
    return info.value


@pytest.mark.parametrize(
    ("script", "node"),
    [
        ("stream|from()|join(x)", "join"),
        ("stream|from()|union()", "union"),
        ("stream|from()|combine(lambda: TRUE, lambda: TRUE)", "combine"),
        ("stream|from()|flatten()", "flatten"),
        ("stream|from()|sample(10)", "sample"),
        ("stream|from()|shift(5m)", "shift"),
        ("stream|from()|influxDBOut()", "influxDBOut"),
        ("stream|from()|k8sAutoscale()", "k8sAutoscale"),
    ],
)
def test_unsupported_node_is_named_with_position(script: str, node: str) -> None:
    err = error_of(script)
    assert f"node {node} is not supported" in str(err)
    assert err.line == 1 and err.col == script.index(node) + 1


def test_batch_query_is_rejected() -> None:
    err = error_of("batch\n    |query('SELECT 1')")
    assert "batch" in str(err) and err.line == 1


def test_udf_is_rejected() -> None:
    err = error_of("stream|from()@myUDF()")
    assert "myUDF" in str(err)


def test_property_written_as_node_suggests_dot() -> None:
    err = error_of("stream\n  |from()\n  |alert()\n    |crit(lambda: TRUE)")
    assert "crit is a property of alert, use .crit" in str(err)
    assert err.line == 4


def test_node_written_as_property_suggests_pipe() -> None:
    err = error_of("stream|from().window()")
    assert "window is a node" in str(err) and "use |window" in str(err)


def test_unknown_property_lists_valid_ones() -> None:
    err = error_of("stream|from().measurment('cpu')")
    text = str(err)
    assert "unknown property measurment on from" in text
    assert "did you mean measurement?" in text
    assert "retentionPolicy" in text and "groupBy" in text


def test_unknown_node_suggests() -> None:
    err = error_of("stream|from()|alrt()")
    assert "unknown node alrt" in str(err) and "did you mean alert?" in str(err)


def test_unknown_kafka_property_lists_handler_and_alert_properties() -> None:
    err = error_of("stream|from()|alert().kafka().kafkaTopik('x')")
    assert "kafkaTopic" in str(err) and "partitionAlgorithm" in str(err)


def test_bad_partition_algorithm_rejected_at_define_time() -> None:
    err = error_of("stream|from()|alert().kafka().kafkaTopic('t').partitionAlgorithm('md5')")
    assert "md5" in str(err) and "crc32, murmur2, fnv-1a" in str(err)


def test_kafka_without_topic_rejected() -> None:
    err = error_of("stream|from()|alert().kafka()")
    assert "topic must not be empty" in str(err)


def test_wrong_argument_kind() -> None:
    err = error_of("stream|from()|window().period('5m')")
    assert "expected a duration" in str(err)


def test_wrong_argument_count() -> None:
    err = error_of("stream|from()|alert().flapping(0.2)")
    assert ".flapping() takes 2 arguments" in str(err)


def test_flapping_thresholds_are_fractions() -> None:
    err = error_of("stream|from()|alert().flapping(20.0, 50.0)")
    assert "between 0 and 1" in str(err)


def test_unsupported_handler_named() -> None:
    err = error_of("stream|from()|alert().slack()")
    assert "handler slack is not supported" in str(err)


def test_stream_needs_from() -> None:
    err = error_of("stream|window().period(1m)")
    assert "from()" in str(err)


def test_no_stream() -> None:
    err = error_of("var x = 5")
    assert "no stream" in str(err)


def test_window_needs_period() -> None:
    err = error_of("stream|from()|window().every(1m)")
    assert "period" in str(err)


def test_invalid_lambda_reports_position() -> None:
    with pytest.raises(TickError) as info:
        build_task("stream|from()\n  |where(lambda: 1 + 'a' > 0)", task_name="t")
    assert info.value.line == 2


def test_eval_as_count_must_match() -> None:
    err = error_of("stream|from()|eval(lambda: 1, lambda: 2).as('a')")
    assert "2 expressions" in str(err)


def test_typed_var_without_value() -> None:
    err = error_of("var m string\nstream|from().measurement(m)")
    assert "missing value for var 'm'" in str(err)
