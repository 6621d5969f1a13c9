"""The Kafka service test (function and CLI) against real brokers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kapacity.cli.service_tests import service_tests_group
from kapacity.config import parse_config
from kapacity.handlers.kafka_service_test import kafka_service_test_options, run_kafka_service_test
from kapacity.kafka.devbroker import free_port
from tests.support.kafka import Broker, consume, create_topic, unique

pytestmark = pytest.mark.integration


def toml(bootstrap: str, cluster_id: str = "example", timeout: str = "3s") -> str:
    return (
        f'[[kafka]]\nenabled = true\nid = "{cluster_id}"\nbrokers = ["{bootstrap}"]\n'
        f'timeout = "{timeout}"\n'
    )


def test_defaults_are_kapacitors() -> None:
    assert kafka_service_test_options() == {
        "cluster": "example", "topic": "test", "key": "key", "message": "test kafka message",
    }


def test_success_only_after_the_broker_acknowledged(broker: Broker) -> None:
    topic = unique("svc")
    create_topic(broker.bootstrap, topic, partitions=1)
    config = parse_config(toml(broker.bootstrap))
    # POST semantics: the body overlays the defaults (cluster "example", key "key").
    assert run_kafka_service_test(config, {"topic": topic, "message": "hello"}) == (True, "")
    [msg] = consume(broker.bootstrap, topic, 1)
    assert (msg.key(), msg.value()) == (b"key", b"hello")


def test_unknown_cluster_and_bad_options_fail_with_the_reason(broker: Broker) -> None:
    config = parse_config(toml(broker.bootstrap))
    ok, message = run_kafka_service_test(config, {"cluster": "nope"})
    assert not ok and 'unknown cluster "nope"' in message and "example" in message
    ok, message = run_kafka_service_test(config, {"topik": "x"})
    assert not ok and "unknown option 'topik'" in message and "topic" in message
    ok, message = run_kafka_service_test(config, {"topic": ""})
    assert (ok, message) == (False, "topic must not be empty")


def test_unreachable_broker_fails_within_timeout() -> None:
    config = parse_config(toml(f"127.0.0.1:{free_port()}", timeout="1s"))
    started = time.monotonic()
    ok, message = run_kafka_service_test(config, {})
    assert time.monotonic() - started < 3.0
    assert not ok
    assert "not acknowledged within 1s" in message or "timed out" in message
    assert "Connection refused" in message or "brokers are down" in message


def test_cli_sends_with_the_config_file(broker: Broker, tmp_path: Path) -> None:
    topic = unique("cli")
    create_topic(broker.bootstrap, topic, partitions=1)
    path = tmp_path / "kapacity.toml"
    path.write_text(toml(broker.bootstrap, cluster_id="infra"))
    runner = CliRunner()
    result = runner.invoke(
        service_tests_group, ["kafka", "--config", str(path), "--topic", topic, "--key", "k1", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"success": True, "message": ""}
    [msg] = consume(broker.bootstrap, topic, 1)
    assert (msg.key(), msg.value()) == (b"k1", b"test kafka message")

    result = runner.invoke(service_tests_group, ["kafka", "--config", str(path), "--cluster", "other"])
    assert result.exit_code == 1
    assert 'unknown cluster "other"' in result.output
