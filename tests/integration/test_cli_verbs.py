"""The client verbs against a live server, Kapacitor's single-dash flags included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kapacity.cli.main import cli
from kapacity.cli.main import _register as register_commands
from tests.integration.server_support import kafka_config, server
from tests.support.kafka import Broker

pytestmark = pytest.mark.integration

register_commands()

TICK = """stream
  |from()
    .measurement('cpu')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('Hey, check your CPU')
    .topic('cpu')
"""


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with server(kafka_config(None), tmp_path / "data") as (_e, srv, _c):
        yield srv.url


def run(url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"KAPACITY_URL": url}, input=input, catch_exceptions=False)


def test_define_enable_list_show_delete(url: str, tmp_path: Path) -> None:
    tick = tmp_path / "cpu_alert.tick"
    tick.write_text(TICK)
    r = run(url, "define", "cpu_alert", "-tick", str(tick), "-dbrp", "telegraf.autogen")
    assert r.exit_code == 0, r.output
    assert run(url, "enable", "cpu_alert").exit_code == 0
    out = run(url, "list", "tasks").output.splitlines()
    assert out[0].split() == ["ID", "Type", "Status", "Executing", "Databases", "and", "Retention", "Policies"]
    assert out[1].split() == ["cpu_alert", "stream", "enabled", "true", '["telegraf"."autogen"]']
    shown = run(url, "show", "cpu_alert").output
    assert "Status: enabled" in shown and ".crit(lambda: \"usage_idle\" < 10)" in shown and "DOT:" in shown
    as_json = json.loads(run(url, "show", "cpu_alert", "--json").output)
    assert as_json["dbrps"] == [{"db": "telegraf", "rp": "autogen"}]
    assert run(url, "disable", "cpu_alert").exit_code == 0
    assert json.loads(run(url, "show", "cpu_alert", "--json").output)["executing"] is False
    # Redefining with the double-dash spelling updates the script in place.
    tick.write_text(TICK.replace("< 10", "< 20"))
    assert run(url, "define", "cpu_alert", "--tick", str(tick)).exit_code == 0
    assert "< 20" in json.loads(run(url, "show", "cpu_alert", "--json").output)["script"]
    assert run(url, "delete", "tasks", "cpu_alert").exit_code == 0
    r = run(url, "show", "cpu_alert")
    assert r.exit_code == 1 and "cpu_alert" in r.output


def test_define_errors_carry_the_server_message(url: str, tmp_path: Path) -> None:
    tick = tmp_path / "bad.tick"
    tick.write_text("stream\n  |from()\n  |alert(\n")
    r = run(url, "define", "bad", "-tick", str(tick), "-dbrp", "db.rp")
    assert r.exit_code == 1
    assert "invalid TICKscript: line 4" in r.output


def test_topic_handler_verbs_and_write(url: str, tmp_path: Path) -> None:
    tick, log = tmp_path / "cpu.tick", tmp_path / "alerts.log"
    tick.write_text(TICK)
    handler = tmp_path / "log_handler.yaml"
    handler.write_text(f"id: log-cpu\ntopic: cpu\nkind: log\noptions:\n  path: '{log}'\n")
    assert run(url, "define", "cpu_alert", "-tick", str(tick), "-dbrp", "telegraf.autogen").exit_code == 0
    assert run(url, "enable", "cpu_alert").exit_code == 0
    r = run(url, "define-topic-handler", str(handler))
    assert r.exit_code == 0, r.output
    assert run(url, "define-topic-handler", str(handler)).exit_code == 0  # replace, not duplicate
    r = run(url, "write", "--db", "telegraf", "--precision", "s", "-", input="cpu usage_idle=5 1\ncpu usage_idle=x 2\n")
    assert r.exit_code == 1 and "line 2:" in r.output
    topics = run(url, "list", "topics").output.splitlines()
    assert topics[0].split() == ["ID", "Level", "Collected"]
    assert any(line.split() == ["cpu", "CRITICAL", "1"] for line in topics[1:])
    assert run(url, "list", "topic-handlers").output.splitlines()[1].split() == ["cpu", "log-cpu", "log"]
    shown = run(url, "show-topic", "cpu").output
    assert "Handlers: [log-cpu]" in shown and "Hey, check your CPU" in shown
    assert "Kind: log" in run(url, "show-topic-handler", "cpu", "log-cpu").output
    assert run(url, "delete", "topic-handlers", "cpu", "log-cpu").exit_code == 0
    assert run(url, "show-topic-handler", "cpu", "log-cpu").exit_code == 1
    assert run(url, "delete", "topics", "cpu").exit_code == 0
    assert "Tasks: 1" in run(url, "stats", "general").output


def test_bad_handler_file_names_the_field(url: str, tmp_path: Path) -> None:
    handler = tmp_path / "h.yaml"
    handler.write_text("id: h\ntopic: cpu\nkind: kafka\noptions:\n  topik: x\n")
    r = run(url, "define-topic-handler", str(handler))
    assert r.exit_code == 1 and "topik" in r.output and "h.yaml" in r.output
    handler.write_text("id: h\ntopic: cpu\nkind: kafak\n")
    r = run(url, "define-topic-handler", str(handler))
    assert r.exit_code == 1 and "kafak" in r.output and "h.yaml:3" in r.output


def test_service_tests_against_the_server(broker: Broker, tmp_path: Path) -> None:
    with server(kafka_config(broker), tmp_path) as (_e, srv, _c):
        r = run(srv.url, "service-tests", "server", "kafka", "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.output) == [{"service": "kafka", "success": True, "message": ""}]
        # Kapacitor's spelling: `service-tests [NAME...]` asks the server too.
        for args in (["service-tests"], ["service-tests", "kafka"]):
            r = run(srv.url, *args)
            assert r.exit_code == 0, r.output
            assert r.output.split() == ["Service", "Success", "Message", "kafka", "true"]
        # A local variant's own option selects it: no server involved, its own error.
        r = run(srv.url, "service-tests", "kafka", "--cluster", "nope")
        assert r.exit_code == 1 and 'unknown cluster "nope"' in r.output


def test_unreachable_server_is_a_clear_error() -> None:
    r = run("http://127.0.0.1:9", "list", "tasks")
    assert r.exit_code == 1 and "cannot reach http://127.0.0.1:9" in r.output


def test_kafka_tail_prints_messages(broker: Broker, tmp_path: Path) -> None:
    from confluent_kafka import Producer

    from tests.support.kafka import create_topic, unique

    topic = unique("tail")
    create_topic(broker.bootstrap, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(2):
        p.produce(topic, key=f"cpu:nil{i}".encode(), value=b'{"level":"CRITICAL"}\n')
    assert p.flush(10) == 0
    cfg = tmp_path / "k.toml"
    cfg.write_text(f'[[kafka]]\n  enabled = true\n  id = "c"\n  brokers = ["{broker.bootstrap}"]\n')
    r = run("http://unused", "kafka", "tail", topic, "--config", str(cfg), "--from-beginning", "-n", "2", "--json")
    assert r.exit_code == 0, r.output
    got = [json.loads(line) for line in r.output.splitlines()]
    assert [(m["key"], m["value"]) for m in got] == [("cpu:nil0", '{"level":"CRITICAL"}'), ("cpu:nil1", '{"level":"CRITICAL"}')]
