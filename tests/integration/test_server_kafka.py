"""End to end: line protocol in over HTTP, alerts out on a real Kafka topic.

The seed document's two examples ("Using the Kafka Event Handler") as written, plus a
groupBy/window task, handler ``match`` and restart recovery.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from click.testing import CliRunner

from kapacity.cli.main import _register as register_commands
from kapacity.cli.main import cli
from tests.integration.server_support import V1, alerts, define, kafka_config, server, write
from tests.support.kafka import Broker, create_topic, unique

pytestmark = pytest.mark.integration

SEED_TICK = """stream
  |from()
    .measurement('cpu')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('Hey, check your CPU')
    .kafka()
      .kafkaTopic('{topic}')
"""

SEED_TOPIC_TICK = """stream
  |from()
    .measurement('cpu')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('Hey, check your CPU')
    .topic('{topic}')
"""


def test_seed_example_tickscript_kafka(broker: Broker, tmp_path: Path) -> None:
    topic = unique("cpu-alerts")
    create_topic(broker.bootstrap, topic)
    with server(kafka_config(broker), tmp_path) as (_engine, _srv, client):
        define(client, "cpu_alert", SEED_TICK.format(topic=topic))
        write(client, "cpu,host=server01 usage_idle=5 1767225610\ncpu,host=server01 usage_idle=50 1767225620\n")
        [(key, crit), (_, ok)] = alerts(broker, topic, 2)
        stats = client.get(f"{V1}/debug/vars").json()["kapacitor"][f"kafka:infra-monitoring:{topic}"]
    assert stats["tags"]["cluster"] == "infra-monitoring"
    assert (stats["values"]["write_messages"], stats["values"]["write_errors"]) == (2, 0)
    assert key == "cpu:nil"
    assert (crit["message"], crit["level"], crit["previousLevel"]) == ("Hey, check your CPU", "CRITICAL", "OK")
    assert crit["time"] == "2026-01-01T00:00:10Z"
    assert crit["data"]["series"][0]["columns"] == ["time", "usage_idle"]
    assert (ok["level"], ok["previousLevel"], ok["duration"]) == ("OK", "CRITICAL", 10_000_000_000)


def test_seed_example_topic_and_handler_file_with_the_cli(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's second example, with its commands as written (no -dbrp)."""
    kafka_topic, alert_topic = unique("cpu-alerts"), unique("cpu")
    create_topic(broker.bootstrap, kafka_topic)
    (tmp_path / "cpu_alert.tick").write_text(SEED_TOPIC_TICK.format(topic=alert_topic))
    (tmp_path / "kafka_cpu_handler.yaml").write_text(
        f"id: kafka-cpu-alert\ntopic: {alert_topic}\nkind: kafka\noptions:\n  topic: '{kafka_topic}'\n")
    register_commands()
    monkeypatch.chdir(tmp_path)
    with server(kafka_config(broker), tmp_path / "data") as (_engine, srv, client):
        for args in (["define", "cpu_alert", "-tick", "cpu_alert.tick"], ["enable", "cpu_alert"],
                     ["define-topic-handler", "kafka_cpu_handler.yaml"]):
            r = CliRunner().invoke(cli, args, env={"KAPACITY_URL": srv.url}, catch_exceptions=False)
            assert r.exit_code == 0, (args, r.output)
        write(client, "cpu,host=a usage_idle=3 1767225610\n")
        [(key, body)] = alerts(broker, kafka_topic, 1)
        topic = client.get(f"{V1}/alerts/topics/{alert_topic}").json()
    assert key == "cpu:nil" and body["message"] == "Hey, check your CPU"
    assert (topic["level"], topic["collected"]) == ("CRITICAL", 1)


def test_group_by_window_alerts_per_host(broker: Broker, tmp_path: Path) -> None:
    topic = unique("win")
    create_topic(broker.bootstrap, topic, partitions=3)
    script = f"""stream
  |from()
    .measurement('cpu')
    .groupBy('host')
  |window()
    .period(10s)
    .every(10s)
  |mean('usage_idle')
    .as('mean')
  |alert()
    .crit(lambda: "mean" < 10)
    .message('{{{{ index .Tags "host" }}}} mean {{{{ index .Fields "mean" }}}}')
    .kafka()
      .kafkaTopic('{topic}')
"""
    lines = []
    for s in range(0, 21):  # host a idles at 5 (alert), host b at 50 (no alert)
        lines.append(f"cpu,host=a usage_idle=5 {1767225600 + s}")
        lines.append(f"cpu,host=b usage_idle=50 {1767225600 + s}")
    with server(kafka_config(broker), tmp_path) as (_engine, _srv, client):
        define(client, "win", script)
        write(client, "\n".join(lines) + "\n")
        got = alerts(broker, topic, 1)
    key, body = got[0]
    assert key == "cpu:host=a"
    assert body["message"] == "a mean 5"
    assert body["data"]["series"][0]["tags"] == {"host": "a"}


def test_topic_handler_match_filters_events(broker: Broker, tmp_path: Path) -> None:
    every, crit_only, alert_topic = unique("every"), unique("crit"), unique("cpu")
    for t in (every, crit_only):
        create_topic(broker.bootstrap, t)
    script = f"""stream
  |from()
    .measurement('cpu')
  |alert()
    .warn(lambda: "usage_idle" < 30)
    .crit(lambda: "usage_idle" < 10)
    .topic('{alert_topic}')
"""
    with server(kafka_config(broker), tmp_path) as (_engine, _srv, client):
        for hid, t, match in (("every", every, ""), ("crit", crit_only, "level() == CRITICAL")):
            r = client.post(f"{V1}/alerts/topics/{alert_topic}/handlers",
                            json={"id": hid, "kind": "kafka", "options": {"topic": t}, "match": match})
            assert r.status_code == 200, r.text
        define(client, "cpu_alert", script)
        write(client, "cpu usage_idle=20 1767225601\ncpu usage_idle=5 1767225602\ncpu usage_idle=50 1767225603\n")
        all_levels = [b["level"] for _, b in alerts(broker, every, 3)]
        crit_levels = [b["level"] for _, b in alerts(broker, crit_only, 1)]
    assert all_levels == ["WARNING", "CRITICAL", "OK"]
    assert crit_levels == ["CRITICAL"]


def test_restart_then_recovery_is_sent_with_previous_level(broker: Broker, tmp_path: Path) -> None:
    topic = unique("restart")
    create_topic(broker.bootstrap, topic)
    script = SEED_TICK.format(topic=topic).replace(".kafka()", ".stateChangesOnly()\n    .kafka()")
    with server(kafka_config(broker), tmp_path) as (_engine, _srv, client):
        define(client, "cpu_alert", script)
        write(client, "cpu usage_idle=5 1767225610\n")
        assert [b["level"] for _, b in alerts(broker, topic, 1)] == ["CRITICAL"]
    with server(kafka_config(broker), tmp_path) as (_engine, _srv, client):
        task = client.get(f"{V1}/tasks/cpu_alert").json()
        assert (task["status"], task["executing"]) == ("enabled", True)
        write(client, "cpu usage_idle=4 1767225620\ncpu usage_idle=60 1767225630\n")
        got = [b for _, b in alerts(broker, topic, 2)]
    # The CRITICAL after the restart is not re-sent (stateChangesOnly); the recovery is.
    assert [(b["level"], b["previousLevel"]) for b in got] == [("CRITICAL", "OK"), ("OK", "CRITICAL")]
    assert got[1]["duration"] == 20_000_000_000
