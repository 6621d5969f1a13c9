"""Clients no one here wrote: the ``influxdb`` package's v1 client writes points to kapacity,
``kcat`` (librdkafka's command-line client) consumes the alerts from noida-db."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from tests.integration.server_support import define, kafka_config, server
from tests.support.kafka import Broker, create_topic, unique

pytestmark = pytest.mark.integration

KCAT = shutil.which("kcat") or shutil.which("kafkacat")
#: kcat exits once it has read this many messages (-c) or reached the end (-e); this bounds
#: the wait for the broker should neither ever happen.
KCAT_TIMEOUT_S = 30

TICK = """stream
  |from()
    .measurement('cpu')
    .groupBy('host')
  |alert()
    .crit(lambda: "usage_idle" < 10)
    .message('{{{{ .ID }}}} is {{{{ .Level }}}}')
    .stateChangesOnly()
    .kafka()
      .kafkaTopic('{topic}')
"""


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (Debian: apt-get install -y kcat)")
def test_influxdb_client_in_kcat_out(noida: Broker, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from influxdb import InfluxDBClient

    topic = unique("kcat")
    create_topic(noida.bootstrap, topic)
    with server(kafka_config(noida), tmp_path) as (engine, srv, client):
        define(client, "cpu_alert", TICK.format(topic=topic))
        influx = InfluxDBClient(host=srv.host, port=srv.port, database="telegraf")
        try:
            assert influx.write_points([
                {"measurement": "cpu", "tags": {"host": h}, "time": f"2026-01-01T00:00:{s:02d}Z",
                 "fields": {"usage_idle": v}}
                for s, h, v in [(1, "a", 50.0), (2, "b", 5.0), (3, "a", 3.0), (4, "b", 70.0)]
            ], time_precision="s", retention_policy="autogen")
        finally:
            influx.close()
        assert engine.wait_idle()
    # The server stopped cleanly: its producer delivered everything before close returned.
    assert KCAT is not None
    out = subprocess.run(
        [KCAT, "-C", "-b", noida.bootstrap, "-t", topic, "-o", "beginning", "-c", "3", "-e",
         "-q", "-f", "%k\t%s\n"],
        capture_output=True, text=True, timeout=KCAT_TIMEOUT_S, check=True,
    ).stdout
    # The value ends with a newline of its own (like Kapacitor's JSON encoder).
    got = [(k, json.loads(v)) for k, v in (line.split("\t", 1) for line in out.splitlines() if line)]
    # Per key (one partition each) in order; across keys, partitions may interleave.
    by_key: dict[str, list[tuple[str, str]]] = {}
    for key, body in got:
        by_key.setdefault(key, []).append((body["level"], body["previousLevel"]))
    assert by_key == {
        "cpu:host=a": [("CRITICAL", "OK")],
        "cpu:host=b": [("CRITICAL", "OK"), ("OK", "CRITICAL")],
    }
    assert {b["message"] for _, b in got} == {"cpu:host=a is CRITICAL", "cpu:host=b is CRITICAL",
                                              "cpu:host=b is OK"}
